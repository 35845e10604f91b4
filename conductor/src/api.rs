//! The `baton.v1` gRPC service: jobs, flows and conductors over a `JobBoard`.
//!
//! [`router`] assembles what the daemon serves: the Baton service, the
//! standard gRPC health service and server reflection (so `grpcurl` works
//! with no `.proto` at hand).
//!
//! - [`service`]: the handlers.
//! - [`watch`]: the `WatchJob` stream.
//! - [`convert`]: board types to wire messages.
//! - [`outline`]: a job's atoms in flow order, merged with its logbook.
//! - [`status`]: errors to gRPC codes, in one place.

pub mod convert;
pub mod outline;
pub mod service;
pub mod status;
pub mod watch;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use flows::FlowRegistry;
use jobboard::JobBoard;
use proto::pb::baton_server::BatonServer;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::daemon::DrainHandle;

pub use service::BatonService;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The board jobs are posted to and read from.
    pub board: Arc<dyn JobBoard>,
    /// The flows this conductor can build; posts are checked against it.
    pub registry: Arc<FlowRegistry>,
    /// Cancelled when the server shuts down: open `WatchJob` streams end with
    /// UNAVAILABLE rather than holding a graceful shutdown open.
    pub shutdown: CancellationToken,
    /// This process's conductor name and drain switch, when the API is served
    /// by a conductor: a drain of this conductor takes effect in its claimer at
    /// once instead of at its next read of the board.
    pub local_drain: Option<(String, DrainHandle)>,
}

impl ApiState {
    /// State over a board and a registry, with a shutdown token of its own.
    pub fn new(board: Arc<dyn JobBoard>, registry: Arc<FlowRegistry>) -> Self {
        ApiState { board, registry, shutdown: CancellationToken::new(), local_drain: None }
    }

    /// Ends watch streams when `shutdown` is cancelled.
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Drains of the conductor `name` flip `drain` directly (as well as the board's flag).
    #[must_use]
    pub fn with_local_drain(mut self, name: impl Into<String>, drain: DrainHandle) -> Self {
        self.local_drain = Some((name.into(), drain));
        self
    }
}

/// The Baton gRPC service alone.
pub fn baton_service(state: ApiState) -> BatonServer<BatonService> {
    BatonServer::new(BatonService::new(state))
}

/// The switch of the served health service: SERVING from the start,
/// NOT_SERVING once the conductor begins to stop, so that load balancers and
/// `grpc_health_probe` stop sending work while the server still answers.
#[derive(Clone)]
pub struct Health(HealthReporter);

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health")
    }
}

impl Health {
    /// Reports NOT_SERVING for the server as a whole ("") and for the Baton service.
    pub async fn set_not_serving(&self) {
        self.0.set_not_serving::<BatonServer<BatonService>>().await;
        self.0.set_service_status("", ServingStatus::NotServing).await;
    }
}

/// The Baton service with health and reflection, ready for
/// `serve_with_incoming_shutdown`, and the health switch.
pub async fn router(state: ApiState) -> (Router, Health) {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<BatonServer<BatonService>>().await;
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
        .add_service(baton_service(state))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    (router, Health(health))
}
