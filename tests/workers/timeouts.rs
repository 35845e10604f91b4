//! Per-task timeouts and the worker's own shutdown: an execution timeout fails the attempt
//! and cancels it on the worker; a heartbeat timeout passes while task code reports
//! progress; SIGTERM lets a worker finish what it runs, take nothing new, and exit.

use std::time::{Duration, Instant};

use tests::conductor::{post_job, OrFail};

use super::{task, Fleet, PATIENCE};

const TIMED: &str = r#"
name: remote-timed
flow:
  linear:
    - {task: alive, kind: remote, with: {task: hold, ms: 1500, heartbeat_timeout: 1s}}
    - {task: late, kind: remote, with: {task: hold, ms: 60000}, timeout: 1s}
"#;

#[test]
fn a_flow_timeout_fails_the_attempt_and_cancels_it_while_heartbeats_keep_a_long_task_alive() {
    let mut fleet = Fleet::new("wk-timeout", &[("timed.yaml", TIMED)], 1, &[]);
    fleet.worker("w1", 2, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-timed", &[]).or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "REVERTED", "{job}");
    assert_eq!(task(&job, "alive")["state"], "REVERTED", "it succeeded (heartbeats), then was undone: {job}");
    let failure = &task(&job, "late")["failure"];
    assert_eq!(failure["kind"], "Timeout", "{job}");
    fleet.wait_log("the timed-out task cancelled on the worker", |l| l.1 == "cancelled" && l.2 == "late");
}

const QUIET: &str = r#"
name: remote-quiet
flow:
  linear:
    - {task: quiet, kind: remote, with: {task: hold, ms: 60000, heartbeat_timeout: 50ms}}
"#;

#[test]
fn a_task_that_reports_no_progress_within_its_heartbeat_timeout_fails_and_is_cancelled() {
    // `hold` reports progress every 200 ms: more than the 50 ms this flow allows.
    let mut fleet = Fleet::new("wk-quiet", &[("quiet.yaml", QUIET)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-quiet", &[]).or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "REVERTED", "{job}");
    assert_eq!(task(&job, "quiet")["failure"]["kind"], "HeartbeatTimeout", "{job}");
    fleet.wait_log("the silent task cancelled on the worker", |l| l.1 == "cancelled" && l.2 == "quiet");
}

const SHORT: &str = r#"
name: remote-short
flow:
  linear:
    - {task: work, kind: remote, with: {task: hold, ms: 600}}
"#;

#[test]
fn sigterm_lets_a_worker_finish_its_task_and_exit() {
    let mut fleet = Fleet::new("wk-term", &[("short.yaml", SHORT)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-short", &[]).or_fail();
    fleet.wait_log("the start", |l| l.1 == "start");
    fleet.workers[0].terminate_gracefully().or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(task(&job, "work")["executions"], 1, "finished, not handed back: {job}");
    let deadline = Instant::now() + PATIENCE;
    while !fleet.workers[0].exited() {
        assert!(Instant::now() < deadline, "the worker did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fleet.workers[0].exit_ok(), "exit status 0 after a graceful shutdown");
}
