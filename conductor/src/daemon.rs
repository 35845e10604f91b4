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
//! - [`flow_files`]: `--flows-dir`, `--task-kinds`, `--secrets-dir`: files checked at start
//!   (a bad file stops the start) and applied to the board once it answers.
//! - `session`: one board session: registration, claim loops, retention, jobs.
//! - `claimer`: the claim loops (semaphore of `--max-jobs`, board wake-ups, backoff).
//! - `job_runner`: one job: build the flow, run the engine on its logbook, consume/abandon/trash.
//! - `registration`: the conductor's entry on the board, kept in step with the drain flag.
//! - `retention`: periodic `purge_expired`.
//! - `scheduler`: fires the schedules' ticks, one job per tick across the fleet.

pub mod backend;
mod claimer;
mod etcd_probe;
pub mod flow_files;
mod job_runner;
mod registration;
mod retention;
mod scheduler;
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
use crate::auth::{AuthLayer, Authenticator};
use crate::catalog::Catalog;
use crate::config::Config;
pub use crate::drain::DrainHandle;
use crate::error::Error;
use crate::local::LocalStatus;
use crate::metrics::board::MeteredBoard;
use crate::notify::Notifier;
use crate::tls::ServerTls;
use crate::workers::{HubSettings, RelayService, WorkerHub, WorkersService};

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
    workers: WorkerHub,
}

impl Daemon {
    /// A conductor with the demo flows, opening the board `config` names.
    pub fn new(config: Config) -> Self {
        let workers = WorkerHub::new(hub_settings(&config));
        Daemon {
            config,
            registry: Arc::new(crate::demo_flows::registry()),
            board: None,
            drain: DrainHandle::new(),
            workers,
        }
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

    /// The conductor's worker hub: what a Rust flow's [`flowfile::remote::RemoteTask`]
    /// sends its calls to (flow files' `remote` tasks use it by themselves).
    pub fn workers(&self) -> WorkerHub {
        self.workers.clone()
    }

    /// The conductor's local drain switch (see [`crate::drain`]).
    pub fn drain_handle(&self) -> DrainHandle {
        self.drain.clone()
    }

    /// Runs until `shutdown` resolves (`Ok`), starting a new board session
    /// whenever one is lost. The last session is closed on the way out.
    /// Bad flow files (see [`flow_files`]) are an `Error::Config` before anything starts.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future) -> Result<(), Error> {
        let files = flow_files::files(&self.config, &self.registry)?;
        let hub = self.workers.clone();
        let kinds = flow_files::kinds(&self.config, Arc::new(hub.clone()))?;
        let catalog = Arc::new(
            Catalog::new(self.registry.clone(), Arc::new(kinds)).without_features(&self.config.without_features),
        );
        let local_addr =
            listener.local_addr().map_err(|source| Error::Io { what: "reading listen address".into(), source })?;
        let address = self.config.advertise.clone().unwrap_or_else(|| local_addr.to_string());
        hub.set_address(address.clone());
        let local = LocalStatus::new(self.config.name.clone(), self.drain.clone());
        hub.set_metrics(local.metrics.clone());
        let slot = BoardSlot::empty(format!("connecting to {}", self.config.board));
        let protection = Protection::from_config(&self.config)?;
        let limits = crate::admission::Limits {
            max_queued: self.config.max_queued,
            storage_quota: self.config.etcd_quota_bytes,
        };
        let server = Server::start(listener, &slot, &catalog, &local, &hub, &protection, limits).await;
        if let Some(addr) = self.config.http_listen {
            let http = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Io { what: format!("cannot listen on --http-listen {addr}"), source })?;
            tracing::info!(addr = %addr, "http listener: /metrics, /healthz, /livez, POST /v1/callbacks/TOKEN");
            let routes = crate::http::standard::routes(local.clone(), slot.clone(), protection.auth.clone());
            let routes = crate::callbacks::route(routes, slot.clone());
            crate::http::serve(http, routes, protection.tls.clone(), server.stop.clone());
        }
        tracing::info!(
            name = %self.config.name, %address, board = %self.config.board, rust_flows = ?self.registry.names(),
            flow_files = files.len(),
            max_jobs = self.config.max_jobs, concurrency = self.config.concurrency, "conductor started"
        );
        let notifier = Notifier::from_env();
        notifier.start_watchdog();
        notifier.follow_board(slot.clone(), local.clone());
        let stopping = notifier.clone();
        let shutdown = async move {
            shutdown.await;
            stopping.notify("STOPPING=1\nSTATUS=stopping: suspending running flows");
        };
        let result = self.sessions(&server, &slot, &local, &address, (&catalog, &files), shutdown).await;
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
        (catalog, files): (&Arc<Catalog>, &[flow_files::LoadedFile]),
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
                None => match backend::open_patiently(
                    &self.config,
                    &local.metrics.lease,
                    slot,
                    shutdown.as_mut(),
                    local.sessions().0 == 0,
                )
                .await?
                {
                    Some(board) => board,
                    None => return Ok(()),
                },
            };
            let session_lost = board.session_lost();
            tokio::select! {
                _ = shutdown.as_mut() => {
                    if let Err(error) = board.close().await {
                        tracing::debug!(%error, "closing the board session");
                    }
                    return Ok(());
                }
                _ = session_lost.cancelled() => {
                    tracing::warn!("board session lost before it served; starting a new one");
                    continue;
                }
                () = session::prepare(board.as_ref(), files, catalog) => {}
            }
            local.session_started();
            let board = MeteredBoard::wrap(board, local.metrics.clone());
            slot.fill(board.clone());
            let cx = SessionContext {
                config: &self.config,
                catalog,
                local,
                address,
                health: &server.health,
                workers: &server.workers,
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

/// The TLS and the auth file of the conductor's listeners, loaded once at start (and
/// each re-read when its files change).
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// Server TLS; `None`: plaintext.
    pub tls: Option<Arc<ServerTls>>,
    /// The auth file; `None`: callers are not authenticated.
    pub auth: Option<Arc<Authenticator>>,
    /// `--post-rate`; `None`: posts are not limited.
    pub post_rate: Option<crate::api::post_rate::PostRate>,
}

