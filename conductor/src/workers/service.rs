//! The `baton.v1.Workers` tonic service: `Attach` (a worker's stream) and `ListWorkers`.

use std::collections::BTreeMap;

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

impl WorkersService {
    /// Workers attached to other conductors: each conductor's own answer (with slots in
    /// use), or the board's record without it when that conductor does not answer.
    async fn elsewhere(&self) -> Vec<pb::WorkerInfo> {
        let records = self.hub.elsewhere();
        let mut by_conductor: BTreeMap<(String, String), Vec<jobboard::WorkerRecord>> = BTreeMap::new();
        for record in records {
            by_conductor.entry((record.conductor.clone(), record.address.clone())).or_default().push(record);
        }
        let mut out = Vec::new();
        for ((conductor, address), records) in by_conductor {
            let endpoint = if address.contains("://") { address } else { format!("http://{address}") };
            let asked = tokio::time::timeout(ASK_TIMEOUT, async {
                let client = proto::Client::connect_with(endpoint, ASK_TIMEOUT, ASK_TIMEOUT).await.ok()?;
                client.list_workers(true).await.ok()
            })
            .await
            .ok()
            .flatten();
            match asked {
                Some(answered) => out.extend(answered.into_iter().filter(|w| w.conductor == conductor)),
                None => out.extend(records.into_iter().map(unanswered)),
            }
        }
        out
    }
}

/// A board record as `ListWorkers` shows it when its conductor did not answer.
fn unanswered(r: jobboard::WorkerRecord) -> pb::WorkerInfo {
    let tasks = r
        .tasks
        .into_iter()
        .map(|t| pb::TaskOffer { name: t.name, can_revert: t.can_revert, default_timeout_ms: t.default_timeout_ms })
        .collect();
    pb::WorkerInfo {
        worker_id: r.id,
        conductor: r.conductor,
        tasks,
        slots: r.slots,
        slots_in_use: None,
        labels: r.labels.into_iter().collect(),
        sdk: r.sdk,
        connected_since_ms: r.since,
    }
}

/// How long a conductor asked for its workers may take.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[tonic::async_trait]
impl Workers for WorkersService {
    type AttachStream = ReceiverStream<Result<ConductorMessage, Status>>;

    async fn attach(&self, request: Request<Streaming<WorkerMessage>>) -> Result<Response<Self::AttachStream>, Status> {
        Ok(Response::new(self.hub.attach(request.into_inner()).await?))
    }

    async fn list_workers(
        &self,
        request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let mut workers = self.hub.local_workers();
        if !request.into_inner().local_only {
            workers.extend(self.elsewhere().await);
        }
        workers.sort_by(|a, b| (&a.conductor, &a.worker_id).cmp(&(&b.conductor, &b.worker_id)));
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }
}
