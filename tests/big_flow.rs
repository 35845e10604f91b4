//! A big flow on etcd: a 2,000-step chain killed with SIGKILL part-way resumes on another
//! conductor from its logbook (a key per atom, written in fenced txns within etcd's limits and
//! read back whole on resume), and no step seen finished before the kill runs again.
//! The 10,000-task figures (resume read time) are in the scale bench.

use std::time::Duration;

use tests::conductor::{
    check_resumed_once, get_job, is_complete, post_job, succeeded_tasks, wait_job, ConductorConfig, ConductorProcess,
    OrFail,
};
use tests::etcd::{unique_prefix, EtcdProcess};

const STEPS: usize = 2000;
/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(300);

#[test]
fn a_2000_step_chain_resumes_after_kill_9_without_rerunning_finished_steps() {
    let endpoint = EtcdProcess::shared().endpoint();
    let prefix = unique_prefix("big-flow");
    let ttl = Duration::from_secs(3);
    let mut first = ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, "big-a", ttl)).or_fail();
    let api = first.endpoint();
    let id = post_job(&api, "chain", &[("steps", &STEPS.to_string()), ("step_ms", "2")]).or_fail();
    let running = wait_job(&api, &id, PATIENCE, "a quarter of the steps done", |job| {
        job["state"].as_str() == Some("CLAIMED") && succeeded_tasks(job).len() >= STEPS / 4
    })
    .or_fail();
    let done_before = succeeded_tasks(&running);
    first.kill().or_fail();
    assert!(done_before.len() < STEPS, "finished before the kill, nothing to resume");

    let second = ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, "big-b", ttl)).or_fail();
    let job = wait_job(&second.endpoint(), &id, PATIENCE, "completion after the resume", is_complete).or_fail();
    check_resumed_once(&done_before, &job).or_fail();
    assert_eq!(job["claims"].as_u64(), Some(2), "one claim each: {}", job["claims"]);
    assert_eq!(job["owner"].as_str(), None, "a complete job has no owner");
    let tasks = get_job(&second.endpoint(), &id).or_fail()["tasks"].as_array().map_or(0, Vec::len);
    assert_eq!(tasks, STEPS, "every step is in the logbook");
}
