//! The backlog gauges: queued and parked jobs and the age of the oldest of each,
//! read from the board's indexes ([`JobBoard::backlog`]) every [`REFRESH`] by one
//! loop per board session, so that a job nobody can run shows up as an age that
//! keeps growing. Ages are computed when scraped, from the oldest job's posting time.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jobboard::{Backlog, JobBoard};
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// How often the backlog is read.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The last backlog read; nothing is rendered before the first read.
#[derive(Debug, Default)]
pub struct BacklogGauges {
    last: Mutex<Option<Backlog>>,
}

impl BacklogGauges {
    fn set(&self, backlog: Backlog) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(backlog);
    }

    /// Writes the gauges, ages as of `now_ms`.
    pub fn render(&self, out: &mut String, now_ms: u64) {
        let Some(b) = *self.last.lock().unwrap_or_else(PoisonError::into_inner) else { return };
        let age = |oldest: Option<u64>| oldest.map_or(0.0, |ms| now_ms.saturating_sub(ms) as f64 / 1000.0);
        let gauges: [(&str, &str, f64); 4] = [
            ("baton_jobs_queued", "Claimable jobs on the board.", b.queued as f64),
            ("baton_jobs_parked", "PARKED jobs on the board.", b.parked as f64),
            (
                "baton_oldest_queued_job_age_seconds",
                "Age of the oldest claimable job (0 when none).",
                age(b.oldest_queued),
            ),
            (
                "baton_oldest_parked_job_age_seconds",
                "Age of the oldest PARKED job (0 when none).",
                age(b.oldest_parked),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
    }
}

/// Reads the backlog into `metrics` every `every` until `stop`; a failed read keeps the last values.
pub async fn refresh(board: Arc<dyn JobBoard>, metrics: Arc<Metrics>, every: Duration, stop: CancellationToken) {
    loop {
        match board.backlog().await {
            Ok(backlog) => metrics.backlog.set(backlog),
            Err(error) => tracing::debug!(%error, "cannot read the backlog; keeping the last values"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
