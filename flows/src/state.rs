//! Atom and flow states, and the tables of allowed transitions.
//!
//! States are data, as in TaskFlow's `states.py`: the engine asks
//! [`check_atom_transition`] / [`check_flow_transition`] before every change and
//! treats a refusal as a bug (`Error::IllegalTransition`), never applying it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one atom (a task or a retry controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AtomState {
    /// Not run yet.
    Pending,
    /// `execute` has been (or is about to be) called.
    Running,
    /// `execute` returned a result.
    Success,
    /// `execute` failed; the failure is recorded.
    Failure,
    /// `revert` has been (or is about to be) called.
    Reverting,
    /// `revert` finished.
    Reverted,
    /// `revert` failed; the flow ends in FAILURE.
    RevertFailure,
    /// Skipped by a decider; counts as satisfied.
    Ignore,
    /// A retry controller whose subflow is being retried.
    Retrying,
    /// `execute` handed the work to someone outside: the atom waits for a delivered
    /// result or failure (its park record holds the attempt, the token's hash and
    /// the deadline). Nothing runs for it meanwhile.
    Parked,
}

/// The state of a whole flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlowState {
    /// Created, never run.
    Pending,
    /// Atoms are being executed.
    Running,
    /// Every atom finished (or was ignored).
    Success,
    /// A failure is being undone.
    Reverting,
    /// Everything that ran was undone.
    Reverted,
    /// A revert failed, or the run could not complete; reported, not hidden.
    Failure,
    /// Suspend requested: nothing new starts, running atoms finish.
    Suspending,
    /// Stopped part-way; a later run continues.
    Suspended,
    /// Loading a previous run's state before continuing it.
    Resuming,
    /// Nothing can run until a parked atom's result (or failure) is delivered;
    /// a later run, given the delivery, continues.
    Parked,
}

/// What the engine intends to do with an atom next (persisted, for resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Intention {
    /// Run `execute`.
    #[default]
    Execute,
    /// Run `revert`.
    Revert,
    /// Revert the retry's subflow, then run it again.
    Retry,
    /// Skip (decided by a decider).
    Ignore,
}

impl AtomState {
    /// TaskFlow's spelling, e.g. `REVERT_FAILURE`.
    pub fn as_str(self) -> &'static str {
        match self {
            AtomState::Pending => "PENDING",
            AtomState::Running => "RUNNING",
            AtomState::Success => "SUCCESS",
            AtomState::Failure => "FAILURE",
            AtomState::Reverting => "REVERTING",
            AtomState::Reverted => "REVERTED",
            AtomState::RevertFailure => "REVERT_FAILURE",
            AtomState::Ignore => "IGNORE",
            AtomState::Retrying => "RETRYING",
            AtomState::Parked => "PARKED",
        }
    }
}

impl FlowState {
    /// TaskFlow's spelling, e.g. `SUSPENDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Pending => "PENDING",
            FlowState::Running => "RUNNING",
            FlowState::Success => "SUCCESS",
            FlowState::Reverting => "REVERTING",
            FlowState::Reverted => "REVERTED",
            FlowState::Failure => "FAILURE",
            FlowState::Suspending => "SUSPENDING",
            FlowState::Suspended => "SUSPENDED",
            FlowState::Resuming => "RESUMING",
            FlowState::Parked => "PARKED",
        }
    }

    /// True for states a run ends in.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            FlowState::Success | FlowState::Reverted | FlowState::Failure | FlowState::Suspended | FlowState::Parked
        )
    }
}

impl fmt::Display for AtomState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an atom may move from `from` to `to`. Same-state is allowed (a no-op).
///
/// TaskFlow's table, plus two resume edges: an atom found RUNNING or REVERTING
/// in a logbook after a crash is started again from PENDING or REVERTING
/// (at-least-once execution); and RETRYING -> REVERTING, for a retry waiting to
/// run its next attempt when the whole flow is reverted (it ran, so it is undone);
/// and REVERT_FAILURE -> REVERTING, an operator's retry of a failed revert.
///
/// Parking: RUNNING -> PARKED when `execute` parks; PARKED -> SUCCESS or FAILURE
/// when a result or failure (a timeout is one) is delivered; PARKED -> REVERTING
/// when the flow is reverted meanwhile (a cancel), so the parked task's revert
/// runs too. PARKED -> PARKED (a new token for the same attempt, after a crash
/// before the notify ran) is the same-state no-op.
pub fn check_atom_transition(from: AtomState, to: AtomState) -> bool {
    use AtomState::*;
    from == to
        || matches!(
            (from, to),
            (Pending, Running)
                | (Pending, Ignore)
                | (Ignore, Pending)
                | (Running, Success)
                | (Running, Failure)
                | (Running, Pending)
                | (Success, Reverting)
                | (Failure, Reverting)
                | (Success, Retrying)
                | (Retrying, Running)
                | (Retrying, Reverting)
                | (Reverting, Reverted)
                | (Reverting, RevertFailure)
                | (RevertFailure, Reverting)
                | (Reverted, Pending)
                | (Running, Parked)
                | (Parked, Success)
                | (Parked, Failure)
                | (Parked, Reverting)
        )
}

/// Whether a flow may move from `from` to `to`. Same-state is allowed (a no-op).
///
/// A run ends PARKED (from RUNNING) when nothing can run until a delivery; a
/// later run resumes it (PARKED -> RESUMING). A suspended run with parked atoms
/// ends SUSPENDED as any other.
pub fn check_flow_transition(from: FlowState, to: FlowState) -> bool {
    use FlowState::*;
    from == to
        || matches!(
            (from, to),
            (Pending, Running)
                | (Pending, Resuming)
                | (Running, Success)
                | (Running, Failure)
                | (Running, Reverting)
                | (Running, Reverted)
                | (Running, Suspending)
                | (Running, Resuming)
                | (Reverting, Reverted)
                | (Reverting, Failure)
                | (Reverting, Suspending)
                | (Reverting, Resuming)
                | (Suspending, Suspended)
                | (Suspending, Success)
                | (Suspending, Reverted)
                | (Suspending, Failure)
                | (Suspending, Resuming)
                | (Suspended, Resuming)
                | (Resuming, Running)
                | (Resuming, Reverting)
                | (Resuming, Suspended)
                | (Reverted, Pending)
                | (Failure, Resuming)
                | (Running, Parked)
                | (Parked, Resuming)
        )
}
