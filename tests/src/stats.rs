//! Small statistics for the benchmarks' tables.

use std::time::Duration;

/// The `p` quantile (0.0 to 1.0) of `sorted`, by nearest rank; zero for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
