//! One atom job: a call into user code (a task's `execute` or `revert`) or a
//! retry's backoff wait, run inline (serial engine) or as a spawned tokio task
//! (parallel engine). Jobs write nothing: the run loop records the transition
//! before it launches a job (see `journal`) and records the outcome it returns.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use uuid::Uuid;

use super::control::EngineControl;
use crate::compile::{Compiled, NodeKind};
use crate::failure::Failure;
use crate::listener::Listener;
use crate::park::ParkedContext;
use crate::storage::Storage;
use crate::task::{ExecuteContext, RevertContext};

/// What every job of a run shares, and where the run writes.
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
    Execute(Result<ExecuteContext, Failure>),
    /// Call a task's `revert`.
    Revert(RevertContext),
    /// Wait out a retry's backoff before its next attempt.
    Delay(Duration),
    /// Call a task's `parked` hook: its park is recorded.
    Notify(ParkedContext),
}

/// What a job reports back.
pub(crate) enum Done {
    Executed(Result<Value, Failure>),
    Reverted(Result<(), Failure>),
    /// A retry's backoff is over: its next attempt may be decided.
    Delayed,
    /// A retry's backoff was cut short by a suspend or cancel: nothing was started.
    Interrupted,
    /// A `parked` hook ended, for this attempt.
    Notified(u32, Result<(), Failure>),
}

/// A finished job.
pub(crate) struct Completion {
    pub(crate) node: usize,
    pub(crate) done: Done,
}

/// Runs `action` on atom `node`.
pub(crate) async fn perform(shared: Arc<Shared>, node: usize, action: Action) -> Completion {
    let cnode = &shared.compiled.nodes[node];
    let done = match action {
        Action::Execute(Err(failure)) => Done::Executed(Err(failure)),
        Action::Execute(Ok(ctx)) => {
            let NodeKind::Task(spec) = &cnode.kind else { unreachable!("execute is only scheduled for tasks") };
            let call = AssertUnwindSafe(spec.task.execute(&ctx)).catch_unwind();
            let caught = match spec.timeout {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(caught) => caught,
                    Err(_) => Ok(Err(Failure::new(
                        Failure::TIMEOUT,
                        format!("{} exceeded its timeout of {} ms", cnode.name, limit.as_millis()),
                    ))),
                },
                None => call.await,
            };
            Done::Executed(caught.unwrap_or_else(|panic| Err(panic_failure(&cnode.name, panic.as_ref()))))
        }
        Action::Revert(ctx) => {
            let NodeKind::Task(spec) = &cnode.kind else { unreachable!("revert is only scheduled for tasks") };
            let outcome = AssertUnwindSafe(spec.call_revert(&ctx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_failure(&cnode.name, panic.as_ref())));
            Done::Reverted(outcome)
        }
        Action::Notify(ctx) => {
            let NodeKind::Task(spec) = &cnode.kind else { unreachable!("only tasks park") };
            let attempt = ctx.attempt();
            let outcome = AssertUnwindSafe(spec.task.parked(&ctx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_failure(&cnode.name, panic.as_ref())));
            Done::Notified(attempt, outcome)
        }
        Action::Delay(delay) => {
            // Waiting is not running: a suspend or cancel need not wait out a long backoff.
            tokio::select! {
                () = tokio::time::sleep(delay) => Done::Delayed,
                () = shared.control.stop_requested() => Done::Interrupted,
            }
        }
    };
    Completion { node, done }
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
