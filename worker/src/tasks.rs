//! Running one assignment: find its function, parse its inputs, run it until it
//! ends or is cancelled (a panic is a failure too), and report the outcome (an
//! execute that returned [`Park`] reports `parked`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use proto::pb;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::builder::Worker;
use crate::context::{Context, TaskError, Undo};
use crate::park::{Callback, Park};
use crate::run::Event;

/// How long task code has to end by itself after a cancel before its future is dropped.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a running assignment was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The conductor sent Cancel.
    Cancelled,
    /// The worker is shutting down past its grace: the attempt is handed back.
    HandedBack,
}

/// One assignment running here.
pub(crate) struct Running {
    pub(crate) cancel: CancellationToken,
    pub(crate) stop: Arc<std::sync::Mutex<Option<Stop>>>,
    pub(crate) assign: Arc<pb::Assign>,
}

impl Running {
    /// Stops it; its outcome says why.
    pub(crate) fn stop(&self, why: Stop) {
        if let Ok(mut stop) = self.stop.lock() {
            stop.get_or_insert(why);
        }
        self.cancel.cancel();
    }
}

impl Worker {
    /// Starts `assign` in its own task; its outcome arrives as `Event::Done`.
    pub(crate) fn start(&self, mut assign: pb::Assign, events: &mpsc::UnboundedSender<Event>) -> Running {
        // The token goes to the parked handler only, never into the Context (whose Debug shows the assignment).
        let callback =
            assign.callback.take().map(|c| Callback { token: c.token, url: c.url, deadline_ms: c.deadline_ms });
        let assign = Arc::new(assign);
        let cancel = CancellationToken::new();
        let stop = Arc::new(std::sync::Mutex::new(None));
        let ctx = Context { assign: assign.clone(), cancel: cancel.clone(), events: events.clone() };
        let (handlers, events, stop_reason) = (self.handlers.clone(), events.clone(), stop.clone());
        tokio::spawn(async move {
            let assign = ctx.assign.clone();
            let run = AssertUnwindSafe(call(&handlers, ctx.clone(), callback)).catch_unwind();
            tokio::pin!(run);
            let ran = tokio::select! {
                ran = &mut run => Some(ran),
                () = ctx.cancel.cancelled() => {
                    // Task code watching `ctx.cancelled()` gets a moment to end by itself.
                    tokio::time::timeout(CANCEL_GRACE, &mut run).await.ok()
                }
            };
            let outcome = match ran {
                Some(ran) => ran.unwrap_or_else(|panic| Err(TaskError::new("Panic", panic_text(&panic)))),
                None => Err(match stop_reason.lock().ok().and_then(|s| *s) {
                    Some(Stop::HandedBack) => {
                        TaskError::new("WorkerLost", "the worker shut down before the task ended; handed back")
                    }
                    _ => TaskError::new("Cancelled", "cancelled by the conductor"),
                }),
            };
            let outcome = match outcome {
                Ok(value) => pb::result::Outcome::Success(pb::Success { result_json: value.to_string() }),
                Err(failure) => match Park::from_error(&failure) {
                    Some(park) => pb::result::Outcome::Parked(pb::Parked {
                        timeout_ms: u64::try_from(park.timeout().as_millis()).unwrap_or(u64::MAX),
                    }),
                    None => pb::result::Outcome::Failure(failure.to_wire()),
                },
            };
            let result =
                pb::Result { dispatch_id: assign.dispatch_id.clone(), attempt: assign.attempt, outcome: Some(outcome) };
            let _ = events.send(Event::Done(result));
        });
        Running { cancel, stop, assign }
    }
}

/// Runs the function the assignment names.
async fn call(
    handlers: &std::collections::BTreeMap<String, crate::builder::Handler>,
    ctx: Context,
    callback: Option<Callback>,
) -> Result<Value, TaskError> {
    let assign = ctx.assign.clone();
    let Some(handler) = handlers.get(&assign.task) else {
        return Err(TaskError::new("UnknownTask", format!("this worker has no task {:?}", assign.task)));
    };
    let args: Map<String, Value> = if assign.inputs_json.is_empty() {
        Map::new()
    } else {
        serde_json::from_str(&assign.inputs_json)
            .map_err(|e| TaskError::new("BadInputs", format!("inputs_json is not a JSON object: {e}")))?
    };
    if assign.action == pb::Action::Parked as i32 {
        let Some(parked) = &handler.parked else {
            return Err(TaskError::new(
                "NoParkedHandler",
                format!("task {:?} has no parked handler here", assign.task),
            ));
        };
        let callback = callback.unwrap_or(Callback { token: String::new(), url: String::new(), deadline_ms: 0 });
        return parked(ctx, args, callback).await.map(|()| Value::Null);
    }
    if assign.action == pb::Action::Revert as i32 {
        let Some(revert) = &handler.revert else { return Ok(Value::Null) };
        let undo = match &assign.failure {
            Some(failure) => Undo::Failure(TaskError::from_wire(failure)),
            None => Undo::Result(serde_json::from_str(&assign.result_json).unwrap_or(Value::Null)),
        };
        revert(ctx, args, undo).await
    } else {
        let outcome = (handler.execute)(ctx, args).await;
        match outcome.as_ref().err().and_then(Park::from_error) {
            // Without a parked handler the token would reach nobody: fail now, not at the deadline.
            Some(park) if handler.parked.is_none() => Err(TaskError::new(
                "NoParkedHandler",
                format!(
                    "task {:?} parked (for {} ms) but has no parked handler",
                    assign.task,
                    park.timeout().as_millis()
                ),
            )),
            Some(park) if park.timeout().is_zero() => Err(TaskError::new("BadPark", "a park needs a timeout")),
            _ => outcome,
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the task panicked".to_owned())
}
