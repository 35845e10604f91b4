//! Remote tasks that park (issue 11): the `test_worker`'s `approve` answers `parked`;
//! the conductor records the park and only then sends the callback to the task's parked
//! handler (which writes token and URL to files); the real `baton complete TOKEN` resumes
//! the job and the delivered result flows to the next remote task. The token's secret is
//! in no log line of the conductor (at trace level) or the worker. Relayed too: the
//! worker attached only to the conductor that does not run the job.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::conductor::{baton, free_local_addr, post_job, wait_job, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};
use tests::workers::{wait_for_workers, WorkerProcess};

use super::{result_of, task, Fleet, PATIENCE};

const APPROVAL: &str = r#"
name: remote-approval
inputs:
  dir: {type: string}
flow:
  linear:
    - task: approve
      kind: remote
      with: {task: approve, dir: "${dir}"}
      provides: approval
    - task: show
      kind: remote
      with: {task: echo, approval: "${approval}"}
      provides: shown
"#;

/// Waits until the parked handler has written the token; returns it.
fn handed_out(dir: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(token) = std::fs::read_to_string(dir.join("token")) {
            return token;
        }
        assert!(Instant::now() < deadline, "the parked handler never wrote the token");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn parked(endpoint: &str, id: &str) -> Value {
    wait_job(endpoint, id, PATIENCE, "PARKED", |j| j["state"] == "PARKED").or_fail()
}

fn secret_of(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or_default()
}

#[test]
fn a_worker_parks_a_task_and_baton_complete_resumes_the_job() {
    let board = TestBoard::new(BoardKind::Etcd, "wk-park").or_fail();
    let flows = flows_dir(&[("approval.yaml", APPROVAL)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let http = free_local_addr().or_fail().to_string();
    let mut config = board.conductor("wk-park-c0", flows.path(), &["--http-listen", &http]);
    config.env.push(("RUST_LOG".into(), "trace".into()));
    let conductor = ConductorProcess::start(&config).or_fail();
    let endpoint = conductor.endpoint();
    let log = work.path().join("tasks.log");
    let worker = WorkerProcess::start(std::slice::from_ref(&endpoint), "w-park", 2, &log).or_fail();
    wait_for_workers(&endpoint, &["w-park"], PATIENCE).or_fail();

    let dir = work.path().display().to_string();
    let id = post_job(&endpoint, "remote-approval", &[("dir", &dir)]).or_fail();
    let token = handed_out(work.path());
    let url = std::fs::read_to_string(work.path().join("url")).or_fail();
    assert_eq!(url, format!("http://{http}/v1/callbacks/{token}"), "the webhook of this very token");
    let job = parked(&endpoint, &id);
    assert_eq!(task(&job, "approve")["state"], "PARKED", "{job}");
    assert!(task(&job, "approve")["parked_deadline"].as_u64().is_some_and(|d| d > flows::now_millis()), "{job}");

    let done = baton(&endpoint, ["complete", &token, "--result", r#"{"approved": true}"#]);
    assert!(done.success(), "{}", done.stderr());
    let job = wait_job(&endpoint, &id, PATIENCE, "completion", tests::conductor::is_complete).or_fail();
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(result_of(&job, "approve"), json!({"approved": true}));
    assert_eq!(result_of(&job, "show")["args"], json!({"approval": {"approved": true}}), "the result flowed on");
    let events: Vec<(String, u32)> =
        tests::workers::task_log(&log).into_iter().filter(|l| l.2 == "approve").map(|l| (l.1, l.3)).collect();
    assert_eq!(events, [("start".to_owned(), 1), ("handoff".to_owned(), 1)], "one execute, one hand-off");

    let secret = secret_of(&token);
    assert_eq!(secret.len(), 64, "{token}");
    assert!(!conductor.log().contains(secret), "the conductor logged the token's secret");
    assert!(!worker.log().contains(secret), "the worker logged the token's secret");
}

#[test]
fn a_relayed_task_parks_and_its_hand_off_is_relayed_too() {
    let mut fleet = Fleet::new("wk-park-relay", &[("approval.yaml", APPROVAL)], 2, &[]);
    // The worker is attached to A only; A claims nothing, so B runs the job and relays.
    fleet.worker("w1", 2, &[0]);
    let a_name = fleet.conductors[0].name().to_owned();
    assert!(baton(&fleet.endpoint(0), ["drain", &a_name]).success(), "drain A");
    wait_for_workers(&fleet.endpoint(1), &["w1"], PATIENCE).or_fail();

    let dir = fleet.work.path().display().to_string();
    let id = post_job(&fleet.endpoint(1), "remote-approval", &[("dir", &dir)]).or_fail();
    let token = handed_out(fleet.work.path());
    assert_eq!(std::fs::read_to_string(fleet.work.path().join("url")).or_fail(), "", "no HTTP listener, no URL");
    parked(&fleet.endpoint(1), &id);
    let done = baton(&fleet.endpoint(0), ["complete", &token, "--result", "\"relayed\""]);
    assert!(done.success(), "{}", done.stderr());
    let job = fleet.finished(1, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(result_of(&job, "show")["args"], json!({"approval": "relayed"}));
    let b_log = fleet.conductors[1].log();
    assert!(!b_log.contains(secret_of(&token)), "B logged the token's secret");
}
