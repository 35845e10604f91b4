//! `Dispatch` for the hub: wait for a worker with a free slot (schedule-to-start),
//! send the assignment, then wait for its outcome under the execution and heartbeat
//! timeouts. Dropping the call (the engine stopped, the claim lost) cancels it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowfile::remote::{Dispatch, RemoteCall};
use flows::Failure;
use proto::pb;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::state::{Pending, Placed};
use super::{describe, wire, WorkerHub, HEARTBEAT_TIMEOUT, SCHEDULE_TO_START};

/// Cancels its dispatch when dropped, unless it was answered.
struct Inflight {
    hub: WorkerHub,
    dispatch: String,
    reason: &'static str,
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.hub.lock().abandon(&self.dispatch, self.reason);
    }
}

fn assign_of(call: &RemoteCall, dispatch: &str) -> pb::Assign {
    let (result_json, failure) = match &call.revert {
        Some(Ok(value)) => (value.to_string(), None),
        Some(Err(failure)) => (String::new(), Some(wire::to_wire(failure))),
        None => (String::new(), None),
    };
    pb::Assign {
        dispatch_id: dispatch.to_owned(),
        action: if call.revert.is_some() { pb::Action::Revert } else { pb::Action::Execute } as i32,
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
        let dispatch = Uuid::new_v4().to_string();
        let mut assign = assign_of(&call, &dispatch);
        let wait = call.schedule_to_start.unwrap_or(self.settings().schedule_to_start);
        let start_by = Instant::now() + wait;
        let (reply, mut outcome) = oneshot::channel();
        let mut reply = Some(reply);
        let progress = Arc::new(Notify::new());
        let default_timeout_ms = loop {
            let notified = self.inner.capacity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let placed = self.lock().place(&assign, |worker, session| Pending {
                worker,
                session,
                job: call.job,
                revert: call.revert.is_some(),
                reply: reply.take().unwrap_or_else(|| oneshot::channel().0),
                progress: progress.clone(),
            });
            let offered = match placed {
                Placed::Sent { worker, default_timeout_ms } => {
                    tracing::debug!(%worker, dispatch = %dispatch, call = %describe(&call), "assigned");
                    break default_timeout_ms;
                }
                Placed::NoRevertHandler => return Ok(Value::Null),
                Placed::Wait { offered } => offered,
            };
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(start_by) => {
                    let why = if offered { "every worker offering it is busy" } else { "no connected worker offers it" };
                    return Err(Failure::new(SCHEDULE_TO_START, format!(
                        "remote task {:?} ({}) not started within {} ms: {why}",
                        call.task, call.atom, wait.as_millis()
                    )));
                }
                () = call.cancel.cancelled() => {
                    return Err(Failure::new(flows::CANCELLED, format!("remote task {:?} cancelled before it started", call.task)));
                }
            }
        };
        let mut guard = Inflight { hub: self.clone(), dispatch, reason: "the call was dropped" };
        let limit = call.timeout.or((default_timeout_ms > 0).then(|| Duration::from_millis(default_timeout_ms)));
        if assign.timeout_ms == 0 {
            assign.timeout_ms = default_timeout_ms;
        }
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
