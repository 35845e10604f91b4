//! Parked tasks: what they cost (not a test). On a fresh etcd, prints:
//! - completion-to-resume latency p50 / p99: from `CompleteTask` (the board call)
//!   until a waiting claimer holds the job again, woken by the board's watch;
//! - etcd requests of one park + complete cycle, phase by phase;
//! - the deadline scan with N parked tasks of which 10 (then 100) are due: its
//!   time and requests, which follow the due ones, not N;
//! - a conductor's memory (RSS) with N parked jobs vs none.
//!
//! Run: `cargo build --workspace --bins && cargo bench -p tests --bench parked`.
//! `BENCH_PARKED` (default 10000) sets N; `BENCH_CYCLES` (default 200) the latency samples.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::stats::percentile;

use flows::{
    AtomDetail, AtomKind, AtomState, CallbackToken, FlowChanges, FlowDetail, FlowState, ParkRecord, TokenName,
    PARK_META,
};
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, Claim, FlowFilter, JobBoard, NewJob, Parking, TaskOutcome};
use serde_json::{json, Map};
use tests::conductor::{ConductorConfig, ConductorProcess, HarnessResult};
use tests::etcd::metrics::Metrics;
use tests::etcd::{unique_prefix, EtcdProcess};

const KV: &[&str] = &["Range", "Txn", "Put", "DeleteRange"];

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn board(endpoint: &str, prefix: &str, owner: &str) -> HarnessResult<EtcdBoard> {
    let mut config = EtcdConfig::new(vec![endpoint.to_owned()], BoardConfig::new(owner));
    config.prefix = prefix.to_owned();
    Ok(EtcdBoard::connect(config).await?)
}

/// Writes what an engine writes when `approve` parks, then parks the job; returns the token.
async fn park(claim: &Claim, deadline: u64) -> HarnessResult<CallbackToken> {
    let id = claim.id();
    let token = CallbackToken::mint(TokenName { job: id, atom: "approve".into(), attempt: 1 });
    let mut atom = AtomDetail::new("approve", AtomKind::Task);
    atom.state = AtomState::Parked;
    atom.executions = 1;
    let record = ParkRecord { attempt: 1, token_hash: token.hash(), deadline, notified: false };
    atom.meta.insert(PARK_META.into(), serde_json::to_value(&record)?);
    let mut flow = FlowDetail::new(id, "waits");
    flow.state = FlowState::Parked;
    let atoms = [&atom];
    claim.storage().save_changes(id, id, FlowChanges { flow: Some(&flow), atoms: &atoms }).await?;
    match claim.park(&[("approve".into(), 1)]).await? {
        Parking::Parked => Ok(token),
        other => Err(format!("park refused: {other:?}").into()),
    }
}

