//! Issue 10's numbers (not a test): `cargo bench -p tests --bench workers`.
//!
//! Everything in this one process, over real loopback gRPC: two worker hubs (the
//! conductor's `conductor::workers`) served by tonic on 127.0.0.1, an embedded board with
//! one session per hub (so each sees the other's workers by watch), and workers on the
//! Rust SDK (`worker`) or speaking the wire directly. Prints one table.
//!
//! - assignment round trip of a no-op remote task, worker on the job's conductor (direct)
//!   and on the other one (relayed), p50 / p99 over sequential calls;
//! - no-op remote tasks per second through the flows engine (memory logbook), one Rust
//!   worker of 64 slots;
//! - time from a worker's stream dying (the socket closed, as kill -9 does) or going silent
//!   (as SIGSTOP does) to its attempt failing, against the configured deadline;
//! - 1,000 connected workers (streams from this process): memory per worker (process RSS,
//!   both ends of the streams included, so an upper bound) and board records.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::stats::percentile;

use conductor::workers::{HubSettings, RelayService, WorkerHub, WorkersService};
use flowfile::remote::{RemoteCall, RemoteTask};
use flows::{Engine, Flow, TaskSpec};
use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, JobBoard};
use proto::pb::{self, worker_message::Msg as Up, WorkerMessage};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;

const ROUND_TRIPS: usize = 2000;
const ENGINE_TASKS: usize = 20_000;
const MANY_WORKERS: usize = 1000;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Serves a hub on a free loopback port; returns its address.
async fn serve(hub: &WorkerHub) -> BenchResult<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    hub.set_address(address.clone());
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(WorkersService::new(hub.clone()).server())
        .add_service(RelayService::new(hub.clone()).server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    Ok(address)
}

fn hub(name: &str) -> WorkerHub {
    let mut settings = HubSettings::new(name);
    settings.heartbeat_timeout = HEARTBEAT_TIMEOUT;
    settings.schedule_to_start = Duration::from_secs(30);
    WorkerHub::new(settings)
}

