//! The happy paths: results flowing between remote tasks on different workers, inputs as
//! keyword arguments, slots capping concurrency, `baton workers`, reverts on a worker.

use serde_json::json;
use tests::conductor::{post_job, OrFail};
use tests::workers::list_workers;

use super::{result_of, task, Fleet};

const CHAIN: &str = r#"
name: remote-chain
inputs:
  a: {type: integer}
flow:
  linear:
    - task: sum
      kind: remote
      requires: [a]
      with: {task: add, b: 40}
      provides: total
    - task: show
      kind: remote
      with: {task: echo, total: "${total}", note: "total is ${total}"}
      provides: shown
    - task: hold
      kind: remote
      with: {task: hold, ms: 10}
"#;

#[test]
fn a_flow_of_remote_tasks_passes_results_between_workers() {
    let mut fleet = Fleet::new("wk-chain", &[("chain.yaml", CHAIN)], 1, &[]);
    fleet.worker("w1", 1, &[0]);
    fleet.worker("w2", 1, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-chain", &[("a", "2")]).or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(result_of(&job, "sum"), json!(42));
    let shown = result_of(&job, "show");
    assert_eq!(shown["args"], json!({"total": 42, "note": "total is 42"}), "with values as keyword arguments: {shown}");
    assert_eq!(shown["key"], json!(format!("{id}/show/1")), "idempotency key job/atom/attempt");
    assert_eq!(shown["attempt"], json!(1));
    let workers: std::collections::BTreeSet<String> = fleet.log().into_iter().map(|l| l.0).collect();
    assert!(!workers.is_empty(), "the tasks ran on the workers: {:?}", fleet.log());
}

const SPREAD: &str = r#"
name: remote-spread
flow:
  unordered:
    - {task: h1, kind: remote, with: {task: hold, ms: 400}}
    - {task: h2, kind: remote, with: {task: hold, ms: 400}}
    - {task: h3, kind: remote, with: {task: hold, ms: 400}}
    - {task: h4, kind: remote, with: {task: hold, ms: 400}}
    - {task: h5, kind: remote, with: {task: hold, ms: 400}}
    - {task: h6, kind: remote, with: {task: hold, ms: 400}}
"#;

#[test]
fn a_worker_of_n_slots_runs_exactly_n_at_once() {
    let mut fleet = Fleet::new("wk-slots", &[("spread.yaml", SPREAD)], 1, &[]);
    fleet.worker("w-two-slots", 2, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-spread", &[]).or_fail();
    let mut most_in_use = 0;
    let deadline = std::time::Instant::now() + super::PATIENCE;
    loop {
        let workers = list_workers(&fleet.endpoint(0)).or_fail();
        for w in &workers {
            most_in_use = most_in_use.max(w["slots_in_use"].as_u64().unwrap_or(0));
        }
        let job = tests::conductor::get_job(&fleet.endpoint(0), &id).or_fail();
        if tests::conductor::is_complete(&job) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "job did not finish: {job}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    let peak = (1..=6).map(|i| result_of(&job, &format!("h{i}"))["peak"].as_u64().unwrap_or(0)).max();
    assert_eq!(peak, Some(2), "3N tasks on N=2 slots: exactly 2 at once at the peak: {job}");
    assert!(most_in_use <= 2, "baton workers showed {most_in_use} slots in use of 2");
}

#[test]
fn baton_workers_lists_id_conductor_tasks_and_slots() {
    let mut fleet = Fleet::new("wk-list", &[("chain.yaml", CHAIN)], 1, &[]);
    fleet.worker("w-listed", 3, &[0]);
    let workers = list_workers(&fleet.endpoint(0)).or_fail();
    assert_eq!(workers.len(), 1, "{workers:?}");
    let w = &workers[0];
    assert_eq!(w["id"], "w-listed");
    assert_eq!(w["conductor"], "wk-list-c0");
    assert_eq!(w["slots"], 3);
    assert_eq!(w["slots_in_use"], 0);
    let tasks: Vec<&str> =
        w["tasks"].as_array().expect("a task list").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(tasks, ["add", "approve", "big", "echo", "fail", "hold"]);
    assert!(w["since"].as_u64().unwrap_or(0) > 0);
}

const FAILING: &str = r#"
name: remote-failing
flow:
  linear:
    - {task: first, kind: remote, with: {task: echo}}
    - {task: charge, kind: remote, with: {task: fail}}
"#;

#[test]
fn a_failing_remote_task_is_reverted_by_the_workers_revert_handlers() {
    let mut fleet = Fleet::new("wk-revert", &[("failing.yaml", FAILING)], 1, &[]);
    fleet.worker("w1", 2, &[0]);
    let id = post_job(&fleet.endpoint(0), "remote-failing", &[]).or_fail();
    let job = fleet.finished(0, &id);
    assert_eq!(job["outcome"], "REVERTED", "{job}");
    let failure = &task(&job, "charge")["failure"];
    assert_eq!(failure["kind"], "CardDeclined", "{job}");
    assert!(job.to_string().contains("insufficient funds"), "the cause travels: {job}");
    let reverts: Vec<String> = fleet.log().into_iter().filter(|l| l.1 == "revert").map(|l| l.2).collect();
    assert_eq!(reverts, ["charge", "first"], "reverted in reverse order on the worker");
}
