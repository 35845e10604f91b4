//! Remote workers and the conductor-to-conductor relay against conductors behind TLS and
//! an auth file (issue 12), with real `conductor` and `test_worker` processes: a worker
//! whose token holds `worker` runs a `kind: remote` task over TLS; one without is refused
//! with PERMISSION_DENIED naming the role.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conductor::auth::file::token_line_credential;
use proto::{pb, Client, ClientOptions};
use tests::conductor::{ConductorConfig, ConductorProcess, OrFail};
use tests::flow_files::flows_dir;
use tests::pki::{CertFiles, Pki};
use tests::workers::WorkerProcess;

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
