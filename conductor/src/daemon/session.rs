//! One board session of a conductor: registration, claim loops, retention
//! and the jobs they start, from the session's first request to its end.
//!
//! A session ends one of three ways ([`Ended`]):
//! - **Graceful** (the shutdown future resolved): stop claiming; suspend every
//!   running flow (running tasks finish, nothing new starts); abandon the
//!   suspended jobs so another conductor resumes them at once; after
//!   `--grace`, drop the engines still running and abandon those too.
//! - **Lost** (the lease expired, was revoked, or the session fenced itself
//!   after renewals stopped getting through): every claim is already lost, so
//!   every engine is dropped at once and nothing more is written (any write
//!   would be fenced anyway). The daemon then starts a fresh session.
//! - **Server failed**: the gRPC server ended by itself; stopped as gracefully.
//!
//! Everything a session starts lives on its own `TaskTracker` and tokens, so
//! nothing of a lost session runs on into the next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jobboard::{ConductorInfo, JobBoard};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::claimer::{self, Claimer};
use super::flow_files::{self, LoadedFile};
use super::job_runner::{JobRunner, Stops};
use super::registration::Registration;
use super::retention;
use super::scheduler;
use crate::api::Health;
use crate::catalog::Catalog;
use crate::config::{format_duration, Config};
use crate::local::LocalStatus;
use crate::workers::WorkerHub;

/// How often the deadline index of parked tasks is read (only what is due).
const DEADLINE_SCAN: Duration = Duration::from_secs(1);
/// After the grace period, how long dropped engines get to abandon their claims.
const ABORT_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between registration attempts while the board is unavailable.
const REGISTER_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The shutdown future resolved; flows were suspended and handed back.
    Graceful,
    /// The session is gone, and every claim with it; engines were dropped.
    Lost,
    /// The gRPC server ended by itself, with this reason.
    ServerFailed(String),
}

/// What a session needs from the daemon.
pub(crate) struct SessionContext<'a> {
    /// Remote workers connected here (a job cancel reaches their running tasks).
    pub(crate) workers: &'a WorkerHub,
    pub(crate) config: &'a Config,
    pub(crate) catalog: &'a Arc<Catalog>,
    pub(crate) local: &'a Arc<LocalStatus>,
    pub(crate) address: &'a str,
    pub(crate) health: &'a Health,
}

/// Runs one session on `board` until shutdown, loss, or `server_failed` resolves.
pub(crate) async fn run<S: Future + ?Sized, F: Future<Output = String> + ?Sized>(
    cx: SessionContext<'_>,
    board: Arc<dyn JobBoard>,
    mut shutdown: Pin<&mut S>,
    mut server_failed: Pin<&mut F>,
) -> Ended {
    let config = cx.config;
    let session_lost = board.session_lost();
    let info = ConductorInfo {
        name: config.name.clone(),
        address: cx.address.to_owned(),
        since: flows::now_millis(),
        draining: cx.local.drain.is_draining(),
        jobs: 0,
        task_kinds: cx.catalog.kinds().names().into_iter().map(str::to_owned).collect(),
        rust_flows: cx.catalog.rust().names().into_iter().map(str::to_owned).collect(),
        features: cx.catalog.features().iter().cloned().collect(),
    };
    let registration = Arc::new(Registration::new(board.clone(), info, cx.local.drain.clone()));
    tokio::select! {
        _ = shutdown.as_mut() => return Ended::Graceful,
        _ = session_lost.cancelled() => return Ended::Lost,
        reason = server_failed.as_mut() => return Ended::ServerFailed(reason),
        () = register(&registration) => {}
    }

    // `stop_claiming` ends the claimer and the background loops; `stops` reaches the jobs.
    let stop_claiming = CancellationToken::new();
    let stops = Stops::default();
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(config.max_jobs));
    let runner = Arc::new(JobRunner {
        catalog: cx.catalog.clone(),
        board: board.clone(),
        workers: cx.workers.clone(),
        concurrency: config.concurrency,
        stops: stops.clone(),
        local: cx.local.clone(),
    });
    tracker.spawn(registration.clone().maintain(config.drain_check_interval, stop_claiming.clone()));
    tracker.spawn(cx.catalog.clone().follow(board.clone(), stop_claiming.clone()));
    tracker.spawn(retention::purge_loop(board.clone(), config.purge_interval, stop_claiming.clone()));
    tracker.spawn(cx.workers.clone().follow_board(board.clone(), stop_claiming.clone()));
    tracker.spawn(retention::deadline_loop(board.clone(), DEADLINE_SCAN, stop_claiming.clone()));
    tracker.spawn(scheduler::run(board.clone(), cx.catalog.clone(), stop_claiming.clone()));
    if config.http_listen.is_some() {
        let (metrics, every) = (cx.local.metrics.clone(), crate::metrics::backlog::REFRESH);
        tracker.spawn(crate::metrics::backlog::refresh(board.clone(), metrics, every, stop_claiming.clone()));
    }
    let claimer = Claimer {
        board: board.clone(),
        catalog: cx.catalog.clone(),
        slots: slots.clone(),
        drain: cx.local.drain.clone(),
        registration,
        runner,
        tracker: tracker.clone(),
        stop: stop_claiming.clone(),
    };
    tracker.spawn(claimer.run(config.max_jobs.min(claimer::CLAIM_LOOPS)));

    let ended = tokio::select! {
        _ = shutdown.as_mut() => Ended::Graceful,
        _ = session_lost.cancelled() => Ended::Lost,
        reason = server_failed.as_mut() => Ended::ServerFailed(reason),
    };
    stop_claiming.cancel();
    tracker.close();
    let held = config.max_jobs - slots.available_permits();
    match &ended {
        Ended::Lost => {
            tracing::error!(jobs = held, "board session lost: stopping every job now");
            stops.abort.cancel();
            wait_bounded(&tracker, ABORT_WAIT).await;
        }
        Ended::Graceful | Ended::ServerFailed(_) => {
            // Probes and balancers see the stop at once, while the server still answers.
            cx.health.set_not_serving().await;
            tracing::info!(jobs = held, grace = %format_duration(config.grace), "shutting down: suspending running flows");
            stops.suspend.cancel();
            if tokio::time::timeout(config.grace, tracker.wait()).await.is_err() {
                tracing::warn!("grace period over: stopping the flows still running");
                stops.abort.cancel();
                wait_bounded(&tracker, ABORT_WAIT).await;
            }
        }
    }
    ended
}

/// Registers on the board, retrying while it is unavailable (the caller gives
/// up when the session is lost or the conductor stops).
async fn register(registration: &Registration) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match registration.register().await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot register on the board; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REGISTER_BACKOFF_CAP);
            }
        }
    }
}

/// Before a session serves: applies `--flows-dir` to the board and reads its flow
/// definitions into the catalog, retrying while the board fails (the caller gives up
/// when the session is lost or the conductor stops). Applies are idempotent. Done
/// before the API is ready, so a post right after readiness finds the files' flows.
pub(crate) async fn prepare(board: &dyn JobBoard, files: &[LoadedFile], catalog: &Catalog) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let done = match flow_files::apply_all(board, files).await {
            Ok(()) => catalog.refresh(board).await,
            Err(error) => Err(error),
        };
        match done {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot apply --flows-dir or read the flows; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REGISTER_BACKOFF_CAP);
            }
        }
    }
}

/// Waits for the tracked tasks, at most `limit`.
async fn wait_bounded(tracker: &TaskTracker, limit: Duration) {
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::warn!(tasks = tracker.len(), "tasks still running after {}", format_duration(limit));
    }
}
