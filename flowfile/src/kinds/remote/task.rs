//! `RemoteTask`: a remote worker task in a Rust flow (`flows::Task`), through the same
//! [`Dispatch`] seam as a flow file's `kind: remote` (a conductor's worker hub).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::{ExecuteContext, Failure, ParkedContext, RevertContext, Task};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{Dispatch, Handoff, RemoteCall};

/// A task that runs on a remote worker offering `task`. Its inputs (requires, rebinds)
/// plus the values given with [`arg`](RemoteTask::arg) are the worker function's
/// keyword arguments; its revert is the worker's revert handler.
#[derive(Clone)]
pub struct RemoteTask {
    dispatch: Arc<dyn Dispatch>,
    task: String,
    args: Map<String, Value>,
    timeout: Option<Duration>,
    schedule_to_start: Option<Duration>,
    heartbeat_timeout: Option<Duration>,
}

impl RemoteTask {
    /// Worker task `task`, sent through `dispatch` (e.g. `conductor::Daemon::workers()`).
    pub fn new(dispatch: Arc<dyn Dispatch>, task: impl Into<String>) -> Self {
        RemoteTask {
            dispatch,
            task: task.into(),
            args: Map::new(),
            timeout: None,
            schedule_to_start: None,
            heartbeat_timeout: None,
        }
    }

    /// A fixed keyword argument.
    #[must_use]
    pub fn arg(mut self, name: impl Into<String>, value: Value) -> Self {
        self.args.insert(name.into(), value);
        self
    }

    /// The execution timeout (overrides the worker's default for the task).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long to wait for a worker with a free slot.
    #[must_use]
    pub fn schedule_to_start(mut self, wait: Duration) -> Self {
        self.schedule_to_start = Some(wait);
        self
    }

    /// Fail unless the task reports progress this often.
    #[must_use]
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    fn call(&self, atom: &str, attempt: u32, job: uuid::Uuid, inputs: &Map<String, Value>) -> RemoteCall {
        let mut args = inputs.clone();
        args.extend(self.args.clone());
        RemoteCall {
            job,
            atom: atom.to_owned(),
            task: self.task.clone(),
            attempt,
            inputs: args,
            timeout: self.timeout,
            schedule_to_start: self.schedule_to_start,
            heartbeat_timeout: self.heartbeat_timeout,
            revert: None,
            cancel: CancellationToken::new(),
            park: None,
        }
    }
}

#[async_trait]
impl Task for RemoteTask {
    async fn execute(&self, ctx: &ExecuteContext) -> Result<Value, Failure> {
        let cancel = CancellationToken::new();
        let _fires_on_drop = cancel.clone().drop_guard();
        let call =
            RemoteCall { cancel, ..self.call(ctx.atom_name(), ctx.attempt(), ctx.book(), ctx.inputs().as_map()) };
        self.dispatch.dispatch(call).await
    }

    async fn revert(&self, ctx: &RevertContext) -> Result<(), Failure> {
        let cancel = CancellationToken::new();
        let _fires_on_drop = cancel.clone().drop_guard();
        let mut call = self.call(ctx.atom_name(), ctx.attempt(), ctx.book(), ctx.inputs().as_map());
        call.cancel = cancel;
        call.revert = Some(ctx.outcome().cloned().map_err(Clone::clone));
        self.dispatch.dispatch(call).await.map(|_| ())
    }

    /// The worker answered `parked` and the park is recorded: the token goes to the
    /// task's parked handler on a worker.
    async fn parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        let cancel = CancellationToken::new();
        let _fires_on_drop = cancel.clone().drop_guard();
        let call = self.call(ctx.atom_name(), ctx.attempt(), ctx.token().name().job, ctx.inputs().as_map());
        self.dispatch.dispatch(RemoteCall { cancel, park: Some(Handoff::of(ctx)), ..call }).await.map(|_| ())
    }
}
