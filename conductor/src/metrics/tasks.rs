//! [`TaskListener`]: one job's task transitions, as the engine reports them after
//! recording them, counted into [`Metrics`] under the job's flow and each task's
//! kind (a flow file's `kind:`, or `task` for a Rust task that declares none).
//!
//! - an execution is a task entering RUNNING; a retry is an execution after the
//!   task's first (a retry controller re-ran it, or a resumed job ran it again:
//!   execution is at-least-once);
//! - a failure is a task entering FAILURE, a revert one entering REVERTED;
//! - the duration is RUNNING to SUCCESS or FAILURE on this conductor (a task
//!   that parks, or whose job moves elsewhere, is not timed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use flows::{AtomEvent, AtomKind, AtomState, Listener};

use super::Metrics;

/// Counts one job's tasks.
#[derive(Debug)]
pub struct TaskListener {
    flow: String,
    metrics: Arc<Metrics>,
    /// Tasks RUNNING now, since when.
    started: Mutex<HashMap<String, Instant>>,
}

impl TaskListener {
    /// A listener for a job of `flow`.
    pub fn new(flow: impl Into<String>, metrics: Arc<Metrics>) -> Self {
        TaskListener { flow: flow.into(), metrics, started: Mutex::default() }
    }
}

impl Listener for TaskListener {
    fn on_atom(&self, e: &AtomEvent<'_>) {
        if e.atom_kind != AtomKind::Task {
            return;
        }
        let (flow, kind) = (self.flow.as_str(), e.task_kind.unwrap_or("task"));
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        match e.to {
            AtomState::Running => {
                self.metrics.task_executed(flow, kind, e.executions > 1);
                started.insert(e.atom.to_owned(), Instant::now());
            }
            AtomState::Success | AtomState::Failure => {
                if e.to == AtomState::Failure {
                    self.metrics.task_failed(flow, kind);
                }
                if let Some(since) = started.remove(e.atom) {
                    self.metrics.task_ran(flow, since.elapsed());
                }
            }
            AtomState::Reverted => self.metrics.task_reverted(flow, kind),
            _ => {
                started.remove(e.atom);
            }
        }
    }
}
