//! Operators' requests on a job (cancel, suspend, resume, retry) and the deadline's
//! cancel: what each is in the lifecycle table, and the failure a job past its
//! deadline ends with. Every backend's `JobBoard::operate` applies these through
//! [`super::Status::apply`] and records who asked ([`super::Status::record`]).

use flows::{Failure, Millis};

use super::Change;

/// The failure kind of a job cancelled because its deadline passed.
pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";

/// Who the fleet's deadline cancel is recorded as.
pub const FLEET: &str = "fleet";

/// What an operator asks of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Cancel and revert (`baton cancel`); a finished job is returned unchanged.
    Cancel,
    /// Stop starting tasks, let running ones finish, release it SUSPENDED (`baton suspend`).
    Suspend,
    /// Make a suspended job claimable again (`baton resume`).
    Resume,
    /// Re-queue a FAILURE job to finish its revert, or a TRASHED one with its claim count reset (`baton retry`).
    Retry,
}

impl Operation {
    /// Its name, as recorded in the job's actions: `cancel`, `suspend`, `resume`, `retry`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Cancel => "cancel",
            Operation::Suspend => "suspend",
            Operation::Resume => "resume",
            Operation::Retry => "retry",
        }
    }

    pub(crate) fn change(self) -> Change {
        match self {
            Operation::Cancel => Change::Cancel,
            Operation::Suspend => Change::Suspend,
            Operation::Resume => Change::Resume,
            Operation::Retry => Change::Retry,
        }
    }
}

/// The failure of a job whose deadline (`deadline`, ms since the epoch) passed.
pub fn deadline_failure(deadline: Millis) -> Failure {
    Failure::new(DEADLINE_EXCEEDED, "the job's deadline passed: cancelled and reverted")
        .with_details(serde_json::json!({ "deadline_ms": deadline }))
}

/// Whether `failure` is a deadline's.
pub fn is_deadline(failure: &Failure) -> bool {
    failure.kind == DEADLINE_EXCEEDED
}

/// The deadline failure `expired`, caused by what the reverted flow reported.
pub(crate) fn deadline_failure_with(expired: &Failure, flow: Option<Failure>) -> Failure {
    match flow {
        Some(cause) if !is_deadline(&cause) => expired.clone().with_cause(cause),
        _ => expired.clone(),
    }
}
