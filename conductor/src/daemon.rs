//! The daemon: `run(config, listener, shutdown)`.
//!
//! Shaped like mini-redis's server: the caller binds the listener and passes a
//! shutdown future (the binary: SIGTERM or SIGINT; tests: anything). The daemon
//! serves the gRPC API on the listener at once, then runs board sessions one
//! after another until it stops: it opens a session (waiting for an
//! unreachable etcd with backoff), runs it ([`session`]), and when the session
//! is lost starts a fresh one in-process. Only bad configuration, a local
//! failure or a dead gRPC server end `run` with an error; an etcd outage never
//! does, so a supervisor restarts a conductor only when it crashes.
//!
//! ## Health: liveness apart from readiness
//! The server as a whole (health service `""`) is SERVING while the process
//! works: the liveness check. `baton.v1.Baton` is SERVING only while a session
//! is live and its board answers: the readiness check; meanwhile the API
//! answers UNAVAILABLE at once, naming the cause ([`BoardSlot`]). Once
//! stopping, both are NOT_SERVING, while the server still answers.
//!
//! ## Stopping
//! See [`session`]: a graceful stop suspends running flows and hands them back;
//! a lost session drops every engine at once and writes nothing more. Then the
//! server stops and the board session is closed (revoking the lease).
//!
//! ## Layout
//! - [`backend`]: opens the etcd or embedded board the config names, waiting for it.
//! - [`flow_files`]: `--flows-dir`, `--task-kinds`, `--secrets-dir`: file flows joining
//!   the registry at start (a bad file stops the start).
//! - `session`: one board session: registration, claim loops, retention, jobs.
//! - `claimer`: the claim loops (semaphore of `--max-jobs`, board wake-ups, backoff).
//! - `job_runner`: one job: build the flow, run the engine on its logbook, consume/abandon/trash.
//! - `registration`: the conductor's entry on the board, kept in step with the drain flag.
//! - `retention`: periodic `purge_expired`.

pub mod backend;
mod claimer;
pub mod flow_files;
mod job_runner;
mod registration;
mod retention;
mod session;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use flows::FlowRegistry;
use jobboard::JobBoard;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

pub use self::backend::open_board;
use self::session::{Ended, SessionContext};
use crate::api::{self, ApiState, BoardSlot, Health};
use crate::config::Config;
pub use crate::drain::DrainHandle;
use crate::error::Error;
use crate::local::LocalStatus;

/// How long the gRPC server gets to finish in-flight calls once told to stop.
const SERVER_STOP_WAIT: Duration = Duration::from_secs(2);

/// Runs a conductor with only the flow files of `--flows-dir` until `shutdown` resolves.
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

impl Daemon {
    /// A conductor with the demo flows, opening the board `config` names.
    pub fn new(config: Config) -> Self {
        Daemon { config, registry: Arc::new(crate::demo_flows::registry()), board: None, drain: DrainHandle::new() }
    }

