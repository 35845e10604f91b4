//! Real conductors on a real etcd: post-to-complete one job at a time, and the board
//! requests a job costs, for a flow file run by the stock `conductor --flows-dir` beside
//! the Rust `chain` of `demo_conductor`.

use std::path::Path;
use std::time::{Duration, Instant};
use tests::stats::percentile;

use futures::StreamExt;
use proto::pb;
use tests::conductor::{ConductorConfig, HarnessResult};

use crate::probes::{DoneKeys, EtcdCounters};

const LEASE_TTL: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(300);
const WARM_UP_JOBS: usize = 10;
const POSTS_IN_FLIGHT: usize = 8;

/// One flow to measure: who runs it, and the job to post.
pub struct Subject {
    pub config: ConductorConfig,
    pub flow: &'static str,
    pub store_json: &'static str,
}

impl Subject {
    /// The stock `conductor` running the files in `flows_dir`.
    pub fn file(etcd: &str, prefix: &str, flows_dir: &Path, flow: &'static str) -> Self {
        let mut config = ConductorConfig::etcd(etcd, prefix, "bench-file", LEASE_TTL);
        config.binary = "conductor";
        config.extra_args = vec!["--flows-dir".into(), flows_dir.display().to_string()];
        Subject { config, flow, store_json: "{}" }
    }

    /// `demo_conductor`'s Rust `chain` of three no-op steps (as the e2e bench posts it).
    pub fn rust_chain(etcd: &str, prefix: &str) -> Self {
        let config = ConductorConfig::etcd(etcd, prefix, "bench-rust", LEASE_TTL);
        Subject { config, flow: "chain", store_json: r#"{"steps": 3, "step_ms": 0}"# }
    }

    fn request(&self) -> pb::PostJobRequest {
        pb::PostJobRequest { flow: self.flow.into(), store_json: self.store_json.into(), ..Default::default() }
    }
}

/// Post to COMPLETE (seen on WatchJob), one job at a time: p50 and p99 of `jobs` jobs.
pub async fn post_to_complete(
    client: &proto::Client,
    subject: &Subject,
    jobs: usize,
) -> HarnessResult<(Duration, Duration)> {
    let mut samples = Vec::new();
    for i in 0..WARM_UP_JOBS + jobs {
        let started = Instant::now();
        let job = client.post_job(subject.request()).await?;
        let mut stream = client.watch_job(job.id.clone()).await?;
        let mut complete = None;
        while let Some(snapshot) = stream.next().await {
            let snapshot = snapshot?;
            if snapshot.state == pb::JobState::Complete as i32 {
                if snapshot.outcome != pb::Outcome::Success as i32 {
                    return Err(format!("job {} of {} did not succeed: {snapshot:?}", job.id, subject.flow).into());
                }
                complete = Some(started.elapsed());
                break;
            }
        }
        let complete = complete.ok_or_else(|| format!("watch of {} ended before the job completed", job.id))?;
        if i >= WARM_UP_JOBS {
            samples.push(complete);
        }
    }
    samples.sort();
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

/// etcd requests served while something ran against the board (or per unit of it).
#[derive(Clone, Copy)]
pub struct Requests {
    /// Every KV request: Txn, Range, Put, DeleteRange.
    pub kv: f64,
    /// The Txn requests among them.
    pub txns: f64,
    /// Proposals committed: writes.
    pub writes: f64,
    /// etcd's internal MVCC transactions (a Txn with compares counts twice).
    pub mvcc_txns: f64,
    /// MVCC range reads, the compares of Txns included.
    pub ranges: f64,
}

impl Requests {
    fn between(before: &EtcdCounters, after: &EtcdCounters) -> Requests {
        Requests {
            kv: after.kv_rpcs - before.kv_rpcs,
            txns: after.txn_rpcs - before.txn_rpcs,
            writes: after.writes - before.writes,
            mvcc_txns: after.mvcc_txns - before.mvcc_txns,
            ranges: after.ranges - before.ranges,
        }
    }

    /// Each count with its row's name, for the table.
    pub fn rows(&self) -> [(&'static str, f64); 5] {
        [
            ("etcd KV requests per job, post + run (Txn, Range, Put, DeleteRange)", self.kv),
            ("  of which Txns", self.txns),
            ("etcd writes per job (proposals committed)", self.writes),
            ("etcd MVCC txns per job (etcd_mvcc_txn_total)", self.mvcc_txns),
            ("etcd MVCC ranges per job (incl. compares)", self.ranges),
        ]
    }

    pub fn per(self, count: usize) -> Requests {
        let n = count.max(1) as f64;
        Requests {
            kv: self.kv / n,
            txns: self.txns / n,
            writes: self.writes / n,
            mvcc_txns: self.mvcc_txns / n,
            ranges: self.ranges / n,
        }
    }
}

/// The etcd requests made while `action` runs, from etcd's own counters: the seam for
/// anything done to the board (posting and running jobs, applying a flow file).
pub async fn requests_during<F, Fut>(etcd: &str, action: F) -> HarnessResult<Requests>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = HarnessResult<()>>,
{
    let before = EtcdCounters::read(etcd);
    action().await?;
    let after = EtcdCounters::read(etcd);
    Ok(Requests::between(&before, &after))
}

/// Posts `jobs` jobs and waits for all to finish, learning of the ends by an etcd watch
/// (no KV request): etcd's requests per job, the conductor's and the posts' together.
pub async fn requests_per_job(
    etcd: &str,
    prefix: &str,
    client: &proto::Client,
    subject: &Subject,
    jobs: usize,
) -> HarnessResult<Requests> {
    let done = DoneKeys::watch(etcd, prefix).await?;
    let total = requests_during(etcd, || async {
        let posted = futures::stream::iter(0..jobs)
            .map(|_| client.post_job(subject.request()))
            .buffer_unordered(POSTS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        for job in posted {
            job?;
        }
        done.wait_for(jobs, PATIENCE).await
    })
    .await?;
    Ok(total.per(jobs))
}

/// The etcd requests of one real `baton flows apply -f FILE` through the conductor at
/// `endpoint`: the first apply of the file (a new version, `created`), then the same file
/// again (`unchanged`); each checked against what `baton` reports.
pub async fn apply_requests(etcd: &str, endpoint: &str, file: &Path) -> HarnessResult<(Requests, Requests)> {
    let file = file.display().to_string();
    let apply = |created: bool| {
        let file = file.clone();
        move || async move {
            let applied = tests::conductor::baton(endpoint, ["flows", "apply", "-f", file.as_str()]).ok_json()?;
            match applied.as_array().map(Vec::as_slice) {
                Some([one]) if one["created"] == created => Ok(()),
                _ => Err(format!("`baton flows apply -f {file}` should report created: {created}: {applied}").into()),
            }
        }
    };
    let first = requests_during(etcd, apply(true)).await?;
    let again = requests_during(etcd, apply(false)).await?;
    Ok((first, again))
}
