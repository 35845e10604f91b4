//! The hub's state under one mutex: connected workers with their slots, and the
//! dispatches engine calls are waiting on. Every method is short and never awaits.

use std::collections::{BTreeMap, HashMap, VecDeque};

use flows::Failure;
use proto::pb::{self, conductor_message::Msg as Down, ConductorMessage};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Recently answered dispatch ids a worker keeps (to tell a second result from an unknown id).
const ANSWERED_KEPT: usize = 256;

/// What a worker's stream writer takes.
pub(crate) type Outbox = mpsc::Sender<Result<ConductorMessage, tonic::Status>>;

/// One connected worker.
pub(crate) struct Worker {
    /// Which stream of this worker id (a reconnect is a new session).
    pub(crate) session: u64,
    pub(crate) hello: pb::Hello,
    pub(crate) since_ms: u64,
    pub(crate) slots: u32,
    /// Assignments sent and not answered, with their attempt (cancelled ones included:
    /// their slot is busy until the worker answers).
    pub(crate) unanswered: HashMap<String, u32>,
    answered: VecDeque<String>,
    pub(crate) outbox: Outbox,
}

impl Worker {
    fn free(&self) -> u32 {
        self.slots.saturating_sub(u32::try_from(self.unanswered.len()).unwrap_or(u32::MAX))
    }

    fn offer(&self, task: &str) -> Option<&pb::TaskOffer> {
        self.hello.tasks.iter().find(|t| t.name == task)
    }

    /// Queues a message; false if the worker is not reading (its outbox is full or closed).
    pub(crate) fn send(&self, msg: Down) -> bool {
        self.outbox.try_send(Ok(ConductorMessage { msg: Some(msg) })).is_ok()
    }
}

/// An engine call waiting for a worker's result.
pub(crate) struct Pending {
    pub(crate) worker: String,
    pub(crate) session: u64,
    pub(crate) job: Uuid,
    pub(crate) revert: bool,
    pub(crate) reply: oneshot::Sender<Result<Value, Failure>>,
    pub(crate) progress: std::sync::Arc<tokio::sync::Notify>,
}

/// The outcome of trying to place an assignment.
pub(crate) enum Placed {
    /// Sent to this worker; its default timeout for the task.
    Sent { worker: String, default_timeout_ms: u64 },
    /// Workers offer the task but none can revert it: nothing to undo.
    NoRevertHandler,
    /// No worker offers the task (false) or none has a free slot (true).
    Wait { offered: bool },
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) workers: BTreeMap<String, Worker>,
    pub(crate) pending: HashMap<String, Pending>,
    next_session: u64,
    /// Rotates ties between equally free workers.
    turn: usize,
}

impl State {
    /// Adds a worker; `Err` if the id is connected already.
    pub(crate) fn join(&mut self, hello: pb::Hello, outbox: Outbox) -> Result<u64, String> {
        if self.workers.contains_key(&hello.worker_id) {
            return Err(format!("worker id {:?} is already connected", hello.worker_id));
        }
        self.next_session += 1;
        let session = self.next_session;
        let mut unanswered = HashMap::new();
        for running in &hello.running {
            // Nobody waits for work of an earlier stream (its calls failed when it broke):
            // the slot stays busy until the worker answers the Cancel it gets.
            unanswered.insert(running.dispatch_id.clone(), running.attempt);
        }
        let worker = Worker {
            session,
            slots: hello.slots,
            since_ms: flows::now_millis(),
            hello,
            unanswered,
            answered: VecDeque::new(),
            outbox,
        };
        self.workers.insert(worker.hello.worker_id.clone(), worker);
        Ok(session)
    }

