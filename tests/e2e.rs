//! End to end: the `baton` CLI, the gRPC API and `conductor` processes on a real etcd.
//!
//! Every test runs real binaries (build them first: `cargo build --workspace --bins`) against
//! the one etcd of this test binary, under a key prefix of its own, so the tests do not see
//! each other's jobs or conductors.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use tests::conductor::{
    baton, check_resumed_once, get_job, is_complete, post_job, succeeded_tasks, task_executions, wait_job,
    ConductorConfig, ConductorProcess, HarnessResult, OrFail,
};
use tests::etcd::{unique_prefix, EtcdProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);
const LEASE_TTL: Duration = Duration::from_secs(3);

fn etcd_conductors(prefix: &str, names: &[&str]) -> HarnessResult<Vec<ConductorProcess>> {
    let endpoint = EtcdProcess::shared().endpoint();
    names
        .iter()
        .map(|name| ConductorProcess::start(&ConductorConfig::etcd(&endpoint, prefix, name, LEASE_TTL)))
        .collect()
}

fn list_jobs(endpoint: &str) -> HarnessResult<Vec<Value>> {
    match baton(endpoint, ["list"]).ok_json()? {
        Value::Array(jobs) => Ok(jobs),
        other => Err(format!("`baton list` printed no list: {other}").into()),
    }
}

#[test]
fn fifty_jobs_on_three_conductors_each_succeed_exactly_once() {
    let prefix = unique_prefix("e2e-fifty");
    let conductors = etcd_conductors(&prefix, &["fifty-a", "fifty-b", "fifty-c"]).or_fail();
    let mut ids = Vec::new();
    for i in 0..50 {
        // Round robin over the three APIs: any conductor takes posts for the whole fleet.
        let endpoint = conductors[i % conductors.len()].endpoint();
        ids.push(post_job(&endpoint, "chain", &[("steps", "3"), ("step_ms", "20")]).or_fail());
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 50, "post returned duplicate ids: {ids:?}");

    let endpoint = conductors[0].endpoint();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let jobs = list_jobs(&endpoint).or_fail();
        let complete = jobs.iter().filter(|job| is_complete(job)).count();
        if jobs.len() == 50 && complete == 50 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {complete} of {} jobs complete after {PATIENCE:?}",
            jobs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for listed in list_jobs(&endpoint).or_fail() {
        for key in ["id", "flow", "state", "owner", "outcome", "claims"] {
            assert!(listed.get(key).is_some(), "`baton list` entry lacks {key}: {listed}");
        }
        assert!(listed.get("tasks").is_none(), "`baton list` entries carry no tasks: {listed}");
    }
    for id in &ids {
        let job = get_job(&endpoint, id).or_fail();
        assert!(job.get("owner").is_some(), "`baton get` prints owner (null when unowned): {job}");
        assert_eq!(job["id"].as_str(), Some(id.as_str()), "get returned another job: {job}");
        assert_eq!(job["flow"].as_str(), Some("chain"), "{job}");
        assert_eq!(job["state"].as_str(), Some("COMPLETE"), "{job}");
        assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
        assert_eq!(job["claims"].as_u64(), Some(1), "claimed more than once with no conductor lost: {job}");
        let executions = task_executions(&job);
        assert_eq!(executions.len(), 3, "a 3-step chain should show 3 tasks: {job}");
        assert!(executions.values().all(|n| *n == 1), "a step ran other than once: {executions:?}");
        assert_eq!(succeeded_tasks(&job).len(), 3, "{job}");
    }
}

