//! What task code sees: [`Context`], [`Undo`] for reverts, and [`TaskError`].

use std::sync::Arc;

use proto::pb;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::run::Event;

/// One assignment as task code sees it.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) assign: Arc<pb::Assign>,
    pub(crate) cancel: CancellationToken,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

impl Context {
    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.assign.job_id
    }

    /// The task's atom name in the job's flow.
    pub fn atom(&self) -> &str {
        &self.assign.atom
    }

    /// The worker task name.
    pub fn task(&self) -> &str {
        &self.assign.task
    }

    /// The attempt number (1 first; one more per retry or re-run).
    pub fn attempt(&self) -> u32 {
        self.assign.attempt
    }

    /// `job/atom/attempt`: the same when the same attempt is sent again. Use it to make
    /// side effects idempotent.
    pub fn idempotency_key(&self) -> &str {
        &self.assign.idempotency_key
    }

    /// This assignment's dispatch id.
    pub fn dispatch_id(&self) -> &str {
        &self.assign.dispatch_id
    }

    /// Says the task is alive (for its heartbeat timeout), with optional details.
    pub fn heartbeat(&self, details: Option<Value>) {
        let progress = pb::Progress {
            dispatch_id: self.assign.dispatch_id.clone(),
            details_json: details.map(|d| d.to_string()).unwrap_or_default(),
        };
        let _ = self.events.send(Event::Progress(progress));
    }

    /// Whether the conductor cancelled this assignment.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the conductor cancels this assignment (the task's future is also
    /// dropped then; this is for code that must clean up first).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}

/// What a revert handler is told about the execute it undoes.
#[derive(Debug, Clone)]
pub enum Undo {
    /// Execute returned this.
    Result(Value),
    /// Execute failed so (or never finished: kind `WorkerLost`, `Timeout`...).
    Failure(TaskError),
}

/// A task failure: kind, message, details and causes, as the protocol carries them.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    /// A short type name, e.g. `CardDeclined`.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Structured details.
    pub details: Option<Value>,
    /// The causes, nearest first.
    pub causes: Vec<TaskError>,
}

impl TaskError {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError { kind: kind.into(), message: message.into(), details: None, causes: Vec::new() }
    }

    /// The same with a cause appended.
    #[must_use]
    pub fn caused_by(mut self, cause: TaskError) -> Self {
        self.causes.push(cause);
        self
    }

    pub(crate) fn to_wire(&self) -> pb::TaskFailure {
        pb::TaskFailure {
            kind: self.kind.clone(),
            message: self.message.clone(),
            details_json: self.details.as_ref().map(Value::to_string).unwrap_or_default(),
            causes: self.causes.iter().map(TaskError::to_wire).collect(),
        }
    }

    pub(crate) fn from_wire(failure: &pb::TaskFailure) -> Self {
        TaskError {
            kind: failure.kind.clone(),
            message: failure.message.clone(),
            details: serde_json::from_str(&failure.details_json).ok(),
            causes: failure.causes.iter().map(TaskError::from_wire).collect(),
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TaskError {}
