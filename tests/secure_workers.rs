//! Remote workers and the conductor-to-conductor relay against conductors behind TLS and
//! an auth file (issue 12), with real `conductor` and `test_worker` processes: a worker
//! whose token holds `worker` runs a `kind: remote` task over TLS; one without is refused
//! with PERMISSION_DENIED naming the role. Two conductors relay a task to a worker attached
//! to the other with their peer credential (`--peer-token-file`), and without one the relay
//! is refused and the log says what is missing.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conductor::auth::file::token_line_credential;
use proto::{pb, Client, ClientOptions};
use tests::conductor::{ConductorConfig, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};
use tests::pki::{CertFiles, Pki};
use tests::workers::WorkerProcess;
use tonic::Code;

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(60);

const REMOTE: &str = r#"
name: remote-add
inputs:
  a: {type: integer}
flow:
  linear:
    - task: sum
      kind: remote
      requires: [a]
      with: {task: add, b: 40}
      provides: total
"#;

fn auth_file(pki: &Pki, lines: &[String]) -> PathBuf {
    let path = pki.path("auth.txt");
    std::fs::write(&path, lines.join("\n") + "\n").or_fail();
    path
}

/// TLS (with client certificates asked of, not required from, callers) and the auth file.
fn tls_args(pki: &Pki, server: &CertFiles, auth: &Path) -> Vec<String> {
    [
        "--tls-cert",
        &server.cert.display().to_string(),
        "--tls-key",
        &server.key.display().to_string(),
        "--tls-client-ca",
        &pki.ca().display().to_string(),
        "--auth-file",
        &auth.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn https(conductor: &ConductorProcess) -> String {
    conductor.endpoint().replace("http://", "https://")
}

/// A client with `token`, trusting the test CA; retried until the listener answers.
async fn client(endpoint: &str, ca: &Path, token: &str) -> Client {
    let options = ClientOptions {
        connect_timeout: Some(Duration::from_secs(2)),
        ..ClientOptions::from_files(Some(token.to_owned()), None, Some(ca), None, None).or_fail()
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(client) = Client::connect_with_options(endpoint, &options).await {
            if client.list_flows().await.is_ok() {
                return client;
            }
        }
        assert!(Instant::now() < deadline, "{endpoint} did not answer within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (bounded) for job `id` to finish; returns it.
async fn finished(client: &Client, id: &str) -> pb::Job {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = client.get_job(id).await.or_fail();
        if job.state == pb::JobState::Complete as i32 {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} not finished within {PATIENCE:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn worker_args(ca: &Path, token: &str) -> Vec<String> {
    vec!["--ca".into(), ca.display().to_string(), "--token".into(), token.into()]
}

/// Waits (bounded) for a worker process to exit by itself.
fn exits(worker: &mut WorkerProcess) {
    let deadline = Instant::now() + PATIENCE;
    while !worker.exited() {
        assert!(Instant::now() < deadline, "the worker kept running: {}", worker.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_the_worker_role_runs_remote_tasks_over_tls_and_one_without_is_refused() {
    let pki = Pki::new("workers");
    let server = pki.server("server");
    let auth = auth_file(
        &pki,
        &[
            format!("w1 worker {}", token_line_credential("worker-token")),
            format!("poster read,post {}", token_line_credential("poster-token")),
        ],
    );
    let flows = flows_dir(&[("remote.yaml", REMOTE)]).or_fail();
    let data = tempfile::tempdir().or_fail();
    let mut config = ConductorConfig::embedded(data.path(), "secure-workers");
    config.binary = "conductor";
    config.extra_args = tls_args(&pki, &server, &auth);
    config.extra_args.extend(["--flows-dir".into(), flows.path().display().to_string()]);
    let conductor = ConductorProcess::spawn(&config).or_fail();
    let endpoint = https(&conductor);
    let poster = client(&endpoint, pki.ca(), "poster-token").await;

    // The poster's identity has no `worker` role: its attach is refused, naming the role.
    let log = tempfile::tempdir().or_fail();
    let tasks = log.path().join("tasks.log");
    let mut denied = WorkerProcess::start_with(
        std::slice::from_ref(&endpoint),
        "w-denied",
        1,
        &tasks,
        &worker_args(pki.ca(), "poster-token"),
    )
    .or_fail();
    exits(&mut denied);
    assert!(!denied.exit_ok(), "a refused worker exits with an error");
    let said = denied.log();
    assert!(said.contains("PermissionDenied") && said.contains("`worker`"), "names the role: {said}");
    assert!(!said.contains("poster-token"), "the token reached the log: {said}");
    // A wrong token: UNAUTHENTICATED, also for good.
    let mut stranger = WorkerProcess::start_with(
        std::slice::from_ref(&endpoint),
        "w-stranger",
        1,
        &tasks,
        &worker_args(pki.ca(), "guess"),
    )
    .or_fail();
    exits(&mut stranger);
    assert!(stranger.log().contains("Unauthenticated"), "{}", stranger.log());

    // With the `worker` role, over TLS: the remote task runs on the worker.
    let _worker = WorkerProcess::start_with(
        std::slice::from_ref(&endpoint),
        "w1",
        1,
        &tasks,
        &worker_args(pki.ca(), "worker-token"),
    )
    .or_fail();
    let request =
        pb::PostJobRequest { flow: "remote-add".into(), store_json: r#"{"a": 2}"#.into(), ..Default::default() };
    let job = poster.post_job(request).await.or_fail();
    let job = finished(&poster, &job.id).await;
    assert_eq!(job.outcome, pb::Outcome::Success as i32, "{job:?}");
    let sum = job.tasks.iter().find(|t| t.name == "sum").expect("task sum in the job");
    assert_eq!(sum.result_json.as_deref(), Some("42"), "{sum:?}");
    let ran = tests::workers::task_log(&tasks);
    assert!(ran.iter().any(|l| l.0 == "w1" && l.1 == "start" && l.2 == "sum"), "ran on w1: {ran:?}");
    assert!(!ran.iter().any(|l| l.0 != "w1"), "nothing ran on a refused worker: {ran:?}");
}

const HOLD: &str = r#"
name: remote-hold
flow:
  linear:
    - task: work
      kind: remote
      with: {task: hold, ms: 10}
"#;

/// Two conductors (A, B) on one etcd board, both behind TLS and the auth file, with
/// `peer_args` each; w1 attached to A only, A drained so B claims every job.
struct Pair {
    _board: TestBoard,
    _flows: tempfile::TempDir,
    _pki: Pki,
    conductors: Vec<ConductorProcess>,
    ops: Client,
    tasks: tempfile::TempDir,
    _worker: WorkerProcess,
}

impl Pair {
    async fn new(test: &str, with_peer_token: bool) -> Pair {
        let pki = Pki::new(test);
        let server = pki.server("server");
        let auth = auth_file(
            &pki,
            &[
                format!("conductors peer {}", token_line_credential("peer-token")),
                format!("w1 worker {}", token_line_credential("worker-token")),
                format!("ops read,post,operate {}", token_line_credential("ops-token")),
            ],
        );
        let peer_token = pki.path("peer-token");
        std::fs::write(&peer_token, "peer-token\n").or_fail();
        let board = TestBoard::new(BoardKind::Etcd, test).or_fail();
        let flows = flows_dir(&[("hold.yaml", HOLD)]).or_fail();
        let mut args = tls_args(&pki, &server, &auth);
        args.extend(["--worker-heartbeat-timeout".into(), "1s".into()]);
        if with_peer_token {
            args.extend(["--peer-token-file".into(), peer_token.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let conductors: Vec<ConductorProcess> = ["a", "b"]
            .iter()
            .map(|c| ConductorProcess::spawn(&board.conductor(&format!("{test}-{c}"), flows.path(), &args)).or_fail())
            .collect();
        let (a, b) = (https(&conductors[0]), https(&conductors[1]));
        let ops_a = client(&a, pki.ca(), "ops-token").await;
        let ops = client(&b, pki.ca(), "ops-token").await;
        // Spawned without waiting: A answers the drain once its board session is up and registered.
        let deadline = Instant::now() + PATIENCE;
        loop {
            match ops_a.drain(conductors[0].name(), true).await {
                Ok(_) => break,
                Err(e) if matches!(e.code(), Code::Unavailable | Code::NotFound) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("draining A failed: {e}"),
            }
        }
        let tasks = tempfile::tempdir().or_fail();
        let log = tasks.path().join("tasks.log");
        let worker = WorkerProcess::start_with(&[a], "w1", 1, &log, &worker_args(pki.ca(), "worker-token")).or_fail();
        // B sees A's worker on the board (whether or not A answers B for it).
        let deadline = Instant::now() + PATIENCE;
        while !ops.list_workers(false).await.or_fail().iter().any(|w| w.worker_id == "w1") {
            assert!(Instant::now() < deadline, "B never listed w1: {}", worker.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Pair { _board: board, _flows: flows, _pki: pki, conductors, ops, tasks, _worker: worker }
    }

    async fn post(&self) -> String {
        let request = pb::PostJobRequest { flow: "remote-hold".into(), ..Default::default() };
        self.ops.post_job(request).await.or_fail().id
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conductors_relay_to_each_others_workers_with_their_peer_credential() {
    let pair = Pair::new("relay-peer", true).await;
    let id = pair.post().await;
    let job = finished(&pair.ops, &id).await;
    assert_eq!(job.outcome, pb::Outcome::Success as i32, "{job:?}");
    let ran = tests::workers::task_log(&pair.tasks.path().join("tasks.log"));
    assert!(ran.iter().any(|l| l.0 == "w1" && l.1 == "start" && l.2 == "work"), "ran on w1 by relay: {ran:?}");
    let b_log = pair.conductors[1].log();
    assert!(b_log.contains(&format!("job_id={id}")), "B ran the job (A is drained):\n{b_log}");
    assert!(b_log.contains("relay link opened"), "B opened a link to A:\n{b_log}");
    assert!(b_log.contains("https://"), "the link is TLS:\n{b_log}");
    assert!(!b_log.contains("peer-token") && !pair.conductors[0].log().contains("peer-token"), "a token in a log");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_peer_credential_the_relay_is_refused_and_the_log_says_why() {
    let pair = Pair::new("relay-nopeer", false).await;
    let id = pair.post().await;
    let deadline = Instant::now() + PATIENCE;
    let b_log = loop {
        let log = pair.conductors[1].log();
        if log.contains("cannot open a relay link") {
            break log;
        }
        assert!(Instant::now() < deadline, "B never tried the relay:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(b_log.contains("Unauthenticated") && b_log.contains("--peer-token-file"), "says what is missing:\n{b_log}");
    let ran = tests::workers::task_log(&pair.tasks.path().join("tasks.log"));
    assert!(ran.is_empty(), "nothing ran without the relay: {ran:?}");
    let job = pair.ops.get_job(&id).await.or_fail();
    assert_ne!(job.state, pb::JobState::Complete as i32, "the job cannot have run: {job:?}");
}