#[test]
fn bad_input_through_the_cli_is_refused_clearly_and_writes_nothing() {
    let prefix = unique_prefix("e2e-bad-input");
    let conductors = etcd_conductors(&prefix, &["bad-input"]).or_fail();
    let endpoint = conductors[0].endpoint();
    let files = tempfile::tempdir().or_fail();
    let broken_yaml = files.path().join("broken.yaml");
    std::fs::write(&broken_yaml, "steps: [1, 2\nstep_ms: {\n").or_fail();
    let list_yaml = files.path().join("a-list.yaml");
    std::fs::write(&list_yaml, "- steps\n- step_ms\n").or_fail();
    let missing_file = files.path().join("missing.yaml");
    let unknown_id = uuid::Uuid::new_v4().to_string();

    let before = list_jobs(&endpoint).or_fail();
    let cases: Vec<(Vec<String>, String)> = vec![
        (args(&["post", "no-such-flow", "--store", "steps=1"]), "no-such-flow".into()),
        (args(&["post", "chain", "--store", "steps=2"]), "step_ms".into()),
        (args(&["post", "chain", "--store-file", &path(&broken_yaml)]), "broken.yaml".into()),
        (args(&["post", "chain", "--store-file", &path(&list_yaml)]), "a-list.yaml".into()),
        (args(&["post", "chain", "--store-file", &path(&missing_file)]), "missing.yaml".into()),
        (args(&["get", &unknown_id]), unknown_id.clone()),
        (args(&["cancel", &unknown_id]), unknown_id.clone()),
        (args(&["watch", &unknown_id]), unknown_id.clone()),
    ];
    for (command, culprit) in &cases {
        let out = baton(&endpoint, command);
        assert!(!out.success(), "`baton {}` succeeded: {}", command.join(" "), out.stdout());
        let stderr = out.stderr();
        assert!(
            stderr.contains(culprit.as_str()),
            "`baton {}` should name {culprit} on stderr, printed: {stderr:?}",
            command.join(" ")
        );
        assert!(stderr.lines().count() <= 5, "expected a short message, not a dump: {stderr}");
    }
    // The flow factory's own check, not just the CLI's: the chain needs both inputs.
    let out = baton(&endpoint, ["post", "chain", "--store", "step_ms=1"]);
    assert!(!out.success() && out.stderr().contains("steps"), "missing `steps` not named: {}", out.stderr());

    let after = list_jobs(&endpoint).or_fail();
    assert_eq!(before, after, "a refused command wrote a job");
    assert!(after.is_empty(), "a fresh prefix should hold no jobs: {after:?}");
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| part.to_string()).collect()
}

fn path(path: &std::path::Path) -> String {
    path.display().to_string()
}

#[test]
fn flows_conductors_and_drain_print_their_documented_shapes() {
    let prefix = unique_prefix("e2e-shapes");
    let conductors = etcd_conductors(&prefix, &["shape-a", "shape-b"]).or_fail();
    let endpoint = conductors[0].endpoint();

    let flows = baton(&endpoint, ["flows"]).ok_json().or_fail();
    let flows = flows.as_array().ok_or_else(|| format!("`baton flows` printed no list: {flows}")).or_fail();
    let names: BTreeSet<&str> = flows.iter().filter_map(|flow| flow["name"].as_str()).collect();
    assert!(names.contains("chain") && names.contains("provision-cluster"), "demo flows missing: {flows:?}");
    let chain = flows.iter().find(|flow| flow["name"].as_str() == Some("chain")).expect("checked above");
    let chain_text = chain.to_string();
    assert!(chain_text.contains("steps") && chain_text.contains("step_ms"), "chain's inputs not listed: {chain}");

    let listed = baton(&endpoint, ["conductors"]).ok_json().or_fail();
    let listed = listed.as_array().ok_or_else(|| format!("`baton conductors` printed no list: {listed}")).or_fail();
    assert_eq!(listed.len(), 2, "exactly this test's two conductors share its prefix: {listed:?}");
    for conductor in &conductors {
        let entry = listed
            .iter()
            .find(|c| c["name"].as_str() == Some(conductor.name()))
            .ok_or_else(|| format!("{} not listed: {listed:?}", conductor.name()))
            .or_fail();
        let address = entry["address"].as_str().ok_or_else(|| format!("no address: {entry}")).or_fail();
        assert!(!address.is_empty(), "empty address: {entry}");
        assert_eq!(entry["jobs"].as_u64(), Some(0), "an idle conductor holds no jobs: {entry}");
        assert_eq!(entry["draining"].as_bool(), Some(false), "{entry}");
    }

    let drained = baton(&endpoint, ["drain", "shape-b"]);
    assert!(drained.success(), "drain failed: {}", drained.stderr());
    let listed = baton(&conductors[1].endpoint(), ["conductors"]).ok_json().or_fail();
    let entry = listed.as_array().into_iter().flatten().find(|c| c["name"].as_str() == Some("shape-b")).cloned();
    assert_eq!(entry.as_ref().and_then(|e| e["draining"].as_bool()), Some(true), "not shown draining: {listed}");

    let unknown = baton(&endpoint, ["drain", "no-such-conductor"]);
    assert!(!unknown.success(), "draining an unknown conductor succeeded");
    assert!(unknown.stderr().contains("no-such-conductor"), "culprit not named: {}", unknown.stderr());
}

