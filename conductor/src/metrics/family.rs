//! Labelled metric families: counters and histograms keyed by their label values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds: from a fast etcd request to a long job.
const BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0];

/// `name="value",...` as written between braces.
type Labels = String;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let escaped: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    escaped.join(",")
}

fn braces(labels: &str, extra: Option<String>) -> String {
    let all: Vec<&str> = [labels, extra.as_deref().unwrap_or_default()].into_iter().filter(|s| !s.is_empty()).collect();
    match all.is_empty() {
        true => String::new(),
        false => format!("{{{}}}", all.join(",")),
    }
}

/// Counters by label values.
#[derive(Debug, Default)]
pub struct CounterFamily {
    values: Mutex<BTreeMap<Labels, u64>>,
}

impl CounterFamily {
    /// Adds one to the counter with these labels.
    pub fn inc(&self, pairs: &[(&str, &str)]) {
        *self.values.lock().unwrap_or_else(PoisonError::into_inner).entry(labels(pairs)).or_default() += 1;
    }

    /// Writes the family (HELP, TYPE and one line per label set).
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in self.values.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "{name}{} {value}", braces(labels, None));
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Histograms by label values.
#[derive(Debug, Default)]
pub struct HistogramFamily {
    values: Mutex<BTreeMap<Labels, Histogram>>,
}

impl HistogramFamily {
    /// Records one observation.
    pub fn observe(&self, pairs: &[(&str, &str)], value: Duration) {
        let seconds = value.as_secs_f64();
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = values.entry(labels(pairs)).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Writes the family: cumulative `_bucket` lines, `_sum` and `_count` per label set.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, h) in self.values.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            for (count, bound) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{} {count}", braces(labels, Some(format!("le=\"{bound}\""))));
            }
            let _ = writeln!(out, "{name}_bucket{} {}", braces(labels, Some("le=\"+Inf\"".into())), h.count);
            let _ = writeln!(out, "{name}_sum{} {}", braces(labels, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", braces(labels, None), h.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_prometheus_text() {
        let counters = CounterFamily::default();
        counters.inc(&[("outcome", "SUCCESS")]);
        counters.inc(&[("outcome", "SUCCESS")]);
        counters.inc(&[("outcome", "say \"hi\"")]);
        let mut out = String::new();
        counters.render(&mut out, "baton_x_total", "X.");
        assert!(out.contains("# TYPE baton_x_total counter\n"), "{out}");
        assert!(out.contains("baton_x_total{outcome=\"SUCCESS\"} 2\n"), "{out}");
        assert!(out.contains("baton_x_total{outcome=\"say \\\"hi\\\"\"} 1\n"), "{out}");

        let histogram = HistogramFamily::default();
        histogram.observe(&[("flow", "f")], Duration::from_millis(3));
        histogram.observe(&[("flow", "f")], Duration::from_secs(1000));
        let mut out = String::new();
        histogram.render(&mut out, "baton_d_seconds", "D.");
        assert!(out.contains("baton_d_seconds_bucket{flow=\"f\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("baton_d_seconds_bucket{flow=\"f\",le=\"600\"} 1\n"), "{out}");
        assert!(out.contains("baton_d_seconds_bucket{flow=\"f\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("baton_d_seconds_count{flow=\"f\"} 2\n"), "{out}");
    }
}
