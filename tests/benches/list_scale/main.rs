//! Listing benchmark of issue 14 (not a test): the first page of `baton list` with many
//! finished jobs retained on etcd, and etcd's bytes per finished job.
//!
//! Fills one prefix of a fresh etcd with `BENCH_FINISHED` (default 200,000) real finished
//! jobs through an in-process board (see `fill`: 80% cancelled while queued, 10% claimed
//! and consumed, 10% claimed and trashed; two flows, alternating), then 3 claimed (held)
//! and 10 queued jobs. A conductor on that prefix (drained: it runs nothing) serves
//! `ListJobs`. Times the first page (default size, 100) over gRPC (median of 20, and the
//! first call) and through the real `baton list --limit 100` (median of 5, process start
//! included) for: all states, `--state COMPLETE`, `--state TRASHED`, a flow, a page token
//! in the middle, `--state UNCLAIMED` and `--state CLAIMED`; first with etcd as the fill
//! left it (the deleted index keys of the finished jobs not compacted: printed), then after
//! a compaction (what a production etcd's auto-compaction does, at the latest every
//! 5 minutes in revision mode). Beside them, the old first request (a `P m/state/` range
//! to the prefix's end, limit 200) on the same etcd. Then etcd bytes per finished job
//! (keys and values; database after compaction and defragmentation), and per job run by a
//! conductor (a one-step `chain`, its logbook included) on a second prefix (`BENCH_RUN`,
//! default 2,000).
//!
//! `BENCH_BASE_BIN=<dir>` (a `target/release` of older code) also starts that build's
//! `demo_conductor` on the same prefix (drained too) and times its `--state UNCLAIMED` and
//! `--state CLAIMED` first pages beside this build's, on the same etcd in the same run.
//! This build's `--state UNCLAIMED` is also timed right after a write its board watch does
//! not see (outside `P m/`, as a logbook write): the listing then puts its barrier `P m/sync`
//! and waits for the watch to apply it (`jobboard/src/etcd/list_live.rs`).
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p tests --bench list_scale`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use futures::StreamExt;
use proto::pb;
use tests::conductor::{bin_path, ConductorConfig, ConductorProcess, HarnessResult};
use tests::etcd::size::{bytes as etcd_bytes, compact};
use tests::etcd::{unique_prefix, EtcdProcess};
use tests::stats::percentile;

mod fill;

const GRPC_SAMPLES: usize = 20;
const CLI_SAMPLES: usize = 5;
const QUEUED: usize = 10;
const CLAIMED: usize = 3;
const PATIENCE: Duration = Duration::from_secs(600);

/// One listing: its name, the gRPC request, the CLI's arguments after `list`.
struct Query {
    name: &'static str,
    request: pb::ListJobsRequest,
    cli: Vec<String>,
}

/// One listing's times.
struct Timed {
    first: Duration,
    grpc: Duration,
    cli: Duration,
    jobs: usize,
}

fn main() -> HarnessResult<()> {
    let finished = env_usize("BENCH_FINISHED", 200_000);
    let run_jobs = env_usize("BENCH_RUN", 2_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let etcd = EtcdProcess::start();
    let endpoint = etcd.endpoint();
    let prefix = unique_prefix("list-scale");
    let (_, db_empty) = rt.block_on(etcd_bytes(&endpoint, None))?;
    let conductor =
        ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, "lister", Duration::from_secs(10)))?;
    let client = rt.block_on(proto::Client::connect(conductor.endpoint()))?;
    rt.block_on(client.drain("lister", true))?;
    let base = std::env::var_os("BENCH_BASE_BIN").map(PathBuf::from);
    let base = match base {
        Some(dir) => Some(start_base(&rt, &endpoint, &prefix, dir)?),
        None => None,
    };
    eprintln!("filling {finished} finished jobs ...");
    let filled = rt.block_on(fill::finished_jobs(&endpoint, &prefix, finished))?;
    eprintln!("  in {:.0} s ({:.0} jobs/s)", filled.seconds, finished as f64 / filled.seconds);
    let (_holder, _claims) = rt.block_on(fill::open_jobs(&endpoint, &prefix, QUEUED, CLAIMED))?;
    let queries = queries(&rt, &client)?;

    let (compacted, revision) = rt.block_on(compaction_state(&endpoint))?;
    eprintln!("listing (compacted up to revision {compacted} of {revision}) ...");
    let old_path = rt.block_on(old_first_request(&endpoint, &prefix))?;
    let before = measure(&rt, &client, &conductor.endpoint(), &queries)?;
    let open = &queries[queries.len() - 2..];
    let base_before =
        base.as_ref().map(|(process, client)| measure(&rt, client, &process.endpoint(), open)).transpose()?;
    let behind = rt.block_on(after_unwatched_writes(&endpoint, &prefix, &client, &open[0].request))?;
    rt.block_on(compact(&endpoint))?;
    eprintln!("listing after a compaction ...");
    let old_path_compacted = rt.block_on(old_first_request(&endpoint, &prefix))?;
    let after = measure(&rt, &client, &conductor.endpoint(), &queries)?;
    let base_after =
        base.as_ref().map(|(process, client)| measure(&rt, client, &process.endpoint(), open)).transpose()?;
    let (logical, db) = rt.block_on(etcd_bytes(&endpoint, Some(&prefix)))?;
    drop(conductor);
    let per_job = (logical as f64 / finished as f64, db.saturating_sub(db_empty) as f64 / finished as f64);
    let run = if run_jobs > 0 {
        eprintln!("{run_jobs} jobs run by a conductor ...");
        Some(rt.block_on(run_bytes(&endpoint, run_jobs, db))?)
    } else {
        None
    };

    println!(
        "\nBaton listing on etcd {} with {finished} finished jobs retained",
        tests::etcd::metrics::version(&endpoint)
    );
    println!(
        "filled through an in-process board in {:.0} s: {} cancelled while queued, {} claimed and consumed, {} claimed and \
         trashed (no logbooks); then {CLAIMED} claimed (held) and {QUEUED} queued; flows {:?} alternate",
        filled.seconds,
        filled.cancelled,
        filled.completed,
        filled.trashed,
        fill::FLOWS
    );
    println!(
        "old first request (`P m/state/` to the prefix's end, limit 200): {} before the compaction, {} after",
        ms(old_path),
        ms(old_path_compacted)
    );
    println!("\n| first page (100 jobs) | jobs | gRPC median / first call, uncompacted (up to rev {compacted} of {revision}) | gRPC median / first call, compacted | `baton list` median, uncompacted / compacted |");
    println!("|---|---|---|---|---|");
    let base_rows = match (&base, &base_before, &base_after) {
        (Some((process, _)), Some(b), Some(a)) => {
            let dir = process.bin_dir.clone();
            open.iter().zip(b).zip(a).map(|((q, b), a)| (format!("{}, base build {dir}", q.name), b, a)).collect()
        }
        _ => Vec::new(),
    };
    let rows = queries.iter().map(|q| q.name.to_string()).zip(&before).zip(&after).map(|((n, b), a)| (n, b, a));
    for (name, b, a) in rows.chain(base_rows) {
        println!(
            "| {} | {} | {} / {} | {} / {} | {} / {} |",
            name,
            a.jobs,
            ms(b.grpc),
            ms(b.first),
            ms(a.grpc),
            ms(a.first),
            cli_ms(b.cli),
            cli_ms(a.cli)
        );
    }
    println!(
        "\n`--state UNCLAIMED` right after a write outside `P m/` (the listing writes its barrier), uncompacted: \
         gRPC median {}",
        ms(behind)
    );
    println!(
        "\netcd bytes per finished job (no logbook): {:.0} of keys and values, {:.0} of database (compacted, defragmented)",
        per_job.0, per_job.1
    );
    if let Some((logical, db)) = run {
        println!(
            "etcd bytes per job run by a conductor (one-step `chain`, logbook included): {logical:.0} of keys and values, \
             {db:.0} of database"
        );
    }
    let worst = after.iter().chain(&before).map(|t| t.grpc).max().unwrap_or_default();
    let met = if worst < Duration::from_millis(50) { "yes" } else { "NO" };
    println!(
        "\n| target | measured (worst gRPC median above) | met |\n|---|---|---|\n| first page < 50 ms | {} | {met} |",
        ms(worst)
    );
    Ok(())
}

/// A drained conductor of the build in `dir` (`BENCH_BASE_BIN`) on the bench's prefix, and its client.
fn start_base(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    prefix: &str,
    dir: PathBuf,
) -> HarnessResult<(BaseConductor, proto::Client)> {
    tests::conductor::check_base_build(&dir)?;
    let mut config = ConductorConfig::etcd(endpoint, prefix, "lister-base", Duration::from_secs(10));
    config.bin_dir = Some(dir.clone());
    let process = ConductorProcess::start(&config)?;
    let client = rt.block_on(proto::Client::connect(process.endpoint()))?;
    rt.block_on(client.drain("lister-base", true))?;
    Ok((BaseConductor { process, bin_dir: dir.display().to_string() }, client))
}

/// The conductor of the base build, and where it came from.
struct BaseConductor {
    process: ConductorProcess,
    bin_dir: String,
}

impl BaseConductor {
    fn endpoint(&self) -> String {
        self.process.endpoint()
    }
}

/// The listings timed, the middle page token taken from the board's own ids.
fn queries(rt: &tokio::runtime::Runtime, client: &proto::Client) -> HarnessResult<Vec<Query>> {
    let first = rt.block_on(client.list_jobs(pb::ListJobsRequest::default()))?;
    let queued = rt.block_on(
        client.list_jobs(pb::ListJobsRequest { state: pb::JobState::Unclaimed as i32, ..Default::default() }),
    )?;
    let (Some(oldest), Some(newest)) = (first.jobs.first(), queued.jobs.last()) else {
        return Err("the board lists no job".into());
    };
    // A token halfway through the board's time: a page in the middle.
    let ms_of = |id: &str| id.parse::<uuid::Uuid>().map(|id| (id.as_u128() >> 80) as u64);
    let middle = (ms_of(&oldest.id)? + ms_of(&newest.id)?) / 2;
    let token = uuid::Uuid::from_u128(u128::from(middle) << 80).to_string();
    let query = |name, state: pb::JobState, flow: &str, token: &str| {
        let mut cli = vec!["--limit".to_string(), "100".to_string()];
        if state != pb::JobState::Unspecified {
            cli.extend(["--state".to_string(), state.as_str_name().trim_start_matches("JOB_STATE_").to_string()]);
        }
        if !flow.is_empty() {
            cli.extend(["--flow".to_string(), flow.to_string()]);
        }
        let request = pb::ListJobsRequest {
            state: state as i32,
            flow: flow.to_string(),
            page_token: token.to_string(),
            ..Default::default()
        };
        Query { name, request, cli }
    };
    let flow = format!("`--flow {}`", fill::FLOWS[1]);
    let flow: &'static str = Box::leak(flow.into_boxed_str());
    Ok(vec![
        query("all states", pb::JobState::Unspecified, "", ""),
        query("`--state COMPLETE`", pb::JobState::Complete, "", ""),
        query("`--state TRASHED` (1 job in 10)", pb::JobState::Trashed, "", ""),
        query(flow, pb::JobState::Unspecified, fill::FLOWS[1], ""),
        query("all states, a page token halfway (gRPC only)", pb::JobState::Unspecified, "", &token),
        query("`--state UNCLAIMED` (10 queued)", pb::JobState::Unclaimed, "", ""),
        query("`--state CLAIMED` (3 claimed)", pb::JobState::Claimed, "", ""),
    ])
}

fn measure(
    rt: &tokio::runtime::Runtime,
    client: &proto::Client,
    endpoint: &str,
    queries: &[Query],
) -> HarnessResult<Vec<Timed>> {
    let mut timed = Vec::new();
    for query in queries {
        let mut samples = Vec::new();
        let mut jobs = 0;
        for _ in 0..GRPC_SAMPLES {
            let started = Instant::now();
            let page = rt.block_on(client.list_jobs(query.request.clone()))?;
            samples.push(started.elapsed());
            jobs = page.jobs.len();
        }
        if jobs == 0 {
            return Err(format!("{} listed no job", query.name).into());
        }
        let first = samples[0];
        samples.sort();
        let cli = if query.request.page_token.is_empty() { cli_median(endpoint, &query.cli)? } else { Duration::ZERO };
        eprintln!(
            "  {}: {jobs} jobs, gRPC {} (first {}), CLI {}",
            query.name,
            ms(percentile(&samples, 0.5)),
            ms(first),
            ms(cli)
        );
        timed.push(Timed { first, grpc: percentile(&samples, 0.5), cli, jobs });
    }
    Ok(timed)
}

/// The median wall time of `baton list <args>` (process start included).
fn cli_median(endpoint: &str, args: &[String]) -> HarnessResult<Duration> {
    let mut samples = Vec::new();
    for _ in 0..CLI_SAMPLES {
        let started = Instant::now();
        let status = Command::new(bin_path("baton"))
            .args(["--endpoint", endpoint, "list"])
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        samples.push(started.elapsed());
        if !status.success() {
            return Err(format!("baton list {args:?} failed: {status}").into());
        }
    }
    samples.sort();
    Ok(percentile(&samples, 0.5))
}

/// Median time of the request the old `list` began with: all state keys from the first to the prefix's end, limit 200.
async fn old_first_request(endpoint: &str, prefix: &str) -> HarnessResult<Duration> {
    let mut client = Client::connect([endpoint], None).await?;
    let from = format!("{prefix}m/state/");
    let mut end = from.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut samples = Vec::new();
    for _ in 0..GRPC_SAMPLES {
        let started = Instant::now();
        client.get(from.as_str(), Some(GetOptions::new().with_range(end.clone()).with_limit(200))).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(percentile(&samples, 0.5))
}

/// The median time of `request` each right after a write the board watch does not see.
async fn after_unwatched_writes(
    endpoint: &str,
    prefix: &str,
    client: &proto::Client,
    request: &pb::ListJobsRequest,
) -> HarnessResult<Duration> {
    let mut raw = Client::connect([endpoint], None).await?;
    let mut samples = Vec::new();
    for n in 0..GRPC_SAMPLES {
        raw.put(format!("{prefix}bench/unwatched"), n.to_string(), None).await?;
        let started = Instant::now();
        client.list_jobs(request.clone()).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(percentile(&samples, 0.5))
}

/// The oldest revision still readable (the last compaction) and the current one.
async fn compaction_state(endpoint: &str) -> HarnessResult<(i64, i64)> {
    let mut client = Client::connect([endpoint], None).await?;
    let current = client.get("bench-revision-probe", None).await?.header().map_or(0, |h| h.revision());
    let (mut low, mut high) = (1, current);
    while low < high {
        let mid = low + (high - low) / 2;
        match client.get("bench-revision-probe", Some(GetOptions::new().with_revision(mid))).await {
            Ok(_) => high = mid,
            Err(_) => low = mid + 1,
        }
    }
    Ok((low.saturating_sub(1), current))
}

/// Bytes per job run to completion by a conductor (a one-step `chain`), on a prefix of its own.
async fn run_bytes(endpoint: &str, jobs: usize, db_before: u64) -> HarnessResult<(f64, f64)> {
    let prefix = unique_prefix("list-scale-run");
    let conductor =
        ConductorProcess::start(&ConductorConfig::etcd(endpoint, &prefix, "runner", Duration::from_secs(10)))?;
    let client = proto::Client::connect(conductor.endpoint()).await?;
    let mut posted = futures::stream::iter(0..jobs)
        .map(|_| {
            let client = client.clone();
            async move {
                let store = r#"{"steps": 1, "step_ms": 0}"#.to_string();
                client
                    .post_job(pb::PostJobRequest { flow: "chain".into(), store_json: store, ..Default::default() })
                    .await
            }
        })
        .buffer_unordered(32);
    while let Some(job) = posted.next().await {
        job?;
    }
    let mut raw = Client::connect([endpoint], None).await?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let done = raw.get(format!("{prefix}done/"), Some(GetOptions::new().with_prefix().with_count_only())).await?;
        if done.count() as usize >= jobs {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{} of {jobs} jobs done after {PATIENCE:?}", done.count()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(conductor);
    let (logical, db) = etcd_bytes(endpoint, Some(&prefix)).await?;
    Ok((logical as f64 / jobs as f64, db.saturating_sub(db_before) as f64 / jobs as f64))
}

/// A CLI time, or "-" where the CLI has no flag for the query (a page token).
fn cli_ms(d: Duration) -> String {
    if d.is_zero() {
        "-".to_string()
    } else {
        ms(d)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