#[test]
fn cancel_ends_unclaimed_and_running_jobs_cancelled() {
    let prefix = unique_prefix("e2e-cancel");
    let endpoint = EtcdProcess::shared().endpoint();
    // One slot, taken by a long job: the next job stays unclaimed for as long as we need.
    let conductor =
        ConductorProcess::start(&ConductorConfig::etcd(&endpoint, &prefix, "cancel-one", LEASE_TTL).with_max_jobs(1))
            .or_fail();
    let api = conductor.endpoint();
    let blocker = post_job(&api, "chain", &[("steps", "3"), ("step_ms", "20000")]).or_fail();
    wait_job(&api, &blocker, PATIENCE, "claim of the blocker", |job| job["state"].as_str() == Some("CLAIMED"))
        .or_fail();
    let waiting = post_job(&api, "chain", &[("steps", "2"), ("step_ms", "10")]).or_fail();
    let job = get_job(&api, &waiting).or_fail();
    assert_eq!(job["state"].as_str(), Some("UNCLAIMED"), "the only slot is taken: {job}");

    let cancelled = baton(&api, ["cancel", &waiting]);
    assert!(cancelled.success(), "cancel failed: {}", cancelled.stderr());
    let job = get_job(&api, &waiting).or_fail();
    assert_eq!(job["state"].as_str(), Some("COMPLETE"), "an unclaimed job completes at once: {job}");
    assert_eq!(job["outcome"].as_str(), Some("CANCELLED"), "{job}");
    assert!(task_executions(&job).values().all(|n| *n == 0), "a cancelled unclaimed job ran: {job}");

    // The running one starts no new task, reverts what ran and ends CANCELLED.
    let cancelled = baton(&api, ["cancel", &blocker]);
    assert!(cancelled.success(), "cancel failed: {}", cancelled.stderr());
    let job = wait_job(&api, &blocker, PATIENCE, "end of the cancelled blocker", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("CANCELLED"), "{job}");
    let ran: u64 = task_executions(&job).values().sum();
    assert!(ran <= 1, "no new step may start after the cancel: {job}");
    for task in job["tasks"].as_array().into_iter().flatten() {
        let expected = if task["executions"].as_u64() == Some(0) { "PENDING" } else { "REVERTED" };
        assert_eq!(task["state"].as_str(), Some(expected), "what ran is reverted, the rest never runs: {job}");
    }

    // The freed slot never picks up the cancelled job.
    std::thread::sleep(Duration::from_millis(500));
    let job = get_job(&api, &waiting).or_fail();
    assert_eq!(job["claims"].as_u64(), Some(0), "a cancelled job was claimed: {job}");
}

#[test]
fn embedded_conductor_restarted_mid_job_resumes_from_its_logbook() {
    let data_dir = tempfile::tempdir().or_fail();
    let config = ConductorConfig::embedded(data_dir.path(), "embedded-one");
    let mut first = ConductorProcess::start(&config).or_fail();
    let id = post_job(&first.endpoint(), "chain", &[("steps", "8"), ("step_ms", "400")]).or_fail();
    let before =
        wait_job(&first.endpoint(), &id, PATIENCE, "three steps done", |job| succeeded_tasks(job).len() >= 3).or_fail();
    first.kill().or_fail();
    let done_before = succeeded_tasks(&before);
    assert!(done_before.len() < 8, "the job finished before the kill, nothing to resume: {before}");

    let second = first.restart().or_fail();
    let job = wait_job(&second.endpoint(), &id, PATIENCE, "completion after the restart", is_complete).or_fail();
    check_resumed_once(&done_before, &job).or_fail();
    assert_eq!(task_executions(&job).len(), 8, "{job}");
    assert_eq!(job["claims"].as_u64(), Some(2), "claimed once by each run of the conductor: {job}");
}

