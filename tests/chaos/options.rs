//! The chaos run's arguments: `--duration`, `--seed`, `--ttl`, `--evidence`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How to call the suite.
pub const USAGE: &str =
    "usage: cargo test -p tests --test chaos -- [--duration 100s] [--seed N] [--ttl 3s] [--evidence DIR]\n\
    --duration  how long faults are injected (default 100s: about 2 minutes in all; the long run is 20m)\n\
    --seed      the seed of the fault and job schedule (default: from the clock; printed)\n\
    --ttl       the conductors' lease TTL (default 3s, so that many faults fit)\n\
    --evidence  where to keep logs and records (default: a new directory under the temp dir, removed on success)";

/// What one run does.
#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    pub seed: u64,
    pub ttl: Duration,
    /// Given by the caller: kept whatever the outcome.
    pub evidence: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after `--`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            duration: Duration::from_secs(100),
            seed: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1),
            ttl: Duration::from_secs(3),
            evidence: None,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (flag.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"));
            match name.as_str() {
                "--duration" => options.duration = duration(&value()?)?,
                "--seed" => options.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--ttl" => options.ttl = duration(&value()?)?,
                "--evidence" => options.evidence = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.ttl < Duration::from_secs(2) || options.ttl.subsec_millis() != 0 {
            return Err("--ttl must be whole seconds, at least 2s (the conductor's minimum)".into());
        }
        Ok(options)
    }
}

/// `100s`, `20m`: the workspace's one duration syntax (a unit is required).
fn duration(text: &str) -> Result<Duration, String> {
    conductor::config::parse_duration(text).map_err(|e| e.to_string())
}
