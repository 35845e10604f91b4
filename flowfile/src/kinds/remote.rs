//! `remote`: runs the task on a remote worker (`with: {task: billing.charge, ...}`).
//!
//! The kind knows nothing of gRPC: it turns a call into a [`RemoteCall`] and hands it
//! to a [`Dispatch`], the seam a conductor fills with its worker hub (injected with
//! [`Kinds::remote_dispatch`](super::Kinds::remote_dispatch), as secrets are). `task`,
//! `schedule_to_start` and `heartbeat_timeout` are reserved; every other `with` value
//! joins the task's inputs, and the whole object is what the worker function receives
//! as keyword arguments. A remote task's revert is the worker's revert handler.
//! A worker may answer that the task parked: the dispatcher returns [`flows::Park`], and
//! once the park is recorded the token goes to the worker's parked handler (`parked.rs`).
//! [`RemoteTask`] is the same for Rust flows.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::sleep::duration;
use super::{is_deferred, require_keys, Call, Kind};

/// The reserved keys of a remote task's `with`.
pub const RESERVED: &[&str] = &["task", "schedule_to_start", "heartbeat_timeout"];

/// Kind of the failure when no dispatcher is injected (the CLI's offline checks, tests).
pub const NO_HUB: &str = "NoWorkerHub";

/// One remote call: what a dispatcher needs to send an assignment.
#[derive(Debug, Clone)]
pub struct RemoteCall {
    /// The job (logbook id).
    pub job: Uuid,
    /// The atom's name in the flow.
    pub atom: String,
    /// The worker task name (`with.task`).
    pub task: String,
    /// The engine's execute count for this atom (for a revert: the one undone).
    pub attempt: u32,
    /// The keyword arguments: the task's inputs and its other `with` values.
    pub inputs: Map<String, Value>,
    /// The flow file's `timeout` (overrides the worker's default for the task).
    pub timeout: Option<Duration>,
    /// How long to wait for a worker that offers the task and has a free slot.
    pub schedule_to_start: Option<Duration>,
    /// Fail unless the task reports progress this often.
    pub heartbeat_timeout: Option<Duration>,
    /// `Some` for a revert: what the execute being undone produced.
    pub revert: Option<Result<Value, Failure>>,
    /// Fires when the call is abandoned (timeout, job cancel, engine stopped).
    pub cancel: CancellationToken,
    /// `Some` for a parked attempt's hand-off: the callback for the task's parked handler.
    pub park: Option<Handoff>,
}

/// Sends remote calls to workers and waits for their outcome: the seam between
/// flow files and a conductor's worker hub.
#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Runs `call` on a worker; the value is the task's result (null for a revert and a
    /// hand-off). A worker that parks an execute makes it `Err(Park::after(timeout).into())`.
    async fn dispatch(&self, call: RemoteCall) -> Result<Value, Failure>;
}

/// A dispatcher for where there is no hub: every call fails, saying so.
struct Unconnected;

#[async_trait]
impl Dispatch for Unconnected {
    async fn dispatch(&self, call: RemoteCall) -> Result<Value, Failure> {
        Err(Failure::new(NO_HUB, format!("remote task {:?} ({}): no worker hub in this process", call.task, call.atom)))
    }
}

/// The `remote` kind.
#[derive(Clone)]
pub struct Remote {
    dispatch: Arc<dyn Dispatch>,
}

impl Remote {
    /// Sends calls to `dispatch`.
    pub fn new(dispatch: Arc<dyn Dispatch>) -> Self {
        Remote { dispatch }
    }

    /// Fails every call (for checking files offline).
    pub fn unconnected() -> Self {
        Remote::new(Arc::new(Unconnected))
    }
}

/// An optional duration setting, or the problem with it.
fn optional_duration(with: &Map<String, Value>, key: &str) -> Result<Option<Duration>, String> {
    match with.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => duration(v).map(Some).map_err(|e| format!("{key}: {e}")),
    }
}

/// Builds the call from resolved settings.
pub(crate) fn remote_call(with: Map<String, Value>, call: &Call) -> Result<RemoteCall, String> {
    let task = match with.get("task") {
        Some(Value::String(task)) if !task.trim().is_empty() => task.trim().to_owned(),
        Some(other) => return Err(format!("task: must be a worker task name, not {other}")),
        None => return Err("task: missing".to_owned()),
    };
    let schedule_to_start = optional_duration(&with, "schedule_to_start")?;
    let heartbeat_timeout = optional_duration(&with, "heartbeat_timeout")?;
    let mut inputs = call.inputs.clone();
    for (key, value) in with {
        if !RESERVED.contains(&key.as_str()) {
            inputs.insert(key, value);
        }
    }
    Ok(RemoteCall {
        job: call.job,
        atom: call.atom.to_string(),
        task,
        attempt: call.attempt,
        inputs,
        timeout: call.timeout,
        schedule_to_start,
        heartbeat_timeout,
        revert: if call.reverting { Some(call.outcome.clone().unwrap_or(Ok(Value::Null))) } else { None },
        cancel: call.cancel.clone(),
        park: None,
    })
}

#[async_trait]
impl Kind for Remote {
    fn name(&self) -> &'static str {
        "remote"
    }
    fn settings(&self) -> &'static [&'static str] {
        RESERVED
    }
    fn open_settings(&self) -> bool {
        true
    }
    fn reverts_itself(&self) -> bool {
        true
    }
    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        let mut problems = require_keys(with, &["task"]);
        match with.get("task") {
            Some(Value::String(task)) if task.trim().is_empty() => problems.push("task: must not be empty".to_owned()),
            Some(Value::String(_)) | None => {}
            Some(other) if is_deferred(other) => {}
            Some(other) => problems.push(format!("task: must be a worker task name, not {other}")),
        }
        for key in ["schedule_to_start", "heartbeat_timeout"] {
            if let Some(v) = with.get(key).filter(|v| !is_deferred(v)) {
                if let Err(e) = duration(v) {
                    problems.push(format!("{key}: {e}"));
                }
            }
        }
        problems
    }
    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        let remote = remote_call(with, call).map_err(Failure::task)?;
        self.dispatch.dispatch(remote).await
    }
    async fn parked(&self, with: Map<String, Value>, call: &Call, handoff: Handoff) -> Result<(), Failure> {
        let remote = RemoteCall { park: Some(handoff), ..remote_call(with, call).map_err(Failure::task)? };
        self.dispatch.dispatch(remote).await.map(|_| ())
    }
}

mod parked;
mod task;

pub use parked::{only_executes_park, Handoff, BAD_PARK};
pub use task::RemoteTask;

#[cfg(test)]
mod parked_tests;
#[cfg(test)]
mod tests;
