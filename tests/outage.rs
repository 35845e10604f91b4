//! etcd outages, with real conductors on their own etcd: a restart shorter than the lease
//! loses no session and re-runs nothing; a conductor started without etcd waits for it,
//! serving UNAVAILABLE with the cause meanwhile; a session really lost is replaced in-process
//! and no job stays claimed by a conductor that does not run it.
//!
//! Each test starts its own etcd (it is killed), and they run one at a time: an outage
//! of one must not stall another's conductors.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proto::pb;
use serde_json::Value;
use tests::conductor::{
    baton, get_job, is_complete, post_job, succeeded_tasks, task_executions, wait_job, ConductorConfig,
    ConductorProcess, HarnessResult, OrFail,
};
use tests::etcd::proxy::TcpProxy;
use tests::etcd::{unique_prefix, EtcdProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `GetStatus` of the conductor at `endpoint`.
async fn status(endpoint: &str) -> HarnessResult<pb::ConductorStatus> {
    let client = proto::Client::connect(endpoint.to_owned()).await?;
    Ok(client.get_status().await?)
}

/// `GetStatus`, from synchronous test code.
fn status_now(endpoint: &str) -> HarnessResult<pb::ConductorStatus> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(status(endpoint))
}

/// The gRPC health status of `service` ("" = the server as a whole).
fn health(endpoint: &str, service: &str) -> HarnessResult<i32> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?.connect().await?;
        let answer = HealthClient::new(channel).check(HealthCheckRequest { service: service.into() }).await?;
        Ok(answer.into_inner().status)
    })
}

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;

/// Posts a timed chain and returns its id.
fn chain(api: &str, steps: u32, step_ms: u32) -> HarnessResult<String> {
    post_job(api, "chain", &[("steps", &steps.to_string()), ("step_ms", &step_ms.to_string())])
}

/// Waits until the job is COMPLETE and returns it.
fn wait_complete(api: &str, id: &str) -> HarnessResult<Value> {
    wait_job(api, id, PATIENCE, "completion", is_complete)
}

#[test]
fn an_etcd_restart_shorter_than_the_lease_loses_no_session_and_reruns_no_task() {
    let _serial = one_at_a_time();
    let mut etcd = EtcdProcess::start();
    let prefix = unique_prefix("restart");
    let ttl = Duration::from_secs(10);
    let conductors: Vec<ConductorProcess> = ["restart-a", "restart-b"]
        .iter()
        .map(|name| ConductorProcess::start(&ConductorConfig::etcd(&etcd.endpoint(), &prefix, name, ttl)).or_fail())
        .collect();
    let api = conductors[0].endpoint();
    let ids: Vec<String> = (0..4).map(|_| chain(&api, 12, 300).or_fail()).collect();
    for id in &ids {
        wait_job(&api, id, PATIENCE, "two steps done", |job| succeeded_tasks(job).len() >= 2).or_fail();
    }

    etcd.kill();
    std::thread::sleep(Duration::from_secs(3));
    etcd.restart();

    for id in &ids {
        let job = wait_complete(&api, id).or_fail();
        assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
        assert_eq!(job["claims"].as_u64(), Some(1), "claimed once: the claim survived the restart: {job}");
        let reruns: Vec<_> = task_executions(&job).into_iter().filter(|(_, runs)| *runs != 1).collect();
        assert!(reruns.is_empty(), "no task ran twice: {reruns:?}");
    }
    for conductor in &conductors {
        let status = status_now(&conductor.endpoint()).or_fail();
        assert_eq!((status.sessions_started, status.sessions_lost), (1, 0), "{}: {status:?}", conductor.name());
        assert_eq!(status.board(), pb::BoardStatus::Available, "{status:?}");
        assert!(status.running.is_empty(), "nothing left running: {status:?}");
    }
}

