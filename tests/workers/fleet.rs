//! Workers in a fleet: a job claimed by one conductor runs on a worker attached to
//! another (relay over the conductor-to-conductor stream); kill -9 of the worker's
//! conductor mid-task fails the attempt, the worker reconnects elsewhere, the retry runs.

use tests::conductor::{baton, post_job, OrFail};
use tests::workers::{list_workers, wait_for_workers};

use super::{task, Fleet, PATIENCE};

const LONG: &str = r#"
name: remote-long
flow:
  linear:
    - task: work
      kind: remote
      with: {task: hold, ms: 2000}
      retry: {times: 3}
"#;

#[test]
fn a_job_on_another_conductor_is_relayed_and_survives_kill_9_of_the_workers_conductor() {
    let mut fleet = Fleet::new("wk-relay", &[("long.yaml", LONG)], 2, &[]);
    // The worker prefers A (c0); A claims nothing, so B (c1) runs every job.
    fleet.worker("w1", 1, &[0, 1]);
    let a_name = fleet.conductors[0].name().to_owned();
    assert!(baton(&fleet.endpoint(0), ["drain", &a_name]).success(), "drain A");
    let seen_by_b = wait_for_workers(&fleet.endpoint(1), &["w1"], PATIENCE).or_fail();
    let w1 = seen_by_b.iter().find(|w| w["id"] == "w1").expect("w1 listed");
    assert_eq!(w1["conductor"], a_name.as_str(), "B sees A's worker (board watch): {w1}");
    assert_eq!(w1["slots_in_use"], 0, "A answered for its worker: {w1}");

    let id = post_job(&fleet.endpoint(1), "remote-long", &[]).or_fail();
    fleet.wait_log("the relayed start", |l| l.0 == "w1" && l.1 == "start" && l.2 == "work");
    let job = tests::conductor::get_job(&fleet.endpoint(1), &id).or_fail();
    assert_eq!(job["owner"], fleet.conductors[1].name(), "B runs the job: {job}");
    let listed = list_workers(&fleet.endpoint(1)).or_fail();
    assert_eq!(listed.iter().find(|w| w["id"] == "w1").map(|w| w["slots_in_use"].clone()), Some(1.into()));

    fleet.conductors[0].kill().or_fail();
    let job = fleet.finished(1, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(task(&job, "work")["executions"], 2, "the relayed attempt failed, the retry ran: {job}");
    let b_log = fleet.conductors[1].log();
    assert!(b_log.contains("relay link ended"), "B saw the link break");
    let on_b = list_workers(&fleet.endpoint(1)).or_fail();
    let w1: Vec<&serde_json::Value> = on_b.iter().filter(|w| w["id"] == "w1").collect();
    assert_eq!(w1.len(), 1, "A's stale record is hidden by the live attachment: {on_b:?}");
    assert_eq!(w1[0]["conductor"], fleet.conductors[1].name(), "w1 reconnected to B: {on_b:?}");
}

const FENCED: &str = r#"
name: remote-fenced
flow:
  linear:
    - task: work
      kind: remote
      with: {task: hold, ms: 2500}
      retry: {times: 3}
"#;

/// The conductor running a job stops (SIGSTOP) past its lease: another takes the job
/// over and finishes it on a worker; the stopped one, continued, writes nothing more
/// (its session is fenced, its calls dropped, a result for them would go nowhere).
#[test]
fn a_conductor_that_lost_its_claim_writes_nothing_when_it_comes_back() {
    let mut fleet = Fleet::new("wk-fence", &[("fenced.yaml", FENCED)], 2, &[]);
    let b_name = fleet.conductors[1].name().to_owned();
    assert!(baton(&fleet.endpoint(1), ["drain", &b_name]).success(), "drain B so that A claims");
    fleet.worker("w1", 1, &[0, 1]);
    fleet.worker("w2", 1, &[1]);
    let id = post_job(&fleet.endpoint(0), "remote-fenced", &[]).or_fail();
    fleet.wait_log("the first start", |l| l.1 == "start" && l.2 == "work");
    assert!(baton(&fleet.endpoint(1), ["drain", &b_name, "--undo"]).success(), "B may claim again");
    tests::conductor::send_signal(fleet.conductors[0].pid(), libc::SIGSTOP).or_fail();
    let job = fleet.finished(1, &id);
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    let executions = task(&job, "work")["executions"].clone();
    let result = super::result_of(&job, "work");
    tests::conductor::send_signal(fleet.conductors[0].pid(), libc::SIGCONT).or_fail();
    // A wakes up fenced; give it time to try anything it would.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = tests::conductor::get_job(&fleet.endpoint(1), &id).or_fail();
    assert_eq!(after["outcome"], "SUCCESS");
    assert_eq!(task(&after, "work")["executions"], executions, "nothing written after the loss: {after}");
    assert_eq!(super::result_of(&after, "work"), result, "nothing written after the loss: {after}");
}
