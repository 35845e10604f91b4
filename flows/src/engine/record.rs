//! What a run records: checked atom and flow transitions (staged in the
//! journal, written by its next flush), the detail changes that go with
//! starting and finishing an execute or a revert, and the derived (never
//! persisted) states of joins, checked against the same atom table.

use serde_json::Value;

use super::run::Run;
use crate::error::Error;
use crate::failure::Failure;
use crate::logbook::{now_millis, AtomDetail};
use crate::state::{check_atom_transition, check_flow_transition, AtomState, FlowState, Intention};
use crate::storage::FlowEnd;

/// Checks and applies a transition to `detail`, bumping its version.
pub(crate) fn apply_transition(detail: &mut AtomDetail, to: AtomState) -> Result<AtomState, Error> {
    let from = detail.state;
    if !check_atom_transition(from, to) {
        return Err(Error::IllegalTransition { atom: detail.name.clone(), from, to });
    }
    detail.state = to;
    detail.version += 1;
    Ok(from)
}

impl Run<'_> {
    /// Checks and applies a transition of atom `n` and stages it.
    pub(crate) fn transition(&mut self, n: usize, to: AtomState) -> Result<(), Error> {
        let detail = &mut self.details[n];
        let from = apply_transition(detail, to)?;
        self.journal.atom_moved(n, from, to, detail.version);
        Ok(())
    }

    /// Like [`Run::transition`], but a refusal stops the run instead of being returned.
    /// False if refused.
    pub(crate) fn try_transition(&mut self, n: usize, to: AtomState) -> bool {
        match self.transition(n, to) {
            Ok(()) => true,
            Err(e) => {
                self.error.get_or_insert(e);
                false
            }
        }
    }

    /// Stages atom `n`'s detail as it is (history or intention changed, no transition).
    pub(crate) fn save_detail(&mut self, n: usize) {
        self.details[n].version += 1;
        self.journal.stage_atom(n);
    }

    /// Writes everything staged; on failure the run stops (see `Journal::flush`).
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        self.journal.flush(&self.shared, &self.engine.detail, &self.details, None).await
    }

    /// Writes the run's last batch, which records how it ends (`Storage::save_final`).
    pub(crate) async fn flush_final(&mut self, end: FlowEnd<'_>) -> Result<(), Error> {
        self.journal.flush(&self.shared, &self.engine.detail, &self.details, Some(end)).await
    }

    /// Records RUNNING (and the execution it starts) for atom `n`.
    pub(crate) fn begin_execute(&mut self, n: usize) -> Result<(), Error> {
        let detail = &mut self.details[n];
        detail.intention = Intention::Execute;
        detail.executions += 1;
        detail.started_at = Some(now_millis());
        self.transition(n, AtomState::Running)
    }

    /// Records how atom `n`'s execute ended: SUCCESS with its result, or FAILURE.
    pub(crate) fn finish_execute(&mut self, n: usize, outcome: &Result<Value, Failure>) -> Result<(), Error> {
        let detail = &mut self.details[n];
        detail.finished_at = Some(now_millis());
        let to = match outcome {
            Ok(value) => {
                detail.result = Some(value.clone());
                detail.failure = None;
                AtomState::Success
            }
            Err(failure) => {
                detail.result = None;
                detail.failure = Some(failure.clone());
                AtomState::Failure
            }
        };
        self.transition(n, to)
    }

    /// Records REVERTING for atom `n`.
    pub(crate) fn begin_revert(&mut self, n: usize) -> Result<(), Error> {
        self.details[n].intention = Intention::Revert;
        self.transition(n, AtomState::Reverting)
    }

    /// Records how atom `n`'s revert ended: REVERTED, or REVERT_FAILURE.
    pub(crate) fn finish_revert(&mut self, n: usize, outcome: &Result<(), Failure>) -> Result<(), Error> {
        let detail = &mut self.details[n];
        detail.finished_at = Some(now_millis());
        let to = match outcome {
            Ok(()) => {
                detail.revert_failure = None;
                AtomState::Reverted
            }
            Err(failure) => {
                detail.revert_failure = Some(failure.clone());
                AtomState::RevertFailure
            }
        };
        self.transition(n, to)
    }

    /// Moves a join (a subflow's entry or exit: never persisted nor announced) through
    /// `steps`, each checked against the atom table like any other transition. False
    /// (with the run's error set) if one is refused.
    pub(crate) fn move_join(&mut self, n: usize, steps: &[AtomState]) -> bool {
        for &to in steps {
            let from = self.details[n].state;
            if !check_atom_transition(from, to) {
                let atom = self.shared.compiled.nodes[n].name.clone();
                self.error.get_or_insert(Error::IllegalTransition { atom, from, to });
                return false;
            }
            self.details[n].state = to;
        }
        true
    }

    /// Checks and applies a flow transition, and stages it.
    pub(crate) fn set_flow(&mut self, to: FlowState) -> Result<(), Error> {
        let from = self.engine.detail.state;
        if from == to {
            return Ok(());
        }
        if !check_flow_transition(from, to) {
            return Err(Error::IllegalFlowTransition { flow: self.shared.compiled.name.clone(), from, to });
        }
        self.engine.detail.state = to;
        self.engine.detail.version += 1;
        self.journal.flow_moved(from, to);
        Ok(())
    }

    /// Stages the flow's meta without a state change.
    pub(crate) fn save_flow_meta(&mut self) {
        self.engine.detail.version += 1;
        self.journal.stage_flow();
    }
}
