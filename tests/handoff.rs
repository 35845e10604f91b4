//! Handoff: a job moves to another conductor after kill -9 and after SIGTERM, and never
//! while its owner is alive.
//!
//! These tests bound how fast a takeover happens (the bounds issue 4 names), so they run one
//! at a time: several fleets sharing two cores would measure each other, not the handoff.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{
    check_resumed_once, get_job, is_complete, post_job, succeeded_tasks, task_executions, wait_job, ConductorConfig,
    ConductorProcess, HarnessResult, OrFail,
};
use tests::etcd::{unique_prefix, EtcdProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);
/// What a takeover after kill -9 may take beyond the lease TTL: etcd's lessor expires keys up
/// to 0.5 s late, then a watch wakes the claimer, and this test polls through the CLI.
const KILL_MARGIN: Duration = Duration::from_millis(1500);

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Two conductors on the shared etcd under a fresh prefix.
fn pair(test: &str, lease_ttl: Duration) -> HarnessResult<[ConductorProcess; 2]> {
    let endpoint = EtcdProcess::shared().endpoint();
    let prefix = unique_prefix(test);
    let a = ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, &format!("{test}-a"), lease_ttl))?;
    let b = ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, &format!("{test}-b"), lease_ttl))?;
    Ok([a, b])
}

/// Index in `pair` of the conductor that owns `job`.
fn owner_index(pair: &[ConductorProcess; 2], job: &Value) -> HarnessResult<usize> {
    let owner = job["owner"].as_str().ok_or_else(|| format!("a claimed job shows no owner: {job}"))?;
    pair.iter().position(|c| c.name() == owner).ok_or_else(|| format!("owner {owner} is neither conductor").into())
}

/// Posts a timed chain and waits until its owner has finished `done` steps of it.
fn running_chain(api: &str, steps: u32, step_ms: u32, done: usize) -> HarnessResult<(String, Value)> {
    let id = post_job(api, "chain", &[("steps", &steps.to_string()), ("step_ms", &step_ms.to_string())])?;
    let job = wait_job(api, &id, PATIENCE, "steps done mid-flow", |job| {
        job["state"].as_str() == Some("CLAIMED") && succeeded_tasks(job).len() >= done
    })?;
    Ok((id, job))
}

/// Polls until `survivor` owns the job (or it is complete); returns when that was seen.
fn wait_owner(api: &str, id: &str, survivor: &str) -> HarnessResult<(Instant, Value)> {
    let job =
        wait_job(api, id, PATIENCE, "takeover", |job| job["owner"].as_str() == Some(survivor) || is_complete(job))?;
    Ok((Instant::now(), job))
}

/// Two conductors with a 10-step timed chain part-way through on one of them.
struct MidFlow {
    pair: [ConductorProcess; 2],
    id: String,
    /// Index in `pair` of the conductor running the job.
    owner: usize,
    /// The other conductor's endpoint and name.
    api: String,
    survivor_name: String,
    /// Steps the last snapshot before the fault shows done: they must not run again.
    done_before: Vec<String>,
}

impl MidFlow {
    fn start(test: &str, ttl: Duration, done: usize) -> HarnessResult<MidFlow> {
        let pair = pair(test, ttl)?;
        let (id, before) = running_chain(&pair[0].endpoint(), 10, 400, done)?;
        let owner = owner_index(&pair, &before)?;
        let survivor = 1 - owner;
        let api = pair[survivor].endpoint();
        let survivor_name = pair[survivor].name().to_string();
        let done_before = succeeded_tasks(&get_job(&api, &id)?);
        Ok(MidFlow { pair, id, owner, api, survivor_name, done_before })
    }

    /// Waits for the survivor to finish the job, each step executed once, one claim each.
    fn finished_by_survivor(&self) {
        let job = wait_job(&self.api, &self.id, PATIENCE, "completion by the survivor", is_complete).or_fail();
        check_resumed_once(&self.done_before, &job).or_fail();
        assert_eq!(job["claims"].as_u64(), Some(2), "one claim each: {job}");
    }
}

#[test]
fn kill_9_mid_flow_hands_the_job_over_within_the_lease_ttl() {
    let _serial = one_at_a_time();
    let ttl = Duration::from_secs(3);
    let mut flow = MidFlow::start("handoff-kill", ttl, 3).or_fail();
    let killed_at = Instant::now();
    flow.pair[flow.owner].kill().or_fail();
    let done_before = &flow.done_before;
    assert!(done_before.len() < 10, "finished before the kill, nothing to hand over: {done_before:?}");

    let (seen_at, taken) = wait_owner(&flow.api, &flow.id, &flow.survivor_name).or_fail();
    let takeover = seen_at - killed_at;
    eprintln!("takeover after kill -9 seen after {takeover:?} (TTL {ttl:?}); steps done before: {done_before:?}");
    assert!(!is_complete(&taken) || taken["claims"].as_u64() == Some(2), "completed without a second claim: {taken}");
    assert!(
        takeover <= ttl + KILL_MARGIN,
        "takeover after kill -9 took {takeover:?}, over TTL {ttl:?} + {KILL_MARGIN:?}"
    );
    flow.finished_by_survivor();
}

#[test]
fn sigterm_hands_the_job_over_without_waiting_for_the_lease_and_exits_0() {
    let _serial = one_at_a_time();
    // A long TTL, so a takeover well under it cannot be the lease expiring.
    let ttl = Duration::from_secs(10);
    let mut flow = MidFlow::start("handoff-term", ttl, 2).or_fail();
    let signalled_at = Instant::now();
    flow.pair[flow.owner].send_sigterm().or_fail();

    let (seen_at, _) = wait_owner(&flow.api, &flow.id, &flow.survivor_name).or_fail();
    let takeover = seen_at - signalled_at;
    let done_before = &flow.done_before;
    eprintln!("takeover after SIGTERM seen after {takeover:?} (TTL {ttl:?}); steps done before: {done_before:?}");
    assert!(takeover < ttl, "takeover after SIGTERM took {takeover:?}: it waited for the {ttl:?} lease");
    let status = flow.pair[flow.owner].wait_exit().or_fail();
    assert_eq!(status.code(), Some(0), "a conductor stopped by SIGTERM must exit 0, got {status}");
    flow.finished_by_survivor();
}

#[test]
fn a_job_longer_than_the_lease_ttl_is_never_claimed_twice_while_its_owner_lives() {
    let _serial = one_at_a_time();
    // TaskFlow's board never renews its claim: a 6 s job under a 3 s TTL ran on two conductors.
    let ttl = Duration::from_secs(2);
    let pair = pair("handoff-long", ttl).or_fail();
    let api = pair[0].endpoint();
    let id = post_job(&api, "chain", &[("steps", "6"), ("step_ms", "1000")]).or_fail();

    let mut owners = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    let job = loop {
        let job = get_job(&api, &id).or_fail();
        if let Some(owner) = job["owner"].as_str() {
            owners.insert(owner.to_string());
        }
        if is_complete(&job) {
            break job;
        }
        assert!(Instant::now() < deadline, "job not complete after {PATIENCE:?}: {job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert!(owners.len() <= 1, "the job changed hands while its owner lived: {owners:?}");
    assert_eq!(job["claims"].as_u64(), Some(1), "claimed again while its owner lived: {job}");
    let executions = task_executions(&job);
    assert_eq!(executions.len(), 6, "{job}");
    assert!(executions.values().all(|n| *n == 1), "a step ran twice: {executions:?}");
}
