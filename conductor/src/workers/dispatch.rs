//! `Dispatch` for the hub: wait for a worker with a free slot (schedule-to-start),
//! send the assignment, then wait for its outcome under the execution and heartbeat
//! timeouts. Dropping the call (the engine stopped, the claim lost) cancels it. A
//! parked attempt's hand-off is an assignment too (action PARKED, with the callback).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowfile::remote::{only_executes_park, Dispatch, RemoteCall};
use flows::Failure;
use proto::pb;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::state::{Pending, Placed};
use super::{describe, wire, WorkerHub, HEARTBEAT_TIMEOUT, SCHEDULE_TO_START};

/// Where a dispatch went: cancelled there when its call is dropped unanswered.
enum Route {
    Local,
    Relay(super::relay::Link),
}

/// Cancels its dispatch when dropped, unless it was answered.
struct Inflight {
    hub: WorkerHub,
    dispatch: String,
    route: Route,
    reason: &'static str,
}

impl Drop for Inflight {
    fn drop(&mut self) {
        match &self.route {
            Route::Local => self.hub.lock().abandon(&self.dispatch, self.reason),
            Route::Relay(link) => link.abandon(&self.dispatch, self.reason),
        }
    }
}

/// Kind of the failure a relaying conductor answers when the worker had no free slot
/// after all: the call is placed again.
pub(crate) const NO_CAPACITY: &str = "NoCapacity";

/// The assignment of `call`; `callback_base` makes a hand-off's webhook URL.
fn assign_of(call: &RemoteCall, dispatch: &str, callback_base: Option<&str>) -> pb::Assign {
    let (result_json, failure) = match &call.revert {
        Some(Ok(value)) => (value.to_string(), None),
        Some(Err(failure)) => (String::new(), Some(wire::to_wire(failure))),
        None => (String::new(), None),
    };
    pb::Assign {
        dispatch_id: dispatch.to_owned(),
        action: match (&call.revert, &call.park) {
            (Some(_), _) => pb::Action::Revert,
            (None, Some(_)) => pb::Action::Parked,
            (None, None) => pb::Action::Execute,
        } as i32,
        task: call.task.clone(),
        job_id: call.job.to_string(),
        atom: call.atom.clone(),
        attempt: call.attempt,
        idempotency_key: format!("{}/{}/{}", call.job, call.atom, call.attempt),
        inputs_json: Value::Object(call.inputs.clone()).to_string(),
        timeout_ms: call.timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        heartbeat_timeout_ms: call.heartbeat_timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        result_json,
        failure,
        callback: call.park.as_ref().map(|handoff| pb::Callback {
            token: handoff.token.clone(),
            url: callback_base.map(|base| format!("{base}/v1/callbacks/{}", handoff.token)).unwrap_or_default(),
            deadline_ms: handoff.deadline,
        }),
    }
}

impl WorkerHub {
    /// Runs one remote call to its outcome.
    pub async fn run_call(&self, call: RemoteCall) -> Result<Value, Failure> {
        if let Some(Err(failure)) = &call.revert {
            if failure.kind == SCHEDULE_TO_START {
                // No worker ever ran it: there is nothing to undo.
                return Ok(Value::Null);
            }
        }
        let wait = call.schedule_to_start.unwrap_or(self.settings().schedule_to_start);
        let start_by = Instant::now() + wait;
        loop {
            let dispatch = Uuid::new_v4().to_string();
            let assign = assign_of(&call, &dispatch, self.settings().callback_base.as_deref());
            let progress = Arc::new(Notify::new());
            let (reply, outcome) = oneshot::channel();
            let asked = Instant::now();
            let (route, default_timeout_ms) = match self.start(&call, assign, reply, &progress, start_by, wait).await {
                Started::Sent(route, timeout) => {
                    if let Some(metrics) = self.metrics() {
                        metrics.dispatched(asked.elapsed());
                    }
                    (route, timeout)
                }
                Started::Done(outcome) => return outcome,
            };
            let guard = Inflight { hub: self.clone(), dispatch, route, reason: "the call was dropped" };
            match self.await_outcome(&call, guard, outcome, &progress, default_timeout_ms).await {
                Err(failure) if failure.kind == NO_CAPACITY && Instant::now() < start_by => continue,
                outcome => return only_executes_park(&call, outcome),
            }
        }
    }

