//! `baton` against conductors that stall: a silent endpoint first in `--endpoint`, a
//! proxy that delivers a post but loses its answer, a conductor killed under a watch.
//!
//! Real processes and real sockets throughout (build first: `cargo build --workspace --bins`).
//! Timeouts are given to `baton` as flags; no test asserts how long anything took.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tests::conductor::{
    baton, baton_with_env, get_job, post_job, wait_job, BatonRun, ConductorConfig, ConductorProcess, HarnessResult,
    OrFail,
};
use tests::etcd::{unique_prefix, EtcdProcess};

#[path = "cli_failover/stall.rs"]
mod stall;

use stall::{OneWayProxy, Silent};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(60);

fn embedded_conductor(name: &str) -> (ConductorProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&ConductorConfig::embedded(dir.path(), name)).or_fail();
    (conductor, dir)
}

fn jobs(endpoint: &str) -> HarnessResult<Vec<Value>> {
    match baton(endpoint, ["list"]).ok_json()? {
        Value::Array(jobs) => Ok(jobs),
        other => Err(format!("`baton list` printed no list: {other}").into()),
    }
}

fn address(conductor: &ConductorProcess) -> SocketAddr {
    conductor.endpoint().trim_start_matches("http://").parse().or_fail()
}

#[test]
fn a_silent_endpoint_first_does_not_hang_list_or_post() {
    let (conductor, _dir) = embedded_conductor("failover-silent");
    let silent = Silent::start().or_fail();
    let both = format!("{},{}", silent.endpoint(), conductor.endpoint());

    let listed = baton(&both, ["--timeout", "1s", "list"]).ok_json().or_fail();
    assert_eq!(listed, Value::Array(Vec::new()), "a fresh board lists no job");
    assert!(silent.accepted() >= 1, "the silent endpoint was never tried");

    let posted =
        baton(&both, ["--timeout", "1s", "post", "chain", "-s", "steps=1", "-s", "step_ms=1"]).ok_json().or_fail();
    let id = posted["id"].as_str().or_fail_with("post printed no id");
    // The same through the environment, as a deployment would set it.
    let env = [("BATON_TIMEOUT", "1s"), ("BATON_CONNECT_TIMEOUT", "1s")];
    let got = baton_with_env(&both, &env, ["get", id]).ok_json().or_fail();
    assert_eq!(got["id"].as_str(), Some(id));

    // Alone, the silent endpoint fails with one line that names it and why.
    let out = baton(&silent.endpoint(), ["--timeout", "1s", "list"]);
    assert!(!out.success(), "list through a silent endpoint succeeded: {}", out.stdout());
    let stderr = out.stderr();
    assert_eq!(stderr.lines().count(), 1, "one line, not a dump: {stderr:?}");
    assert!(
        stderr.starts_with(&format!(
            "baton: cannot list jobs: no conductor answered ({}: no answer within 1s)",
            silent.endpoint()
        )),
        "{stderr:?}"
    );
    assert!(stderr.contains("--endpoint") && stderr.contains("BATON_ENDPOINT"), "no hint: {stderr:?}");
}

#[test]
fn a_post_whose_answer_is_lost_goes_to_the_next_endpoint_and_makes_one_job() {
    let (conductor, _dir) = embedded_conductor("failover-lost-answer");
    let real = conductor.endpoint();
    let proxy = OneWayProxy::start(address(&conductor)).or_fail();

    // The proxy does deliver: a post through it alone fails, yet its job lands.
    let lost = baton(
        &proxy.endpoint(),
        ["--timeout", "1s", "post", "chain", "-s", "steps=1", "-s", "step_ms=1", "--idempotency-key", "lost-answer"],
    );
    assert!(!lost.success(), "a post whose answer is dropped succeeded: {}", lost.stdout());
    let landed = |jobs: &[Value]| jobs.iter().any(|job| job["idempotency_key"].as_str() == Some("lost-answer"));
    let deadline = std::time::Instant::now() + PATIENCE;
    while !landed(&jobs(&real).or_fail()) {
        assert!(std::time::Instant::now() < deadline, "the post sent through the proxy never landed");
        std::thread::sleep(Duration::from_millis(50));
    }

    // No key given: baton's own key makes the re-sent post return the job the first made.
    let before = proxy.accepted();
    let both = format!("{},{real}", proxy.endpoint());
    let posted =
        baton(&both, ["--timeout", "1s", "post", "chain", "-s", "steps=1", "-s", "step_ms=1"]).ok_json().or_fail();
    assert!(proxy.accepted() > before, "the post never went through the proxy first");
    let id = posted["id"].as_str().or_fail_with("post printed no id").to_string();

    let all = jobs(&real).or_fail();
    let mine: Vec<&Value> = all.iter().filter(|job| job["idempotency_key"].as_str() != Some("lost-answer")).collect();
    assert_eq!(mine.len(), 1, "one post made more than one job: {all:?}");
    assert_eq!(mine[0]["id"].as_str(), Some(id.as_str()), "the post returned another job than it made: {all:?}");
    let key = posted["idempotency_key"].as_str().or_fail_with("post sent no key of its own");
    assert_eq!(mine[0]["idempotency_key"].as_str(), Some(key));
}