fn call(task: &str, n: usize) -> RemoteCall {
    RemoteCall {
        job: uuid::Uuid::new_v4(),
        atom: format!("t{n}"),
        task: task.to_owned(),
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

async fn round_trips(hub: &WorkerHub) -> BenchResult<(Duration, Duration)> {
    for n in 0..100 {
        hub.run_call(call("noop", n)).await.map_err(|f| f.message)?;
    }
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for n in 0..ROUND_TRIPS {
        let start = Instant::now();
        hub.run_call(call("noop", n)).await.map_err(|f| f.message)?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

async fn engine_throughput(hub: &WorkerHub) -> BenchResult<f64> {
    let dispatch: Arc<dyn flowfile::remote::Dispatch> = Arc::new(hub.clone());
    let mut flow = Flow::unordered("bench");
    for n in 0..ENGINE_TASKS {
        flow = flow.add(TaskSpec::new(format!("t{n}"), Arc::new(RemoteTask::new(dispatch.clone(), "noop"))));
    }
    let mut engine = Engine::builder(flow).max_concurrency(256).build().await?;
    let start = Instant::now();
    let outcome = engine.run().await?;
    let elapsed = start.elapsed();
    if outcome.state != flows::FlowState::Success {
        return Err(format!("the flow ended {:?}", outcome.state).into());
    }
    Ok(ENGINE_TASKS as f64 / elapsed.as_secs_f64())
}

/// A raw worker on the wire: its sender, and the conductor's messages.
async fn raw_worker(
    endpoint: &str,
    id: &str,
    client: &proto::Client,
) -> BenchResult<(mpsc::Sender<WorkerMessage>, tonic::Streaming<pb::ConductorMessage>)> {
    let _ = endpoint;
    let (up, rx) = mpsc::channel(16);
    let tasks = vec![pb::TaskOffer { name: "hang".to_owned(), ..Default::default() }];
    let hello = pb::Hello { worker_id: id.to_owned(), tasks, slots: 1, ..Default::default() };
    up.send(WorkerMessage { msg: Some(Up::Hello(hello)) }).await?;
    let mut down = client.workers().attach(ReceiverStream::new(rx)).await?.into_inner();
    down.message().await?;
    Ok((up, down))
}

/// Time from a worker's stream dying (`close`: dropped, as a killed process's socket is)
/// or going silent to its attempt failing as lost.
async fn time_to_lost(hub: &WorkerHub, endpoint: &str, close: bool) -> BenchResult<Duration> {
    let client = proto::Client::connect(format!("http://{endpoint}")).await?;
    let id = format!("victim-{close}");
    let (up, mut down) = raw_worker(endpoint, &id, &client).await?;
    let running = tokio::spawn({
        let hub = hub.clone();
        async move { hub.run_call(call("hang", 0)).await }
    });
    // Wait for the assignment, then die.
    loop {
        match down.message().await? {
            Some(pb::ConductorMessage { msg: Some(pb::conductor_message::Msg::Assign(_)) }) => break,
            Some(_) => {}
            None => return Err("stream ended before the assignment".into()),
        }
    }
    let died = Instant::now();
    if close {
        drop(up);
        drop(down);
        drop(client);
    } else {
        // Silent: keep the connection, send nothing more, read nothing more.
        std::mem::forget((up, down, client));
    }
    let outcome = running.await?;
    let elapsed = died.elapsed();
    match outcome {
        Err(failure) if failure.kind == conductor::workers::WORKER_LOST => Ok(elapsed),
        other => Err(format!("expected WorkerLost, got {other:?}").into()),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

async fn many_workers(endpoint: &str, board: &Arc<dyn JobBoard>) -> BenchResult<(f64, usize)> {
    let before = rss_kib();
    let mut kept = Vec::new();
    let mut clients = Vec::new();
    for c in 0..(MANY_WORKERS / 100) {
        let client = proto::Client::connect(format!("http://{endpoint}")).await?;
        for n in 0..100 {
            let (up, down) = raw_worker(endpoint, &format!("many-{c}-{n}"), &client).await?;
            // Alive: a heartbeat every third of the timeout, as an SDK sends them.
            let beats = up.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT_TIMEOUT / 3).await;
                    let beat = WorkerMessage { msg: Some(Up::Heartbeat(pb::Heartbeat::default())) };
                    if beats.send(beat).await.is_err() {
                        return;
                    }
                }
            });
            kept.push((up, down));
        }
        clients.push(client);
    }
    let mut set = board.worker_set().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while set.borrow_and_update().len() < MANY_WORKERS + 1 && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), set.changed()).await;
    }
    // Less the Rust worker's own record.
    let records = set.borrow().len().saturating_sub(1);
    let after = rss_kib();
    drop(kept);
    Ok(((after.saturating_sub(before)) as f64 / MANY_WORKERS as f64, records))
}