#[test]
fn bad_input_through_the_api_gets_its_grpc_code_and_writes_nothing() {
    use proto::{pb, Client, ClientError};
    use tonic::Code;

    let prefix = unique_prefix("e2e-api-bad-input");
    let conductors = etcd_conductors(&prefix, &["api-bad-input"]).or_fail();
    let endpoint = conductors[0].endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().or_fail();
    runtime
        .block_on(async {
            let client = Client::connect(endpoint).await?;
            let post = |flow: &str, store_json: &str| pb::PostJobRequest {
                flow: flow.to_string(),
                store_json: store_json.to_string(),
                ..Default::default()
            };
            let unknown_id = uuid::Uuid::new_v4().to_string();
            let refusals = [
                (
                    "unknown flow",
                    client.post_job(post("no-such-flow", "{}")).await.err(),
                    Code::InvalidArgument,
                    "no-such-flow",
                ),
                (
                    "missing input",
                    client.post_job(post("chain", r#"{"steps": 2}"#)).await.err(),
                    Code::InvalidArgument,
                    "step_ms",
                ),
                (
                    "store not JSON",
                    client.post_job(post("chain", "steps: 2")).await.err(),
                    Code::InvalidArgument,
                    "store",
                ),
                (
                    "store not an object",
                    client.post_job(post("chain", "[1, 2]")).await.err(),
                    Code::InvalidArgument,
                    "object",
                ),
                ("empty flow name", client.post_job(post("", "{}")).await.err(), Code::InvalidArgument, "flow"),
                ("unknown job id", client.get_job(unknown_id.clone()).await.err(), Code::NotFound, unknown_id.as_str()),
                (
                    "cancel of an unknown id",
                    client.cancel_job(unknown_id.clone()).await.err(),
                    Code::NotFound,
                    unknown_id.as_str(),
                ),
            ];
            for (case, error, code, culprit) in refusals {
                match error {
                    Some(ClientError::Rpc(status)) => {
                        assert_eq!(status.code(), code, "{case}: {status:?}");
                        assert!(
                            status.message().contains(culprit),
                            "{case}: {culprit} not named in {:?}",
                            status.message()
                        );
                    }
                    other => panic!("{case}: expected {code:?}, got {other:?}"),
                }
            }
            let jobs = client.list_all_jobs(pb::ListJobsRequest::default()).await?;
            assert!(jobs.is_empty(), "a refused call wrote a job: {jobs:?}");
            Ok::<_, tests::conductor::HarnessError>(())
        })
        .or_fail();
}

#[test]
fn cli_names_an_endpoint_that_is_down() {
    // A port that was free a moment ago: nothing listens there.
    let endpoint = format!("http://{}", tests::conductor::free_local_addr().or_fail());
    for command in [&["list"][..], &["get", "5d0c0b52-9a8f-4a53-a1a3-9ffb0a5a3f8a"], &["post", "chain"]] {
        let out = baton(&endpoint, command);
        assert!(!out.success(), "`baton {}` against a dead endpoint succeeded", command.join(" "));
        assert!(
            out.stderr().contains(endpoint.trim_start_matches("http://")),
            "`baton {}` should name the endpoint {endpoint}, printed: {:?}",
            command.join(" "),
            out.stderr()
        );
    }
}

#[test]
fn post_wait_and_watch_exit_0_only_when_the_job_succeeded() {
    let prefix = unique_prefix("e2e-wait");
    let conductors = etcd_conductors(&prefix, &["wait-one"]).or_fail();
    let api = conductors[0].endpoint();

    let out = baton(&api, ["post", "chain", "--store", "steps=2", "--store", "step_ms=10", "--wait"]);
    assert!(out.success(), "post --wait of a job that succeeds must exit 0: {}", out.stderr());
    let job = out.json().or_fail();
    assert_eq!((job["state"].as_str(), job["outcome"].as_str()), (Some("COMPLETE"), Some("SUCCESS")), "{job}");
    assert_eq!(task_executions(&job).len(), 2, "--wait prints the finished job with its tasks: {job}");

    let id = post_job(&api, "chain", &[("steps", "3"), ("step_ms", "2000")]).or_fail();
    let cancelled = baton(&api, ["cancel", &id]);
    assert!(cancelled.success(), "cancel failed: {}", cancelled.stderr());
    let out = baton(&api, ["watch", &id]);
    assert!(!out.success(), "watch of a cancelled job must not exit 0: {}", out.stdout());
    let job = get_job(&api, &id).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("CANCELLED"), "{job}");
}

#[test]
fn a_drained_conductor_claims_nothing_new_but_finishes_what_it_holds() {
    let prefix = unique_prefix("e2e-drain");
    let conductors = etcd_conductors(&prefix, &["drain-one"]).or_fail();
    let api = conductors[0].endpoint();
    let held = post_job(&api, "chain", &[("steps", "4"), ("step_ms", "500")]).or_fail();
    wait_job(&api, &held, PATIENCE, "claim", |job| job["state"].as_str() == Some("CLAIMED")).or_fail();

    let drained = baton(&api, ["drain", "drain-one"]);
    assert!(drained.success(), "drain failed: {}", drained.stderr());
    let fresh = post_job(&api, "chain", &[("steps", "1"), ("step_ms", "10")]).or_fail();

    let job = wait_job(&api, &held, PATIENCE, "the held job's end", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "a draining conductor finishes what it holds: {job}");
    let job = get_job(&api, &fresh).or_fail();
    assert_eq!(job["state"].as_str(), Some("UNCLAIMED"), "a draining conductor claimed a new job: {job}");
    let listed = baton(&api, ["conductors"]).ok_json().or_fail();
    assert_eq!(listed[0]["draining"].as_bool(), Some(true), "{listed}");
}

#[test]
fn embedded_writes_acknowledged_before_a_kill_survive_it() {
    use futures::StreamExt;
    use proto::{pb, Client};

    const JOBS: usize = 200;
    let data_dir = tempfile::tempdir().or_fail();
    let config = ConductorConfig::embedded(data_dir.path(), "embedded-durable");
    let mut first = ConductorProcess::start(&config).or_fail();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().or_fail();
    let post = || pb::PostJobRequest {
        flow: "chain".into(),
        store_json: r#"{"steps": 2, "step_ms": 0}"#.into(),
        ..Default::default()
    };
    // Posts 32 at a time share commits (group commit), and the conductor runs jobs meanwhile;
    // the kill comes right after the last post is answered, with writes still in flight.
    let (ids, complete_before) = runtime
        .block_on(async {
            let client = Client::connect(first.endpoint()).await?;
            let posted: Vec<_> = futures::stream::iter(0..JOBS)
                .map(|_| {
                    let client = client.clone();
                    async move { client.post_job(post()).await }
                })
                .buffer_unordered(32)
                .collect()
                .await;
            let ids = posted.into_iter().map(|job| job.map(|job| job.id)).collect::<Result<Vec<_>, _>>()?;
            let request =
                pb::ListJobsRequest { state: pb::JobState::Complete as i32, page_size: 1000, ..Default::default() };
            let complete: BTreeSet<String> =
                client.list_all_jobs(request).await?.into_iter().map(|job| job.id).collect();
            Ok::<_, tests::conductor::HarnessError>((ids, complete))
        })
        .or_fail();
    first.kill().or_fail();

    let second = first.restart().or_fail();
    let endpoint = second.endpoint();
    runtime
        .block_on(async {
            let client = Client::connect(endpoint).await?;
            let deadline = std::time::Instant::now() + PATIENCE;
            for id in &ids {
                let job = loop {
                    // Every acknowledged post is on the board after the kill.
                    let job = client.get_job(id.clone()).await?;
                    if job.state == pb::JobState::Complete as i32 || std::time::Instant::now() > deadline {
                        break job;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                assert_eq!(job.state, pb::JobState::Complete as i32, "job {id} never completed after the restart");
                assert_eq!(job.outcome, pb::Outcome::Success as i32, "job {id}");
                if complete_before.contains(id) {
                    assert_eq!(job.claims, 1, "job {id} was COMPLETE before the kill, yet claimed again after it");
                }
            }
            Ok::<_, tests::conductor::HarnessError>(())
        })
        .or_fail();
}
