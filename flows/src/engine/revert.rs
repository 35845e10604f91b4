//! Failure resolution and reverting.
//!
//! A failed atom asks its nearest retry controller: RETRY reverts the
//! retry's subflow and runs it again, REVERT defers to the enclosing retry
//! (TaskFlow's `defer_reverts`; with no enclosing retry it means REVERT_ALL),
//! REVERT_ALL reverts everything. Reverting runs in reverse dependency order:
//! a node is reverted once every successor that ran has been undone, tracked
//! with a per-node counter so each completion costs only its own edges.

use serde_json::Value;

use super::job::Action;
use super::run::Run;
use crate::compile::NodeKind;
use crate::failure::Failure;
use crate::retry::Decision;
use crate::state::{AtomState, FlowState, Intention};
use crate::task::RevertContext;

impl Run<'_> {
    /// True if node `n` ran (or is running) and is not undone yet. A RETRYING retry
    /// counts: it ran, and its next attempt may never start if everything is reverted.
    pub(crate) fn active(&self, n: usize) -> bool {
        self.rt[n].in_flight
            || matches!(
                self.details[n].state,
                AtomState::Success
                    | AtomState::Failure
                    | AtomState::Reverting
                    | AtomState::Retrying
                    | AtomState::Parked
            )
    }

    /// Decides what the failure of `n` leads to, asking retry controllers outward.
    pub(crate) fn resolve(&mut self, n: usize, failure: Failure) {
        let shared = self.shared.clone();
        let nodes = &shared.compiled.nodes;
        let mut atom = n;
        while let Some(r) = nodes[atom].retry {
            let NodeKind::Retry { retry, .. } = &nodes[r].kind else { break };
            // Recording is idempotent (keyed by atom), so a resumed run may record again.
            if let Some(last) = self.details[r].attempts.last_mut() {
                last.failures.insert(nodes[atom].name.clone(), failure.clone());
            }
            self.save_detail(r);
            let inputs = self.inputs(r).unwrap_or_default();
            match retry.controller.on_failure(&self.details[r].attempts, &inputs) {
                Decision::Retry => {
                    self.retry_scope(r, true);
                    return;
                }
                Decision::RevertAll => break,
                Decision::Revert => atom = r,
            }
        }
        self.revert_all(failure);
    }

    /// Starts reverting retry `r`'s subflow so it can run again.
    pub(crate) fn retry_scope(&mut self, r: usize, persist: bool) {
        let NodeKind::Retry { scope, .. } = &self.shared.compiled.nodes[r].kind else { return };
        let scope = scope.clone();
        if persist {
            self.details[r].intention = Intention::Retry;
            self.save_detail(r);
        }
        let mut pending = 0;
        for m in scope.clone() {
            self.rt[m].undo = true;
            if self.active(m) {
                pending += 1;
            }
        }
        self.scope_pending.insert(r, pending);
        for m in scope {
            self.consider_undo(m);
        }
        if pending == 0 {
            self.scope_pending.remove(&r);
            self.retry_again(r);
        }
    }

    /// Gives up: everything that ran is reverted, nothing new starts.
    pub(crate) fn revert_all(&mut self, failure: Failure) {
        self.cause.get_or_insert(failure);
        if !self.reverting_all {
            self.reverting_all = true;
            self.ready.clear();
            self.engine.detail.meta.insert("revert_all".into(), Value::Bool(true));
            if let Some(cause) = &self.cause {
                self.engine.detail.meta.insert("failure".into(), serde_json::to_value(cause).unwrap_or_default());
            }
            // While suspending the flow stays SUSPENDING; the recorded meta makes the
            // next run finish the revert.
            if self.suspending {
                self.save_flow_meta();
            } else if let Err(e) = self.set_flow(FlowState::Reverting) {
                self.error.get_or_insert(e);
                return;
            }
        }
        self.start_revert_all();
    }

    /// Marks every node for revert and queues those with nothing left after them.
    pub(crate) fn start_revert_all(&mut self) {
        self.scope_pending.clear();
        self.undo.clear();
        for m in 0..self.rt.len() {
            self.rt[m].undo = true;
        }
        for m in 0..self.rt.len() {
            self.consider_undo(m);
        }
    }

    /// Recounts `n`'s un-undone successors and queues it if none is left.
    pub(crate) fn consider_undo(&mut self, n: usize) {
        if !self.rt[n].undo || self.rt[n].in_flight || !self.active(n) {
            return;
        }
        let succs = &self.shared.compiled.nodes[n].succs;
        let block = succs.iter().filter(|&&s| self.active(s)).count();
        self.rt[n].block = u32::try_from(block).unwrap_or(u32::MAX);
        if block == 0 {
            self.undo.push(n);
        }
    }

    /// Stages the revert of node `n` and returns its job, or undoes it at once (a
    /// join; a retry, whose revert only forgets its history, as in TaskFlow).
    pub(crate) fn start_revert(&mut self, n: usize) -> Option<Action> {
        if !self.rt[n].undo || self.rt[n].in_flight || !self.active(n) {
            return None;
        }
        let shared = self.shared.clone();
        let node = &shared.compiled.nodes[n];
        match &node.kind {
            NodeKind::Join => {
                if self.move_join(n, &[AtomState::Reverting, AtomState::Reverted]) {
                    self.undone(n);
                }
                None
            }
            NodeKind::Task(_) => {
                // Predecessors are reverted after this one, so their results are still readable;
                // inputs are missing only if execute failed for want of them, and then it got none too.
                let inputs = self.inputs(n).unwrap_or_default();
                if !self.begin(n, Self::begin_revert) {
                    return None;
                }
                let detail = &self.details[n];
                let outcome = match (&detail.failure, &detail.result) {
                    (Some(f), _) => Err(f.clone()),
                    (None, Some(v)) => Ok(v.clone()),
                    (None, None) => Ok(Value::Null),
                };
                let context = RevertContext::new(node.shared_name.clone(), inputs, outcome, self.flow_failures.clone())
                    .in_book(self.shared.book, detail.executions);
                Some(Action::Revert(context))
            }
            NodeKind::Retry { .. } => {
                let reverted = self.begin_revert(n).and_then(|()| {
                    self.details[n].attempts.clear();
                    self.finish_revert(n, &Ok(()))
                });
                match reverted {
                    Ok(()) => self.undone(n),
                    Err(error) => {
                        self.error.get_or_insert(error);
                    }
                }
                None
            }
        }
    }

    /// `n` is undone: unblock its predecessors, and finish subflow reverts it completes.
    pub(crate) fn undone(&mut self, n: usize) {
        let shared = self.shared.clone();
        let nodes = &shared.compiled.nodes;
        for &p in &nodes[n].preds {
            let rt = &mut self.rt[p];
            rt.block = rt.block.saturating_sub(1);
            if rt.block == 0 && rt.undo && !rt.in_flight && self.active(p) {
                self.undo.push(p);
            }
        }
        let mut up = nodes[n].retry;
        while let Some(r) = up {
            if let Some(left) = self.scope_pending.get_mut(&r) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.scope_pending.remove(&r);
                    if !self.reverting_all && self.details[r].intention == Intention::Retry {
                        self.retry_again(r);
                    }
                }
            }
            up = nodes[r].retry;
        }
    }

    /// The subflow of `r` is undone: reset it and run `r` (then the subflow) again.
    pub(crate) fn retry_again(&mut self, r: usize) {
        let shared = self.shared.clone();
        let NodeKind::Retry { scope, .. } = &shared.compiled.nodes[r].kind else { return };
        if self.details[r].state != AtomState::Retrying {
            self.details[r].intention = Intention::Retry;
            if !self.try_transition(r, AtomState::Retrying) {
                return;
            }
        }
        for m in scope.clone() {
            let rt = &mut self.rt[m];
            rt.epoch += 1;
            rt.remaining = u32::try_from(shared.compiled.nodes[m].preds.len()).unwrap_or(u32::MAX);
            rt.vetoed = false;
            rt.undo = false;
            rt.block = 0;
            if self.details[m].state == AtomState::Pending {
                continue;
            }
            if shared.compiled.nodes[m].is_join() {
                if !self.move_join(m, &[AtomState::Pending]) {
                    return;
                }
                continue;
            }
            let detail = &mut self.details[m];
            detail.intention = Intention::Execute;
            detail.result = None;
            detail.failure = None;
            detail.revert_failure = None;
            if !self.try_transition(m, AtomState::Pending) {
                return;
            }
        }
        self.rt[r].undo = false;
        // The retry's own predecessors are still done, so it is ready at once.
        self.ready.push_front((r, self.rt[r].epoch));
    }
}
