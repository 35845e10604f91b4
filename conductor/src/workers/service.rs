//! The `baton.v1.Workers` tonic service: `Attach` (a worker's stream) and `ListWorkers`.

use proto::pb::{self, workers_server::Workers, ConductorMessage, WorkerMessage};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::WorkerHub;

/// The service over a hub.
#[derive(Debug, Clone)]
pub struct WorkersService {
    hub: WorkerHub,
}

impl WorkersService {
    /// Serves `hub`.
    pub fn new(hub: WorkerHub) -> Self {
        WorkersService { hub }
    }

    /// The service for a tonic router, accepting results up to the hub's limit plus room
    /// (a larger one is refused by the hub with a clear error, not by the transport).
    pub fn server(self) -> pb::workers_server::WorkersServer<Self> {
        let limit = self.hub.settings().max_result_bytes.saturating_mul(4).max(4 << 20);
        pb::workers_server::WorkersServer::new(self).max_decoding_message_size(limit)
    }
}

#[tonic::async_trait]
impl Workers for WorkersService {
    type AttachStream = ReceiverStream<Result<ConductorMessage, Status>>;

    async fn attach(&self, request: Request<Streaming<WorkerMessage>>) -> Result<Response<Self::AttachStream>, Status> {
        Ok(Response::new(self.hub.attach(request.into_inner()).await?))
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        Ok(Response::new(pb::ListWorkersResponse { workers: self.hub.local_workers() }))
    }
}