    /// Runs these flow factories instead of the demo flows; the conductor claims only their
    /// jobs (and those of the flow files of `--flows-dir`, which join them at start).
    #[must_use]
    pub fn registry(mut self, registry: Arc<FlowRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Uses this board session (owned by this conductor from now on: it is closed
    /// when the daemon stops) instead of opening one. For several conductors in
    /// one process on one embedded file (`EmbeddedBoard::session`). Such a
    /// session cannot be replaced: if it is lost, `run` returns `Err(SessionLost)`.
    #[must_use]
    pub fn board(mut self, board: Arc<dyn JobBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// The conductor's local drain switch (see [`crate::drain`]).
    pub fn drain_handle(&self) -> DrainHandle {
        self.drain.clone()
    }

    /// Runs until `shutdown` resolves (`Ok`), starting a new board session
    /// whenever one is lost. The last session is closed on the way out.
    /// Bad flow files (see [`flow_files`]) are an `Error::Config` before anything starts.
    pub async fn run(mut self, listener: TcpListener, shutdown: impl Future) -> Result<(), Error> {
        self.registry = Arc::new(flow_files::registry(&self.config, &self.registry)?);
        let local_addr =
            listener.local_addr().map_err(|source| Error::Io { what: "reading listen address".into(), source })?;
        let address = self.config.advertise.clone().unwrap_or_else(|| local_addr.to_string());
        let local = LocalStatus::new(self.config.name.clone(), self.drain.clone());
        let slot = BoardSlot::empty(format!("connecting to {}", self.config.board));
        let server = Server::start(listener, &slot, &self.registry, &local).await;
        // The HTTP listener (the callback webhook), if asked for. Kept minimal: the
        // production issue's `/metrics` listener is to mount `callbacks::handle` too.
        let http_stop = CancellationToken::new();
        if let Some(addr) = self.config.http_listen {
            let http = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Io { what: format!("binding the HTTP listener {addr}"), source })?;
            tracing::info!(%addr, "serving HTTP (POST /v1/callbacks/TOKEN)");
            tokio::spawn(crate::callbacks::serve(http, slot.clone(), http_stop.clone()));
        }
        let _http_stops = http_stop.drop_guard();
        tracing::info!(
            name = %self.config.name, %address, board = %self.config.board, flows = ?self.registry.names(),
            max_jobs = self.config.max_jobs, concurrency = self.config.concurrency, "conductor started"
        );
        let result = self.sessions(&server, &slot, &local, &address, shutdown).await;
        server.stop().await;
        match &result {
            Ok(()) => tracing::info!("conductor stopped"),
            Err(error) => tracing::error!(%error, "conductor stopped"),
        }
        result
    }

    /// Board sessions, one after another, until shutdown or a failure that a new session cannot cure.
    async fn sessions(
        mut self,
        server: &Server,
        slot: &BoardSlot,
        local: &Arc<LocalStatus>,
        address: &str,
        shutdown: impl Future,
    ) -> Result<(), Error> {
        let injected = self.board.is_some();
        tokio::pin!(shutdown);
        let server_failed = server.failed();
        tokio::pin!(server_failed);
        loop {
            let board = match self.board.take() {
                Some(board) => board,
                None if injected => return Err(Error::SessionLost),
                None => match backend::open_patiently(&self.config, slot, shutdown.as_mut()).await? {
                    Some(board) => board,
                    None => return Ok(()),
                },
            };
            local.session_started();
            slot.fill(board.clone());
            let cx = SessionContext {
                config: &self.config,
                registry: &self.registry,
                local,
                address,
                health: &server.health,
            };
            let ended = session::run(cx, board.clone(), shutdown.as_mut(), server_failed.as_mut()).await;
            slot.empty_for(match &ended {
                Ended::Lost => "the board session was lost; starting a new one",
                Ended::Graceful | Ended::ServerFailed(_) => "the conductor is stopping",
            });
            if let Err(error) = board.close().await {
                tracing::debug!(%error, "closing the board session");
            }
            match ended {
                Ended::Graceful => return Ok(()),
                Ended::ServerFailed(message) => return Err(Error::Serve(message)),
                Ended::Lost => {
                    local.session_lost();
                    tracing::warn!("starting a new board session");
                }
            }
        }
    }
}

/// The gRPC server and what follows it: the health switch kept in step with the board.
struct Server {
    health: Health,
    /// Ends the server and its watch streams.
    stop: CancellationToken,
    task: tokio::sync::Mutex<JoinHandle<Result<(), tonic::transport::Error>>>,
    readiness: JoinHandle<()>,
}

impl Server {
    async fn start(
        listener: TcpListener,
        slot: &BoardSlot,
        registry: &Arc<FlowRegistry>,
        local: &Arc<LocalStatus>,
    ) -> Server {
        let stop = CancellationToken::new();
        let state =
            ApiState::over(slot.clone(), registry.clone()).with_shutdown(stop.clone()).with_local(local.clone());
        let (router, health) = api::router(state).await;
        let task = tokio::spawn(router.serve_with_incoming_shutdown(
            // Without TCP_NODELAY, small stream messages (WatchJob) wait on Nagle's algorithm.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop.clone().cancelled_owned(),
        ));
        let readiness = tokio::spawn(follow_readiness(slot.clone(), health.clone()));
        Server { health, stop, task: tokio::sync::Mutex::new(task), readiness }
    }

    /// Resolves, with the reason, if the server ends by itself.
    fn failed(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            let mut task = self.task.lock().await;
            match (&mut *task).await {
                Ok(Ok(())) => "stopped unexpectedly".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(join) => join.to_string(),
            }
        })
    }

    /// NOT_SERVING, then stops the server, giving in-flight calls a moment.
    async fn stop(self) {
        self.readiness.abort();
        self.health.set_not_serving().await;
        self.stop.cancel();
        let mut task = self.task.lock().await;
        if task.is_finished() {
            return;
        }
        match tokio::time::timeout(SERVER_STOP_WAIT, &mut *task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "grpc server stopped with an error"),
            Ok(Err(join)) => tracing::warn!(error = %join, "grpc server task failed"),
            Err(_) => {
                tracing::warn!("grpc server did not stop in time; dropping its connections");
                task.abort();
            }
        }
    }
}

/// Keeps `baton.v1.Baton`'s health (readiness) in step with the board.
async fn follow_readiness(slot: BoardSlot, health: Health) {
    let mut seen = slot.get().map(|_| ());
    health.set_ready(seen.is_ok()).await;
    loop {
        seen = slot.changed(&seen).await;
        match &seen {
            Ok(()) => tracing::info!("job board available: ready"),
            Err(cause) => tracing::warn!(%cause, "job board unavailable: not ready"),
        }
        health.set_ready(seen.is_ok()).await;
    }
}
