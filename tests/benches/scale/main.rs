//! Scale benchmark of issue 14 (not a test): a long queue and many finished jobs on etcd.
//!
//! For a small queue (`BENCH_SMALL`, default 2,000) and a long one (`BENCH_QUEUED`, default
//! 100,000) of one-step no-op `chain` jobs, each on a fresh prefix of one etcd: posts them over
//! gRPC (64 in flight) to a drained conductor; times an in-process board's claims against that
//! queue (connect to first claim, then claim p50/p99, each claim consumed at once; the claims
//! and a one-key etcd read every 5 ms split by whether the board's background listing of the
//! queue had a page in flight, which is where a long queue's claim tail came from); starts a
//! fresh conductor and times its first finished job and its drain rate, sampling its RSS; then,
//! with every job finished, times the first page of `ListJobs` (all states, and UNCLAIMED
//! with 10 queued) and measures etcd bytes per finished job. The claim reference "10 queued"
//! keeps 10 jobs queued by posting one per claim.
//!
//! Run: `cargo build --release --workspace --bins && BENCH_QUEUED=100000 cargo bench -p tests --bench scale`
//! (`BENCH_FLOW_TASKS=0` skips the 10,000-task flow).
//! `BENCH_SMALL=0` skips the small queue; `BENCH_CLAIMS` sets the claims timed (default 1,000).

use std::time::{Duration, Instant};

use proto::pb;
use tests::conductor::{ConductorConfig, ConductorProcess, HarnessResult};
use tests::etcd::{unique_prefix, EtcdProcess};

mod probes;
mod trace;

use probes::{claim_latencies, post_jobs, ClaimProbe, Finished};
use tests::etcd::size::bytes as etcd_bytes;
use tests::stats::percentile;
use trace::Listing;

/// Claims timed per queue (`BENCH_CLAIMS`): enough that the board's listing of a long queue,
/// which lists a window when the claims near the end of what it knows (one per some hundreds
/// of claims), has pages among them.
const CLAIM_SAMPLES: usize = 1000;
const LIST_SAMPLES: usize = 20;
const PATIENCE: Duration = Duration::from_secs(1800);

