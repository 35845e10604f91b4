//! Schedule firing delay (not a test): how long after its tick a scheduled job is on the
//! board. A schedule every second runs for a while on real `conductor` processes (three on
//! a fresh etcd racing for every tick, then one on the embedded board); each job's
//! `created_at` minus its tick (read from its idempotency key) is one sample. Prints p50,
//! p99 and max per board (target: p99 under 1 s), and checks along the way that no tick
//! was posted twice.
//!
//! Run: `cargo build --workspace --bins && cargo bench -p tests --bench schedules --profile dev`
//! (the debug conductors the tests run; the bench itself only waits and reads).
//! `BENCH_SECONDS` (default 30) sets how long each board runs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tests::conductor::{baton, ConductorConfig, ConductorProcess, HarnessResult};
use tests::etcd::{unique_prefix, EtcdProcess};

const FLOW: &str = "name: tick\nflow:\n  linear:\n    - task: nothing\n      kind: noop\n";

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn stock(mut config: ConductorConfig, flows: &std::path::Path) -> ConductorConfig {
    config.binary = "conductor";
    config.extra_args = vec!["--flows-dir".into(), flows.display().to_string()];
    config
}

/// Runs a schedule every second for `seconds` on `conductors`; returns the delays (ms).
fn delays(conductors: &[ConductorProcess], seconds: u64) -> HarnessResult<Vec<u64>> {
    let endpoint = conductors[0].endpoint();
    let create = baton(&endpoint, ["schedules", "create", "bench", "--flow", "tick", "--cron", "* * * * * *"]);
    create.ok_json()?;
    std::thread::sleep(Duration::from_secs(seconds));
    baton(&endpoint, ["schedules", "pause", "bench"]).ok_json()?;
    std::thread::sleep(Duration::from_secs(1));
    let Value::Array(jobs) = baton(&endpoint, ["list", "--flow", "tick"]).ok_json()? else {
        return Err("`baton list` printed no list".into());
    };
    let mut ticks: BTreeMap<u64, u64> = BTreeMap::new();
    for job in &jobs {
        let Some(time) = job["idempotency_key"].as_str().and_then(|k| k.strip_prefix("schedule/bench/")) else {
            continue;
        };
        let tick = u64::try_from(time.parse::<jiff_tz::Timestamp>()?.as_millisecond())?;
        let created = job["created_at"].as_u64().ok_or("a job without created_at")?;
        if ticks.insert(tick, created.saturating_sub(tick)).is_some() {
            return Err(format!("tick {time} was posted twice").into());
        }
    }
    Ok(ticks.into_values().collect())
}

fn row(board: &str, conductors: usize, mut samples: Vec<u64>) -> String {
    samples.sort_unstable();
    let at = |p: f64| samples.get(((samples.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    format!(
        "| {board:<8} | {conductors:>10} | {:>5} | {:>7} ms | {:>7} ms | {:>7} ms |",
        samples.len(),
        at(0.5),
        at(0.99),
        samples.last().copied().unwrap_or(0)
    )
}

fn main() -> HarnessResult<()> {
    let seconds = env_or("BENCH_SECONDS", 30);
    let flows = tempfile::tempdir()?;
    std::fs::write(flows.path().join("tick.yaml"), FLOW)?;
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix("bench-schedules");
    let fleet: Vec<ConductorProcess> = ["bench-a", "bench-b", "bench-c"]
        .iter()
        .map(|name| {
            let config = ConductorConfig::etcd(&etcd.endpoint(), &prefix, name, Duration::from_secs(10));
            ConductorProcess::start(&stock(config, flows.path()))
        })
        .collect::<Result<_, _>>()?;
    let on_etcd = delays(&fleet, seconds)?;
    drop(fleet);
    let data = tempfile::tempdir()?;
    let config = ConductorConfig::embedded(data.path(), "bench-one");
    let one = vec![ConductorProcess::start(&stock(config, flows.path()))?];
    let embedded = delays(&one, seconds)?;
    println!("Schedule firing delay: job created_at minus its tick, a schedule every second for {seconds} s\n");
    println!("| board    | conductors | ticks | p50        | p99        | max        |");
    println!("|----------|-----------:|------:|-----------:|-----------:|-----------:|");
    println!("{}", row("etcd", 3, on_etcd));
    println!("{}", row("embedded", 1, embedded));
    Ok(())
}
