//! The failure cases: kill -9 and SIGSTOP of a worker mid-task, a late result after the
//! attempt was reassigned, cancel reaching the worker, a revert on another worker than the
//! one that executed, and no worker offering the task.

use std::time::Duration;

use tests::conductor::{baton, get_job, post_job, OrFail};

use super::{task, Fleet};

const LONG: &str = r#"
name: remote-long
flow:
  linear:
    - task: work
      kind: remote
      with: {task: hold, ms: 1500}
      retry: {times: 3}
"#;

#[test]
fn kill_9_of_a_worker_mid_task_fails_the_attempt_and_the_retry_runs_elsewhere() {
    let mut fleet = Fleet::new("wk-kill", &[("long.yaml", LONG)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    fleet.worker("w2", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-long", &[]).or_fail();
    let (first, ..) = fleet.wait_log("the first start", |l| l.1 == "start" && l.2 == "work");
    let victim = fleet.workers.iter().position(|w| w.id() == first).expect("the worker that started");
    fleet.workers[victim].kill().or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(task(&job, "work")["executions"], 2, "one lost attempt, one retry: {job}");
    let starts: Vec<String> = fleet.log().into_iter().filter(|l| l.1 == "start").map(|l| l.0).collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_ne!(starts[0], starts[1], "the retry ran on the other worker");
    assert!(fleet.conductors[0].log().contains("WorkerLost") || fleet.conductors[0].log().contains("worker gone"));
}

#[test]
fn a_stopped_worker_is_found_by_missed_heartbeats_and_its_late_result_changes_nothing() {
    let mut fleet = Fleet::new("wk-stop", &[("long.yaml", LONG)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    fleet.worker("w2", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-long", &[]).or_fail();
    let (first, ..) = fleet.wait_log("the first start", |l| l.1 == "start" && l.2 == "work");
    let stopped = fleet.workers.iter().position(|w| w.id() == first).expect("the worker that started");
    fleet.workers[stopped].stop().or_fail();
    // The TCP connection stays open; only the missed heartbeats (1 s) can tell.
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(task(&job, "work")["executions"], 2, "{job}");
    let winner = super::result_of(&job, "work")["worker"].clone();
    assert_ne!(winner, first.as_str(), "the retry ran elsewhere: {job}");
    // Let the stopped worker finish its stale attempt (its hold is long over) and answer.
    fleet.workers[stopped].cont().or_fail();
    fleet.wait_log("the stale attempt's end", |l| l.0 == first && (l.1 == "end" || l.1 == "cancelled"));
    std::thread::sleep(Duration::from_millis(500));
    let after = get_job(&fleet.endpoint(0), &id).or_fail();
    assert_eq!(after["outcome"], "SUCCESS");
    assert_eq!(task(&after, "work")["executions"], 2, "the late result changed nothing: {after}");
    assert_eq!(super::result_of(&after, "work")["worker"], winner, "the late result changed nothing: {after}");
}

const FOREVER: &str = r#"
name: remote-forever
flow:
  linear:
    - {task: first, kind: remote, with: {task: echo}}
    - {task: wait, kind: remote, with: {task: hold, ms: 600000}}
"#;

#[test]
fn cancel_during_a_remote_task_reaches_the_worker() {
    let mut fleet = Fleet::new("wk-cancel", &[("forever.yaml", FOREVER)], 1, &[]);
    fleet.worker("w1", 2, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-forever", &[]).or_fail();
    fleet.wait_log("the long task's start", |l| l.1 == "start" && l.2 == "wait");
    assert!(baton(&fleet.endpoint(0), ["cancel", &id]).success());
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "CANCELLED", "{job}");
    fleet.wait_log("the cancel in the task code", |l| l.1 == "cancelled" && l.2 == "wait");
    fleet.wait_log("the revert of the first task", |l| l.1 == "revert" && l.2 == "first");
}

const NO_RETRY: &str = r#"
name: remote-no-retry
flow:
  linear:
    - {task: first, kind: remote, with: {task: echo}}
    - {task: second, kind: remote, with: {task: hold, ms: 600000}}
"#;

#[test]
fn a_failed_flow_is_reverted_on_another_worker_when_the_first_is_gone() {
    let mut fleet = Fleet::new("wk-elsewhere", &[("no-retry.yaml", NO_RETRY)], 1, &[]);
    fleet.worker("w1", 2, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-no-retry", &[]).or_fail();
    fleet.wait_log("the second task's start", |l| l.1 == "start" && l.2 == "second");
    fleet.worker("w2", 2, &[0]);
    fleet.workers[0].kill().or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "REVERTED", "{job}");
    assert_eq!(task(&job, "second")["failure"]["kind"], "WorkerLost", "{job}");
    let reverts: Vec<(String, String)> =
        fleet.log().into_iter().filter(|l| l.1 == "revert").map(|l| (l.0, l.2)).collect();
    assert!(reverts.contains(&("w2".to_owned(), "first".to_owned())), "first reverted on w2: {reverts:?}");
    assert!(reverts.iter().all(|(w, _)| w == "w2"), "w1 is gone: {reverts:?}");
}

const NOBODY: &str = r#"
name: remote-nobody
flow:
  linear:
    - {task: charge, kind: remote, with: {task: billing.charge, schedule_to_start: 1s}}
"#;

#[test]
fn no_worker_offering_the_task_fails_it_naming_the_task() {
    let mut fleet = Fleet::new("wk-nobody", &[("nobody.yaml", NOBODY)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-nobody", &[]).or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "REVERTED", "a task that never started needs no revert: {job}");
    let failure = &task(&job, "charge")["failure"];
    assert_eq!(failure["kind"], "ScheduleToStartTimeout", "{job}");
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(message.contains("billing.charge") && message.contains("no connected worker offers it"), "{message}");
}