    /// Places one assignment on the freest capable worker, reserving its slot.
    /// `prefer` (a relayed assignment names its worker) wins when it can take it.
    pub(crate) fn place(
        &mut self,
        assign: &pb::Assign,
        prefer: Option<&str>,
        pending: impl FnOnce(String, u64) -> Pending,
    ) -> Placed {
        let revert = assign.action == pb::Action::Revert as i32;
        let offering: Vec<&Worker> = self.workers.values().filter(|w| w.offer(&assign.task).is_some()).collect();
        if offering.is_empty() {
            return Placed::Wait { offered: false };
        }
        let capable: Vec<&Worker> =
            offering.into_iter().filter(|w| !revert || w.offer(&assign.task).is_some_and(|o| o.can_revert)).collect();
        if capable.is_empty() {
            return Placed::NoRevertHandler;
        }
        let best = capable.iter().map(|w| w.free()).max().unwrap_or(0);
        if best == 0 {
            return Placed::Wait { offered: true };
        }
        let ties: Vec<&str> = capable.iter().filter(|w| w.free() == best).map(|w| w.hello.worker_id.as_str()).collect();
        self.turn = self.turn.wrapping_add(1);
        let preferred = prefer.filter(|p| capable.iter().any(|w| w.hello.worker_id == *p && w.free() > 0));
        let chosen = preferred.unwrap_or(ties[self.turn % ties.len()]).to_owned();
        let Some(worker) = self.workers.get_mut(&chosen) else { return Placed::Wait { offered: true } };
        let default_timeout_ms = worker.offer(&assign.task).map_or(0, |o| o.default_timeout_ms);
        if !worker.send(Down::Assign(assign.clone())) {
            // Not reading: its stream task will notice the silence; try the others now.
            let session = worker.session;
            self.lose(&chosen, session, "its stream stopped taking messages");
            return Placed::Wait { offered: true };
        }
        worker.unanswered.insert(assign.dispatch_id.clone(), assign.attempt);
        let session = worker.session;
        self.pending.insert(assign.dispatch_id.clone(), pending(chosen.clone(), session));
        Placed::Sent { worker: chosen, default_timeout_ms }
    }

    /// Stops waiting for `dispatch` (timeout, cancel, the call dropped) and tells its worker.
    pub(crate) fn abandon(&mut self, dispatch: &str, reason: &str) {
        let Some(pending) = self.pending.remove(dispatch) else { return };
        if let Some(worker) = self.workers.get(&pending.worker).filter(|w| w.session == pending.session) {
            worker.send(Down::Cancel(pb::Cancel { dispatch_id: dispatch.to_owned(), reason: reason.to_owned() }));
        }
    }

    /// Fails the running executes of `job` as cancelled and tells their workers.
    pub(crate) fn cancel_job(&mut self, job: Uuid) {
        let ids: Vec<String> =
            self.pending.iter().filter(|(_, p)| p.job == job && !p.revert).map(|(id, _)| id.clone()).collect();
        for id in ids {
            let Some(pending) = self.pending.remove(&id) else { continue };
            if let Some(worker) = self.workers.get(&pending.worker).filter(|w| w.session == pending.session) {
                worker.send(Down::Cancel(pb::Cancel { dispatch_id: id.clone(), reason: "job cancelled".to_owned() }));
            }
            let _ = pending.reply.send(Err(Failure::new(flows::CANCELLED, format!("job {job} was cancelled"))));
        }
    }

    /// Ends a worker session: every call it held fails as lost. Returns whether it was there.
    pub(crate) fn lose(&mut self, id: &str, session: u64, why: &str) -> bool {
        if self.workers.get(id).is_none_or(|w| w.session != session) {
            return false;
        }
        let Some(worker) = self.workers.remove(id) else { return false };
        for dispatch in worker.unanswered.keys() {
            if let Some(pending) = self.pending.remove(dispatch) {
                let failure = Failure::new(super::WORKER_LOST, format!("worker {id} was lost: {why}"));
                let _ = pending.reply.send(Err(failure));
            }
        }
        true
    }

