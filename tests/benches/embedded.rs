//! Benchmark of the embedded board end to end (issue 14; not a test): a real conductor
//! (`demo_conductor --data-dir`, the board file on disk) driven by the real `baton` CLI and
//! the gRPC client.
//!
//! Prints one table: post-to-COMPLETE of a 300-step `chain` (step_ms=0) run by
//! `baton post --wait` (steps/s, median of `BENCH_ROUNDS`), and 3-task no-op `chain` jobs
//! posted over gRPC with the conductor's default 32 jobs in flight (jobs/s from the first
//! post to the last COMPLETE), each with the conductor's fsync and fdatasync calls per step
//! and per job, counted by `perf stat` on the syscall tracepoints (which, unlike strace,
//! does not slow the process down), beside TaskFlow 6.5's figure and issue 14's targets.
//!
//! Run: `cargo build --release -p tests --bin demo_conductor -p baton-cli && cargo bench -p
//! tests --bench embedded`. `BENCH_JOBS` (default 4000) and `BENCH_ROUNDS` (default 5)
//! shrink a run; `BENCH_DIR` puts the board file elsewhere than the temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use proto::pb;
use tests::conductor::{baton, ConductorConfig, ConductorProcess, HarnessResult};
use tests::cpu::{cpu_ticks, ms_per};

const CHAIN_STEPS: usize = 300;
const POSTS_IN_FLIGHT: usize = 32;
const PATIENCE: Duration = Duration::from_secs(300);
const TASKFLOW_STEPS_PER_S: f64 = 20.0;

