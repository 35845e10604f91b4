//! Operators' controls end to end, on real `conductor` processes and the real `baton`,
//! on the embedded board and on etcd: job deadlines (a running flow, a parked one),
//! `baton suspend` / `resume` (resumed by another conductor than the one that
//! suspended), `baton retry` of a FAILURE job and of a TRASHED (quarantined) one,
//! `baton rerun` with overrides, and the refusals.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{baton, get_job, is_complete, wait_job, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

tests::on_both_boards!(
    a_job_deadline_cancels_and_reverts_a_running_flow,
    a_parked_job_past_its_flow_file_deadline_is_cancelled_and_reverted,
    a_suspended_job_resumes_on_another_conductor_where_it_stopped,
    retry_finishes_the_revert_of_a_failure_and_rerun_posts_a_linked_job,
    retry_requeues_a_quarantined_job_which_resumes_where_it_stopped,
);

/// `first` records its run and its revert; `wait` runs until cancelled.
const SLOW: &str = r#"
name: slow
inputs:
  dir: {type: string}
flow:
  linear:
    - task: first
      kind: shell
      with: {script: 'echo ran >> "$DIR/first"', env: {DIR: "${dir}"}}
      revert:
        kind: shell
        with: {script: 'echo reverted >> "$DIR/reverted"', env: {DIR: "${dir}"}}
    - task: wait
      kind: shell
      with: {script: 'sleep 600'}
"#;

/// A flow-file default deadline, and a task that parks for an hour.
const WAITS: &str = r#"
name: waits
deadline: 6s
inputs:
  dir: {type: string}
flow:
  linear:
    - task: first
      kind: shell
      with: {script: 'echo ran >> "$DIR/first"', env: {DIR: "${dir}"}}
      revert:
        kind: shell
        with: {script: 'echo reverted >> "$DIR/reverted"', env: {DIR: "${dir}"}}
    - task: approve
      kind: await
      with: {timeout: 1h}
"#;

/// `b` waits for the file `go`; each step appends a line to its own file.
const STEPS: &str = r#"
name: steps
inputs:
  dir: {type: string}
flow:
  linear:
    - task: a
      kind: shell
      with: {script: 'echo a >> "$DIR/a"', env: {DIR: "${dir}"}}
    - task: b
      kind: shell
      with: {script: 'while [ ! -e "$DIR/go" ]; do sleep 0.05; done; echo b >> "$DIR/b"', env: {DIR: "${dir}"}}
    - task: c
      kind: shell
      with: {script: 'echo c >> "$DIR/c"', env: {DIR: "${dir}"}}
"#;

/// `make`'s revert fails until the file `fixed` exists; `boom` fails.
const FRAGILE: &str = r#"
name: fragile
inputs:
  dir: {type: string}
flow:
  linear:
    - task: make
      kind: shell
      with: {script: 'echo made >> "$DIR/made"', env: {DIR: "${dir}"}}
      revert:
        kind: shell
        with: {script: 'test -e "$DIR/fixed" && echo undone >> "$DIR/undone"', env: {DIR: "${dir}"}}
    - task: boom
      kind: fail
      with: {message: broken}
"#;

fn conductor(board: &TestBoard, name: &str, flows: &Path, extra: &[&str]) -> ConductorProcess {
    let mut args = vec!["--task-kinds", "await,shell,fail"];
    args.extend_from_slice(extra);
    ConductorProcess::start(&board.conductor(name, flows, &args)).or_fail()
}

/// `baton post FLOW --store dir=DIR [more...]`; the job's id.
fn post(endpoint: &str, flow: &str, dir: &Path, more: &[&str]) -> String {
    let dir = format!("dir={}", dir.display());
    let mut args = vec!["post", flow, "--store", dir.as_str()];
    args.extend_from_slice(more);
    let posted = baton(endpoint, &args).ok_json().or_fail();
    posted["id"].as_str().expect("baton post printed an id").to_owned()
}

fn number(job: &Value, field: &str) -> u64 {
    job[field].as_u64().unwrap_or_else(|| panic!("no {field} in {job}"))
}

fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|text| text.lines().count()).unwrap_or(0)
}