async fn posted_and_claimed(board: &EtcdBoard) -> HarnessResult<Claim> {
    let job = board.post(NewJob::new("waits", Map::new())).await?;
    Ok(board.claim(job.id).await?)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn latency(endpoint: &str, cycles: usize) -> HarnessResult<()> {
    let prefix = unique_prefix("bench-latency");
    let (owner, client, resumer) = (
        board(endpoint, &prefix, "owner").await?,
        board(endpoint, &prefix, "client").await?,
        board(endpoint, &prefix, "resumer").await?,
    );
    let resumer = Arc::new(resumer);
    let mut samples = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let claim = posted_and_claimed(&owner).await?;
        let id = claim.id();
        let token = park(&claim, flows::now_millis() + 3_600_000).await?.expose();
        let waiter = {
            let resumer = resumer.clone();
            tokio::spawn(async move {
                let mut wake = resumer.claimable();
                loop {
                    if let Some(claim) = resumer.claim_next(&FlowFilter::any()).await? {
                        return Ok::<_, jobboard::Error>((Instant::now(), claim));
                    }
                    wake.changed().await?;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        client.complete_task(&token, TaskOutcome::Result(json!("ok"))).await?;
        let (resumed, claim) = waiter.await??;
        samples.push(resumed - start);
        assert_eq!(claim.id(), id, "the completed job was resumed");
        claim.consume(jobboard::Outcome::Success, None).await?;
    }
    samples.sort();
    println!(
        "completion-to-resume (CompleteTask to a waiting claimer holding the job), {cycles} cycles: p50 {}  p99 {}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99))
    );
    Ok(())
}

async fn requests_per_cycle(etcd: &str) -> HarnessResult<()> {
    let prefix = unique_prefix("bench-requests");
    let (owner, client) = (board(etcd, &prefix, "owner").await?, board(etcd, &prefix, "client").await?);
    // Quiet the watches' and renewals' share: measure each phase on its own.
    let count = || Metrics::read(etcd).kv_requests(KV);
    let job = owner.post(NewJob::new("waits", Map::new())).await?;
    let claim = owner.claim(job.id).await?;
    let before = count();
    let token = park(&claim, flows::now_millis() + 3_600_000).await?.expose();
    let parked = count() - before;
    let before = count();
    client.complete_task(&token, TaskOutcome::Result(json!("ok"))).await?;
    let completed = count() - before;
    let before = count();
    let again = owner.claim(job.id).await?;
    let settled = again.settled().await?;
    let resumed = count() - before;
    println!(
        "etcd KV requests: park (logbook write with entry + due key, then the park txn, its reads) {parked}; \
         complete {completed}; resume (claim + read the delivery, {} delivery) {resumed}",
        settled.len()
    );
    again.consume(jobboard::Outcome::Success, None).await?;
    Ok(())
}

async fn deadline_scan(etcd: &str, parked: usize) -> HarnessResult<()> {
    let prefix = unique_prefix("bench-scan");
    let owner = board(etcd, &prefix, "owner").await?;
    let scanner = board(etcd, &prefix, "scanner").await?;
    let started = Instant::now();
    for _ in 0..parked {
        let claim = posted_and_claimed(&owner).await?;
        park(&claim, flows::now_millis() + 3_600_000).await?;
    }
    println!("set-up: {parked} parked tasks in {:.1} s", started.elapsed().as_secs_f64());
    for due in [0, 10, 100] {
        for _ in 0..due {
            let claim = posted_and_claimed(&owner).await?;
            park(&claim, flows::now_millis().saturating_sub(1)).await?;
        }
        let before = Metrics::read(etcd).kv_requests(KV);
        let start = Instant::now();
        let mut timed_out = 0;
        loop {
            let n = scanner.time_out_due(256).await?;
            timed_out += n;
            if n < 256 {
                break;
            }
        }
        let took = start.elapsed();
        let requests = Metrics::read(etcd).kv_requests(KV) - before;
        println!(
            "deadline scan with {parked} parked, {due} due: {timed_out} timed out in {} with {requests} etcd requests",
            ms(took)
        );
    }
    Ok(())
}

fn memory(etcd: &str, parked: usize) -> HarnessResult<()> {
    let flows = tempfile::tempdir()?;
    std::fs::write(
        flows.path().join("waits.yaml"),
        "name: waits\nflow:\n  linear:\n    - {task: approve, kind: await, with: {timeout: 1h}}\n",
    )?;
    let mut config = ConductorConfig::etcd(etcd, &unique_prefix("bench-memory"), "mem", Duration::from_secs(10));
    config.binary = "conductor";
    config.extra_args =
        vec!["--flows-dir".into(), flows.path().display().to_string(), "--task-kinds".into(), "await".into()];
    let conductor = ConductorProcess::start(&config)?;
    let endpoint = conductor.endpoint();
    let rt = tokio::runtime::Runtime::new()?;
    let idle = conductor.rss_kib()?;
    rt.block_on(async {
        let client = proto::Client::connect(endpoint.clone()).await?;
        let mut last = String::new();
        for _ in 0..parked {
            last = client.post_job(proto::pb::PostJobRequest { flow: "waits".into(), ..Default::default() }).await?.id;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        while client.get_job(last.clone()).await?.state() != proto::pb::JobState::Parked {
            if Instant::now() > deadline {
                return Err::<(), HarnessError>("the jobs did not all park within 10 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    })?;
    let full = conductor.rss_kib()?;
    println!(
        "conductor RSS: {} MiB idle, {} MiB with {parked} parked jobs (+{} KiB)",
        idle / 1024,
        full / 1024,
        full.saturating_sub(idle)
    );
    Ok(())
}

type HarnessError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> HarnessResult<()> {
    let parked = env_or("BENCH_PARKED", 10_000);
    let cycles = env_or("BENCH_CYCLES", 200);
    let etcd = EtcdProcess::start();
    let endpoint = etcd.endpoint();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(latency(&endpoint, cycles))?;
    rt.block_on(requests_per_cycle(&endpoint))?;
    rt.block_on(deadline_scan(&endpoint, parked))?;
    drop(rt);
    memory(&endpoint, parked)?;
    Ok(())
}