fn main() -> HarnessResult<()> {
    let queued = env_usize("BENCH_QUEUED", 100_000);
    let small = env_usize("BENCH_SMALL", 2_000);
    let claims = env_usize("BENCH_CLAIMS", CLAIM_SAMPLES);
    let listing = Listing::install();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let etcd = EtcdProcess::start();
    let endpoint = etcd.endpoint();
    eprintln!("etcd at {endpoint}; claims with 10 queued ...");
    let reference = rt.block_on(claim_reference(&endpoint, claims))?;
    eprintln!("  claim p50/p99 with 10 queued: {}/{}", ms(reference.0), ms(reference.1));
    let flow_tasks = env_usize("BENCH_FLOW_TASKS", 10_000);
    let big_flow = if flow_tasks > 0 {
        eprintln!("a flow of {flow_tasks} tasks ...");
        Some(rt.block_on(big_flow(&endpoint, flow_tasks))?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for n in [small, queued].into_iter().filter(|n| *n > 0) {
        eprintln!("queue of {n} ...");
        rows.push(run(&rt, &endpoint, n, claims, &listing)?);
    }
    println!("\nBaton scale on etcd {}: one-step `chain` jobs", tests::etcd::metrics::version(&endpoint));
    println!(
        "claim with 10 queued (post one per claim), in-process board: p50 {} / p99 {}",
        ms(reference.0),
        ms(reference.1)
    );
    println!("| queued | posting | board connect to first claim | first job complete after start | drain rate | peak RSS | claim p50 / p99 | list first page (all / UNCLAIMED with 10 queued) | etcd bytes per finished job (keys+values / db) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0}/s | {} | {} | {:.0} jobs/s | {:.1} MiB | {} / {} | {} / {} | {:.0} / {:.0} |",
            r.queued,
            r.post_rate,
            ms(r.first_claim),
            ms(r.first_done),
            r.drain_rate,
            r.peak_rss_kib as f64 / 1024.0,
            ms(r.claim.0),
            ms(r.claim.1),
            ms(r.list_all),
            ms(r.list_unclaimed),
            r.bytes_logical,
            r.bytes_db,
        );
    }
    println!(
        "\n| claim latency (in-process board, one claim at a time) | p50 | p99 | p99 / 10-queued p99 on a fresh etcd | \
         10 queued on the same etcd just before: p50 / p99 | p99 / that p99 (target <= 1.5x) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| 10 queued (one posted per claim), fresh etcd | {} | {} | 1.00x | - | - |",
        ms(reference.0),
        ms(reference.1)
    );
    for r in &rows {
        let ratio = r.claim.1.as_secs_f64() / reference.1.as_secs_f64().max(1e-6);
        let same = r.claim.1.as_secs_f64() / r.reference.1.as_secs_f64().max(1e-6);
        println!(
            "| {} queued | {} | {} | {:.2}x | {} / {} | {:.2}x |",
            r.queued,
            ms(r.claim.0),
            ms(r.claim.1),
            ratio,
            ms(r.reference.0),
            ms(r.reference.1),
            same
        );
    }
    for r in &rows {
        println!("{} queued: {}", r.queued, r.split);
    }
    if let Some((run, read)) = big_flow {
        println!(
            "\nflow of {flow_tasks} tasks (`chain` step_ms=0): ran in {:.1} s ({:.0} steps/s); its logbook read back \
             whole (what a resume reads) in {} (target < 2 s)",
            run.as_secs_f64(),
            flow_tasks as f64 / run.as_secs_f64(),
            ms(read)
        );
    }
    if let [base, big] = rows.as_slice() {
        println!("\n| target ({} queued) | measured | met |", big.queued);
        println!("|---|---|---|");
        let met = |ok: bool| if ok { "yes" } else { "NO" };
        println!(
            "| first claim within 2 s of start | {} (conductor: first job complete {}) | {} |",
            ms(big.first_claim),
            ms(big.first_done),
            met(big.first_claim <= Duration::from_secs(2))
        );
        let ratio = big.drain_rate / base.drain_rate.max(1.0);
        println!("| drain >= 80% of the small queue's | {:.0}% | {} |", ratio * 100.0, met(ratio >= 0.8));
        println!(
            "| RSS < 100 MiB | {:.1} MiB | {} |",
            big.peak_rss_kib as f64 / 1024.0,
            met(big.peak_rss_kib < 100 * 1024)
        );
        let claim_ratio = big.claim.1.as_secs_f64() / big.reference.1.as_secs_f64().max(1e-6);
        let fresh_ratio = big.claim.1.as_secs_f64() / reference.1.as_secs_f64().max(1e-6);
        println!(
            "| claim p99 <= 1.5x the 10-queued p99 (on the same etcd; on a fresh one: {:.2}x) | {:.2}x | {} |",
            fresh_ratio,
            claim_ratio,
            met(claim_ratio <= 1.5)
        );
        println!(
            "| list first page < 50 ms | {} / {} | {} |",
            ms(big.list_all),
            ms(big.list_unclaimed),
            met(big.list_all < Duration::from_millis(50) && big.list_unclaimed < Duration::from_millis(50))
        );
    }
    Ok(())
}

/// One queue length's figures.
struct Row {
    queued: usize,
    post_rate: f64,
    first_claim: Duration,
    claim: (Duration, Duration),
    /// Claim p50/p99 with 10 queued on a prefix of its own, on the same etcd just before.
    reference: (Duration, Duration),
    first_done: Duration,
    drain_rate: f64,
    peak_rss_kib: u64,
    list_all: Duration,
    list_unclaimed: Duration,
    bytes_logical: f64,
    bytes_db: f64,
    /// The claims split by the board's background listing (`Split::describe`).
    split: String,
}

fn run(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    queued: usize,
    claims: usize,
    listing: &Listing,
) -> HarnessResult<Row> {
    let prefix = unique_prefix(&format!("scale-{queued}"));
    let db_before = rt.block_on(etcd_bytes(endpoint, None))?.1;
    let poster = ConductorProcess::start(&ConductorConfig::etcd(endpoint, &prefix, "poster", Duration::from_secs(10)))?;
    let client = rt.block_on(proto::Client::connect(poster.endpoint()))?;
    rt.block_on(client.drain("poster", true))?;
    let started = Instant::now();
    rt.block_on(post_jobs(&client, queued))?;
    let post_rate = queued as f64 / started.elapsed().as_secs_f64();
    // The same reference again, on this etcd as it is now (holding this queue): what a
    // claim costs with 10 queued where etcd holds as much, so the ratio is the queue's alone.
    eprintln!("  posted at {post_rate:.0}/s; claims with 10 queued on a prefix of their own ...");
    let reference = rt.block_on(claim_reference(endpoint, claims))?;
    eprintln!("  claims from an in-process board ...");
    let probe = rt.block_on(ClaimProbe::run(endpoint, &prefix, claims.min(queued / 10), listing))?;
    eprintln!("  {}", probe.split.describe());
    eprintln!("  a fresh conductor drains the rest ...");
    let finished = rt.block_on(Finished::watch(endpoint, &prefix))?;
    let spawned = Instant::now();
    let runner = ConductorProcess::start(&ConductorConfig::etcd(endpoint, &prefix, "runner", Duration::from_secs(10)))?;
    let remaining = queued - probe.consumed;
    let drain = rt.block_on(finished.wait_for(remaining, spawned, &runner, PATIENCE))?;
    // Stopped first, so that the 10 jobs posted for the UNCLAIMED page stay queued.
    drop(runner);
    eprintln!("  listing ...");
    let (list_all, list_unclaimed) = rt.block_on(list_pages(&client))?;
    let (logical, db_after) = rt.block_on(etcd_bytes(endpoint, Some(&prefix)))?;
    eprintln!(
        "  {queued} queued: posting {post_rate:.0}/s, first claim {}, claim p50/p99 {}/{}, first done {}, drain {:.0}/s, \
         peak RSS {} KiB, list {}/{}, bytes/job {:.0}/{:.0}",
        ms(probe.first_claim),
        ms(probe.p50),
        ms(probe.p99),
        ms(drain.first),
        drain.rate,
        drain.peak_rss_kib,
        ms(list_all),
        ms(list_unclaimed),
        logical as f64 / queued as f64,
        db_after.saturating_sub(db_before) as f64 / queued as f64
    );
    Ok(Row {
        queued,
        post_rate,
        first_claim: probe.first_claim,
        claim: (probe.p50, probe.p99),
        reference,
        first_done: drain.first,
        drain_rate: drain.rate,
        peak_rss_kib: drain.peak_rss_kib,
        list_all,
        list_unclaimed,
        bytes_logical: logical as f64 / queued as f64,
        bytes_db: db_after.saturating_sub(db_before) as f64 / queued as f64,
        split: probe.split.describe(),
    })
}

/// Claim p50/p99 with 10 jobs queued (one posted per claim), on a prefix of its own.
async fn claim_reference(endpoint: &str, claims: usize) -> HarnessResult<(Duration, Duration)> {
    let prefix = unique_prefix("scale-ref");
    let poster = ConductorProcess::start(&ConductorConfig::etcd(endpoint, &prefix, "poster", Duration::from_secs(10)))?;
    let client = proto::Client::connect(poster.endpoint()).await?;
    client.drain("poster", true).await?;
    post_jobs(&client, 10).await?;
    let mut samples: Vec<Duration> =
        claim_latencies(endpoint, &prefix, claims, Some(&client)).await?.claims.iter().map(|c| c.1).collect();
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

/// Runs a `chain` of `steps` steps on a conductor of its own; then times reading its whole
/// logbook through an in-process board (median of 5), which is what a resume reads.
async fn big_flow(endpoint: &str, steps: usize) -> HarnessResult<(Duration, Duration)> {
    let prefix = unique_prefix("scale-flow");
    let conductor =
        ConductorProcess::start(&ConductorConfig::etcd(endpoint, &prefix, "flow-runner", Duration::from_secs(10)))?;
    let client = proto::Client::connect(conductor.endpoint()).await?;
    let finished = Finished::watch(endpoint, &prefix).await?;
    let started = Instant::now();
    let store = format!(r#"{{"steps": {steps}, "step_ms": 0}}"#);
    let job =
        client.post_job(pb::PostJobRequest { flow: "chain".into(), store_json: store, ..Default::default() }).await?;
    finished.wait_for(1, started, &conductor, PATIENCE).await?;
    let ran = started.elapsed();
    let read = probes::logbook_read(endpoint, &prefix, &job.id, 5).await?;
    eprintln!("  {steps} steps ran in {ran:?}; logbook read {read:?}");
    Ok((ran, read))
}

/// The first page of ListJobs, all states and UNCLAIMED after 10 more posts: medians.
async fn list_pages(client: &proto::Client) -> HarnessResult<(Duration, Duration)> {
    post_jobs(client, 10).await?;
    let mut medians = Vec::new();
    for state in [pb::JobState::Unspecified, pb::JobState::Unclaimed] {
        let mut samples = Vec::new();
        for _ in 0..LIST_SAMPLES {
            let started = Instant::now();
            let page = client.list_jobs(pb::ListJobsRequest { state: state as i32, ..Default::default() }).await?;
            samples.push(started.elapsed());
            if page.jobs.is_empty() {
                return Err(format!("ListJobs {state:?} returned no job").into());
            }
        }
        samples.sort();
        medians.push(percentile(&samples, 0.5));
    }
    Ok((medians[0], medians[1]))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
