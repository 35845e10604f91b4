//! What the scale benchmark does to the board and reads from etcd: posts, an in-process
//! board's claims, the finished-jobs index as etcd writes it, and etcd's bytes.

use std::time::{Duration, Instant};
use tests::stats::percentile;

use etcd_client::{Client, EventType, WatchOptions, WatchStream};
use futures::StreamExt;
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, FlowFilter, JobBoard, Outcome};
use proto::pb;
use tests::conductor::{ConductorProcess, HarnessResult};

use crate::trace::Listing;

const POSTS_IN_FLIGHT: usize = 64;
const RSS_EVERY: Duration = Duration::from_millis(250);
const PING_EVERY: Duration = Duration::from_millis(5);

/// Posts `count` one-step no-op `chain` jobs, 64 in flight.
pub async fn post_jobs(client: &proto::Client, count: usize) -> HarnessResult<()> {
    let mut posted = futures::stream::iter(0..count)
        .map(|_| {
            let client = client.clone();
            async move {
                client
                    .post_job(pb::PostJobRequest {
                        flow: "chain".into(),
                        store_json: r#"{"steps": 1, "step_ms": 0}"#.into(),
                        ..Default::default()
                    })
                    .await
            }
        })
        .buffer_unordered(POSTS_IN_FLIGHT);
    while let Some(job) = posted.next().await {
        job?;
    }
    Ok(())
}

/// An in-process board's claims against a queue.
pub struct ClaimProbe {
    /// From the start of `EtcdBoard::connect` to the first claim won.
    pub first_claim: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// Jobs claimed and consumed.
    pub consumed: usize,
    /// The claims split by whether a page of the board's background listing was in flight.
    pub split: Split,
}

/// Claim and etcd ping latencies while the board's background listing had a page in flight,
/// and while it had none: where a long queue's claim tail comes from.
pub struct Split {
    pub claims_during: Vec<Duration>,
    pub claims_outside: Vec<Duration>,
    pub pings_during: Vec<Duration>,
    pub pings_outside: Vec<Duration>,
    /// Pages the background listing ranged, its longest page, and from connect to listed whole.
    pub pages: usize,
    pub longest_page: Duration,
    pub listed_whole: Option<Duration>,
}