impl Protection {
    /// Loads `--tls-*` and `--auth-file`; a missing or invalid file is a configuration error.
    pub fn from_config(config: &Config) -> Result<Protection, Error> {
        let auth = config.security.auth_file.as_deref().map(Authenticator::open).transpose().map_err(Error::Config)?;
        let tls = match &config.security.tls {
            Some(files) => Some(ServerTls::open(files, auth.is_some()).map_err(Error::Config)?),
            None => None,
        };
        if tls.is_none() && auth.is_some() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %config.listen,
                "an auth file without TLS beyond loopback: tokens cross the network in plaintext; give --tls-cert and --tls-key"
            );
        }
        Ok(Protection { tls, auth, post_rate: config.guards.post_rate })
    }
}

/// The gRPC server and what follows it: the health switch kept in step with the board.
struct Server {
    health: Health,
    workers: WorkerHub,
    /// Ends the server and its watch streams.
    stop: CancellationToken,
    task: tokio::sync::Mutex<JoinHandle<Result<(), tonic::transport::Error>>>,
    readiness: JoinHandle<()>,
}

impl Server {
    async fn start(
        listener: TcpListener,
        slot: &BoardSlot,
        catalog: &Arc<Catalog>,
        local: &Arc<LocalStatus>,
        workers: &WorkerHub,
        protection: &Protection,
        limits: crate::admission::Limits,
    ) -> Server {
        let stop = CancellationToken::new();
        let state = ApiState::over(slot.clone(), catalog.clone())
            .with_admission(limits)
            .with_shutdown(stop.clone())
            .with_local(local.clone())
            .with_auth(AuthLayer::new(protection.auth.clone()))
            .with_post_rate(protection.post_rate);
        let (router, health) = api::router(state).await;
        let router = router
            .add_service(WorkersService::new(workers.clone()).server())
            .add_service(RelayService::new(workers.clone()).server());
        let task = match &protection.tls {
            // Without TCP_NODELAY, small stream messages (WatchJob) wait on Nagle's algorithm.
            None => tokio::spawn(router.serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            )),
            Some(tls) => tokio::spawn(router.serve_with_incoming_shutdown(
                crate::tls::incoming(listener, tls.clone(), stop.clone()),
                stop.clone().cancelled_owned(),
            )),
        };
        let readiness = tokio::spawn(follow_readiness(slot.clone(), health.clone()));
        Server { health, workers: workers.clone(), stop, task: tokio::sync::Mutex::new(task), readiness }
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
        self.workers.stop();
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

/// The worker hub's settings from the daemon's.
fn hub_settings(config: &Config) -> HubSettings {
    let mut settings = HubSettings::new(config.name.clone());
    settings.heartbeat_timeout = config.worker_heartbeat_timeout;
    settings.schedule_to_start = config.schedule_to_start;
    settings.peer = config.peer.clone();
    settings.callback_base = config.callback_base().map(|b| b.trim_end_matches('/').to_owned());
    settings
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
