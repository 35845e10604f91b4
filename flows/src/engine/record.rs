//! What a run records besides atom jobs: checked flow transitions, flow meta
//! writes, and the derived (never persisted) states of joins, checked against
//! the same atom table as every other transition.

use super::run::Run;
use crate::error::Error;
use crate::listener::notify;
use crate::state::{check_atom_transition, check_flow_transition, AtomState, FlowState};

impl Run<'_> {
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

    /// Checks, applies and persists a flow transition.
    pub(crate) async fn set_flow(&mut self, to: FlowState) -> Result<(), Error> {
        let from = self.engine.detail.state;
        if from == to {
            return Ok(());
        }
        if !check_flow_transition(from, to) {
            return Err(Error::IllegalFlowTransition { flow: self.shared.compiled.name.clone(), from, to });
        }
        self.engine.detail.state = to;
        self.engine.detail.version += 1;
        if let Err(e) = self.shared.storage.save_flow(self.shared.book, &self.engine.detail).await {
            // Unrecorded, so not applied (as for atoms).
            self.engine.detail.state = from;
            self.engine.detail.version -= 1;
            return Err(e.into());
        }
        let name = &self.shared.compiled.name;
        notify(&self.shared.listeners, |l| l.on_flow(name, from, to));
        Ok(())
    }

    /// Persists the flow's meta without a state change.
    pub(crate) async fn save_flow_meta(&mut self) -> Result<(), Error> {
        self.engine.detail.version += 1;
        self.shared.storage.save_flow(self.shared.book, &self.engine.detail).await?;
        Ok(())
    }
}