    /// Places the assignment on a local worker, else relays it to one attached elsewhere,
    /// waiting for a free slot until `start_by`.
    async fn start(
        &self,
        call: &RemoteCall,
        assign: pb::Assign,
        reply: oneshot::Sender<Result<Value, Failure>>,
        progress: &Arc<Notify>,
        start_by: Instant,
        wait: Duration,
    ) -> Started {
        let mut reply = Some(reply);
        loop {
            let notified = self.inner.capacity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let placed = self.lock().place(&assign, None, |worker, session| Pending {
                worker,
                session,
                job: call.job,
                revert: call.revert.is_some(),
                reply: reply.take().unwrap_or_else(|| oneshot::channel().0),
                progress: progress.clone(),
            });
            let mut offered = match placed {
                Placed::Sent { worker, default_timeout_ms } => {
                    tracing::debug!(%worker, dispatch = %assign.dispatch_id, call = %describe(call), "assigned");
                    return Started::Sent(Route::Local, default_timeout_ms);
                }
                Placed::NoRevertHandler => return Started::Done(Ok(Value::Null)),
                Placed::Wait { offered } => offered,
            };
            match self.relay(call, &assign, &mut reply, progress).await {
                Relayed::Sent(link, timeout) => return Started::Sent(Route::Relay(link), timeout),
                Relayed::NoRevertHandler if !offered => return Started::Done(Ok(Value::Null)),
                Relayed::NoRevertHandler => {}
                Relayed::Wait { offered: elsewhere } => offered |= elsewhere,
            }
            tokio::select! {
                () = &mut notified => {}
                // Relay slot counts arrive with heartbeats; look again now and then.
                () = tokio::time::sleep(self.settings().heartbeat_interval()) => {}
                () = tokio::time::sleep_until(start_by) => {
                    let why = if offered { "every worker offering it is busy" } else { "no connected worker offers it" };
                    return Started::Done(Err(Failure::new(SCHEDULE_TO_START, format!(
                        "remote task {:?} ({}) not started within {} ms: {why}",
                        call.task, call.atom, wait.as_millis()
                    ))));
                }
                () = call.cancel.cancelled() => {
                    return Started::Done(Err(Failure::new(
                        flows::CANCELLED,
                        format!("remote task {:?} cancelled before it started", call.task),
                    )));
                }
            }
        }
    }

    /// Relays to the freest capable worker attached to another conductor, if any.
    async fn relay(
        &self,
        call: &RemoteCall,
        assign: &pb::Assign,
        reply: &mut Option<oneshot::Sender<Result<Value, Failure>>>,
        progress: &Arc<Notify>,
    ) -> Relayed {
        let revert = call.revert.is_some();
        let offering: Vec<jobboard::WorkerRecord> =
            self.elsewhere().into_iter().filter(|r| r.tasks.iter().any(|t| t.name == call.task)).collect();
        if offering.is_empty() {
            return Relayed::Wait { offered: false };
        }
        let capable: Vec<&jobboard::WorkerRecord> = offering
            .iter()
            .filter(|r| !revert || r.tasks.iter().any(|t| t.name == call.task && t.can_revert))
            .collect();
        if capable.is_empty() {
            return Relayed::NoRevertHandler;
        }
        let mut best: Option<(u32, &jobboard::WorkerRecord, super::relay::Link)> = None;
        for record in capable {
            let Some(link) = self.link(&record.conductor, &record.address).await else { continue };
            let free = link.free(&record.id, record.slots);
            if free > 0 && best.as_ref().is_none_or(|(f, ..)| free > *f) {
                best = Some((free, record, link));
            }
        }
        let Some((_, record, link)) = best else { return Relayed::Wait { offered: true } };
        let Some(sender) = reply.take() else { return Relayed::Wait { offered: true } };
        if let Err(sender) = link.send(&record.id, assign.clone(), sender, progress.clone()) {
            *reply = Some(sender);
            return Relayed::Wait { offered: true };
        }
        tracing::debug!(worker = %record.id, conductor = %record.conductor, call = %describe(call), "relayed");
        let timeout = record.tasks.iter().find(|t| t.name == call.task).map_or(0, |t| t.default_timeout_ms);
        Relayed::Sent(link, timeout)
    }

    /// Waits for the outcome under the execution and heartbeat timeouts and the cancel.
    async fn await_outcome(
        &self,
        call: &RemoteCall,
        mut guard: Inflight,
        mut outcome: oneshot::Receiver<Result<Value, Failure>>,
        progress: &Notify,
        default_timeout_ms: u64,
    ) -> Result<Value, Failure> {
        let limit = call.timeout.or((default_timeout_ms > 0).then(|| Duration::from_millis(default_timeout_ms)));
        let ends_by = limit.map(|l| Instant::now() + l);
        let mut beat_by = call.heartbeat_timeout.map(|h| Instant::now() + h);
        loop {
            tokio::select! {
                answered = &mut outcome => {
                    guard.reason = "answered";
                    return answered.unwrap_or_else(|_| Err(Failure::new(super::WORKER_LOST, "the hub dropped the call")));
                }
                () = progress.notified() => {
                    beat_by = call.heartbeat_timeout.map(|h| Instant::now() + h);
                }
                () = sleep_until_opt(ends_by) => {
                    guard.reason = "timeout";
                    let limit = limit.unwrap_or_default();
                    return Err(Failure::new(Failure::TIMEOUT, format!(
                        "remote task {:?} ({}) exceeded its timeout of {} ms", call.task, call.atom, limit.as_millis()
                    )));
                }
                () = sleep_until_opt(beat_by) => {
                    guard.reason = "heartbeat timeout";
                    return Err(Failure::new(HEARTBEAT_TIMEOUT, format!(
                        "remote task {:?} ({}) sent no progress for {} ms",
                        call.task, call.atom, call.heartbeat_timeout.unwrap_or_default().as_millis()
                    )));
                }
                () = call.cancel.cancelled() => {
                    guard.reason = "cancelled";
                    return Err(Failure::new(flows::CANCELLED, format!("remote task {:?} was cancelled", call.task)));
                }
            }
        }
    }
}

/// How placing ended.
enum Started {
    Sent(Route, u64),
    Done(Result<Value, Failure>),
}

/// How relaying went.
enum Relayed {
    Sent(super::relay::Link, u64),
    NoRevertHandler,
    Wait { offered: bool },
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[async_trait]
impl Dispatch for WorkerHub {
    async fn dispatch(&self, call: RemoteCall) -> Result<Value, Failure> {
        self.run_call(call).await
    }
}
