//! The `baton.v1` gRPC service: jobs, flows and conductors over a `JobBoard`.
//!
//! [`router`] assembles what the daemon serves: the Baton service, the
//! standard gRPC health service and server reflection (so `grpcurl` works
//! with no `.proto` at hand).
//!
//! - [`service`]: the handlers.
//! - [`complete`]: `CompleteTask`, shared with the HTTP webhook.
//! - [`watch`]: the `WatchJob` stream.
//! - [`convert`]: board types to wire messages.
//! - [`definitions`]: flow files on the board: apply, get, history, delete, graph.
//! - [`limits`]: the sizes requests may have, checked before anything else.
//! - [`fleet`]: the cached conductor set, for the post warning "no live conductor runs this".
//! - [`post_rate`]: `--post-rate`, a token bucket per caller.
//! - [`schedules`]: create, list, get, pause, resume and delete schedules.
//! - [`outline`]: a job's atoms in flow order, merged with its logbook.
//! - [`status`]: errors to gRPC codes, in one place.
//! - [`board_slot`]: the board the handlers use, which comes and goes with sessions.

pub mod board_slot;
pub mod complete;
pub mod convert;
pub mod definitions;
pub mod fleet;
pub mod limits;
pub mod operate;
pub mod outline;
pub mod post_rate;
pub mod schedules;
pub mod service;
pub mod status;
pub mod watch;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use flows::FlowRegistry;

use crate::catalog::Catalog;
use jobboard::JobBoard;
use proto::pb::baton_server::BatonServer;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::layer::util::{Identity, Stack};

use crate::admission::{Admission, Limits};
use crate::auth::AuthLayer;
use crate::local::LocalStatus;

pub use board_slot::BoardSlot;
pub use service::BatonService;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The board jobs are posted to and read from, while there is one.
    pub board: BoardSlot,
    /// The flows this conductor knows (Rust and the board's files); posts are checked against it.
    pub catalog: Arc<Catalog>,
    /// The live conductors, cached for post warnings.
    pub fleet: Arc<fleet::Fleet>,
    /// Cancelled when the server shuts down: open `WatchJob` streams end with
    /// UNAVAILABLE rather than holding a graceful shutdown open.
    pub shutdown: CancellationToken,
    /// This conductor's own status, when the API is served by a conductor:
    /// `GetStatus` reads it, and a drain of this conductor takes effect in its
    /// claimer at once instead of at its next read of the board.
    pub local: Option<Arc<LocalStatus>>,
    /// In front of every service: who may call what (see [`crate::auth`]); by default nobody is asked.
    pub auth: AuthLayer,
    /// `--post-rate`: how fast one caller may post; `None`: unlimited.
    pub post_rate: Option<Arc<post_rate::PostLimiter>>,
    /// The limits posts are checked against (see [`crate::admission`]); by default none.
    pub admission: Arc<Admission>,
}

impl ApiState {
    /// State over a board that is always there and Rust flows (file flows run with the
    /// default kinds), with a shutdown token of its own.
    pub fn new(board: Arc<dyn JobBoard>, registry: Arc<FlowRegistry>) -> Self {
        let kinds = Arc::new(flowfile::Kinds::default_allowed());
        ApiState::over(BoardSlot::fixed(board), Arc::new(Catalog::new(registry, kinds)))
    }

    /// State over a board slot the daemon fills while it has a session.
    pub fn over(board: BoardSlot, catalog: Arc<Catalog>) -> Self {
        ApiState {
            board,
            catalog,
            fleet: Arc::default(),
            shutdown: CancellationToken::new(),
            local: None,
            auth: AuthLayer::default(),
            post_rate: None,
            admission: Arc::default(),
        }
    }

    /// Posts are refused with RESOURCE_EXHAUSTED past these limits.
    #[must_use]
    pub fn with_admission(mut self, limits: Limits) -> Self {
        self.admission = Arc::new(Admission::new(limits));
        self
    }

    /// Ends watch streams when `shutdown` is cancelled.
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Served by the conductor `local` describes: `GetStatus` answers from it, and
    /// drains of that conductor flip its drain switch directly (as well as the board's flag).
    #[must_use]
    pub fn with_local(mut self, local: Arc<LocalStatus>) -> Self {
        self.local = Some(local);
        self
    }

    /// Callers are checked by `auth` (an auth file) before any handler runs.
    #[must_use]
    pub fn with_auth(mut self, auth: AuthLayer) -> Self {
        self.auth = auth;
        self
    }

    /// Posts are limited to `rate` per caller (`None`: unlimited).
    #[must_use]
    pub fn with_post_rate(mut self, rate: Option<post_rate::PostRate>) -> Self {
        self.post_rate = rate.map(|rate| Arc::new(post_rate::PostLimiter::new(rate)));
        self
    }

    /// The board, or UNAVAILABLE naming why there is none now.
    pub fn board(&self) -> Result<Arc<dyn JobBoard>, tonic::Status> {
        self.board.get().map_err(|cause| status::board_unavailable(&cause))
    }
}

/// The Baton gRPC service alone.
pub fn baton_service(state: ApiState) -> BatonServer<BatonService> {
    BatonServer::new(BatonService::new(state)).max_decoding_message_size(limits::MAX_MESSAGE_BYTES)
}

/// The switch of the served health service. The server as a whole (service
/// `""`) is the liveness check: SERVING while the process works, NOT_SERVING
/// once it begins to stop. The `baton.v1.Baton` service is the readiness
/// check: SERVING only while the board answers, so an etcd outage takes a
/// conductor out of rotation without making a supervisor restart it.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    /// Set by `set_not_serving`: from then on readiness changes are ignored.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health")
    }
}

impl Health {
    /// Reports whether the Baton service can do its work (the board answers).
    /// Ignored once the conductor is stopping.
    pub async fn set_ready(&self, ready: bool) {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if ready {
            self.reporter.set_serving::<BatonServer<BatonService>>().await;
        } else {
            self.reporter.set_not_serving::<BatonServer<BatonService>>().await;
        }
    }

    /// Reports NOT_SERVING for the server as a whole ("") and for the Baton service.
    pub async fn set_not_serving(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Release);
        self.reporter.set_not_serving::<BatonServer<BatonService>>().await;
        self.reporter.set_service_status("", ServingStatus::NotServing).await;
    }
}

/// The router [`router`] builds: every service behind the auth layer.
pub type ApiRouter = Router<Stack<AuthLayer, Identity>>;

/// The Baton service with health and reflection behind the auth layer, ready for
/// `serve_with_incoming_shutdown`, and the health switch.
pub async fn router(state: ApiState) -> (ApiRouter, Health) {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health { reporter, stopping: Arc::default() };
    health.set_ready(state.board.get().is_ok()).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("compiled-in descriptor sets are valid (checked by proto's tests)");
    // grpcurl and older tools still ask the v1alpha reflection service.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("compiled-in descriptor sets are valid (checked by proto's tests)");
    let router = Server::builder()
        .layer(state.auth.clone())
        .add_service(baton_service(state))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    (router, health)
}
