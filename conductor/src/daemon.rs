//! The daemon: `run(config, listener, shutdown)`.
//!
//! Shaped like mini-redis's server: the caller binds the listener and passes a
//! shutdown future (the binary: SIGTERM or SIGINT; tests: anything). The daemon
//! opens a board session, registers on it, serves the gRPC API on the
//! listener, and runs the claim loop, the registration/drain task and the
//! retention task on a `TaskTracker`, each job as one more tracked task.
//!
//! ## Stopping
//! Whatever the reason, the health service reports NOT_SERVING first, while
//! the server still answers, so probes and balancers stop sending work.
//! - **Graceful** (the shutdown future resolves): stop claiming; suspend every
//!   running flow (running tasks finish, nothing new starts); abandon the
//!   suspended jobs so another conductor resumes them at once, without waiting
//!   for a lease; after `--grace`, drop the engines still running and abandon
//!   those too; stop the server; close the board (revoking the lease). `Ok(())`.
//! - **Session lost** (the etcd lease expired or was revoked): every claim is
//!   already lost, so every engine is dropped at once and nothing more is
//!   written (any write would be fenced anyway); the server stops and `run`
//!   returns [`Error::SessionLost`]. The daemon does not reconnect by itself:
//!   its supervisor (systemd `Restart=on-failure`, Kubernetes) starts a fresh
//!   process, which gets a fresh lease, a clean registration and no stale state.
//!
//! ## Layout
//! - [`backend`]: opens the etcd or embedded board the config names.
//! - `claimer`: the claim loops (semaphore of `--max-jobs`, board wake-ups, backoff).
//! - `job_runner`: one job: build the flow, run the engine on its logbook, consume/abandon/trash.
//! - `registration`: the conductor's entry on the board, kept in step with the drain flag.
//! - [`drain`]: [`DrainHandle`], the local drain switch.
//! - `retention`: periodic `purge_expired`.

pub mod backend;
mod claimer;
pub mod drain;
mod job_runner;
mod registration;
mod retention;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flows::FlowRegistry;
use jobboard::{ConductorInfo, FlowFilter, JobBoard};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;

pub use self::backend::open_board;
use self::claimer::Claimer;
pub use self::drain::DrainHandle;
use self::job_runner::{JobRunner, Stops};
use self::registration::Registration;
use crate::api::{self, ApiState};
use crate::config::{format_duration, Config};
use crate::error::Error;

/// After the grace period, how long dropped engines get to abandon their claims.
const ABORT_WAIT: Duration = Duration::from_secs(5);
/// How long the gRPC server gets to finish in-flight calls once told to stop.
const SERVER_STOP_WAIT: Duration = Duration::from_secs(2);

/// Runs a conductor with the stock demo flows until `shutdown` resolves or the board session is lost.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future) -> Result<(), Error> {
    Daemon::new(config).run(listener, shutdown).await
}

/// A conductor, configured but not yet running. [`run`] is `Daemon::new(config).run(..)`.
#[derive(Debug)]
pub struct Daemon {
    config: Config,
    registry: Arc<FlowRegistry>,
    board: Option<Arc<dyn JobBoard>>,
    drain: DrainHandle,
}

/// Why the daemon is stopping.
#[derive(Debug)]
enum StopReason {
    /// The shutdown future resolved.
    Graceful,
    /// The board session is gone; every claim with it.
    SessionLost,
    /// The gRPC server ended by itself.
    ServerFailed(String),
}

impl Daemon {
    /// A conductor with the demo flows, opening the board `config` names.
    pub fn new(config: Config) -> Self {
        Daemon { config, registry: Arc::new(crate::demo_flows::registry()), board: None, drain: DrainHandle::new() }
    }

