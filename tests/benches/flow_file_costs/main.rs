//! Flow files benchmark of issue 9 (not a test): what a flow costs when it comes from a
//! file instead of Rust.
//!
//! Prints one table:
//! - per-task cost of a 1,000-task no-op line built from a file vs the same line built in
//!   Rust (engine in-process on a `MemoryStorage` logbook, build + run; best and median of
//!   rounds, the verdict on the best, which neighbours on a shared machine disturb least);
//! - `shell` tasks/s for `/bin/true` in a line, beside the fork/exec floor (the same
//!   program spawned and awaited directly in a loop);
//! - post-to-complete p50/p99 of a 3-task no-op file flow through the stock
//!   `conductor --flows-dir` on a real etcd, beside the Rust `chain` (3 no-op steps) of
//!   `demo_conductor` measured in the same run;
//! - etcd requests (all KV requests, and Txns) per job to post and run each;
//! - etcd requests of one `baton flows apply -f FILE` of a new 3-task file through the
//!   file conductor: the first apply (a version created), then the same file again
//!   (unchanged).
//!
//! Run: `cargo build --release -p conductor -p tests -p baton-cli --bins && cargo bench -p tests --bench flow_file_costs`.
//! `BENCH_TASKS` (1000), `BENCH_ROUNDS` (11), `BENCH_SHELL_TASKS` (200) and
//! `BENCH_JOBS` (200) shrink a run.
//!
//! `BENCH_LINE=file` (or `rust`) runs only that in-process line, `BENCH_ROUNDS` times, and
//! prints nothing: for counting instructions, which a busy machine does not disturb, e.g.
//! `valgrind --tool=callgrind` at two round counts, the difference divided by the extra
//! rounds times `BENCH_TASKS` being the cost of one task.

mod fleet;
mod in_process;
#[path = "../e2e/probes.rs"]
mod probes;

use std::time::Duration;

use tests::conductor::{ConductorProcess, HarnessResult};
use tests::etcd::{metrics, unique_prefix, EtcdProcess};

use fleet::Subject;

/// Three no-op tasks in a line: the file twin of `chain steps=3 step_ms=0`.
const NOOP3: &str = "name: noop3\nflow:\n  linear:\n    - {task: one, kind: noop}\n    - {task: two, kind: noop}\n    - {task: three, kind: noop}\n";

/// The file `baton flows apply` stores: the same line under a name the board lacks.
const APPLIED: &str = "name: applied3\nflow:\n  linear:\n    - {task: one, kind: noop}\n    - {task: two, kind: noop}\n    - {task: three, kind: noop}\n";

