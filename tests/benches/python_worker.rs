//! Issue 10's Python figure (not a test): `cargo bench -p tests --bench python_worker`.
//!
//! The same dispatch path as `--bench workers` measures for a Rust worker: a worker hub
//! (the conductor's `conductor::workers`) served by tonic on 127.0.0.1, the flows engine
//! with the memory logbook sending no-op remote tasks through it, and one worker of 64
//! slots, here a Python process on the `baton` SDK (sdk/python/bench/noop_worker.py).
//! Prints the assignment round trip p50 / p99 and no-op remote tasks per second.
//!
//! The Python is `$BATON_PYTHON`, else the virtualenv `tools/python-tests` makes under
//! target/python-venv (with the SDK installed): run that first.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::stats::percentile;

use conductor::workers::{HubSettings, WorkerHub, WorkersService};
use flowfile::remote::{RemoteCall, RemoteTask};
use flows::{Engine, Flow, TaskSpec};
use serde_json::Map;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

const ROUND_TRIPS: usize = 2000;
const ENGINE_TASKS: usize = 20_000;
const SLOTS: u32 = 64;
/// The task name the benchmark worker offers (a no-op).
const TASK: &str = "add";

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The Python worker process, killed when the benchmark ends however it ends.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> BenchResult<PathBuf> {
    if let Some(python) = std::env::var_os("BATON_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let venv = repo().join("target/python-venv/bin/python");
    if venv.is_file() {
        return Ok(venv);
    }
    Err(format!(
        "{} not found: run tools/python-tests first (it makes that virtualenv), or set BATON_PYTHON",
        venv.display()
    )
    .into())
}

fn call(n: usize) -> RemoteCall {
    RemoteCall {
        job: uuid::Uuid::new_v4(),
        atom: format!("t{n}"),
        task: TASK.to_owned(),
        attempt: 1,
        inputs: Map::new(),
        timeout: None,
        schedule_to_start: None,
        heartbeat_timeout: None,
        revert: None,
        cancel: CancellationToken::new(),
        park: None,
    }
}

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> BenchResult<()> {
    let mut settings = HubSettings::new("bench");
    // The first call waits here for the Python worker to attach.
    settings.schedule_to_start = Duration::from_secs(60);
    let hub = WorkerHub::new(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    hub.set_address(address.clone());
    let router =
        tonic::transport::Server::builder().tcp_nodelay(true).add_service(WorkersService::new(hub.clone()).server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));

    let script = repo().join("sdk/python/bench/noop_worker.py");
    let child =
        Command::new(python()?).arg(&script).arg(SLOTS.to_string()).arg(&address).stdin(Stdio::null()).spawn()?;
    let _worker = Worker(child);

    eprintln!("warm-up (waits for the Python worker) ...");
    for n in 0..100 {
        hub.run_call(call(n)).await.map_err(|f| f.message)?;
    }
    eprintln!("round trips ...");
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for n in 0..ROUND_TRIPS {
        let start = Instant::now();
        hub.run_call(call(n)).await.map_err(|f| f.message)?;
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!("engine throughput ...");
    let dispatch: Arc<dyn flowfile::remote::Dispatch> = Arc::new(hub.clone());
    let mut flow = Flow::unordered("bench");
    for n in 0..ENGINE_TASKS {
        flow = flow.add(TaskSpec::new(format!("t{n}"), Arc::new(RemoteTask::new(dispatch.clone(), TASK))));
    }
    let mut engine = Engine::builder(flow).max_concurrency(256).build().await?;
    let start = Instant::now();
    let outcome = engine.run().await?;
    let per_second = ENGINE_TASKS as f64 / start.elapsed().as_secs_f64();
    if outcome.state != flows::FlowState::Success {
        return Err(format!("the flow ended {:?}", outcome.state).into());
    }

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
    println!("{:<72} {:>12}", "measure (issue 10, one Python worker)", "value");
    println!(
        "{:<72} {:>12}",
        "round trip p50, no-op, Python worker on the job's conductor",
        ms(percentile(&times, 0.5))
    );
    println!(
        "{:<72} {:>12}",
        "round trip p99, no-op, Python worker on the job's conductor",
        ms(percentile(&times, 0.99))
    );
    println!(
        "{:<72} {:>12}",
        format!("no-op remote tasks/s, engine + memory logbook, 1 Python worker of {SLOTS} slots"),
        format!("{per_second:.0}/s")
    );
    Ok(())
}
