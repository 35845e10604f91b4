//! The connection loop: connect to the first endpoint that answers, say hello (with
//! what still runs from before), take assignments and cancels, send results, progress
//! and heartbeats; on a broken or silent stream, reconnect to the next endpoint.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use proto::pb::{self, conductor_message::Msg as Down, worker_message::Msg as Up, WorkerMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::builder::Worker;
use crate::tasks::{Running, Stop};
use crate::WorkerError;

/// What running tasks tell the loop.
#[derive(Debug)]
pub(crate) enum Event {
    Progress(pb::Progress),
    Done(pb::Result),
}

/// How one connection ended.
enum Ended {
    /// Shut down cleanly: nothing runs any more.
    Done,
    /// The conductor refused the hello for good.
    Refused(String),
    /// Connection failed or broke: try the next endpoint.
    Lost(String),
}

/// What outlives one connection.
struct Local {
    running: HashMap<String, Running>,
    events: mpsc::UnboundedReceiver<Event>,
    events_tx: mpsc::UnboundedSender<Event>,
    /// Set when shutdown was asked: the grace deadline.
    stopping: Option<Instant>,
}

impl Worker {
    /// Runs until `shutdown` resolves and running tasks are finished (or, after the
    /// grace period, cancelled and handed back). Reconnects by itself.
    pub async fn run(self, shutdown: impl Future) -> Result<(), WorkerError> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut local = Local { running: HashMap::new(), events, events_tx, stopping: None };
        let shutdown = shutdown;
        tokio::pin!(shutdown);
        let mut index = 0;
        let mut backoff = Duration::from_millis(100);
        loop {
            let endpoint = self.endpoints[index % self.endpoints.len()].clone();
            match self.connection(&endpoint, &mut local, shutdown.as_mut()).await {
                Ended::Done => return Ok(()),
                Ended::Refused(message) => return Err(WorkerError::Refused { endpoint, message }),
                Ended::Lost(why) => {
                    tracing::warn!(%endpoint, %why, "connection to conductor lost; trying the next endpoint");
                    if local.stopping.is_some() && local.running.is_empty() {
                        return Ok(());
                    }
                    index += 1;
                    if index % self.endpoints.len() == 0 {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }
    }

    fn hello(&self, local: &Local) -> pb::Hello {
        pb::Hello {
            worker_id: self.worker_id.clone(),
            tasks: self
                .handlers
                .iter()
                .map(|(name, h)| pb::TaskOffer {
                    name: name.clone(),
                    can_revert: h.revert.is_some(),
                    default_timeout_ms: h.default_timeout.map_or(0, |t| t.as_millis() as u64),
                })
                .collect(),
            slots: self.slots,
            labels: self.labels.clone(),
            sdk: format!("baton-rust/{}", env!("CARGO_PKG_VERSION")),
            running: local
                .running
                .values()
                .map(|r| pb::RunningAssignment {
                    dispatch_id: r.assign.dispatch_id.clone(),
                    job_id: r.assign.job_id.clone(),
                    atom: r.assign.atom.clone(),
                    attempt: r.assign.attempt,
                })
                .collect(),
        }
    }

    async fn connection<S: Future>(
        &self,
        endpoint: &str,
        local: &mut Local,
        mut shutdown: std::pin::Pin<&mut S>,
    ) -> Ended {
        let options = proto::ClientOptions {
            connect_timeout: Some(Duration::from_secs(2)),
            keep_alive: Some(Duration::from_secs(5)),
            ..self.options.clone()
        };
        let client = match proto::Client::connect_with_options(endpoint, &options).await {
            Ok(client) => client,
            Err(e) => return Ended::Lost(format!("cannot connect: {e}")),
        };
        let (up, up_rx) = mpsc::channel::<WorkerMessage>(1024);
        let send = |up: &mpsc::Sender<WorkerMessage>, msg: Up| up.try_send(WorkerMessage { msg: Some(msg) }).is_ok();
        send(&up, Up::Hello(self.hello(local)));
        let mut inbound = match client.workers().attach(ReceiverStream::new(up_rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) if refuses_for_good(status.code()) => return Ended::Refused(refusal(&status)),
            Err(status) => return Ended::Lost(format!("attach refused: {}", status.message())),
        };
        let welcome = match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await {
            Ok(Ok(Some(pb::ConductorMessage { msg: Some(Down::Welcome(w)) }))) => w,
            Ok(Err(status)) if refuses_for_good(status.code()) => return Ended::Refused(refusal(&status)),
            other => return Ended::Lost(format!("no welcome: {other:?}")),
        };
        tracing::info!(%endpoint, conductor = %welcome.conductor, worker = %self.worker_id, "worker connected");
        let silence = Duration::from_millis(welcome.heartbeat_timeout_ms.max(300));
        let mut beat = tokio::time::interval(Duration::from_millis(welcome.heartbeat_interval_ms.max(100)));
        let mut last_heard = Instant::now();
        if local.stopping.is_some() {
            send(&up, Up::Slots(pb::Slots { slots: 0 }));
        }
        loop {
            if local.stopping.is_some() && local.running.is_empty() {
                drop(up);
                // Half-closed: the conductor ends its side; don't wait long for it.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Ok(Some(_)) = inbound.message().await {}
                })
                .await;
                return Ended::Done;
            }
            let grace_over = async {
                match local.stopping {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = inbound.message() => {
                    last_heard = Instant::now();
                    match message {
                        Ok(Some(pb::ConductorMessage { msg: Some(msg) })) => self.take(msg, local),
                        Ok(Some(_)) => {}
                        Ok(None) => return Ended::Lost("the conductor closed the stream".to_owned()),
                        Err(status) => return Ended::Lost(format!("stream broke: {}", status.message())),
                    }
                }
                Some(event) = local.events.recv() => {
                    let msg = match event {
                        Event::Progress(p) => Up::Progress(p),
                        Event::Done(result) => {
                            local.running.remove(&result.dispatch_id);
                            Up::Result(result)
                        }
                    };
                    if !send(&up, msg) {
                        return Ended::Lost("the stream is not taking messages".to_owned());
                    }
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() > silence {
                        return Ended::Lost(format!("conductor silent for {} ms", last_heard.elapsed().as_millis()));
                    }
                    let free = self.slots.saturating_sub(local.running.len() as u32);
                    send(&up, Up::Heartbeat(pb::Heartbeat { free_slots: free }));
                }
                _ = &mut shutdown, if local.stopping.is_none() => {
                    tracing::info!(running = local.running.len(), "shutting down: taking no new work");
                    local.stopping = Some(Instant::now() + self.grace);
                    send(&up, Up::Slots(pb::Slots { slots: 0 }));
                }
                () = grace_over => {
                    for running in local.running.values() {
                        running.stop(Stop::HandedBack);
                    }
                }
            }
        }
    }

    /// One message from the conductor.
    fn take(&self, msg: Down, local: &mut Local) {
        match msg {
            Down::Assign(assign) => {
                let id = assign.dispatch_id.clone();
                let running = self.start(assign, &local.events_tx);
                local.running.insert(id, running);
            }
            Down::Cancel(cancel) => {
                if let Some(running) = local.running.get(&cancel.dispatch_id) {
                    tracing::info!(dispatch = %cancel.dispatch_id, reason = %cancel.reason, "cancel");
                    running.stop(Stop::Cancelled);
                }
            }
            Down::Error(error) => {
                tracing::warn!(code = error.code, message = %error.message, dispatch = %error.dispatch_id, "conductor refused a message")
            }
            Down::Heartbeat(_) | Down::Welcome(_) => {}
        }
    }
}

/// Answers no other endpoint or retry would change: a bad hello, or credentials the
/// conductor does not accept (UNAUTHENTICATED) or that lack the `worker` role
/// (PERMISSION_DENIED). Every conductor of a fleet shares one auth file.
fn refuses_for_good(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
}

/// The conductor's reason, with its code so a credentials problem reads as one.
fn refusal(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::InvalidArgument => status.message().to_owned(),
        code => format!("{} ({code:?})", status.message()),
    }
}
