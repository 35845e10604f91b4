//! `Error`: why the engine could not run a flow (as opposed to a task failing,
//! which is a [`Failure`](crate::Failure) value and ends the flow REVERTED).

use crate::compile::CompileError;
use crate::state::{AtomState, FlowState};
use crate::storage::StorageError;

/// An engine error. The run stopped; what was persisted is consistent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The flow does not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The engine tried an atom transition its table forbids: a bug, refused.
    #[error("illegal transition of atom {atom:?} from {from} to {to}")]
    IllegalTransition {
        /// The atom.
        atom: String,
        /// Its state.
        from: AtomState,
        /// The refused target.
        to: AtomState,
    },
    /// The engine tried a flow transition its table forbids: a bug, refused.
    #[error("illegal transition of flow {flow:?} from {from} to {to}")]
    IllegalFlowTransition {
        /// The flow.
        flow: String,
        /// Its state.
        from: FlowState,
        /// The refused target.
        to: FlowState,
    },
    /// Writing or reading the logbook failed; the run stopped before acting on unrecorded state.
    #[error("logbook storage failed")]
    Storage(#[from] StorageError),
    /// The engine found nothing to run before the flow was done: a bug, reported.
    #[error("flow {flow:?} stalled with unfinished atoms {atoms:?}")]
    Stalled {
        /// The flow.
        flow: String,
        /// The atoms not SUCCESS or IGNORE, with their states.
        atoms: Vec<String>,
    },
    /// A spawned atom job died outside the engine's panic guard (the runtime shut down).
    #[error("atom job of flow {flow:?} was lost: {message}")]
    JobLost {
        /// The flow.
        flow: String,
        /// What tokio reported.
        message: String,
    },
}
