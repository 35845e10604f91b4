//! One atom action (execute or revert a task or a retry) with its write-ahead
//! persistence: the transition is saved before the action is taken, and the
//! outcome is saved before the engine learns of it. A job runs inline (serial
//! engine) or as a spawned tokio task (parallel engine).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use uuid::Uuid;

use super::control::EngineControl;
use crate::compile::{Compiled, NodeKind};
use crate::error::Error;
use crate::failure::Failure;
use crate::listener::{notify, AtomEvent, Listener};
use crate::logbook::{now_millis, AtomDetail, Attempt};
use crate::state::{check_atom_transition, AtomState, Intention};
use crate::storage::Storage;
use crate::task::{ExecuteContext, Inputs, RevertContext};

/// What every job of a run shares.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) book: Uuid,
    pub(crate) flow_id: Uuid,
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) listeners: Arc<[Arc<dyn Listener>]>,
    /// Lets a retry delay end early on suspend or cancel.
    pub(crate) control: EngineControl,
}

/// What to do with an atom.
pub(crate) enum Action {
    /// Call a task's `execute` (or fail it at once if its inputs could not be found).
    Execute { inputs: Result<Inputs, Failure> },
    /// Call a task's `revert`.
    Revert { inputs: Inputs, flow_failures: BTreeMap<String, Failure> },
    /// Wait `delay`, then ask a retry controller for the next attempt's value.
    RetryExecute { inputs: Inputs, delay: Duration },
    /// Revert a retry controller: forget its history.
    RetryRevert,
}

/// What a job reports back.
pub(crate) enum Done {
    Executed(Result<Value, Failure>),
    Reverted(Result<(), Failure>),
    /// A retry's delay was cut short by a suspend or cancel: nothing was started or recorded.
    Interrupted,
}

/// A finished job: the atom's detail as now persisted, and the outcome.
pub(crate) struct Completion {
    pub(crate) node: usize,
    pub(crate) detail: AtomDetail,
    pub(crate) outcome: Result<Done, Error>,
}

impl Shared {
    /// Checks, applies, persists and announces a transition of `detail`.
    pub(crate) async fn transition(&self, detail: &mut AtomDetail, to: AtomState) -> Result<(), Error> {
        let from = detail.state;
        if !check_atom_transition(from, to) {
            return Err(Error::IllegalTransition { atom: detail.name.clone(), from, to });
        }
        detail.state = to;
        detail.version += 1;
        if let Err(e) = self.storage.save_atom(self.book, self.flow_id, detail).await {
            // Unrecorded, so not applied: the detail keeps the state the logbook holds.
            detail.state = from;
            detail.version -= 1;
            return Err(e.into());
        }
        if !self.listeners.is_empty() {
            let event = AtomEvent {
                flow: &self.compiled.name,
                atom: &detail.name,
                from,
                to,
                result: if to == AtomState::Success { detail.result.as_ref() } else { None },
                failure: match to {
                    AtomState::Failure => detail.failure.as_ref(),
                    AtomState::RevertFailure => detail.revert_failure.as_ref(),
                    _ => None,
                },
            };
            notify(&self.listeners, |l| l.on_atom(&event));
        }
        Ok(())
    }
}

/// Runs `action` on atom `node`, persisting every step.
pub(crate) async fn perform(shared: Arc<Shared>, node: usize, mut detail: AtomDetail, action: Action) -> Completion {
    let outcome = act(&shared, node, &mut detail, action).await;
    Completion { node, detail, outcome }
}

