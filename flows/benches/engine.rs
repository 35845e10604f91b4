//! Engine throughput on no-op tasks: `cargo bench -p flows`.
//!
//! Prints one row per pattern (linear, unordered, graph) x mode (serial =
//! max_concurrency 1; parallel = max_concurrency 8, jobs polled inline first and
//! spawned only if they wait, the default; spawned = max_concurrency 8 with
//! `eager_spawn`, one tokio task per job) x size (1,000 and 100,000 tasks), with the in-memory logbook (`MemoryStorage`) written on every
//! transition as in a real run. The graph is a binary fan-out (task i runs
//! after task (i-1)/2). TaskFlow 6.5 figures (tasks/s, in-memory, 2 cores) are
//! shown for comparison: linear 91/79, unordered 1,880/750, graph 1,757/761.
//! Each row is the best of 5 runs (1,000 tasks) or 2 runs (100,000 tasks);
//! "compile ms" is `Engine::builder(..).build()` (compile + logbook setup),
//! "run ms" is `Engine::run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flows::{task_fn, Engine, Flow, FlowState, MemoryStorage};
use serde_json::Value;
use uuid::Uuid;

fn noop(i: usize) -> flows::TaskSpec {
    task_fn(format!("t{i}"), |_| async { Ok(Value::Null) })
}

fn build(pattern: &str, n: usize) -> Flow {
    match pattern {
        "linear" => Flow::linear("bench").add_all((0..n).map(noop)),
        "unordered" => Flow::unordered("bench").add_all((0..n).map(noop)),
        _ => {
            let mut flow = Flow::graph("bench").add_all((0..n).map(noop));
            for i in 1..n {
                flow = flow.link(format!("t{}", (i - 1) / 2), format!("t{i}"));
            }
            flow
        }
    }
}

/// TaskFlow's in-memory tasks/s for (pattern, parallel).
fn taskflow(pattern: &str, parallel: bool) -> f64 {
    match (pattern, parallel) {
        ("linear", false) => 91.0,
        ("linear", true) => 79.0,
        ("unordered", false) => 1880.0,
        ("unordered", true) => 750.0,
        ("graph", false) => 1757.0,
        _ => 761.0,
    }
}

async fn measure(pattern: &str, n: usize, concurrency: usize, eager_spawn: bool) -> (Duration, Duration) {
    let flow = build(pattern, n);
    let storage = Arc::new(MemoryStorage::new());
    let started = Instant::now();
    let mut engine = Engine::builder(flow)
        .storage(storage, Uuid::new_v4(), Uuid::new_v4())
        .max_concurrency(concurrency)
        .eager_spawn(eager_spawn)
        .build()
        .await
        .expect("bench flow builds");
    let built = started.elapsed();
    let started = Instant::now();
    let outcome = engine.run().await.expect("bench flow runs");
    let ran = started.elapsed();
    assert_eq!(outcome.state, FlowState::Success, "bench flow must succeed");
    (built, ran)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    println!(
        "{:<10} {:<9} {:>8} {:>11} {:>10} {:>12} {:>9} {:>10}",
        "pattern", "mode", "tasks", "compile ms", "run ms", "tasks/s", "µs/task", "x TaskFlow"
    );
    // `FLOWS_BENCH_SIZES=1000,10000,100000` picks other sizes.
    let sizes: Vec<usize> = std::env::var("FLOWS_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000]);
    for n in sizes {
        for pattern in ["linear", "unordered", "graph"] {
            for (mode, concurrency, eager) in [("serial", 1usize, false), ("parallel", 8, false), ("spawned", 8, true)]
            {
                // The machine is shared: keep the best of a few runs (the first also warms up).
                let rounds = if n <= 1_000 { 5 } else { 2 };
                let (built, ran) = (0..rounds)
                    .map(|_| runtime.block_on(measure(pattern, n, concurrency, eager)))
                    .min_by_key(|(_, ran)| *ran)
                    .expect("at least one round");
                let secs = ran.as_secs_f64();
                let rate = n as f64 / secs;
                println!(
                    "{:<10} {:<9} {:>8} {:>11.1} {:>10.1} {:>12.0} {:>9.2} {:>10.0}",
                    pattern,
                    mode,
                    n,
                    built.as_secs_f64() * 1e3,
                    secs * 1e3,
                    rate,
                    secs * 1e6 / n as f64,
                    rate / taskflow(pattern, concurrency > 1),
                );
            }
        }
    }
}
