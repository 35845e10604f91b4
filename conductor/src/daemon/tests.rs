//! In-process conductors on the embedded board: run, hand off on shutdown, drain, cancel, lose the session.

use std::sync::Arc;
use std::time::Duration;

use flows::AtomState;
use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, Job, JobBoard, JobId, JobState, NewJob, Outcome};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

/// Generous bound for anything a test waits for, so a bug hangs nothing.
const PATIENCE: Duration = Duration::from_secs(30);

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
    drain: DrainHandle,
    /// `http://` address of its gRPC server.
    endpoint: String,
}

impl Running {
    /// Sends the shutdown signal and waits for `run` to return.
    async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, self.task).await.expect("daemon stops in time").expect("daemon task joins")
    }
}

fn open_board(dir: &tempfile::TempDir, owner: &str) -> EmbeddedBoard {
    EmbeddedBoard::open(&dir.path().join("board.sqlite3"), BoardConfig::new(owner)).expect("board opens")
}

async fn start(board: EmbeddedBoard, tweak: impl FnOnce(&mut Config)) -> Running {
    let mut config = Config::embedded("unused");
    config.name = board.owner().to_owned();
    config.drain_check_interval = Duration::from_millis(50);
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound address"));
    let daemon = Daemon::new(config).registry(Arc::new(crate::demo_flows::registry())).board(Arc::new(board));
    let drain = daemon.drain_handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(listener, async move {
        let _ = stopped.await;
    }));
    Running { stop: Some(stop), task, drain, endpoint }
}

/// Waits until `name` is listed on the board.
async fn wait_registered(board: &dyn JobBoard, name: &str) {
    let listed = async {
        while !board.conductors().await.expect("conductors").iter().any(|c| c.name == name) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, listed).await.expect("conductor registers in time");
}

async fn post(board: &dyn JobBoard, flow: &str, store: Value) -> JobId {
    let store = store.as_object().expect("object store").clone();
    board.post(NewJob::new(flow, store)).await.expect("post").id
}

/// Waits until `done(job)` holds, woken by the job's changes.
async fn wait_until(board: &dyn JobBoard, id: JobId, what: &str, done: impl Fn(&Job) -> bool) -> Job {
    let wait = async {
        let mut changes = board.watch_job(id).await.expect("watch");
        loop {
            let job = board.get(id).await.expect("get");
            if done(&job) {
                return job;
            }
            changes.changed().await.expect("wake-ups stay open");
        }
    };
    tokio::time::timeout(PATIENCE, wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Atoms of the job's (single) flow detail that are SUCCESS, with their execution counts.
async fn finished_steps(board: &dyn JobBoard, id: JobId) -> Vec<(String, u32)> {
    let Some(book) = board.logbook(id).await.expect("logbook") else { return Vec::new() };
    book.flows
        .values()
        .flat_map(|flow| flow.atoms.values())
        .filter(|atom| atom.state == AtomState::Success)
        .map(|atom| (atom.name.clone(), atom.executions))
        .collect()
}

async fn wait_for_steps(board: &dyn JobBoard, id: JobId, at_least: usize) {
    let wait = async {
        let mut changes = board.watch_job(id).await.expect("watch");
        while finished_steps(board, id).await.len() < at_least {
            changes.changed().await.expect("wake-ups stay open");
        }
    };
    tokio::time::timeout(PATIENCE, wait).await.expect("steps finish in time");
}

#[tokio::test]
async fn a_posted_chain_completes_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "solo");
    let client = board.session("client");
    let daemon = start(board, |_| {}).await;

    let id = post(&client, "chain", json!({"steps": 3, "step_ms": 5})).await;
    let job = wait_until(&client, id, "the job to complete", |j| j.state == JobState::Complete).await;
    assert_eq!(job.outcome, Some(Outcome::Success));
    assert_eq!(job.claims, 1);
    let steps = finished_steps(&client, id).await;
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|(_, executions)| *executions == 1), "{steps:?}");

    let conductors = client.conductors().await.unwrap();
    assert!(conductors.iter().any(|c| c.name == "solo" && !c.draining), "{conductors:?}");

    daemon.shutdown().await.expect("graceful stop is Ok");
    let conductors = client.conductors().await.unwrap();
    assert!(conductors.iter().all(|c| c.name != "solo"), "deregistered on close: {conductors:?}");
}