#[test]
fn a_wait_follows_its_job_after_the_conductor_it_watched_is_killed() {
    let prefix = unique_prefix("cli-rewatch");
    let etcd = EtcdProcess::shared().endpoint();
    let ttl = Duration::from_secs(3);
    let mut watched = ConductorProcess::start(&ConductorConfig::etcd(&etcd, &prefix, "rewatch-a", ttl)).or_fail();
    let runner = ConductorProcess::start(&ConductorConfig::etcd(&etcd, &prefix, "rewatch-b", ttl)).or_fail();
    // The watched conductor claims nothing, so killing it breaks only the watch.
    let drained = baton(&watched.endpoint(), ["drain", "rewatch-a"]);
    assert!(drained.success(), "drain failed: {}", drained.stderr());

    let both = format!("{},{}", watched.endpoint(), runner.endpoint());
    let wait = BatonRun::spawn(&both, &[], ["post", "chain", "-s", "steps=10", "-s", "step_ms=300", "--wait"]);
    let claimed = wait_job_posted(&runner.endpoint());
    let id = claimed["id"].as_str().or_fail_with("listed job has no id").to_string();
    wait_job(&runner.endpoint(), &id, PATIENCE, "a first task done", |job| {
        job["tasks"].as_array().is_some_and(|tasks| tasks.iter().any(|t| t["state"].as_str() == Some("SUCCESS")))
    })
    .or_fail();
    watched.kill().or_fail();

    let out = wait.finish();
    assert!(out.success(), "--wait did not follow the job to its end: {}", out.stderr());
    let last = out.json().or_fail();
    assert_eq!(
        (last["id"].as_str(), last["state"].as_str(), last["outcome"].as_str()),
        (Some(id.as_str()), Some("COMPLETE"), Some("SUCCESS"))
    );
    let job = get_job(&runner.endpoint(), &id).or_fail();
    assert_eq!(job["owner"], Value::Null, "{job}");
}

#[test]
fn status_shows_the_first_conductor_that_answers_with_the_jobs_it_runs() {
    let (conductor, _dir) = embedded_conductor("failover-status");
    let real = conductor.endpoint();
    let id = post_job(&real, "chain", &[("steps", "2"), ("step_ms", "60000")]).or_fail();
    wait_job(&real, &id, PATIENCE, "claim", |job| job["state"].as_str() == Some("CLAIMED")).or_fail();

    let silent = Silent::start().or_fail();
    let both = format!("{},{real}", silent.endpoint());
    let status = baton(&both, ["--timeout", "1s", "status"]).ok_json().or_fail();
    assert_eq!(status["endpoint"].as_str(), Some(real.as_str()), "{status}");
    assert_eq!(status["name"].as_str(), Some("failover-status"), "{status}");
    assert_eq!((status["board"].as_str(), &status["board_cause"]), (Some("AVAILABLE"), &Value::Null), "{status}");
    assert_eq!((status["sessions_started"].as_u64(), status["sessions_lost"].as_u64()), (Some(1), Some(0)), "{status}");
    assert_eq!(status["draining"].as_bool(), Some(false), "{status}");
    let running = status["running"].as_array().or_fail_with("no running list");
    assert_eq!(running.len(), 1, "{status}");
    assert_eq!((running[0]["id"].as_str(), running[0]["flow"].as_str()), (Some(id.as_str()), Some("chain")));
    assert!(running[0]["claim_token"].as_u64().is_some_and(|token| token > 0), "{status}");

    let table = baton(&real, ["status", "--output", "table"]);
    assert!(table.success(), "{}", table.stderr());
    assert!(table.stdout().contains("board:     AVAILABLE") && table.stdout().contains(&id), "{}", table.stdout());
}

#[test]
fn a_conductor_without_its_board_answers_unavailable_and_the_next_serves() {
    // An etcd endpoint where nothing listens: the conductor serves its API and answers
    // UNAVAILABLE while it waits for its board.
    let no_etcd = format!("http://{}", tests::conductor::free_local_addr().or_fail());
    let config = ConductorConfig::etcd(&no_etcd, &unique_prefix("no-board"), "no-board", Duration::from_secs(3));
    let boardless = ConductorProcess::spawn(&config).or_fail();
    let (conductor, _dir) = embedded_conductor("failover-serves");
    let both = format!("{},{}", boardless.endpoint(), conductor.endpoint());

    let listed = baton(&both, ["list"]).ok_json().or_fail();
    assert_eq!(listed, Value::Array(Vec::new()), "the second endpoint's empty board");

    let alone = baton(&boardless.endpoint(), ["list"]);
    assert!(!alone.success(), "list without a board succeeded: {}", alone.stdout());
    let stderr = alone.stderr();
    assert_eq!(stderr.lines().count(), 1, "one line, not a dump: {stderr:?}");
    let expected = format!("baton: cannot list jobs: no conductor answered ({}: unavailable: ", boardless.endpoint());
    assert!(stderr.starts_with(&expected), "{stderr:?}");
    assert!(stderr.contains("baton status"), "no hint: {stderr:?}");

    let status = baton(&boardless.endpoint(), ["status"]).ok_json().or_fail();
    assert_eq!(status["board"].as_str(), Some("UNAVAILABLE"), "{status}");
    assert!(status["board_cause"].as_str().is_some_and(|cause| !cause.is_empty()), "{status}");
}

/// The one job of this test's board, once it is listed.
fn wait_job_posted(endpoint: &str) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(jobs) = jobs(endpoint) {
            if let [job] = jobs.as_slice() {
                return job.clone();
            }
            assert!(jobs.len() <= 1, "one post made several jobs: {jobs:?}");
        }
        assert!(std::time::Instant::now() < deadline, "the posted job was never listed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `Option` to value, or a test failure that says what was missing.
trait OrFailWith<T> {
    fn or_fail_with(self, what: &str) -> T;
}

impl<T> OrFailWith<T> for Option<T> {
    #[track_caller]
    fn or_fail_with(self, what: &str) -> T {
        self.unwrap_or_else(|| panic!("{what}"))
    }
}
