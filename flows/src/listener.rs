//! Listeners: observers of flow and atom transitions.
//!
//! Called synchronously by the engine after a transition is persisted, so a
//! listener must be quick and must not block. Two are built in: a `tracing`
//! logger and a timer that records how long each atom ran.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::failure::Failure;
use crate::logbook::AtomKind;
use crate::state::{AtomState, FlowState};

/// One atom transition.
#[derive(Debug, Clone, Copy)]
pub struct AtomEvent<'a> {
    /// The flow's name.
    pub flow: &'a str,
    /// The atom's name.
    pub atom: &'a str,
    /// Task or retry controller.
    pub atom_kind: AtomKind,
    /// A task's declared kind ([`TaskSpec::kind`](crate::TaskSpec::kind)); `None` if undeclared or a retry.
    pub task_kind: Option<&'a str>,
    /// How many times `execute` has been called, this transition included (across resumes and retries).
    pub executions: u32,
    /// The state left.
    pub from: AtomState,
    /// The state entered.
    pub to: AtomState,
    /// The result, on SUCCESS.
    pub result: Option<&'a Value>,
    /// The failure, on FAILURE or REVERT_FAILURE.
    pub failure: Option<&'a Failure>,
}

/// Observes a running engine. Both methods default to doing nothing.
pub trait Listener: Send + Sync + 'static {
    /// The flow moved from `from` to `to`.
    fn on_flow(&self, flow: &str, from: FlowState, to: FlowState) {
        let _ = (flow, from, to);
    }
    /// An atom moved.
    fn on_atom(&self, event: &AtomEvent<'_>) {
        let _ = event;
    }
}

/// Tells every listener, one at a time. A listener is user code: its panic is
/// logged and swallowed, since the transition it reports is already recorded
/// and the run must not stop (or die) over an observer.
pub(crate) fn notify(listeners: &[Arc<dyn Listener>], call: impl Fn(&dyn Listener)) {
    for listener in listeners {
        if std::panic::catch_unwind(AssertUnwindSafe(|| call(listener.as_ref()))).is_err() {
            tracing::warn!("a listener panicked; ignored");
        }
    }
}

/// Logs every transition with `tracing` (failures at WARN, the rest at DEBUG).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoggingListener;

impl Listener for LoggingListener {
    fn on_flow(&self, flow: &str, from: FlowState, to: FlowState) {
        match to {
            FlowState::Failure | FlowState::Reverted => tracing::warn!(flow, %from, %to, "flow transition"),
            _ => tracing::debug!(flow, %from, %to, "flow transition"),
        }
    }

    fn on_atom(&self, e: &AtomEvent<'_>) {
        match (e.to, e.failure) {
            (_, Some(failure)) => {
                tracing::warn!(flow = e.flow, atom = e.atom, from = %e.from, to = %e.to, %failure, "atom transition")
            }
            _ => tracing::debug!(flow = e.flow, atom = e.atom, from = %e.from, to = %e.to, "atom transition"),
        }
    }
}

/// Measures how long each atom spent RUNNING and how long the flow ran.
#[derive(Debug, Default)]
pub struct TimingListener {
    inner: Mutex<Timings>,
}

#[derive(Debug, Default)]
struct Timings {
    started: HashMap<String, Instant>,
    atoms: HashMap<String, Duration>,
    flow_started: Option<Instant>,
    flow: Option<Duration>,
}

impl TimingListener {
    /// A fresh timer.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Timings) -> R) -> R {
        // Poisoning only means another listener call panicked; the maps stay usable.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// How long `atom` last ran (RUNNING to SUCCESS or FAILURE).
    pub fn atom_duration(&self, atom: &str) -> Option<Duration> {
        self.with(|t| t.atoms.get(atom).copied())
    }

    /// Every measured atom duration.
    pub fn atom_durations(&self) -> HashMap<String, Duration> {
        self.with(|t| t.atoms.clone())
    }

    /// How long the flow last ran (RUNNING to a final state).
    pub fn flow_duration(&self) -> Option<Duration> {
        self.with(|t| t.flow)
    }
}

impl Listener for TimingListener {
    fn on_flow(&self, _flow: &str, _from: FlowState, to: FlowState) {
        self.with(|t| match to {
            FlowState::Running => t.flow_started = Some(Instant::now()),
            s if s.is_final() => t.flow = t.flow_started.map(|s| s.elapsed()),
            _ => {}
        });
    }

    fn on_atom(&self, e: &AtomEvent<'_>) {
        self.with(|t| match e.to {
            AtomState::Running => {
                t.started.insert(e.atom.to_owned(), Instant::now());
            }
            AtomState::Success | AtomState::Failure => {
                if let Some(start) = t.started.remove(e.atom) {
                    t.atoms.insert(e.atom.to_owned(), start.elapsed());
                }
            }
            _ => {}
        });
    }
}