/// etcd KV requests per task of a linear flow run through a claim's logbook on a real
/// etcd, remote no-op tasks against in-process no-op tasks.
async fn board_requests(dispatch: Arc<dyn flowfile::remote::Dispatch>) -> BenchResult<(f64, f64)> {
    const TASKS: usize = 50;
    let endpoint = tokio::task::spawn_blocking(|| tests::etcd::EtcdProcess::shared().endpoint()).await?;
    let config = jobboard::etcd::EtcdConfig {
        endpoints: vec![endpoint.clone()],
        prefix: tests::etcd::unique_prefix("bench-workers"),
        lease_ttl: Duration::from_secs(10),
        security: jobboard::etcd::EtcdSecurity::default(),
        board: BoardConfig::new("bench"),
        stats: Default::default(),
    };
    let board = jobboard::etcd::EtcdBoard::connect(config).await?;
    let mut per_task = Vec::new();
    for remote in [true, false] {
        let mut flow = Flow::linear("bench");
        for n in 0..TASKS {
            flow = if remote {
                flow.add(TaskSpec::new(format!("t{n}"), Arc::new(RemoteTask::new(dispatch.clone(), "noop"))))
            } else {
                flow.add(flows::task_fn(format!("t{n}"), |_ctx| async { Ok(Value::Null) }))
            };
        }
        let job = board.post(jobboard::NewJob::new("bench", Map::new())).await?;
        let claim = board.claim(job.id).await?;
        let before =
            tests::etcd::metrics::Metrics::read(&endpoint).kv_requests(&["Txn", "Range", "Put", "DeleteRange"]);
        let mut engine = Engine::builder(flow).storage(claim.storage(), job.id, job.id).build().await?;
        engine.run().await?;
        let after = tests::etcd::metrics::Metrics::read(&endpoint).kv_requests(&["Txn", "Range", "Put", "DeleteRange"]);
        per_task.push((after - before) / TASKS as f64);
        claim.consume(jobboard::Outcome::Success, None).await?;
    }
    board.close().await?;
    Ok((per_task[0], per_task[1]))
}

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let board = EmbeddedBoard::open(&dir.path().join("board.db"), BoardConfig::new("h"))?;
    let board_r: Arc<dyn JobBoard> = Arc::new(board.session("r"));
    let board_h: Arc<dyn JobBoard> = Arc::new(board);
    let (h, r) = (hub("h"), hub("r"));
    let h_address = serve(&h).await?;
    serve(&r).await?;
    let stop = CancellationToken::new();
    tokio::spawn(h.clone().follow_board(board_h.clone(), stop.clone()));
    tokio::spawn(r.clone().follow_board(board_r.clone(), stop.clone()));

    let worker = worker::Worker::builder([format!("http://{h_address}")])
        .slots(64)
        .id("bench-rust")
        .task("noop", |_ctx, _args| async { Ok(Value::Null) })
        .build()?;
    tokio::spawn(worker.run(std::future::pending::<()>()));
    let mut set = board_r.worker_set().await?;
    while set.borrow_and_update().is_empty() {
        set.changed().await?;
    }

    eprintln!("round trips, direct ...");
    let (direct_p50, direct_p99) = round_trips(&h).await?;
    eprintln!("round trips, relayed ...");
    let (relay_p50, relay_p99) = round_trips(&r).await?;
    eprintln!("engine throughput ...");
    let per_second = engine_throughput(&h).await?;
    eprintln!("worker lost: stream closed ...");
    let closed = time_to_lost(&h, &h_address, true).await?;
    eprintln!("worker lost: silent ...");
    let silent = time_to_lost(&h, &h_address, false).await?;
    eprintln!("board requests per task (etcd) ...");
    let (remote_requests, local_requests) = board_requests(Arc::new(h.clone())).await?;
    eprintln!("1,000 workers ...");
    let (kib_per_worker, records) = many_workers(&h_address, &board_r).await?;
    stop.cancel();

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
    println!("{:<64} {:>16} {:>14}", "measure (issue 10)", "value", "target");
    let rows = [
        ("round trip p50, no-op, worker on the job's conductor".to_owned(), ms(direct_p50), "< 1 ms".to_owned()),
        ("round trip p99, no-op, worker on the job's conductor".to_owned(), ms(direct_p99), String::new()),
        ("round trip p50, no-op, relayed through another conductor".to_owned(), ms(relay_p50), "< 2 ms".to_owned()),
        ("round trip p99, no-op, relayed".to_owned(), ms(relay_p99), String::new()),
        (
            "etcd KV requests per task, linear flow: remote no-op".to_owned(),
            format!("{remote_requests:.2}"),
            "= in-process".to_owned(),
        ),
        (
            "etcd KV requests per task, linear flow: in-process no-op".to_owned(),
            format!("{local_requests:.2}"),
            String::new(),
        ),
        (
            format!("no-op remote tasks/s, engine + memory logbook, 1 Rust worker of 64 slots ({ENGINE_TASKS} tasks)"),
            format!("{per_second:.0}/s"),
            ">= 10,000/s".to_owned(),
        ),
        (
            "worker stream closed (kill -9) -> attempt failed as WorkerLost".to_owned(),
            ms(closed),
            format!("<= {} ms + 1 s", HEARTBEAT_TIMEOUT.as_millis()),
        ),
        (
            "worker silent (SIGSTOP) -> attempt failed as WorkerLost".to_owned(),
            ms(silent),
            format!("<= {} ms + 1 s", HEARTBEAT_TIMEOUT.as_millis()),
        ),
        (
            format!("memory per connected worker ({MANY_WORKERS} streams, both ends)"),
            format!("{kib_per_worker:.1} KiB"),
            "< 100 KiB".to_owned(),
        ),
        (
            format!("board records for {MANY_WORKERS} workers (1 put each; 1 delete when it goes)"),
            records.to_string(),
            MANY_WORKERS.to_string(),
        ),
    ];
    for (what, value, target) in rows {
        println!("{what:<64} {value:>16} {target:>14}");
    }
    Ok(())
}
