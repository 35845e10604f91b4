//! Benchmark of the embedded (SQLite) job board (not a test; prints a table).
//!
//! Opens a board file in a temp dir on disk (`/tmp`), then measures: post +
//! claim + consume cycles per second with 64 in flight (each in its own
//! session, as conductors would be); and claim latency with 10 and with
//! 10,000 jobs queued, which shows whether a claim costs more as the queue
//! grows (it should not: a claim reads the first row of the claim-order index).
//! Also prints board writes and SQLite commits per cycle: concurrent writes
//! share a commit (group commit), so commits per cycle fall below writes.
//!
//! Run: `cargo bench -p jobboard --bench embedded_board`.
//! Knobs: `BATON_BENCH_IN_FLIGHT`, `BATON_BENCH_CYCLES`, `BATON_BENCH_LATENCY_SAMPLES`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, FlowFilter, JobBoard, NewJob, Outcome};
use serde_json::{json, Map};

/// `BATON_BENCH_<NAME>` from the environment, else the default.
fn knob(name: &str, default: usize) -> usize {
    std::env::var(format!("BATON_BENCH_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A bench binary's error: what failed, as text.
type BenchResult<T> = Result<T, String>;

fn new_job(n: usize) -> NewJob {
    let mut store = Map::new();
    store.insert("n".into(), json!(n));
    NewJob::new("bench", store)
}

/// Post + claim + consume cycles per second, `in_flight` sessions at once.
async fn cycles(board: &EmbeddedBoard, in_flight: usize, total: usize) -> BenchResult<f64> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let session: Arc<dyn JobBoard> = Arc::new(board.session(format!("worker-{w}")));
        let share = total / in_flight + usize::from(w < total % in_flight);
        workers.push(tokio::spawn(async move {
            for n in 0..share {
                session.post(new_job(n)).await.map_err(|e| format!("post: {e}"))?;
                let claim = session.claim_next(&FlowFilter::any()).await.map_err(|e| format!("claim: {e}"))?;
                // Another worker may have taken the job just posted; any job will do.
                if let Some(claim) = claim {
                    claim.consume(Outcome::Success, None).await.map_err(|e| format!("consume: {e}"))?;
                }
            }
            session.close().await.map_err(|e| format!("close: {e}"))
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| format!("worker panicked: {e}"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Claim latencies (sorted) with `queued` jobs waiting behind each claim.
async fn claim_latency(board: &EmbeddedBoard, queued: usize, samples: usize) -> BenchResult<Vec<Duration>> {
    // Drain what earlier phases left, then fill the queue to exactly `queued`.
    while let Some(claim) = board.claim_next(&FlowFilter::any()).await.map_err(|e| format!("drain: {e}"))? {
        claim.consume(Outcome::Success, None).await.map_err(|e| format!("drain consume: {e}"))?;
    }
    for n in 0..queued {
        board.post(new_job(n)).await.map_err(|e| format!("fill: {e}"))?;
    }
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let started = Instant::now();
        let claim = board.claim_next(&FlowFilter::any()).await.map_err(|e| format!("claim: {e}"))?;
        latencies.push(started.elapsed());
        let claim = claim.ok_or("the queue ran dry")?;
        claim.consume(Outcome::Success, None).await.map_err(|e| format!("consume: {e}"))?;
        board.post(new_job(n)).await.map_err(|e| format!("refill: {e}"))?;
    }
    latencies.sort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn run() -> BenchResult<()> {
    let (in_flight, total, samples) = (knob("IN_FLIGHT", 64), knob("CYCLES", 4_000), knob("LATENCY_SAMPLES", 1_000));
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let board = EmbeddedBoard::open(&dir.path().join("board.db"), BoardConfig::new("bench"))
        .map_err(|e| format!("open: {e}"))?;

    let before = board.write_stats();
    let rate = cycles(&board, in_flight, total).await?;
    let after = board.write_stats();
    let per_cycle = |n: u64| n as f64 / total as f64;
    let small = claim_latency(&board, 10, samples).await?;
    let large = claim_latency(&board, 10_000, samples).await?;

    println!("embedded board, file in {}, synchronous=FULL, WAL", dir.path().display());
    println!("| measure | value |");
    println!("|---|---|");
    println!("| post + claim + consume cycles/s ({in_flight} in flight, {total} cycles) | {rate:.0} |");
    println!(
        "| board writes / SQLite commits (fsyncs) per cycle, group commit | {:.2} / {:.2} |",
        per_cycle(after.writes - before.writes),
        per_cycle(after.commits - before.commits)
    );
    println!(
        "| claim p50 / p99, 10 queued ({samples} samples) | {} / {} |",
        ms(percentile(&small, 0.5)),
        ms(percentile(&small, 0.99))
    );
    println!(
        "| claim p50 / p99, 10,000 queued ({samples} samples) | {} / {} |",
        ms(percentile(&large, 0.5)),
        ms(percentile(&large, 0.99))
    );
    let ratio = percentile(&large, 0.99).as_secs_f64() / percentile(&small, 0.99).as_secs_f64().max(f64::MIN_POSITIVE);
    println!("| p99 ratio 10,000 / 10 queued | {ratio:.2} |");
    Ok(())
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("embedded_board bench failed: {e}");
        std::process::exit(1);
    }
}
