//! The journal: transitions a run has decided but not yet written, and the
//! one write that records them all.
//!
//! Every change the run loop makes to the flow detail or to an atom detail is
//! staged here, and [`Journal::flush`] writes them in one
//! [`Storage::save_changes`](crate::Storage::save_changes) before the loop next
//! *acts*: before it starts a task or a revert, before it waits for a running
//! one, and when the run ends. That keeps the logbook write-ahead (nothing is
//! executed, and no result is used, before it is recorded) while a step of a
//! linear flow costs one write, not two: the finished atom's SUCCESS goes out
//! with the next atom's RUNNING. Listeners hear of a transition only once it is
//! written.

use crate::compile::NodeKind;
use crate::error::Error;
use crate::listener::{notify, AtomEvent};
use crate::logbook::{AtomDetail, FlowDetail};
use crate::state::{AtomState, FlowState};
use crate::storage::{FlowChanges, FlowEnd};

use super::job::Shared;

/// A transition to announce once it is written.
#[derive(Debug, Clone, Copy)]
enum Event {
    Flow {
        from: FlowState,
        to: FlowState,
    },
    /// `version`: the detail's version right after the transition, so a result or
    /// failure is announced only if the detail still holds what the transition set.
    Atom {
        node: usize,
        from: AtomState,
        to: AtomState,
        version: u64,
    },
}

/// Staged, unwritten changes of one run.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// Nodes whose detail changed, in the order they first changed.
    atoms: Vec<usize>,
    /// `staged[n]`: node `n` is in `atoms` (a node changed twice is written once, as it is now).
    staged: Vec<bool>,
    flow: bool,
    events: Vec<Event>,
}

impl Journal {
    pub(crate) fn new(nodes: usize) -> Self {
        Journal { staged: vec![false; nodes], ..Journal::default() }
    }

    /// True if nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.atoms.is_empty() && !self.flow
    }

    /// Node `n`'s detail changed (and its version was bumped): write it with the next flush.
    pub(crate) fn stage_atom(&mut self, n: usize) {
        if !self.staged[n] {
            self.staged[n] = true;
            self.atoms.push(n);
        }
    }

    /// Stages node `n` and announces its transition once written.
    pub(crate) fn atom_moved(&mut self, n: usize, from: AtomState, to: AtomState, version: u64) {
        self.stage_atom(n);
        self.events.push(Event::Atom { node: n, from, to, version });
    }

    /// The flow detail's own fields changed: write them with the next flush.
    pub(crate) fn stage_flow(&mut self) {
        self.flow = true;
    }

    /// Stages the flow detail and announces its transition once written.
    pub(crate) fn flow_moved(&mut self, from: FlowState, to: FlowState) {
        self.flow = true;
        self.events.push(Event::Flow { from, to });
    }

    /// Writes everything staged in one `save_changes` (or, for the run's last
    /// write, `end` given, one `save_final`), then tells the listeners.
    /// On failure nothing staged is kept: the run stops, and a later run reloads
    /// the details from the logbook, so no unrecorded change is acted on.
    pub(crate) async fn flush(
        &mut self,
        shared: &Shared,
        flow: &FlowDetail,
        details: &[AtomDetail],
        end: Option<FlowEnd<'_>>,
    ) -> Result<(), Error> {
        if self.is_empty() {
            return Ok(());
        }
        let atoms: Vec<&AtomDetail> = self.atoms.iter().map(|&n| &details[n]).collect();
        let changes = FlowChanges { flow: self.flow.then_some(flow), atoms: &atoms };
        let (storage, book, id) = (&shared.storage, shared.book, shared.flow_id);
        let written = match end {
            Some(end) => storage.save_final(book, id, changes, end).await,
            None => storage.save_changes(book, id, changes).await,
        };
        for &n in &self.atoms {
            self.staged[n] = false;
        }
        self.atoms.clear();
        self.flow = false;
        let events = std::mem::take(&mut self.events);
        written?;
        if !shared.listeners.is_empty() {
            announce(shared, details, &events);
        }
        Ok(())
    }
}

fn announce(shared: &Shared, details: &[AtomDetail], events: &[Event]) {
    let name = &shared.compiled.name;
    for event in events {
        match *event {
            Event::Flow { from, to } => notify(&shared.listeners, |l| l.on_flow(name, from, to)),
            Event::Atom { node, from, to, version } => {
                let detail = &details[node];
                let current = detail.version == version;
                let task_kind = match &shared.compiled.nodes[node].kind {
                    NodeKind::Task(spec) => spec.declared_kind(),
                    _ => None,
                };
                let event = AtomEvent {
                    flow: name,
                    atom: &detail.name,
                    atom_kind: detail.kind,
                    task_kind,
                    executions: detail.executions,
                    from,
                    to,
                    result: if to == AtomState::Success && current { detail.result.as_ref() } else { None },
                    failure: match to {
                        _ if !current => None,
                        AtomState::Failure => detail.failure.as_ref(),
                        AtomState::RevertFailure => detail.revert_failure.as_ref(),
                        _ => None,
                    },
                };
                notify(&shared.listeners, |l| l.on_atom(&event));
            }
        }
    }
}