#[tokio::test]
async fn shutdown_abandons_and_another_conductor_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "first");
    let client = board.session("client");
    let second_session = board.session("second");
    let first = start(board, |c| c.max_jobs = 1).await;

    let id = post(&client, "chain", json!({"steps": 12, "step_ms": 40})).await;
    wait_for_steps(&client, id, 2).await;
    first.shutdown().await.expect("graceful stop is Ok");

    let job = client.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Unclaimed, "abandoned at once, not left to a lease: {job:?}");
    let done_before = finished_steps(&client, id).await.len();
    assert!((2..12).contains(&done_before), "suspended part-way: {done_before} steps");

    let second = start(second_session, |_| {}).await;
    let job = wait_until(&client, id, "the resumed job to complete", |j| j.state == JobState::Complete).await;
    assert_eq!(job.outcome, Some(Outcome::Success));
    assert_eq!(job.claims, 2);
    let steps = finished_steps(&client, id).await;
    assert_eq!(steps.len(), 12);
    assert!(steps.iter().all(|(_, executions)| *executions == 1), "suspend lets running steps finish: {steps:?}");
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_draining_conductor_claims_nothing_until_undrained() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "drainer");
    let client = board.session("client");
    let daemon = start(board, |_| {}).await;

    daemon.drain.set(true);
    let shown = async {
        while !client.conductors().await.unwrap().iter().any(|c| c.name == "drainer" && c.draining) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, shown).await.expect("drain recorded on the board");

    let id = post(&client, "chain", json!({"steps": 1, "step_ms": 1})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.get(id).await.unwrap().state, JobState::Unclaimed, "a draining conductor claims nothing");

    daemon.drain.set(false);
    let job = wait_until(&client, id, "the job to complete", |j| j.state == JobState::Complete).await;
    assert_eq!(job.outcome, Some(Outcome::Success));
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_drain_set_on_the_board_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "remote");
    let client = board.session("client");
    let daemon = start(board, |_| {}).await;
    wait_registered(&client, "remote").await;

    client.set_draining("remote", true).await.expect("conductor is registered");
    let noticed = async {
        let mut rx = daemon.drain.subscribe();
        while !*rx.borrow_and_update() {
            rx.changed().await.expect("drain switch stays open");
        }
    };
    tokio::time::timeout(PATIENCE, noticed).await.expect("drain noticed");
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_is_reverted_and_consumed_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "canceller");
    let client = board.session("client");
    let daemon = start(board, |_| {}).await;

    let id = post(&client, "chain", json!({"steps": 50, "step_ms": 20})).await;
    wait_for_steps(&client, id, 1).await;
    client.request_cancel(id).await.unwrap();
    let job = wait_until(&client, id, "the cancelled job to complete", |j| j.state == JobState::Complete).await;
    assert_eq!(job.outcome, Some(Outcome::Cancelled));
    assert!(finished_steps(&client, id).await.is_empty(), "every step that ran was reverted");
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lost_session_stops_every_job_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "doomed");
    let client = board.session("client");
    let session = Arc::new(board.clone());
    let daemon = start(board, |_| {}).await;

    let id = post(&client, "chain", json!({"steps": 100, "step_ms": 20})).await;
    wait_for_steps(&client, id, 1).await;
    // Closing the conductor's session behind its back is what a lost lease looks like.
    session.close().await.unwrap();
    let result = tokio::time::timeout(PATIENCE, daemon.task).await.expect("stops in time").expect("joins");
    assert!(matches!(result, Err(Error::SessionLost)), "{result:?}");
    let job = client.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Unclaimed, "{job:?}");
    let done = finished_steps(&client, id).await.len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(finished_steps(&client, id).await.len(), done, "nothing more written after the loss");
}

#[tokio::test]
async fn flows_still_running_after_the_grace_are_stopped_and_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "impatient");
    let client = board.session("client");
    let daemon = start(board, |c| c.grace = Duration::from_millis(50)).await;

    // One step far longer than the grace: suspending cannot finish in time.
    let id = post(&client, "chain", json!({"steps": 2, "step_ms": 60_000})).await;
    wait_until(&client, id, "the job to be claimed", |j| j.state == JobState::Claimed).await;
    daemon.shutdown().await.expect("a stop past the grace is still graceful");

    let job = client.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Unclaimed, "abandoned after the grace: {job:?}");
    assert!(finished_steps(&client, id).await.is_empty(), "the long step never finished");
}

#[tokio::test]
async fn health_turns_not_serving_as_soon_as_shutdown_begins() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let dir = tempfile::tempdir().unwrap();
    let board = open_board(&dir, "healthy");
    let client = board.session("client");
    // A grace far longer than the test: the server keeps answering while the long step runs.
    let mut daemon = start(board, |c| c.grace = Duration::from_secs(60)).await;
    let channel = tonic::transport::Endpoint::from_shared(daemon.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    let status = |service: &str| HealthCheckRequest { service: service.into() };
    // Ready once the session has read the board's flow definitions: a moment after start.
    let ready = async {
        while health.check(status(proto::SERVICE_NAME)).await.unwrap().into_inner().status() != ServingStatus::Serving {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, ready).await.expect("ready in time");
    for service in ["", proto::SERVICE_NAME] {
        let answer = health.check(status(service)).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?} while running");
    }

    // Stopped while the second step runs: the daemon waits for that step, so it is
    // still stopping (and its server still answering) when health is asked.
    let id = post(&client, "chain", json!({"steps": 3, "step_ms": 1_000})).await;
    wait_for_steps(&client, id, 1).await;
    let _ = daemon.stop.take().expect("not stopped yet").send(());
    let not_serving = async {
        loop {
            let overall = health.check(status("")).await.expect("server still answers").into_inner();
            if overall.status() == ServingStatus::NotServing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, not_serving).await.expect("NOT_SERVING reported while stopping");
    let baton = health.check(status(proto::SERVICE_NAME)).await.unwrap().into_inner();
    assert_eq!(baton.status(), ServingStatus::NotServing);
    assert!(!daemon.task.is_finished(), "the check ran while the daemon was still stopping");
    daemon.shutdown().await.expect("graceful stop is Ok");
    let steps = finished_steps(&client, id).await;
    assert_eq!(steps.len(), 2, "the step running at the stop finished before the daemon stopped: {steps:?}");
}