    /// Runs these flow factories instead of the demo flows; the conductor claims only their jobs.
    #[must_use]
    pub fn registry(mut self, registry: Arc<FlowRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Uses this board session (owned by this conductor from now on: it is closed
    /// when the daemon stops) instead of opening one. For several conductors in
    /// one process on one embedded file (`EmbeddedBoard::session`).
    #[must_use]
    pub fn board(mut self, board: Arc<dyn JobBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// The conductor's local drain switch (see [`drain`]).
    pub fn drain_handle(&self) -> DrainHandle {
        self.drain.clone()
    }

    /// Runs until `shutdown` resolves (`Ok`) or the board session is lost (`Err(SessionLost)`).
    /// The board session is closed on the way out in both cases.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future) -> Result<(), Error> {
        let board = match self.board.clone() {
            Some(board) => board,
            None => open_board(&self.config).await?,
        };
        let result = self.serve(board.clone(), listener, shutdown).await;
        if let Err(error) = board.close().await {
            tracing::debug!(%error, "closing the board session");
        }
        match &result {
            Ok(()) => tracing::info!("conductor stopped"),
            Err(error) => tracing::error!(%error, "conductor stopped"),
        }
        result
    }

    async fn serve(self, board: Arc<dyn JobBoard>, listener: TcpListener, shutdown: impl Future) -> Result<(), Error> {
        let config = &self.config;
        let local =
            listener.local_addr().map_err(|source| Error::Io { what: "reading listen address".into(), source })?;
        let address = config.advertise.clone().unwrap_or_else(|| local.to_string());
        let info = ConductorInfo {
            name: config.name.clone(),
            address: address.clone(),
            since: flows::now_millis(),
            draining: self.drain.is_draining(),
            jobs: 0,
        };
        let registration = Arc::new(Registration::new(board.clone(), info, self.drain.clone()));
        registration.register().await?;

        // Tokens: `stop_claiming` ends the claimer and the background loops;
        // `stops` reaches the jobs; `server_stop` ends the gRPC server and its watch streams.
        let stop_claiming = CancellationToken::new();
        let stops = Stops::default();
        let server_stop = CancellationToken::new();
        let tracker = TaskTracker::new();

        // A drain addressed to this conductor flips its local switch at once; other
        // names go through the board and are noticed by their conductor.
        let state = ApiState::new(board.clone(), self.registry.clone())
            .with_shutdown(server_stop.clone())
            .with_local_drain(config.name.clone(), self.drain.clone());
        let (router, health) = api::router(state).await;
        let mut server: JoinHandle<Result<(), tonic::transport::Error>> =
            tokio::spawn(router.serve_with_incoming_shutdown(
                // Without TCP_NODELAY, small stream messages (WatchJob) wait on Nagle's algorithm.
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                server_stop.clone().cancelled_owned(),
            ));

        let slots = Arc::new(Semaphore::new(config.max_jobs));
        let filter = FlowFilter(self.registry.names().into_iter().map(str::to_owned).collect());
        tracing::info!(
            name = %config.name, %address, flows = ?filter.0, max_jobs = config.max_jobs,
            concurrency = config.concurrency, "conductor started"
        );
        let runner = Arc::new(JobRunner {
            registry: self.registry.clone(),
            concurrency: config.concurrency,
            stops: stops.clone(),
        });
        tracker.spawn(registration.clone().maintain(config.drain_check_interval, stop_claiming.clone()));
        tracker.spawn(retention::purge_loop(board.clone(), config.purge_interval, stop_claiming.clone()));
        let claimer = Claimer {
            board: board.clone(),
            filter,
            slots: slots.clone(),
            drain: self.drain.clone(),
            registration,
            runner,
            tracker: tracker.clone(),
            stop: stop_claiming.clone(),
        };
        tracker.spawn(claimer.run(config.max_jobs.min(claimer::CLAIM_LOOPS)));

        let session_lost = board.session_lost();
        let reason = tokio::select! {
            _ = shutdown => StopReason::Graceful,
            _ = session_lost.cancelled() => StopReason::SessionLost,
            ended = &mut server => StopReason::ServerFailed(match ended {
                Ok(Ok(())) => "stopped unexpectedly".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(join) => join.to_string(),
            }),
        };
        // Probes and balancers see the stop at once, while the server still answers.
        health.set_not_serving().await;
        stop_claiming.cancel();
        tracker.close();
        let held = config.max_jobs - slots.available_permits();
        match &reason {
            StopReason::SessionLost => {
                tracing::error!(jobs = held, "board session lost: stopping every job now");
                stops.abort.cancel();
                wait_bounded(&tracker, ABORT_WAIT).await;
            }
            StopReason::Graceful | StopReason::ServerFailed(_) => {
                tracing::info!(jobs = held, grace = %format_duration(config.grace), "shutting down: suspending running flows");
                stops.suspend.cancel();
                if tokio::time::timeout(config.grace, tracker.wait()).await.is_err() {
                    tracing::warn!("grace period over: stopping the flows still running");
                    stops.abort.cancel();
                    wait_bounded(&tracker, ABORT_WAIT).await;
                }
            }
        }
        server_stop.cancel();
        if !server.is_finished() {
            match tokio::time::timeout(SERVER_STOP_WAIT, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "grpc server stopped with an error"),
                Ok(Err(join)) => tracing::warn!(error = %join, "grpc server task failed"),
                Err(_) => {
                    tracing::warn!("grpc server did not stop in time; dropping its connections");
                    server.abort();
                }
            }
        }
        match reason {
            StopReason::Graceful => Ok(()),
            StopReason::SessionLost => Err(Error::SessionLost),
            StopReason::ServerFailed(message) => Err(Error::Serve(message)),
        }
    }
}

/// Waits for the tracked tasks, at most `limit`.
async fn wait_bounded(tracker: &TaskTracker, limit: Duration) {
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::warn!(tasks = tracker.len(), "tasks still running after {}", format_duration(limit));
    }
}