    /// A worker's result. `Err` is the protocol error to send back.
    pub(crate) fn answer(
        &mut self,
        id: &str,
        session: u64,
        dispatch: &str,
        attempt: u32,
        outcome: Result<Value, Failure>,
    ) -> Result<(), pb::ProtocolError> {
        let Some(worker) = self.workers.get_mut(id).filter(|w| w.session == session) else { return Ok(()) };
        let Some(sent_attempt) = worker.unanswered.remove(dispatch) else {
            let (code, what) = if worker.answered.iter().any(|d| d == dispatch) {
                (pb::protocol_error::Code::StaleResult, "a second result for this dispatch; dropped")
            } else {
                (pb::protocol_error::Code::UnknownDispatch, "no assignment with this dispatch id was sent to you")
            };
            return Err(error(code, what, dispatch));
        };
        if worker.answered.len() == ANSWERED_KEPT {
            worker.answered.pop_front();
        }
        worker.answered.push_back(dispatch.to_owned());
        let pending = self.pending.remove(dispatch);
        if sent_attempt != attempt {
            if let Some(pending) = pending {
                let message = format!("worker {id} answered attempt {attempt} for attempt {sent_attempt}");
                let _ = pending.reply.send(Err(Failure::new("WorkerProtocolError", message)));
            }
            return Err(error(
                pb::protocol_error::Code::StaleResult,
                &format!("the result names attempt {attempt}, the assignment was attempt {sent_attempt}"),
                dispatch,
            ));
        }
        match pending {
            Some(pending) => {
                let _ = pending.reply.send(outcome);
                Ok(())
            }
            // Cancelled, timed out or orphaned: nobody waits, and the worker was told.
            None => Ok(()),
        }
    }

    /// Progress for a dispatch of this worker.
    pub(crate) fn progress(&self, id: &str, session: u64, dispatch: &str) -> Result<(), pb::ProtocolError> {
        match self.pending.get(dispatch) {
            Some(p) if p.worker == id && p.session == session => {
                p.progress.notify_one();
                Ok(())
            }
            _ if self.workers.get(id).is_some_and(|w| w.unanswered.contains_key(dispatch)) => Ok(()),
            _ => Err(error(pb::protocol_error::Code::UnknownDispatch, "progress for an unknown dispatch", dispatch)),
        }
    }

    /// A worker's new slot count.
    pub(crate) fn set_slots(&mut self, id: &str, session: u64, slots: u32) {
        if let Some(worker) = self.workers.get_mut(id).filter(|w| w.session == session) {
            worker.slots = slots;
        }
    }

    /// Free slots of every worker (what relays tell the conductors that relay to us).
    pub(crate) fn free_slots(&self) -> Vec<(String, u32)> {
        self.workers.values().map(|w| (w.hello.worker_id.clone(), w.free())).collect()
    }

    /// The workers as the board records them.
    pub(crate) fn records(&self, conductor: &str, address: &str) -> Vec<(u64, jobboard::WorkerRecord)> {
        self.workers
            .values()
            .map(|w| {
                let tasks = w
                    .hello
                    .tasks
                    .iter()
                    .map(|t| jobboard::WorkerTask {
                        name: t.name.clone(),
                        can_revert: t.can_revert,
                        default_timeout_ms: t.default_timeout_ms,
                    })
                    .collect();
                let record = jobboard::WorkerRecord {
                    id: w.hello.worker_id.clone(),
                    conductor: conductor.to_owned(),
                    address: address.to_owned(),
                    tasks,
                    slots: w.hello.slots,
                    labels: w.hello.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    sdk: w.hello.sdk.clone(),
                    since: w.since_ms,
                };
                (w.session, record)
            })
            .collect()
    }

    /// The workers as `ListWorkers` shows them.
    pub(crate) fn list(&self, conductor: &str) -> Vec<pb::WorkerInfo> {
        self.workers
            .values()
            .map(|w| pb::WorkerInfo {
                worker_id: w.hello.worker_id.clone(),
                conductor: conductor.to_owned(),
                tasks: w.hello.tasks.clone(),
                slots: w.slots,
                slots_in_use: Some(u32::try_from(w.unanswered.len()).unwrap_or(u32::MAX)),
                labels: w.hello.labels.clone(),
                sdk: w.hello.sdk.clone(),
                connected_since_ms: w.since_ms,
            })
            .collect()
    }
}

/// A protocol error message.
pub(crate) fn error(code: pb::protocol_error::Code, message: &str, dispatch: &str) -> pb::ProtocolError {
    pb::ProtocolError { code: code as i32, message: message.to_owned(), dispatch_id: dispatch.to_owned() }
}
