//! Three real conductors on a three-member cluster, each given all three
//! endpoints, run `chain` jobs (10 steps of 300 ms) while the leader is killed (-9) and, once it is
//! back, another member: every job completes SUCCESS with each task run once,
//! no conductor exits, and none loses its session (by `GetStatus` and by its log).

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{
    baton, is_complete, succeeded_tasks, task_executions, wait_job, ConductorConfig, ConductorProcess, HarnessResult,
    OrFail,
};
use tests::etcd::cluster::EtcdCluster;
use tests::etcd::unique_prefix;

use super::one_at_a_time;

/// The default TTL, as production runs.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// Posts `n` chain jobs through the CLI; returns their ids. Right after a fault the
/// conductor may answer UNAVAILABLE until its session has renewed through a survivor:
/// a post is retried (bounded) under its own idempotency key, so it makes one job.
fn post_wave(api: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| post_retried(api)).collect()
}

fn post_retried(api: &str) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    let args = ["post", "chain", "--store", "steps=10", "--store", "step_ms=300", "--idempotency-key", &key];
    let deadline = Instant::now() + PATIENCE;
    let mut refusals = Vec::new();
    loop {
        let out = baton(api, args);
        if out.success() {
            if !refusals.is_empty() {
                eprintln!("a post was refused {} times before it went through: {:?}", refusals.len(), refusals.last());
            }
            let posted = out.ok_json().or_fail();
            return posted["id"].as_str().unwrap_or_else(|| panic!("`baton post` printed no id: {posted}")).to_owned();
        }
        refusals.push(out.stderr().trim().to_owned());
        assert!(Instant::now() < deadline, "posts never went through again: {refusals:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every job in `ids` is running (claimed, a step done) or complete.
fn wait_running(api: &str, ids: &[String]) {
    for id in ids {
        wait_job(api, id, PATIENCE, "a step done", |job| !succeeded_tasks(job).is_empty() || is_complete(job))
            .or_fail();
    }
}

/// The lines of a conductor log that say a session was lost (the daemon's
/// "board session lost", the board's "session lease lost ...").
fn session_loss_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            let line = line.to_lowercase();
            line.contains("session lost") || line.contains("lease lost")
        })
        .collect()
}

/// The sessions the conductor at `endpoint` says it lost (`GetStatus`).
fn sessions_lost(endpoint: &str) -> HarnessResult<u32> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = proto::Client::connect(endpoint.to_owned()).await?;
        Ok(client.get_status().await?.sessions_lost)
    })
}

/// Tasks that ran more than once, as `job/task xN`.
fn repeated_tasks(id: &str, job: &Value) -> Vec<String> {
    task_executions(job).into_iter().filter(|(_, n)| *n != 1).map(|(task, n)| format!("{id}/{task} x{n}")).collect()
}

#[test]
fn fleet_rides_out_leader_and_member_kills() {
    let _turn = one_at_a_time();
    let mut cluster = EtcdCluster::start(3);
    let endpoints = cluster.endpoints().join(",");
    let prefix = unique_prefix("cluster-fleet");
    let mut fleet: Vec<ConductorProcess> = (0..3)
        .map(|i| {
            let config = ConductorConfig::etcd(&endpoints, &prefix, &format!("fleet-{i}"), LEASE_TTL);
            ConductorProcess::start(&config).or_fail()
        })
        .collect();
    let api = fleet[0].endpoint();

    let mut jobs = post_wave(&api, 6);
    wait_running(&api, &jobs);
    let first = cluster.wait_leader();
    cluster.kill(first);
    let leader = cluster.wait_leader();
    assert_ne!(leader, first, "a killed member still leads");
    // Posts and claims go on through the two survivors.
    let wave = post_wave(&api, 3);
    wait_running(&api, &wave);
    jobs.extend(wave);

    cluster.restart(first);
    let wave = post_wave(&api, 3);
    wait_running(&api, &wave);
    jobs.extend(wave);
    // Another member than the first: the leader, unless the first leads again.
    let leader = cluster.wait_leader();
    let second = if leader != first { leader } else { (first + 1) % cluster.size() };
    cluster.kill(second);
    cluster.wait_leader();
    let wave = post_wave(&api, 3);
    jobs.extend(wave);

    let mut failures = Vec::new();
    for id in &jobs {
        let job = wait_job(&api, id, PATIENCE, "completion", is_complete).or_fail();
        if job["outcome"].as_str() != Some("SUCCESS") {
            failures.push(format!("{id} ended {}", job["outcome"]));
        }
        failures.extend(repeated_tasks(id, &job));
    }
    for conductor in &mut fleet {
        if !conductor.is_running() {
            failures.push(format!("conductor {} exited", conductor.name()));
        }
        match sessions_lost(&conductor.endpoint()) {
            Ok(0) => {}
            Ok(n) => failures.push(format!("conductor {} reports {n} sessions lost", conductor.name())),
            Err(e) => failures.push(format!("conductor {} did not answer GetStatus: {e}", conductor.name())),
        }
        for line in session_loss_lines(&conductor.log()) {
            failures.push(format!("conductor {} lost its session: {line}", conductor.name()));
        }
    }
    assert!(failures.is_empty(), "after a leader kill and a member kill:\n{}", failures.join("\n"));
}
