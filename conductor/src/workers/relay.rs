//! The relaying side: assignments for workers attached to another conductor travel
//! over one `Relay` stream per conductor (opened on first use to the address its
//! workers are recorded with). The other end answers results, progress, failures and
//! its workers' free slots. A broken or silent link fails every call it carried with
//! `WorkerLost` (the other end cancels what it relayed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flows::Failure;
use proto::pb::{self, relay_down::Msg as Back, relay_up::Msg as Out, RelayUp};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{wire, WorkerHub, WORKER_LOST};

/// How long opening a link may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A relayed call waiting for its outcome.
struct Waiting {
    reply: oneshot::Sender<Result<Value, Failure>>,
    progress: Arc<Notify>,
    job: String,
    revert: bool,
    /// The worker it went to (its slot comes back with the answer).
    worker: String,
}

/// One link to another conductor.
#[derive(Clone)]
pub(crate) struct Link {
    up: mpsc::Sender<RelayUp>,
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    /// Free slots of that conductor's workers, as it last said (absent: unknown).
    free: Arc<Mutex<HashMap<String, u32>>>,
    closed: CancellationToken,
}

/// The links of a hub, by conductor name.
#[derive(Default)]
pub(crate) struct Links {
    links: tokio::sync::Mutex<HashMap<String, Link>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Link {
    /// The free slots of `worker` as this link knows them, or `slots` if unknown.
    pub(crate) fn free(&self, worker: &str, slots: u32) -> u32 {
        lock(&self.free).get(worker).copied().unwrap_or(slots)
    }

    /// Sends `assign` for `worker`; the outcome arrives on `reply` (handed back if the
    /// link cannot take it).
    pub(crate) fn send(
        &self,
        worker: &str,
        assign: pb::Assign,
        reply: oneshot::Sender<Result<Value, Failure>>,
        progress: Arc<Notify>,
    ) -> Result<(), oneshot::Sender<Result<Value, Failure>>> {
        let dispatch = assign.dispatch_id.clone();
        let (job, revert) = (assign.job_id.clone(), assign.action == pb::Action::Revert as i32);
        let waiting = Waiting { reply, progress, job, revert, worker: worker.to_owned() };
        lock(&self.waiting).insert(dispatch.clone(), waiting);
        if let Some(free) = lock(&self.free).get_mut(worker) {
            *free = free.saturating_sub(1);
        }
        let message =
            RelayUp { msg: Some(Out::Assign(pb::RelayAssign { worker_id: worker.to_owned(), assign: Some(assign) })) };
        if self.up.try_send(message).is_err() {
            // Not sent: the caller keeps its reply and tries elsewhere.
            return match lock(&self.waiting).remove(&dispatch) {
                Some(waiting) => Err(waiting.reply),
                None => Ok(()),
            };
        }
        Ok(())
    }

    /// Stops waiting for `dispatch` and tells the other end.
    pub(crate) fn abandon(&self, dispatch: &str, reason: &str) {
        if lock(&self.waiting).remove(dispatch).is_some() {
            let cancel = pb::Cancel { dispatch_id: dispatch.to_owned(), reason: reason.to_owned() };
            let _ = self.up.try_send(RelayUp { msg: Some(Out::Cancel(cancel)) });
        }
    }

    /// Fails the relayed executes of `job` as cancelled and tells the other end.
    fn cancel_job(&self, job: &str) {
        let ids: Vec<String> =
            lock(&self.waiting).iter().filter(|(_, w)| w.job == job && !w.revert).map(|(id, _)| id.clone()).collect();
        for id in ids {
            if let Some(waiting) = lock(&self.waiting).remove(&id) {
                let cancel = pb::Cancel { dispatch_id: id, reason: "job cancelled".to_owned() };
                let _ = self.up.try_send(RelayUp { msg: Some(Out::Cancel(cancel)) });
                let _ = waiting.reply.send(Err(Failure::new(flows::CANCELLED, format!("job {job} was cancelled"))));
            }
        }
    }

    /// The answer to `dispatch` arrived: stop waiting, and count its worker's slot free
    /// again until the other end's next count says otherwise.
    fn answered(&self, dispatch: &str) -> Option<Waiting> {
        let waiting = lock(&self.waiting).remove(dispatch)?;
        if let Some(free) = lock(&self.free).get_mut(&waiting.worker) {
            *free += 1;
        }
        Some(waiting)
    }

    fn fail_all(&self, why: &str) {
        self.closed.cancel();
        for (_, waiting) in lock(&self.waiting).drain() {
            let _ = waiting.reply.send(Err(Failure::new(WORKER_LOST, why.to_owned())));
        }
    }
}

impl WorkerHub {
    /// Cancels the relayed executes of `job` on every link.
    pub(crate) async fn cancel_relayed(&self, job: String) {
        let links: Vec<Link> = self.inner.links.links.lock().await.values().cloned().collect();
        for link in links {
            link.cancel_job(&job);
        }
    }