impl Split {
    /// One line: count, p50 and p99 of each part.
    pub fn describe(&self) -> String {
        let part = |samples: &[Duration]| {
            let mut sorted = samples.to_vec();
            sorted.sort();
            format!(
                "{} at p50 {:.1} / p99 {:.1} / max {:.1} ms",
                sorted.len(),
                ms(percentile(&sorted, 0.5)),
                ms(percentile(&sorted, 0.99)),
                ms(sorted.last().copied().unwrap_or_default())
            )
        };
        format!(
            "claims during a listing page: {}; outside: {}. etcd pings during: {}; outside: {}. \
             {} pages, longest {:.1} ms, listed whole after {}",
            part(&self.claims_during),
            part(&self.claims_outside),
            part(&self.pings_during),
            part(&self.pings_outside),
            self.pages,
            ms(self.longest_page),
            self.listed_whole.map_or("(not yet)".into(), |d| format!("{:.0} ms", ms(d)))
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl ClaimProbe {
    pub async fn run(endpoint: &str, prefix: &str, samples: usize, listing: &Listing) -> HarnessResult<Self> {
        listing.reset();
        let run = claim_latencies(endpoint, prefix, samples.max(1), None).await?;
        let mut latencies: Vec<Duration> = run.claims.iter().map(|(_, took)| *took).collect();
        latencies.sort();
        let (pages, longest_page, whole) = listing.summary();
        let (claims_during, claims_outside) = partition(&run.claims, listing);
        let (pings_during, pings_outside) = partition(&run.pings, listing);
        Ok(ClaimProbe {
            first_claim: run.first_claim,
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            consumed: latencies.len(),
            split: Split {
                claims_during,
                claims_outside,
                pings_during,
                pings_outside,
                pages,
                longest_page,
                listed_whole: whole.map(|at| at - run.connected),
            },
        })
    }
}

fn partition(samples: &[(Instant, Duration)], listing: &Listing) -> (Vec<Duration>, Vec<Duration>) {
    let (during, outside): (Vec<&(Instant, Duration)>, Vec<_>) =
        samples.iter().partition(|(at, took)| listing.overlaps(*at, *took));
    (during.into_iter().map(|s| s.1).collect(), outside.into_iter().map(|s| s.1).collect())
}

/// What `claim_latencies` saw.
pub struct ClaimRun {
    /// When `EtcdBoard::connect` was called.
    pub connected: Instant,
    /// From then to the first claim won.
    pub first_claim: Duration,
    /// Each claim's start and time.
    pub claims: Vec<(Instant, Duration)>,
    /// A one-key read of etcd every `PING_EVERY` meanwhile, on a client of its own: etcd's own stalls.
    pub pings: Vec<(Instant, Duration)>,
}

/// Connects a board, claims and consumes `samples` jobs one at a time (posting one after each
/// through `repost`, to keep the queue's length), pinging etcd meanwhile.
pub async fn claim_latencies(
    endpoint: &str,
    prefix: &str,
    samples: usize,
    repost: Option<&proto::Client>,
) -> HarnessResult<ClaimRun> {
    let pinger = Pinger::start(endpoint).await?;
    let started = Instant::now();
    let mut config = EtcdConfig::new(vec![endpoint.to_string()], BoardConfig::new("claim-probe"));
    config.prefix = prefix.to_string();
    let board = EtcdBoard::connect(config).await?;
    let filter = FlowFilter::flows(vec!["chain".into()]);
    let mut first_claim = None;
    let mut claims = Vec::new();
    for _ in 0..samples {
        let claimed_at = Instant::now();
        let claim = board.claim_next(&filter).await?.ok_or("the queue ran dry")?;
        claims.push((claimed_at, claimed_at.elapsed()));
        first_claim.get_or_insert_with(|| started.elapsed());
        claim.consume(Outcome::Success, None).await?;
        if let Some(client) = repost {
            post_jobs(client, 1).await?;
        }
    }
    board.close().await?;
    let pings = pinger.stop().await;
    Ok(ClaimRun { connected: started, first_claim: first_claim.unwrap_or_default(), claims, pings })
}

/// Reads one key of etcd every `PING_EVERY` until stopped.
struct Pinger {
    task: tokio::task::JoinHandle<Vec<(Instant, Duration)>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Pinger {
    async fn start(endpoint: &str) -> HarnessResult<Self> {
        let mut client = Client::connect([endpoint], None).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut pings = Vec::new();
            let mut ticker = tokio::time::interval(PING_EVERY);
            while !stopped.is_cancelled() {
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                let at = Instant::now();
                if client.get("bench-ping", None).await.is_ok() {
                    pings.push((at, at.elapsed()));
                }
            }
            pings
        });
        Ok(Pinger { task, stop })
    }

    async fn stop(self) -> Vec<(Instant, Duration)> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Median time to read job `id`'s whole logbook through an in-process board, over `rounds`.
pub async fn logbook_read(endpoint: &str, prefix: &str, id: &str, rounds: usize) -> HarnessResult<Duration> {
    let mut config = EtcdConfig::new(vec![endpoint.to_string()], BoardConfig::new("logbook-probe"));
    config.prefix = prefix.to_string();
    let board = EtcdBoard::connect(config).await?;
    let id: jobboard::JobId = id.parse()?;
    let mut samples = Vec::new();
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let book = board.logbook(id).await?.ok_or("the job has no logbook")?;
        samples.push(started.elapsed());
        if book.flows.values().map(|flow| flow.atoms.len()).sum::<usize>() == 0 {
            return Err("the logbook holds no atom".into());
        }
    }
    board.close().await?;
    samples.sort();
    Ok(percentile(&samples, 0.5))
}

/// The board's finished-jobs index (`P done/`), watched from now.
pub struct Finished {
    stream: WatchStream,
    _client: Client,
}

/// How a conductor drained a queue.
pub struct Drain {
    /// From its start to the first finished job.
    pub first: Duration,
    /// Jobs per second from the first finished job to the last.
    pub rate: f64,
    pub peak_rss_kib: u64,
}

impl Finished {
    pub async fn watch(endpoint: &str, prefix: &str) -> HarnessResult<Self> {
        let mut client = Client::connect([endpoint], None).await?;
        let revision = client.get("bench-revision-probe", None).await?.header().map_or(0, |h| h.revision());
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let stream = client.watch(format!("{prefix}done/"), Some(options)).await?;
        Ok(Self { stream, _client: client })
    }

    /// Waits for `jobs` finished jobs, sampling the conductor's RSS.
    pub async fn wait_for(
        mut self,
        jobs: usize,
        started: Instant,
        conductor: &ConductorProcess,
        patience: Duration,
    ) -> HarnessResult<Drain> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut ticker = tokio::time::interval(RSS_EVERY);
        let (mut done, mut peak_rss_kib, mut first) = (0, 0, None);
        while done < jobs {
            tokio::select! {
                _ = ticker.tick() => peak_rss_kib = peak_rss_kib.max(conductor.rss_kib()?),
                message = tokio::time::timeout_at(deadline, self.stream.message()) => {
                    let message = message.map_err(|_| format!("{done} of {jobs} jobs done after {patience:?}"))??;
                    let response = message.ok_or("the watch of finished jobs ended")?;
                    done += response.events().iter().filter(|e| e.event_type() == EventType::Put).count();
                    first.get_or_insert_with(Instant::now);
                }
            }
        }
        let first = first.unwrap_or_else(Instant::now);
        let rate = (jobs.saturating_sub(1)) as f64 / first.elapsed().as_secs_f64().max(1e-3);
        peak_rss_kib = peak_rss_kib.max(conductor.rss_kib()?);
        Ok(Drain { first: first - started, rate, peak_rss_kib })
    }
}