fn wait_file(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The recorded operator actions, as `action by WHO`.
fn actions(job: &Value) -> Vec<String> {
    job["actions"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|a| format!("{} by {}", a["action"].as_str().unwrap_or("?"), a["by"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_deadline_exceeded(job: &Value) {
    assert_eq!((state(job), job["outcome"].as_str()), ("COMPLETE", Some("CANCELLED")), "{job}");
    assert_eq!(job["failure"]["kind"].as_str(), Some("DEADLINE_EXCEEDED"), "{job}");
    assert!(actions(job).contains(&"deadline by fleet".to_owned()), "the deadline's cancel is recorded: {job}");
}

fn a_job_deadline_cancels_and_reverts_a_running_flow(kind: BoardKind) {
    let board = TestBoard::new(kind, "ops-deadline-running").or_fail();
    let flows = flows_dir(&[("slow.yaml", SLOW)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = conductor(&board, "ops-deadline", flows.path(), &[]);
    let endpoint = conductor.endpoint();
    let id = post(&endpoint, "slow", work.path(), &["--deadline", "3s"]);
    let posted = get_job(&endpoint, &id).or_fail();
    let (created, deadline) = (number(&posted, "created_at"), number(&posted, "deadline"));
    // Counted from when the conductor took the post, a moment before the board stamped it.
    assert!(deadline > created && deadline <= created + 3000, "the deadline counts from the post: {posted}");
    wait_file(&work.path().join("first"));
    let job = wait_job(&endpoint, &id, PATIENCE, "the deadline", is_complete).or_fail();
    assert_deadline_exceeded(&job);
    assert_eq!(lines(&work.path().join("reverted")), 1, "what ran was reverted: {job}");
}

fn a_parked_job_past_its_flow_file_deadline_is_cancelled_and_reverted(kind: BoardKind) {
    let board = TestBoard::new(kind, "ops-deadline-parked").or_fail();
    let flows = flows_dir(&[("waits.yaml", WAITS)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = conductor(&board, "ops-parked", flows.path(), &[]);
    let endpoint = conductor.endpoint();
    let id = post(&endpoint, "waits", work.path(), &[]);
    let posted = get_job(&endpoint, &id).or_fail();
    let default = number(&posted, "deadline").saturating_sub(number(&posted, "created_at"));
    // Counted from when the conductor took the post, a moment before the board stamped it.
    assert!(default > 0 && default <= 6000, "the flow file's `deadline: 6s` applies: {posted}");
    // Released while it waits: only the fleet's scan can cancel it.
    let parked = wait_job(&endpoint, &id, PATIENCE, "PARKED", |j| state(j) == "PARKED" || is_complete(j)).or_fail();
    assert_eq!(state(&parked), "PARKED", "parked before its deadline: {parked}");
    let job = wait_job(&endpoint, &id, PATIENCE, "the deadline", is_complete).or_fail();
    assert_deadline_exceeded(&job);
    assert_eq!(lines(&work.path().join("reverted")), 1, "what ran was reverted: {job}");
}

fn a_suspended_job_resumes_on_another_conductor_where_it_stopped(kind: BoardKind) {
    let board = TestBoard::new(kind, "ops-suspend").or_fail();
    let flows = flows_dir(&[("steps.yaml", STEPS)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let mut first = conductor(&board, "ops-suspend-a", flows.path(), &[]);
    let id = post(&first.endpoint(), "steps", work.path(), &[]);
    wait_file(&work.path().join("a"));
    // `b` runs (it waits for `go`): the job stays claimed until it finishes, then no new task starts.
    let asked = baton(&first.endpoint(), ["suspend", &id]).ok_json().or_fail();
    assert_eq!(state(&asked), "CLAIMED", "{asked}");
    assert_eq!(asked["suspend_requested"].as_bool(), Some(true), "{asked}");
    let again = baton(&first.endpoint(), ["suspend", &id]);
    assert!(!again.success() && again.stderr().contains("suspension is pending"), "{}", again.stderr());
    std::fs::write(work.path().join("go"), "").or_fail();
    let suspended = wait_job(&first.endpoint(), &id, PATIENCE, "SUSPENDED", |j| state(j) == "SUSPENDED").or_fail();
    assert_eq!(suspended["owner"], Value::Null, "released: {suspended}");
    assert_eq!(lines(&work.path().join("b")), 1, "the running task finished");
    assert!(!work.path().join("c").exists(), "no new task started");
    let listed = baton(&first.endpoint(), ["list", "--state", "SUSPENDED"]).ok_json().or_fail();
    assert!(listed.to_string().contains(&id), "baton list --state SUSPENDED: {listed}");
    first.kill().or_fail();

    // Another conductor resumes it (embedded: a new one on the same board file).
    let second = conductor(&board, "ops-suspend-b", flows.path(), &[]);
    let resumed = baton(&second.endpoint(), ["resume", &id]).ok_json().or_fail();
    assert_ne!(state(&resumed), "SUSPENDED", "{resumed}");
    let job = wait_job(&second.endpoint(), &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(
        [lines(&work.path().join("a")), lines(&work.path().join("b")), lines(&work.path().join("c"))],
        [1, 1, 1]
    );
    assert_eq!(actions(&job), ["suspend by anonymous", "resume by anonymous"], "{job}");
    // Refusals name the state.
    let resume = baton(&second.endpoint(), ["resume", &id]);
    assert!(
        !resume.success() && resume.stderr().contains("cannot resume a job that is COMPLETE"),
        "{}",
        resume.stderr()
    );
    let suspend = baton(&second.endpoint(), ["suspend", &id]);
    assert!(
        !suspend.success() && suspend.stderr().contains("cannot suspend a job that is COMPLETE"),
        "{}",
        suspend.stderr()
    );
    let retry = baton(&second.endpoint(), ["retry", &id]);
    assert!(!retry.success() && retry.stderr().contains("its outcome is SUCCESS"), "{}", retry.stderr());
    let unknown = baton(&second.endpoint(), ["suspend", "018f0000-0000-7000-8000-000000000000"]);
    assert!(!unknown.success() && unknown.stderr().to_lowercase().contains("not found"), "{}", unknown.stderr());
}

fn retry_finishes_the_revert_of_a_failure_and_rerun_posts_a_linked_job(kind: BoardKind) {
    let board = TestBoard::new(kind, "ops-retry-failure").or_fail();
    let flows = flows_dir(&[("fragile.yaml", FRAGILE)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = conductor(&board, "ops-retry", flows.path(), &[]);
    let endpoint = conductor.endpoint();
    let id = post(&endpoint, "fragile", work.path(), &[]);
    let failed = wait_job(&endpoint, &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(failed["outcome"].as_str(), Some("FAILURE"), "the revert failed: {failed}");
    // The operator fixes what the revert needs, and retries.
    std::fs::write(work.path().join("fixed"), "").or_fail();
    let retried = baton(&endpoint, ["retry", &id]);
    assert!(retried.success(), "{}", retried.stderr());
    let job = wait_job(&endpoint, &id, PATIENCE, "the retried revert", |j| {
        is_complete(j) && j["actions"].as_array().is_some_and(|a| !a.is_empty())
    })
    .or_fail();
    assert_eq!(job["outcome"].as_str(), Some("REVERTED"), "the revert finished: {job}");
    assert_eq!((lines(&work.path().join("made")), lines(&work.path().join("undone"))), (1, 1), "{job}");
    assert_eq!(actions(&job), ["retry by anonymous"], "{job}");

    let other = tempfile::tempdir().or_fail();
    let dir = format!("dir={}", other.path().display());
    let rerun = baton(&endpoint, ["rerun", &id, "--store", &dir]).ok_json().or_fail();
    let new_id = rerun["id"].as_str().expect("baton rerun printed the new job");
    assert_ne!(new_id, id);
    assert_eq!(rerun["rerun_of"].as_str(), Some(id.as_str()), "{rerun}");
    assert_eq!(rerun["store"]["dir"].as_str(), Some(other.path().display().to_string().as_str()), "{rerun}");
    assert_eq!(rerun["flow_version"], job["flow_version"], "the same flow version: {rerun}");
    let second = wait_job(&endpoint, new_id, PATIENCE, "the rerun", is_complete).or_fail();
    assert_eq!(lines(&other.path().join("made")), 1, "the rerun ran with the override: {second}");
}

fn retry_requeues_a_quarantined_job_which_resumes_where_it_stopped(kind: BoardKind) {
    let board = TestBoard::new(kind, "ops-retry-trashed").or_fail();
    let flows = flows_dir(&[("steps.yaml", STEPS)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let quarantine = ["--quarantine-after", "1"];
    let mut first = conductor(&board, "ops-trash-a", flows.path(), &quarantine);
    let id = post(&first.endpoint(), "steps", work.path(), &[]);
    // `a` recorded SUCCESS (not only run: a task killed before its SUCCESS lands runs again).
    wait_job(&first.endpoint(), &id, PATIENCE, "a's SUCCESS", |j| j["tasks"][0]["state"] == "SUCCESS").or_fail();
    first.kill().or_fail();
    // Claimed once without finishing: the next claim attempt quarantines it.
    let second = conductor(&board, "ops-trash-b", flows.path(), &quarantine);
    let endpoint = second.endpoint();
    let trashed = wait_job(&endpoint, &id, PATIENCE, "TRASHED", |j| state(j) == "TRASHED").or_fail();
    assert!(trashed["trash_reason"].as_str().is_some_and(|r| r.contains("quarantined")), "{trashed}");
    std::fs::write(work.path().join("go"), "").or_fail();
    let retried = baton(&endpoint, ["retry", &id]).ok_json().or_fail();
    assert_eq!(retried["trash_reason"], Value::Null, "{retried}");
    let job = wait_job(&endpoint, &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(lines(&work.path().join("a")), 1, "what finished before the quarantine did not run again");
    assert_eq!(lines(&work.path().join("c")), 1);
    assert_eq!(actions(&job), ["retry by anonymous"], "{job}");
}