fn main() -> HarnessResult<()> {
    let jobs = env_usize("BENCH_JOBS", 4000);
    let rounds = env_usize("BENCH_ROUNDS", 5);
    let base = std::env::var_os("BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new().prefix("baton-bench-embedded-").tempdir_in(&base)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let conductor = ConductorProcess::start(&ConductorConfig::embedded(dir.path(), "bench-embedded"))?;
    let endpoint = conductor.endpoint();

    eprintln!("warming up ...");
    chain_once(&endpoint, 10)?;
    eprintln!("{rounds} x {CHAIN_STEPS}-step chain through `baton post --wait` ...");
    let mut chain_secs = Vec::new();
    let mut chain_fsyncs = Vec::new();
    let cpu_before = cpu_ticks(conductor.pid())?;
    for _ in 0..rounds {
        let counter = FsyncCounter::start(conductor.pid())?;
        chain_secs.push(chain_once(&endpoint, CHAIN_STEPS)?);
        chain_fsyncs.push(counter.stop()?);
    }
    let cpu_ms_per_step = ms_per(cpu_ticks(conductor.pid())? - cpu_before, rounds * CHAIN_STEPS);
    chain_secs.sort_by(f64::total_cmp);
    let chain_median = chain_secs[chain_secs.len() / 2];
    let steps_per_s = CHAIN_STEPS as f64 / chain_median;
    let fsyncs_per_step = mean_count(&chain_fsyncs).map(|f| f / CHAIN_STEPS as f64);

    eprintln!("{jobs} 3-task jobs, 32 in flight ...");
    let counter = FsyncCounter::start(conductor.pid())?;
    let cpu_before = cpu_ticks(conductor.pid())?;
    let job_secs = rt.block_on(many_jobs(&endpoint, jobs))?;
    let fsyncs_per_job = counter.stop()?.map(|f| f as f64 / jobs as f64);
    let cpu_ms_per_job = ms_per(cpu_ticks(conductor.pid())? - cpu_before, jobs);
    let jobs_per_s = jobs as f64 / job_secs;

    println!("\nBaton embedded board end to end; board file in {}", board_dir_note(dir.path()));
    println!("| metric | Baton | TaskFlow 6.5 | target | met |");
    println!("|---|---|---|---|---|");
    row(
        &format!("{CHAIN_STEPS}-step chain, post to COMPLETE via `baton post --wait`, steps/s (median of {rounds})"),
        format!("{steps_per_s:.0} ({:.0} ms)", chain_median * 1000.0),
        &format!("{TASKFLOW_STEPS_PER_S:.0}"),
        ">= 2,000 (100x)",
        steps_per_s >= 2000.0,
    );
    info("  fsync + fdatasync per step (conductor, whole run incl. claim and consume)", per(fsyncs_per_step));
    info("  conductor CPU per step (its WatchJob snapshots for the CLI included)", format!("{cpu_ms_per_step:.3} ms"));
    row(
        "3-task no-op jobs/s, 32 in flight, first post to last COMPLETE",
        format!("{jobs_per_s:.0} ({jobs} jobs)"),
        "-",
        ">= 2,000",
        jobs_per_s >= 2000.0,
    );
    info("  fsync + fdatasync per job (conductor, post included)", per(fsyncs_per_job));
    info("  conductor CPU per job", format!("{cpu_ms_per_job:.3} ms"));
    println!("(machine load average at the end: {})", load_average());
    Ok(())
}

/// Runs `baton post chain --wait` for one `steps`-step chain; returns its wall time in seconds.
fn chain_once(endpoint: &str, steps: usize) -> HarnessResult<f64> {
    let started = Instant::now();
    let out =
        baton(endpoint, ["post", "chain", "--store", &format!("steps={steps}"), "--store", "step_ms=0", "--wait"]);
    let secs = started.elapsed().as_secs_f64();
    let job = out.ok_json()?;
    if job["state"] != "COMPLETE" || job["outcome"] != "SUCCESS" {
        return Err(format!("the chain did not succeed: {job}").into());
    }
    Ok(secs)
}

/// Posts `jobs` 3-step chains over gRPC, `POSTS_IN_FLIGHT` posts at once, and waits until
/// every one is COMPLETE; returns seconds from the first post to the last COMPLETE seen.
async fn many_jobs(endpoint: &str, jobs: usize) -> HarnessResult<f64> {
    let client = proto::Client::connect(endpoint.to_owned()).await?;
    let started = Instant::now();
    let posted = futures::stream::iter(0..jobs)
        .map(|_| {
            let client = client.clone();
            async move {
                client
                    .post_job(pb::PostJobRequest {
                        flow: "chain".into(),
                        store_json: r#"{"steps": 3, "step_ms": 0}"#.into(),
                        ..Default::default()
                    })
                    .await
            }
        })
        .buffer_unordered(POSTS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut ids = Vec::with_capacity(jobs);
    for job in posted {
        ids.push(job?.id);
    }
    // Done when no job waits and none runs: two one-row pages of the board's claim index per
    // look, so the wait costs the conductor next to nothing (a snapshot per job, with its
    // logbook, would cost it about a third of what running the job does).
    for state in [pb::JobState::Unclaimed, pb::JobState::Claimed] {
        loop {
            let page = client
                .list_jobs(pb::ListJobsRequest { state: state as i32, page_size: 1, ..Default::default() })
                .await?;
            if page.jobs.is_empty() {
                break;
            }
            if started.elapsed() > PATIENCE {
                return Err(format!("jobs still {state:?} after {PATIENCE:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // Outside the timed part: every job posted here ended COMPLETE with SUCCESS.
    let complete = client
        .list_all_jobs(pb::ListJobsRequest { state: pb::JobState::Complete as i32, ..Default::default() })
        .await?;
    let succeeded: std::collections::HashSet<&str> =
        complete.iter().filter(|job| job.outcome == pb::Outcome::Success as i32).map(|job| job.id.as_str()).collect();
    if let Some(id) = ids.iter().find(|id| !succeeded.contains(id.as_str())) {
        return Err(format!("job {id} did not end COMPLETE with SUCCESS").into());
    }
    Ok(secs)
}

/// `perf stat` counting one process's fsync and fdatasync calls (all its threads).
struct FsyncCounter {
    child: Option<Child>,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl FsyncCounter {
    /// Starts counting; without `perf` (or without permission) the count is `None`.
    fn start(pid: u32) -> HarnessResult<Self> {
        let dir = tempfile::tempdir()?;
        let output = dir.path().join("perf.csv");
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => Some(child),
            Err(e) => {
                eprintln!("perf not started ({e}); fsyncs not counted (install: apt-get install linux-perf)");
                None
            }
        };
        // perf attaches to every thread before it counts; give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        Ok(FsyncCounter { child, output, _dir: dir })
    }

    /// Stops counting (SIGINT, as ^C) and returns fsync + fdatasync calls seen.
    fn stop(mut self) -> HarnessResult<Option<u64>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        // SIGINT, on which perf prints its counts and exits.
        Command::new("kill").arg("-INT").arg(child.id().to_string()).status()?;
        child.wait()?;
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let counts: Vec<u64> = text
            .lines()
            .filter(|line| line.contains("syscalls:sys_enter_"))
            .filter_map(|line| line.split(',').next().and_then(|n| n.trim().parse().ok()))
            .collect();
        Ok((counts.len() == 2).then(|| counts.iter().sum()))
    }
}

fn mean_count(counts: &[Option<u64>]) -> Option<f64> {
    let known: Vec<u64> = counts.iter().copied().collect::<Option<_>>()?;
    Some(known.iter().sum::<u64>() as f64 / known.len().max(1) as f64)
}

fn per(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a (perf)".to_owned(), |v| format!("{v:.2}"))
}

fn board_dir_note(dir: &Path) -> String {
    format!("{} (synchronous=FULL, WAL)", dir.display())
}

/// A row with nothing to compare against: no TaskFlow figure, no target.
fn info(metric: &str, baton: String) {
    row(metric, baton, "-", "-", true);
}

fn row(metric: &str, baton: String, taskflow: &str, target: &str, met: bool) {
    let met = if target == "-" {
        ""
    } else if met {
        "yes"
    } else {
        "NO"
    };
    println!("| {metric} | {baton} | {taskflow} | {target} | {met} |");
}

/// The 1-minute load average: on a shared machine, what the wall-clock figures competed with.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