fn main() -> HarnessResult<()> {
    let tasks = env_usize("BENCH_TASKS", 1000);
    let rounds = env_usize("BENCH_ROUNDS", 11);
    let shell_tasks = env_usize("BENCH_SHELL_TASKS", 200);
    let jobs = env_usize("BENCH_JOBS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if let Ok(line) = std::env::var("BENCH_LINE") {
        return rt.block_on(in_process::line_only(&line, tasks, rounds));
    }

    eprintln!("in-process: {tasks}-task no-op line from a file and in Rust, {rounds} rounds ...");
    let per_task = rt.block_on(in_process::per_task(tasks, rounds))?;
    eprintln!("in-process: {shell_tasks} shell tasks of /bin/true, and the fork/exec floor, {rounds} rounds ...");
    let shell = rt.block_on(in_process::shell_rate(shell_tasks, rounds))?;

    let etcd = EtcdProcess::start();
    let endpoint = etcd.endpoint();
    let flows = tests::flow_files::flows_dir(&[("noop3.yaml", NOOP3)])?;
    let file_prefix = unique_prefix("bench-ff-file");
    let rust_prefix = unique_prefix("bench-ff-rust");
    let subjects = [
        (Subject::file(&endpoint, &file_prefix, flows.path(), "noop3"), file_prefix.as_str()),
        (Subject::rust_chain(&endpoint, &rust_prefix), rust_prefix.as_str()),
    ];
    let to_apply = tests::flow_files::flows_dir(&[("applied3.yaml", APPLIED)])?;
    let mut measured = Vec::new();
    let mut applies = None;
    for (subject, prefix) in &subjects {
        eprintln!("{} on `{}`: post-to-complete, then requests per job ...", subject.flow, subject.config.binary);
        // One conductor at a time, so neither's background requests count for the other.
        let conductor = ConductorProcess::start(&subject.config)?;
        let figures = rt.block_on(async {
            let client = proto::Client::connect(conductor.endpoint()).await?;
            let latency = fleet::post_to_complete(&client, subject, jobs).await?;
            let requests = fleet::requests_per_job(&endpoint, prefix, &client, subject, jobs).await?;
            if subject.config.binary == "conductor" {
                let file = to_apply.path().join("applied3.yaml");
                applies = Some(fleet::apply_requests(&endpoint, &conductor.endpoint(), &file).await?);
            }
            Ok::<_, tests::conductor::HarnessError>((latency, requests))
        })?;
        drop(conductor);
        measured.push(figures);
    }
    let [(file_latency, file_requests), (rust_latency, rust_requests)] = measured[..] else {
        return Err("two subjects measured".into());
    };

    println!(
        "\nBaton flow files: {tasks}-task lines in-process; {jobs} jobs of a 3-task no-op flow per conductor; etcd {}",
        metrics::version(&endpoint)
    );
    println!("| metric | from a file | in Rust | target | met |");
    println!("|---|---|---|---|---|");
    // The verdict is on the best rounds: on a shared machine a median swings either way
    // (a neighbour's burst can land on the Rust rounds as well as on the file's).
    let (best_file, best_rust) = per_task.best;
    let ratio = |file: Duration, rust: Duration| file.as_secs_f64() / rust.as_secs_f64().max(f64::MIN_POSITIVE);
    let best_ratio = ratio(best_file, best_rust);
    row(
        &format!("per-task cost, {tasks} no-op tasks, build + run, best of {rounds}"),
        format!("{} ({best_ratio:.2}x)", us(best_file)),
        us(best_rust),
        "file within 10%",
        Some(best_ratio <= 1.10),
    );
    let (file, rust) = (per_task.file, per_task.rust);
    row(
        &format!("  median of {rounds}"),
        format!("{} ({:.2}x)", us(file.total), ratio(file.total, rust.total)),
        us(rust.total),
        "-",
        None,
    );
    row("  of which building the flow (median)", us(file.build), us(rust.build), "-", None);
    row(&format!("parsing and checking the {tasks}-task file, once"), ms(per_task.parse), "-".into(), "-", None);
    row(
        &format!("shell tasks/s, /bin/true in a line, best of {rounds} (Rust column: fork/exec floor)"),
        format!("{:.0}", shell.tasks_per_s),
        format!("{:.0}", shell.floor_per_s),
        "-",
        None,
    );
    row(
        "post-to-complete p50, 3 no-op tasks (file: conductor --flows-dir; Rust: chain)",
        ms(file_latency.0),
        ms(rust_latency.0),
        "< 20 ms",
        Some(file_latency.0 < Duration::from_millis(20)),
    );
    row("post-to-complete p99", ms(file_latency.1), ms(rust_latency.1), "-", None);
    for ((metric, file), (_, rust)) in file_requests.rows().into_iter().zip(rust_requests.rows()) {
        row(metric, format!("{file:.1}"), format!("{rust:.1}"), "-", None);
    }
    let (created, unchanged) = applies.ok_or("the file conductor measured no apply")?;
    let apply_row = |r: fleet::Requests| format!("{:.0} ({:.0} Txns, {:.0} writes)", r.kv, r.txns, r.writes);
    row(
        "etcd requests per `baton flows apply` of a file, first apply (created)",
        apply_row(created),
        "-".into(),
        "-",
        None,
    );
    row("  the same file applied again (unchanged)", apply_row(unchanged), "-".into(), "-", None);
    Ok(())
}

fn row(metric: &str, file: String, rust: String, target: &str, met: Option<bool>) {
    let met = match met {
        None => "",
        Some(true) => "yes",
        Some(false) => "NO",
    };
    println!("| {metric} | {file} | {rust} | {target} | {met} |");
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