#[test]
fn a_conductor_started_without_etcd_serves_unavailable_then_runs_jobs_once_etcd_is_up() {
    let _serial = one_at_a_time();
    let mut etcd = EtcdProcess::start();
    let endpoint = etcd.endpoint();
    etcd.kill();
    let config = ConductorConfig::etcd(&endpoint, &unique_prefix("late"), "late", Duration::from_secs(10));
    let mut conductor = ConductorProcess::spawn(&config).or_fail();
    let api = conductor.endpoint();

    let started = Instant::now();
    let refused = baton(&api, ["post", "chain", "--store", "steps=1", "--store", "step_ms=0"]);
    assert!(!refused.success(), "a post without a board fails");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not after a timeout");
    let stderr = refused.stderr();
    assert!(stderr.contains("Unavailable") || stderr.contains("unavailable"), "{stderr}");
    assert!(stderr.contains(endpoint.trim_start_matches("http://")), "names the etcd endpoint: {stderr}");
    let status = status_now(&api).or_fail();
    assert_eq!(status.board(), pb::BoardStatus::Unavailable, "{status:?}");
    assert!(status.board_cause.contains(endpoint.trim_start_matches("http://")), "{status:?}");
    assert_eq!(health(&api, "").or_fail(), SERVING, "liveness: the process works");
    assert_eq!(health(&api, proto::SERVICE_NAME).or_fail(), NOT_SERVING, "readiness: no board");
    std::thread::sleep(Duration::from_secs(2));
    assert!(conductor.is_running(), "waiting for etcd, not exiting");

    etcd.restart();
    let ready = Instant::now();
    while health(&api, proto::SERVICE_NAME).or_fail() != SERVING {
        assert!(ready.elapsed() < PATIENCE, "never became ready after etcd started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = chain(&api, 2, 0).or_fail();
    let job = wait_complete(&api, &id).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(status_now(&api).or_fail().sessions_started, 1);
}

// The guard only serializes this test against the others (run on their own threads).
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_to_a_long_partition_is_replaced_in_process_and_its_job_resumed() {
    let _serial = one_at_a_time();
    let etcd = EtcdProcess::start();
    let proxy = TcpProxy::start(etcd.endpoint().trim_start_matches("http://")).await;
    let ttl = Duration::from_secs(3);
    let config = ConductorConfig::etcd(&proxy.endpoint(), &unique_prefix("partition"), "cut-off", ttl);
    let conductor = tokio::task::block_in_place(|| ConductorProcess::start(&config)).or_fail();
    let api = conductor.endpoint();
    let id = tokio::task::block_in_place(|| {
        let id = chain(&api, 8, 400)?;
        wait_job(&api, &id, PATIENCE, "a step done", |job| !succeeded_tasks(job).is_empty())?;
        HarnessResult::Ok(id)
    })
    .or_fail();

    // Longer than the TTL: the session fences itself and etcd expires the lease.
    proxy.cut();
    tokio::time::sleep(ttl * 3).await;
    let during = status(&api).await.or_fail();
    assert_eq!(during.board(), pb::BoardStatus::Unavailable, "{during:?}");
    assert!(during.running.is_empty(), "a fenced conductor runs nothing: {during:?}");
    proxy.heal();

    let mut conductor = conductor;
    let job = tokio::task::block_in_place(|| wait_complete(&api, &id)).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(job["claims"].as_u64(), Some(2), "resumed under a new claim: {job}");
    assert!(conductor.is_running(), "the conductor did not exit");
    let after = status(&api).await.or_fail();
    assert_eq!((after.sessions_started, after.sessions_lost), (2, 1), "{after:?}");
    let fresh = tokio::task::block_in_place(|| {
        let id = chain(&api, 1, 0)?;
        wait_complete(&api, &id)
    })
    .or_fail();
    assert_eq!(fresh["outcome"].as_str(), Some("SUCCESS"), "claims again on the new session: {fresh}");
    let final_job = tokio::task::block_in_place(|| get_job(&api, &id)).or_fail();
    assert_eq!(final_job, job, "nothing written after the job ended");
}