async fn act(shared: &Shared, node: usize, detail: &mut AtomDetail, action: Action) -> Result<Done, Error> {
    let cnode = &shared.compiled.nodes[node];
    match action {
        Action::Execute { inputs } => {
            let NodeKind::Task(spec) = &cnode.kind else { unreachable!("execute is only scheduled for tasks") };
            begin_execute(shared, detail).await?;
            let outcome = match inputs {
                Err(failure) => Err(failure),
                Ok(inputs) => {
                    let ctx = ExecuteContext::new(cnode.shared_name.clone(), inputs, detail.executions);
                    let call = AssertUnwindSafe(spec.task.execute(&ctx)).catch_unwind();
                    let caught = match spec.timeout {
                        Some(limit) => match tokio::time::timeout(limit, call).await {
                            Ok(caught) => caught,
                            Err(_) => Ok(Err(Failure::new(
                                Failure::TIMEOUT,
                                format!("{} exceeded its timeout of {} ms", detail.name, limit.as_millis()),
                            ))),
                        },
                        None => call.await,
                    };
                    caught.unwrap_or_else(|panic| Err(panic_failure(&detail.name, panic.as_ref())))
                }
            };
            finish_execute(shared, detail, outcome).await
        }
        Action::RetryExecute { inputs, delay } => {
            let NodeKind::Retry { retry, .. } = &cnode.kind else { unreachable!("retry execute is only for retries") };
            if !delay.is_zero() {
                // Waiting is not running: a suspend or cancel need not wait out a long backoff.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.control.stop_requested() => return Ok(Done::Interrupted),
                }
            }
            begin_execute(shared, detail).await?;
            let outcome = retry.controller.execute(&detail.attempts, &inputs);
            if let Ok(value) = &outcome {
                detail.attempts.push(Attempt { value: value.clone(), failures: BTreeMap::new() });
            }
            finish_execute(shared, detail, outcome).await
        }
        Action::Revert { inputs, flow_failures } => {
            let NodeKind::Task(spec) = &cnode.kind else { unreachable!("revert is only scheduled for tasks") };
            detail.intention = Intention::Revert;
            shared.transition(detail, AtomState::Reverting).await?;
            let outcome = match (&detail.failure, &detail.result) {
                (Some(f), _) => Err(f.clone()),
                (None, Some(v)) => Ok(v.clone()),
                (None, None) => Ok(Value::Null),
            };
            let ctx = RevertContext::new(cnode.shared_name.clone(), inputs, outcome, flow_failures);
            let outcome = AssertUnwindSafe(spec.call_revert(&ctx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_failure(&detail.name, panic.as_ref())));
            finish_revert(shared, detail, outcome).await
        }
        Action::RetryRevert => {
            detail.intention = Intention::Revert;
            shared.transition(detail, AtomState::Reverting).await?;
            // As in TaskFlow, a reverted retry forgets its history: a later run starts over.
            detail.attempts.clear();
            finish_revert(shared, detail, Ok(())).await
        }
    }
}

/// Records RUNNING (and the execution it starts) before anything is called.
async fn begin_execute(shared: &Shared, detail: &mut AtomDetail) -> Result<(), Error> {
    detail.intention = Intention::Execute;
    detail.executions += 1;
    detail.started_at = Some(now_millis());
    shared.transition(detail, AtomState::Running).await
}

async fn finish_execute(
    shared: &Shared,
    detail: &mut AtomDetail,
    outcome: Result<Value, Failure>,
) -> Result<Done, Error> {
    detail.finished_at = Some(now_millis());
    let to = match &outcome {
        Ok(value) => {
            detail.result = Some(value.clone());
            detail.failure = None;
            AtomState::Success
        }
        Err(failure) => {
            detail.result = None;
            detail.failure = Some(failure.clone());
            AtomState::Failure
        }
    };
    shared.transition(detail, to).await?;
    Ok(Done::Executed(outcome))
}

async fn finish_revert(shared: &Shared, detail: &mut AtomDetail, outcome: Result<(), Failure>) -> Result<Done, Error> {
    detail.finished_at = Some(now_millis());
    let to = match &outcome {
        Ok(()) => {
            detail.revert_failure = None;
            AtomState::Reverted
        }
        Err(failure) => {
            detail.revert_failure = Some(failure.clone());
            AtomState::RevertFailure
        }
    };
    shared.transition(detail, to).await?;
    Ok(Done::Reverted(outcome))
}

/// A panic caught in user code (a task, or a decider) as a failure naming `atom`.
pub(crate) fn panic_failure(atom: &str, panic: &(dyn std::any::Any + Send)) -> Failure {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned());
    Failure::new(Failure::PANIC, format!("{atom} panicked: {message}"))
}
