//! The relayed-to side: a conductor's `Relay` stream from another conductor. Each
//! relayed assignment is placed at once on a local worker (the one named if it can take
//! it, else the freest capable one; none free: a `NoCapacity` failure and the sender
//! places it again), and its outcome and progress go back. A `Cancel`, or the link
//! breaking, cancels what it relayed on the workers.

use std::collections::HashMap;
use std::sync::Arc;

use flows::Failure;
use proto::pb::{self, relay_down::Msg as Back, relay_up::Msg as Out, RelayDown, RelayUp};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::dispatch::NO_CAPACITY;
use super::state::{Pending, Placed};
use super::{wire, WorkerHub};

/// The `baton.v1.Relay` service over a hub.
#[derive(Debug, Clone)]
pub struct RelayService {
    hub: WorkerHub,
}

impl RelayService {
    /// Serves `hub`.
    pub fn new(hub: WorkerHub) -> Self {
        RelayService { hub }
    }

    /// The service for a tonic router.
    pub fn server(self) -> pb::relay_server::RelayServer<Self> {
        pb::relay_server::RelayServer::new(self).max_decoding_message_size(64 << 20)
    }
}

type Down = mpsc::Sender<Result<RelayDown, Status>>;

fn send(down: &Down, msg: Back) -> bool {
    down.try_send(Ok(RelayDown { msg: Some(msg) })).is_ok()
}

#[tonic::async_trait]
impl pb::relay_server::Relay for RelayService {
    type RelayStream = ReceiverStream<Result<RelayDown, Status>>;

    async fn relay(&self, request: Request<Streaming<RelayUp>>) -> Result<Response<Self::RelayStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.hub.settings().heartbeat_timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no relay hello"))??;
        let Some(RelayUp { msg: Some(Out::Hello(hello)) }) = first else {
            return Err(Status::invalid_argument("the first relay message must be a RelayHello"));
        };
        let (down, rx) = mpsc::channel(4096);
        tokio::spawn(self.hub.clone().serve_relay(hello.conductor, inbound, down));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl WorkerHub {
    async fn serve_relay(self, from: String, mut inbound: Streaming<RelayUp>, down: Down) {
        tracing::info!(conductor = %from, "relay link accepted");
        let mut running: HashMap<String, AbortHandle> = HashMap::new();
        let (done_tx, mut done) = mpsc::unbounded_channel::<String>();
        let mut beat = tokio::time::interval(self.settings().heartbeat_interval());
        let mut last_heard = Instant::now();
        let why = loop {
            tokio::select! {
                message = inbound.message() => {
                    let msg = match message {
                        Ok(Some(RelayUp { msg: Some(msg) })) => msg,
                        Ok(Some(_)) => continue,
                        Ok(None) => break "closed".to_owned(),
                        Err(status) => break format!("broke: {}", status.message()),
                    };
                    last_heard = Instant::now();
                    match msg {
                        Out::Assign(relayed) => {
                            let Some(assign) = relayed.assign else { continue };
                            let id = assign.dispatch_id.clone();
                            let (hub, down, done_tx, done_id) = (self.clone(), down.clone(), done_tx.clone(), id.clone());
                            let task = tokio::spawn(async move {
                                hub.run_relayed(&relayed.worker_id, assign, &down).await;
                                let _ = done_tx.send(done_id);
                            });
                            running.insert(id, task.abort_handle());
                        }
                        // Aborting drops the call, which cancels it on the worker.
                        Out::Cancel(cancel) => {
                            if let Some(task) = running.remove(&cancel.dispatch_id) {
                                task.abort();
                            }
                        }
                        Out::Heartbeat(_) | Out::Hello(_) => {}
                    }
                }
                Some(id) = done.recv() => {
                    running.remove(&id);
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() > self.settings().heartbeat_timeout {
                        break format!("silent for {} ms", last_heard.elapsed().as_millis());
                    }
                    let free = self.lock().free_slots();
                    if !send(&down, Back::Heartbeat(pb::Heartbeat::default())) {
                        break "not reading".to_owned();
                    }
                    for (worker_id, free) in free {
                        send(&down, Back::Slots(pb::WorkerSlots { worker_id, free }));
                    }
                }
                () = self.inner.stop.cancelled() => break "the conductor is stopping".to_owned(),
            }
        };
        tracing::warn!(conductor = %from, reason = %why, relayed = running.len(), "relay link ended; cancelling what it relayed");
        for (_, task) in running {
            task.abort();
        }
    }

    /// Runs one relayed assignment on a local worker and sends its outcome back.
    async fn run_relayed(&self, prefer: &str, assign: pb::Assign, down: &Down) {
        let progress = Arc::new(Notify::new());
        let (reply, mut outcome) = oneshot::channel();
        let job = uuid::Uuid::parse_str(&assign.job_id).unwrap_or_default();
        let placed = self.lock().place(&assign, Some(prefer), |worker, session| Pending {
            worker,
            session,
            job,
            revert: assign.action == pb::Action::Revert as i32,
            reply,
            progress: progress.clone(),
        });
        let dispatch = assign.dispatch_id.clone();
        if !matches!(placed, Placed::Sent { .. }) {
            let failure = Failure::new(NO_CAPACITY, format!("no free slot for {:?} here", assign.task));
            send(down, Back::Failed(pb::RelayFailed { dispatch_id: dispatch, failure: Some(wire::to_wire(&failure)) }));
            return;
        }
        let _guard = Abandon { hub: self.clone(), dispatch: dispatch.clone() };
        let answered: Result<Value, Failure> = loop {
            tokio::select! {
                answered = &mut outcome => break answered.unwrap_or_else(|_| Err(Failure::new(super::WORKER_LOST, "dropped"))),
                () = progress.notified() => {
                    send(down, Back::Progress(pb::Progress { dispatch_id: dispatch.clone(), details_json: String::new() }));
                }
            }
        };
        let outcome = wire::to_outcome(answered);
        let result = pb::Result { dispatch_id: dispatch, attempt: assign.attempt, outcome: Some(outcome) };
        send(down, Back::Result(result));
    }
}

/// Cancels a relayed dispatch on its worker when the relay task is aborted.
struct Abandon {
    hub: WorkerHub,
    dispatch: String,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.hub.lock().abandon(&self.dispatch, "cancelled by the relaying conductor");
    }
}
