//! Backpressure: posts are refused with RESOURCE_EXHAUSTED, naming the limit, before the board
//! is in trouble (a maximum of queued jobs; etcd's storage quota), while running jobs go on.

use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmType};
use proto::pb;
use tests::conductor::{ConductorConfig, ConductorProcess, HarnessResult};
use tests::etcd::{unique_prefix, EtcdProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);
/// etcd's storage quota in the quota test: small, so that a few hundred posts reach it.
const QUOTA: u64 = 8 * 1024 * 1024;
/// The padding of each post in the quota test.
const PAD_BYTES: usize = 32 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn chain(steps: u32, step_ms: u32, pad: usize) -> pb::PostJobRequest {
    let store = serde_json::json!({"steps": steps, "step_ms": step_ms, "pad": "x".repeat(pad)});
    pb::PostJobRequest { flow: "chain".into(), store_json: store.to_string(), ..Default::default() }
}

/// Posts until one is refused (or `most` were accepted); returns how many were accepted and the refusal.
async fn post_until_refused(
    client: &proto::Client,
    request: &pb::PostJobRequest,
    most: usize,
) -> HarnessResult<(usize, Option<tonic::Status>)> {
    for accepted in 0..most {
        match client.post_job(request.clone()).await {
            Ok(_) => {}
            Err(proto::ClientError::Rpc(status)) => return Ok((accepted, Some(status))),
            Err(other) => return Err(other.into()),
        }
    }
    Ok((most, None))
}

async fn wait_complete(client: &proto::Client, id: &str) -> HarnessResult<pb::Job> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = client.get_job(id.to_string()).await?;
        if job.state == pb::JobState::Complete as i32 {
            return Ok(job);
        }
        if Instant::now() > deadline {
            return Err(format!("job {id} not complete after {PATIENCE:?}: {job:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `--max-queued 5` on a drained conductor: five posts go in, the sixth is refused naming the
/// limit; once the queue drains, posts are accepted again.
fn max_queued_refuses_then_recovers(config: ConductorConfig) {
    let mut config = config;
    config.extra_args.extend(["--max-queued".to_string(), "5".to_string()]);
    let conductor = ConductorProcess::start(&config).expect("conductor starts");
    let name = conductor.name().to_string();
    runtime()
        .block_on(async {
            let client = proto::Client::connect(conductor.endpoint()).await?;
            client.drain(name.clone(), true).await?;
            let (accepted, refused) = post_until_refused(&client, &chain(1, 0, 0), 10).await?;
            let refused = refused.ok_or("ten posts accepted with --max-queued 5")?;
            assert_eq!(accepted, 5, "exactly the limit is accepted");
            assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
            assert!(refused.message().contains("the limit is 5 (--max-queued)"), "names the limit: {refused:?}");
            client.drain(name, false).await?;
            let deadline = Instant::now() + PATIENCE;
            loop {
                match client.post_job(chain(1, 0, 0)).await {
                    Ok(job) => {
                        wait_complete(&client, &job.id).await?;
                        break;
                    }
                    Err(e) if e.code() == tonic::Code::ResourceExhausted && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(format!("posting after the queue drained: {e}").into()),
                }
            }
            Ok::<_, tests::conductor::HarnessError>(())
        })
        .expect("max-queued scenario");
}

#[test]
fn max_queued_on_etcd() {
    let endpoint = EtcdProcess::shared().endpoint();
    max_queued_refuses_then_recovers(ConductorConfig::etcd(
        &endpoint,
        &unique_prefix("max-queued"),
        "max-queued",
        Duration::from_secs(10),
    ));
}

#[test]
fn max_queued_on_the_embedded_board() {
    let dir = tempfile::tempdir().expect("a temp dir");
    max_queued_refuses_then_recovers(ConductorConfig::embedded(dir.path(), "max-queued-embedded"));
}

/// etcd with an 8 MiB quota: posts of 32 KiB stores are refused from 90% of it on, before etcd
/// raises NOSPACE, and a job that was running keeps writing and completes. Once etcd does raise
/// NOSPACE (filled directly), posts are refused naming the alarm.
#[test]
fn posts_stop_before_etcd_runs_out_of_space_and_running_jobs_finish() {
    let quota = format!("--quota-backend-bytes={QUOTA}");
    let etcd = EtcdProcess::start_with_flags(&[&quota]);
    let endpoint = etcd.endpoint();
    let mut config = ConductorConfig::etcd(&endpoint, &unique_prefix("quota"), "quota", Duration::from_secs(10));
    config.extra_args.extend(["--etcd-quota-bytes".to_string(), QUOTA.to_string()]);
    let conductor = ConductorProcess::start(&config).expect("conductor starts");
    runtime()
        .block_on(async {
            let client = proto::Client::connect(conductor.endpoint()).await?;
            let mut etcd_client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
            // Runs all through the filling: 100 steps of 100 ms, a logbook write each.
            let running = client.post_job(chain(100, 100, 0)).await?;
            let (accepted, refused) = post_until_refused(&client, &chain(1, 0, PAD_BYTES), 2000).await?;
            let refused = refused.ok_or("2000 posts of 32 KiB accepted under an 8 MiB quota")?;
            assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
            assert!(refused.message().contains("--etcd-quota-bytes"), "names the limit: {refused:?}");
            assert!(accepted > 10, "refused after only {accepted} posts: {refused:?}");
            let alarms = etcd_client.alarm(AlarmAction::Get, AlarmType::None, None).await?;
            let raised: Vec<String> = alarms.alarms().iter().map(|a| format!("{:?}", a.alarm())).collect();
            assert!(raised.is_empty(), "refused only once etcd raised {raised:?}");
            let job = wait_complete(&client, &running.id).await?;
            assert_eq!(job.outcome, pb::Outcome::Success as i32, "the running job finished: {job:?}");

            // Filled to the quota behind the conductor's back: etcd raises NOSPACE.
            let mut filled = false;
            for i in 0..1000 {
                if let Err(e) = etcd_client.put(format!("filler/{i}"), vec![b'x'; 256 * 1024], None).await {
                    assert!(e.to_string().contains("space exceeded"), "etcd refused the filler for: {e}");
                    filled = true;
                    break;
                }
            }
            assert!(filled, "etcd took 250 MiB under an 8 MiB quota");
            let deadline = Instant::now() + PATIENCE;
            loop {
                let status = match client.post_job(chain(1, 0, 0)).await {
                    Ok(job) => return Err(format!("posted {} while etcd has NOSPACE raised", job.id).into()),
                    Err(proto::ClientError::Rpc(status)) => status,
                    Err(other) => return Err(other.into()),
                };
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                if status.message().contains("NOSPACE") {
                    break;
                }
                // The conductor's reading is up to a second old: the quota message until then.
                assert!(Instant::now() < deadline, "no post refusal named NOSPACE: {status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok::<_, tests::conductor::HarnessError>(())
        })
        .expect("quota scenario");
}