    /// The link to `conductor` at `address`, opened if needed.
    pub(crate) async fn link(&self, conductor: &str, address: &str) -> Option<Link> {
        let mut links = self.inner.links.links.lock().await;
        if let Some(link) = links.get(conductor).filter(|l| !l.closed.is_cancelled()) {
            return Some(link.clone());
        }
        let peer = &self.settings().peer;
        let endpoint = peer.url(address);
        let keep_alive = self.settings().heartbeat_interval();
        let opened = async {
            let options = peer.client_options().map_err(|e| format!("peer credentials: {e}"))?;
            let channel = options
                .endpoint(&endpoint)
                .map_err(|e| e.to_string())?
                .connect_timeout(CONNECT_TIMEOUT)
                .http2_keep_alive_interval(keep_alive)
                .keep_alive_timeout(self.settings().heartbeat_timeout)
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("cannot connect: {}", error_chain(&e)))?;
            let (up, rx) = mpsc::channel(4096);
            let hello = pb::RelayHello { conductor: self.settings().conductor.clone() };
            up.try_send(RelayUp { msg: Some(Out::Hello(hello)) }).map_err(|e| e.to_string())?;
            let mut client = pb::relay_client::RelayClient::with_interceptor(channel, options.bearer())
                .max_decoding_message_size(64 << 20);
            let down =
                client.relay(ReceiverStream::new(rx)).await.map_err(|status| refused(&status, peer))?.into_inner();
            Ok::<_, String>((up, down))
        };
        let (up, down) = match tokio::time::timeout(CONNECT_TIMEOUT * 2, opened).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(why)) => {
                tracing::warn!(%conductor, %endpoint, %why, "cannot open a relay link");
                return None;
            }
            Err(_) => {
                tracing::warn!(%conductor, %endpoint, why = "timed out", "cannot open a relay link");
                return None;
            }
        };
        let link = Link { up, waiting: Arc::default(), free: Arc::default(), closed: CancellationToken::new() };
        tokio::spawn(self.clone().follow_link(conductor.to_owned(), link.clone(), down));
        links.insert(conductor.to_owned(), link.clone());
        tracing::info!(%conductor, %endpoint, "relay link opened");
        Some(link)
    }

    /// Reads one link until it breaks or goes silent, then fails what it carried.
    async fn follow_link(self, conductor: String, link: Link, mut down: tonic::Streaming<pb::RelayDown>) {
        let timeout = self.settings().heartbeat_timeout;
        let mut beat = tokio::time::interval(self.settings().heartbeat_interval());
        let mut last_heard = Instant::now();
        let max = self.settings().max_result_bytes;
        let why = loop {
            tokio::select! {
                message = down.message() => {
                    let back = match message {
                        Ok(Some(pb::RelayDown { msg: Some(back) })) => back,
                        Ok(Some(_)) => continue,
                        Ok(None) => break format!("the relay link to {conductor} closed"),
                        Err(status) => break format!("the relay link to {conductor} broke: {}", status.message()),
                    };
                    last_heard = Instant::now();
                    match back {
                        Back::Result(result) => {
                            if let Some(waiting) = link.answered(&result.dispatch_id) {
                                let _ = waiting.reply.send(wire::outcome(&result, max).0);
                                self.inner.capacity.notify_waiters();
                            }
                        }
                        Back::Failed(failed) => {
                            if let Some(waiting) = link.answered(&failed.dispatch_id) {
                                let failure = failed.failure.as_ref().map_or_else(|| Failure::new(WORKER_LOST, "relay failed"), wire::from_wire);
                                let _ = waiting.reply.send(Err(failure));
                            }
                        }
                        Back::Progress(progress) => {
                            if let Some(waiting) = lock(&link.waiting).get(&progress.dispatch_id) {
                                waiting.progress.notify_one();
                            }
                        }
                        Back::Slots(slots) => {
                            lock(&link.free).insert(slots.worker_id, slots.free);
                            self.inner.capacity.notify_waiters();
                        }
                        Back::Heartbeat(_) => {}
                    }
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() > timeout {
                        break format!("the relay link to {conductor} was silent for {} ms", last_heard.elapsed().as_millis());
                    }
                    let _ = link.up.try_send(RelayUp { msg: Some(Out::Heartbeat(pb::Heartbeat::default())) });
                }
                () = self.inner.stop.cancelled() => break "the conductor is stopping".to_owned(),
            }
        };
        tracing::warn!(%conductor, reason = %why, "relay link ended");
        link.fail_all(&format!("worker lost: {why}"));
        self.inner.capacity.notify_waiters();
        let mut links = self.inner.links.links.lock().await;
        if links.get(&conductor).is_some_and(|l| l.closed.is_cancelled()) {
            links.remove(&conductor);
        }
    }
}

/// Why the other conductor refused the relay, with what to do about credentials.
fn refused(status: &tonic::Status, peer: &crate::config::PeerSettings) -> String {
    let hint = match (status.code(), peer.has_credential()) {
        (tonic::Code::Unauthenticated, false) => {
            "; this conductor has no peer credential: give it --peer-token-file or --peer-cert/--peer-key"
        }
        (tonic::Code::Unauthenticated | tonic::Code::PermissionDenied, _) => {
            "; its peer credential must name an auth-file identity with the `peer` role"
        }
        _ => "",
    };
    format!("relay refused: {} ({:?}){hint}", status.message(), status.code())
}

/// An error with its causes (transport errors say little at the top).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
