//! Preparing a run: a fresh start, or a resume from what the logbook holds.
//!
//! Resume rules (TaskFlow's, made explicit):
//! - SUCCESS and IGNORE atoms are not run again; their saved results feed consumers.
//! - RUNNING atoms are reset to PENDING and run again: **at-least-once** execution,
//!   so tasks must be idempotent (the crash may have happened after the work was done
//!   but before SUCCESS was recorded).
//! - A revert in progress (flow meta `revert_all`) is finished; REVERTING atoms are
//!   reverted again (at-least-once reverts, too).
//! - A retry whose intention is RETRY finishes reverting its subflow and retries; an
//!   atom left in FAILURE has its failure resolved again (recording it is idempotent).
//! - A REVERTED flow starts over from scratch; a SUCCESS or FAILURE flow is reported
//!   as it is, without running anything, unless the engine was built to retry failed
//!   reverts (`EngineBuilder::retry_failed_reverts`, an operator's retry): then its
//!   REVERT_FAILURE atoms go back to REVERTING and the revert is finished.

use super::run::Run;
use super::RunOutcome;
use crate::error::Error;
use crate::failure::Failure;
use crate::state::{AtomState, FlowState, Intention};

impl Run<'_> {
    /// Sets up the run; `Some` if the flow is already over and nothing is to be done.
    pub(crate) fn prepare(&mut self) -> Result<Option<RunOutcome>, Error> {
        let state = self.engine.detail.state;
        match state {
            FlowState::Success => {
                return Ok(Some(RunOutcome { state, failure: None, results: self.results() }));
            }
            // An operator's retry after fixing what a revert needed: run the failed reverts again.
            FlowState::Failure if self.engine.retry_reverts => self.reopen_failed_reverts()?,
            FlowState::Failure => {
                // As `conclude` reported it: the revert failure, caused by what started the revert.
                let failure = match (self.recorded_revert_failure(), self.stored_cause()) {
                    (Some(rf), Some(cause)) if rf.cause.is_none() => Some(rf.with_cause(cause)),
                    (rf, cause) => rf.or(cause),
                };
                return Ok(Some(RunOutcome { state, failure, results: self.results() }));
            }
            FlowState::Reverted => self.reset_all()?,
            _ => {}
        }
        let resuming = self.engine.detail.state != FlowState::Pending;
        if resuming {
            self.set_flow(FlowState::Resuming)?;
            if let Some(failure) = self.recorded_revert_failure() {
                // A revert failed before the crash: the flow ends FAILURE as it would have,
                // and nothing more is undone (what that revert left behind needs a human).
                self.cause = self.stored_cause();
                self.revert_failure = Some(failure);
                self.set_flow(FlowState::Reverting)?;
                return Ok(None);
            }
        }
        // Atoms caught mid-execute run again.
        for n in 0..self.details.len() {
            if self.details[n].state == AtomState::Running && !self.shared.compiled.nodes[n].is_join() {
                self.transition(n, AtomState::Pending)?;
            }
        }
        for (name, failure) in self.details.iter().filter_map(|d| d.failure.clone().map(|f| (d.name.clone(), f))) {
            self.flow_failures.insert(name, failure);
        }
        self.seed_ready();
        let revert_all = self.engine.detail.meta.get("revert_all").and_then(|v| v.as_bool()).unwrap_or(false);
        if revert_all {
            self.cause = self.stored_cause();
            self.reverting_all = true;
            self.ready.clear();
            self.set_flow(FlowState::Reverting)?;
            self.start_revert_all();
            return Ok(None);
        }
        self.set_flow(FlowState::Running)?;
        if resuming {
            self.resume_reverts();
            self.repark_unnotified();
        }
        Ok(None)
    }

    /// REVERT_FAILURE atoms go back to REVERTING, their revert failures forgotten, so
    /// the resume below reverts them again (and finishes whatever revert was under way).
    fn reopen_failed_reverts(&mut self) -> Result<(), Error> {
        for n in 0..self.details.len() {
            if self.details[n].state == AtomState::RevertFailure {
                self.details[n].revert_failure = None;
                self.transition(n, AtomState::Reverting)?;
            }
        }
        Ok(())
    }

    /// The failure of a revert that failed, if the logbook holds one.
    fn recorded_revert_failure(&self) -> Option<Failure> {
        self.details.iter().find(|d| d.state == AtomState::RevertFailure).map(|d| {
            d.revert_failure
                .clone()
                .unwrap_or_else(|| Failure::new(Failure::TASK_ERROR, format!("revert of {} failed", d.name)))
        })
    }

    /// The failure that started the revert, as saved in the flow's meta.
    fn stored_cause(&self) -> Option<Failure> {
        self.engine.detail.meta.get("failure").and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// A REVERTED flow runs again from scratch, as in TaskFlow.
    fn reset_all(&mut self) -> Result<(), Error> {
        for n in 0..self.details.len() {
            if self.shared.compiled.nodes[n].is_join() || self.details[n].state == AtomState::Pending {
                continue;
            }
            // Everything that ran was reverted (or ignored), so REVERTED/IGNORE -> PENDING
            // are the only moves; anything else in the logbook is refused, not overwritten.
            let d = &mut self.details[n];
            d.intention = Intention::Execute;
            d.result = None;
            d.failure = None;
            d.revert_failure = None;
            d.attempts.clear();
            self.transition(n, AtomState::Pending)?;
        }
        self.engine.detail.meta.remove("revert_all");
        self.engine.detail.meta.remove("failure");
        self.set_flow(FlowState::Pending)
    }

    /// Counts unfinished predecessors and queues every node that can start,
    /// walking the graph once from its sources (O(nodes + edges)).
    fn seed_ready(&mut self) {
        let shared = self.shared.clone();
        let nodes = &shared.compiled.nodes;
        // Joins are derived, never persisted: every run works them out afresh.
        for (node, detail) in nodes.iter().zip(&mut self.details) {
            if node.is_join() {
                detail.state = AtomState::Pending;
            }
        }
        // FIFO, so that siblings start in the order they were added.
        let mut queue = std::collections::VecDeque::new();
        for (n, node) in nodes.iter().enumerate() {
            self.rt[n].remaining = u32::try_from(node.preds.len()).unwrap_or(u32::MAX);
            if node.preds.is_empty() {
                queue.push_back(n);
            }
        }
        while let Some(n) = queue.pop_front() {
            let node = &nodes[n];
            let state = self.details[n].state;
            let finished = if node.is_join() {
                // Joins are not persisted: a join whose predecessors are done is done.
                let steps: &[AtomState] =
                    if self.rt[n].vetoed { &[AtomState::Ignore] } else { &[AtomState::Running, AtomState::Success] };
                self.move_join(n, steps)
            } else {
                matches!(state, AtomState::Success | AtomState::Ignore) && self.details[n].intention != Intention::Retry
            };
            if !finished {
                if matches!(state, AtomState::Pending | AtomState::Retrying) {
                    self.ready.push_back((n, 0));
                }
                continue;
            }
            let ignored = self.details[n].state == AtomState::Ignore;
            for &s in &node.succs {
                let rt = &mut self.rt[s];
                rt.vetoed |= ignored;
                rt.remaining -= 1;
                if rt.remaining == 0 {
                    queue.push_back(s);
                }
            }
        }
    }

    /// Continues subflow retries and failure resolutions a crash interrupted.
    fn resume_reverts(&mut self) {
        let nodes = self.shared.compiled.nodes.clone();
        for (r, node) in nodes.iter().enumerate() {
            if !matches!(node.kind, crate::compile::NodeKind::Retry { .. }) {
                continue;
            }
            if self.details[r].state == AtomState::Retrying {
                self.retry_again(r);
            } else if self.details[r].intention == Intention::Retry && self.details[r].state == AtomState::Success {
                self.retry_scope(r, false);
            }
        }
        for n in 0..nodes.len() {
            if self.details[n].state == AtomState::Failure && !self.rt[n].undo && !self.reverting_all {
                if let Some(failure) = self.details[n].failure.clone() {
                    self.resolve(n, failure);
                }
            }
        }
    }
}
