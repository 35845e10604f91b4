//! One worker's `Attach` stream: the hello, then a reader that feeds results and
//! progress into the hub, heartbeats out, and the end of the worker (stream closed,
//! or silent longer than the heartbeat timeout) failing every call it held.

use std::time::Duration;

use proto::pb::{self, conductor_message::Msg as Down, worker_message::Msg as Up, ConductorMessage, WorkerMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::state::error;
use super::{wire, WorkerHub};

/// Messages queued for a worker before it counts as not reading.
const OUTBOX: usize = 4096;
/// Most tasks and slots one hello may declare.
const MOST_TASKS: usize = 10_000;
const MOST_SLOTS: u32 = 100_000;

/// Checks a hello; the message says what is wrong.
fn check_hello(hello: &pb::Hello) -> Result<(), String> {
    if hello.worker_id.trim().is_empty() || hello.worker_id.len() > 256 {
        return Err("hello: worker_id must be 1 to 256 characters".to_owned());
    }
    if hello.tasks.is_empty() || hello.tasks.len() > MOST_TASKS {
        return Err(format!("hello: offer 1 to {MOST_TASKS} tasks"));
    }
    if hello.slots == 0 || hello.slots > MOST_SLOTS {
        return Err(format!("hello: slots must be 1 to {MOST_SLOTS}"));
    }
    let mut names = std::collections::BTreeSet::new();
    for task in &hello.tasks {
        if task.name.trim().is_empty() {
            return Err("hello: a task with no name".to_owned());
        }
        if !names.insert(task.name.as_str()) {
            return Err(format!("hello: task {:?} offered twice", task.name));
        }
    }
    Ok(())
}

impl WorkerHub {
    /// Serves one `Attach` stream: reads the hello, registers the worker, and returns
    /// the stream of messages to it. The reader runs in its own task until the end.
    pub(crate) async fn attach(
        &self,
        mut inbound: Streaming<WorkerMessage>,
    ) -> Result<ReceiverStream<Result<ConductorMessage, Status>>, Status> {
        let settings = self.settings().clone();
        let first = tokio::time::timeout(settings.heartbeat_timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within the heartbeat timeout"))??;
        let Some(WorkerMessage { msg: Some(Up::Hello(hello)) }) = first else {
            return Err(Status::invalid_argument("the first message must be a Hello"));
        };
        check_hello(&hello).map_err(Status::invalid_argument)?;
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let id = hello.worker_id.clone();
        let orphans: Vec<String> = hello.running.iter().map(|r| r.dispatch_id.clone()).collect();
        let welcome = pb::Welcome {
            conductor: settings.conductor.clone(),
            heartbeat_interval_ms: millis(settings.heartbeat_interval()),
            heartbeat_timeout_ms: millis(settings.heartbeat_timeout),
            max_result_bytes: settings.max_result_bytes as u64,
        };
        let welcome = ConductorMessage { msg: Some(Down::Welcome(welcome)) };
        outbox.try_send(Ok(welcome)).map_err(|_| Status::internal("outbox full at hello"))?;
        for dispatch in &orphans {
            let cancel = pb::Cancel { dispatch_id: dispatch.clone(), reason: "orphan: nobody waits for it".to_owned() };
            outbox.try_send(Ok(ConductorMessage { msg: Some(Down::Cancel(cancel)) })).ok();
        }
        let (tasks, slots) = (hello.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>(), hello.slots);
        let session = self.lock().join(hello, outbox.clone()).map_err(Status::already_exists)?;
        tracing::info!(worker = %id, ?tasks, slots, orphans = orphans.len(), "worker connected");
        self.inner.capacity.notify_waiters();
        self.local_changed();
        let hub = self.clone();
        tokio::spawn(async move {
            let why = hub.read(&id, session, inbound, &outbox).await;
            if hub.lock().lose(&id, session, &why) {
                tracing::warn!(worker = %id, reason = %why, "worker gone");
            }
            hub.local_changed();
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Reads one worker's messages until its end; returns why it ended.
    async fn read(
        &self,
        id: &str,
        session: u64,
        mut inbound: Streaming<WorkerMessage>,
        outbox: &mpsc::Sender<Result<ConductorMessage, Status>>,
    ) -> String {
        let settings = self.settings().clone();
        let mut beat = tokio::time::interval(settings.heartbeat_interval());
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                message = inbound.message() => {
                    let message = match message {
                        Ok(Some(message)) => message,
                        Ok(None) => return "its stream closed".to_owned(),
                        Err(status) => return format!("its stream broke: {}", status.message()),
                    };
                    last_heard = Instant::now();
                    if let Some(problem) = self.take(id, session, message) {
                        tracing::debug!(worker = %id, ?problem, "protocol error");
                        if outbox.try_send(Ok(ConductorMessage { msg: Some(Down::Error(problem)) })).is_err() {
                            return "it stopped reading its stream".to_owned();
                        }
                    }
                }
                _ = beat.tick() => {
                    let silent = last_heard.elapsed();
                    if silent > settings.heartbeat_timeout {
                        return format!("no heartbeat for {} ms", silent.as_millis());
                    }
                    let free = self.lock().workers.get(id).map_or(0, |w| w.slots.saturating_sub(w.unanswered.len() as u32));
                    let heartbeat = ConductorMessage { msg: Some(Down::Heartbeat(pb::Heartbeat { free_slots: free })) };
                    if outbox.try_send(Ok(heartbeat)).is_err() {
                        return "it stopped reading its stream".to_owned();
                    }
                }
                () = self.inner.stop.cancelled() => return "the conductor is stopping".to_owned(),
            }
        }
    }

    /// One message of a worker; `Some` is the protocol error to send back.
    fn take(&self, id: &str, session: u64, message: WorkerMessage) -> Option<pb::ProtocolError> {
        use pb::protocol_error::Code;
        match message.msg {
            Some(Up::Result(result)) => {
                let (outcome, problem) = wire::outcome(&result, self.settings().max_result_bytes);
                let answered = self.lock().answer(id, session, &result.dispatch_id, result.attempt, outcome);
                self.inner.capacity.notify_waiters();
                answered.err().or(problem)
            }
            Some(Up::Progress(progress)) => self.lock().progress(id, session, &progress.dispatch_id).err(),
            Some(Up::Heartbeat(_)) => None,
            Some(Up::Slots(slots)) => {
                self.lock().set_slots(id, session, slots.slots);
                self.inner.capacity.notify_waiters();
                None
            }
            Some(Up::Hello(_)) => Some(error(Code::BadMessage, "a second Hello on one stream", "")),
            None => Some(error(Code::BadMessage, "an empty message", "")),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
