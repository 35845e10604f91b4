//! Remote workers: the conductor's side of `baton.v1.Workers` (`worker.proto`).
//!
//! A worker opens one `Attach` stream to any conductor; this conductor keeps it in
//! its [`WorkerHub`], and the hub is the [`flowfile::remote::Dispatch`] behind every
//! `remote` task the conductor runs. How an assignment travels:
//!
//! 1. The engine has already written the atom RUNNING (with its attempt) before
//!    `execute` is called; the `remote` kind hands a [`RemoteCall`] to the hub.
//! 2. `dispatch.rs` waits (schedule-to-start) until a connected worker offering the
//!    task has a free slot, picks the one with the most free slots, reserves the
//!    slot and sends `Assign` with a fresh dispatch id (`state.rs`, one lock).
//! 3. `stream.rs` reads the worker's messages: a `Result` frees the slot and, if
//!    its dispatch id is still awaited with the same attempt, completes the call;
//!    anything else is answered with a `ProtocolError` and changes nothing.
//! 4. The stream closing, or a silence longer than the heartbeat timeout, ends the
//!    worker: every call it held fails at once with a `WorkerLost` failure, which
//!    takes the flow's normal retry / revert path.
//! 5. A call that times out, is cancelled (job cancel) or is dropped (the engine
//!    stopped, the claim lost) sends `Cancel` to the worker; a late `Result` for it
//!    is dropped, so nothing is written after a claim is lost.
//!
//! - `state.rs`: the worker set, the slots, the awaited dispatches (all under one mutex).
//! - `stream.rs`: one worker's stream: hello, reader, heartbeats, its end.
//! - `dispatch.rs`: `Dispatch` for the hub: wait for a slot, assign, await the outcome.
//! - `service.rs`: the tonic service (`Attach`, `ListWorkers`).
//! - `board.rs`: this conductor's workers on the board (under its lease), the fleet's by watch.
//! - `relay.rs`: assignments for workers attached elsewhere, over one `Relay` stream per
//!   conductor; `relay_serve.rs`: the other end, forwarding to local workers.
//! - `wire.rs`: failures and results between the wire and `flows`.

mod board;
mod dispatch;
mod relay;
mod relay_serve;
mod service;
mod state;
mod stream;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowfile::remote::RemoteCall;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use relay_serve::RelayService;
pub use service::WorkersService;

use state::State;

/// Kind of the failure of an attempt whose worker was lost.
pub const WORKER_LOST: &str = "WorkerLost";
/// Kind of the failure when no worker took a task in time.
pub const SCHEDULE_TO_START: &str = "ScheduleToStartTimeout";
/// Kind of the failure when a task sent no progress for its heartbeat timeout.
pub const HEARTBEAT_TIMEOUT: &str = "HeartbeatTimeout";
/// Kind of the failure of a result larger than the hub accepts.
pub const RESULT_TOO_LARGE: &str = "ResultTooLarge";

/// How the hub treats its workers.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// This conductor's name (in `Welcome` and `ListWorkers`).
    pub conductor: String,
    /// A worker silent this long is lost; heartbeats are sent every third of it.
    pub heartbeat_timeout: Duration,
    /// How long a call waits for a worker with a free slot, unless the task says.
    pub schedule_to_start: Duration,
    /// The largest result (JSON bytes) accepted.
    pub max_result_bytes: usize,
    /// How relay links reach other conductors (TLS, credentials).
    pub peer: crate::config::PeerSettings,
    /// The base of a parked task's webhook URL (`--http-advertise`), handed to the
    /// worker's parked handler with the token; `None`: no URL.
    pub callback_base: Option<String>,
}

impl HubSettings {
    /// Defaults for `conductor` (5 s heartbeat timeout, 60 s schedule-to-start, 1 MiB results).
    pub fn new(conductor: impl Into<String>) -> Self {
        HubSettings {
            conductor: conductor.into(),
            heartbeat_timeout: Duration::from_secs(5),
            schedule_to_start: Duration::from_secs(60),
            max_result_bytes: 1 << 20,
            peer: crate::config::PeerSettings::default(),
            callback_base: None,
        }
    }

    /// How often heartbeats go out.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_timeout / 3
    }
}

/// The workers connected to this conductor, and the remote calls waiting on them.
#[derive(Clone)]
pub struct WorkerHub {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HubSettings,
    state: Mutex<State>,
    /// Woken whenever a slot frees or a worker arrives.
    capacity: Notify,
    /// Ends every worker stream (the conductor is stopping).
    stop: CancellationToken,
    /// Bumped when a worker joins or leaves (the board follower publishes the change).
    local_changed: tokio::sync::watch::Sender<u64>,
    /// The fleet's worker set, while a board session follows it.
    fleet: Mutex<Option<tokio::sync::watch::Receiver<jobboard::WorkerSet>>>,
    /// Relay links to other conductors (`relay.rs`).
    links: relay::Links,
    /// This conductor's advertised address (recorded with its workers, for relays),
    /// known once it listens.
    address: std::sync::OnceLock<String>,
    /// Where connected workers and dispatch waits are counted, once the daemon runs.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for WorkerHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHub").field("conductor", &self.inner.settings.conductor).finish_non_exhaustive()
    }
}

impl WorkerHub {
    /// An empty hub.
    pub fn new(settings: HubSettings) -> Self {
        WorkerHub {
            inner: Arc::new(Inner {
                settings,
                state: Mutex::new(State::default()),
                capacity: Notify::new(),
                stop: CancellationToken::new(),
                local_changed: tokio::sync::watch::channel(0).0,
                fleet: Mutex::new(None),
                links: relay::Links::default(),
                address: std::sync::OnceLock::new(),
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Sets the address other conductors relay to (once; later calls are ignored).
    pub fn set_address(&self, address: impl Into<String>) {
        let _ = self.inner.address.set(address.into());
    }

    /// Counts connected workers and dispatch waits into `metrics` (once; later calls are ignored).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.inner.metrics.get().map(Arc::as_ref)
    }

    /// The address other conductors relay to (empty until set).
    pub fn address(&self) -> &str {
        self.inner.address.get().map_or("", String::as_str)
    }

    /// Cancels the running executes of `job` (a job cancel): each worker gets `Cancel`
    /// and each call fails with `Cancelled`; reverts go on.
    pub fn cancel_job(&self, job: Uuid) {
        self.lock().cancel_job(job);
        tokio::spawn(self.clone().cancel_relayed_owned(job.to_string()));
    }

    async fn cancel_relayed_owned(self, job: String) {
        self.cancel_relayed(job).await;
    }

    /// Closes every worker stream (the conductor is stopping); their calls fail as lost.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// The workers connected here, as `ListWorkers` shows them.
    pub fn local_workers(&self) -> Vec<proto::pb::WorkerInfo> {
        self.lock().list(&self.inner.settings.conductor)
    }

    /// A worker joined or left: the board follower publishes it.
    fn local_changed(&self) {
        if let Some(metrics) = self.metrics() {
            metrics.workers_connected(self.lock().workers.len());
        }
        self.inner.local_changed.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind; they stay usable.
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A call's reserved identity, for logs.
fn describe(call: &RemoteCall) -> String {
    format!("{} ({} of job {}, attempt {})", call.task, call.atom, call.job, call.attempt)
}
