//! The job lifecycle: one table of transitions that every backend goes through.
//!
//! As the engine's `flows::state` does for atoms and flows, states are data:
//! a backend asks this module for every change of a job's state and never
//! writes one the table refuses (a refusal is an error, nothing is written).
//! The quarantine rule and its reason text live here too, so every backend
//! quarantines at the same count with the same words.
//!
//! | event \ from  | UNCLAIMED              | CLAIMED                      | PARKED                      | COMPLETE | TRASHED |
//! |---------------|------------------------|------------------------------|-----------------------------|----------|---------|
//! | `claim`       | CLAIMED (claims + 1)   | refused                      | refused                     | refused  | refused |
//! | `quarantine`  | TRASHED (rule's reason)| refused                      | refused                     | refused  | refused |
//! | `cancel`      | COMPLETE (CANCELLED)   | CLAIMED (cancel flag set)    | UNCLAIMED (cancel flag set) | refused  | refused |
//! | `consume`     | refused                | COMPLETE (outcome, failure)  | refused                     | refused  | refused |
//! | `abandon`     | refused                | UNCLAIMED                    | refused                     | refused  | refused |
//! | `trash`       | refused                | TRASHED (reason)             | refused                     | refused  | refused |
//! | `release`     | refused                | UNCLAIMED                    | refused                     | refused  | refused |
//! | `park`        | refused                | PARKED                       | refused                     | refused  | refused |
//! | `deliver`     | refused                | refused                      | UNCLAIMED                   | refused  | refused |
//!
//! PARKED: every task the flow can run waits for a completion (see `parking`);
//! the owner gave the claim back, so nobody holds a slot for it, and it is not
//! claimable until a completion, a timeout (`deliver`) or a cancel makes it so.
//! A cancelled PARKED job is claimed again to revert what it did.
//!
//! A job is posted UNCLAIMED ([`POSTED`]). A job is CLAIMED exactly while it has
//! an owner. COMPLETE and TRASHED are final: no event leaves them, so a refused
//! `cancel` of a finished job is how the API returns it unchanged.
//!
//! How a refusal reaches callers is decided once as well
//! ([`IllegalTransition::into_error`]): a refused claim is `AlreadyClaimed` or
//! `NotClaimable`; anything else is `Error::IllegalTransition`.

use std::fmt;

use flows::{Failure, Millis};

use crate::error::Error;
use crate::job::{Job, JobId, JobState, Outcome};

/// The state every job is posted in.
pub const POSTED: JobState = JobState::Unclaimed;

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A claimer takes it.
    Claim,
    /// A claim attempt finds it claimed too often without finishing (see [`QuarantineRule`]).
    Quarantine,
    /// Cancellation is requested.
    Cancel,
    /// Its owner finishes it with an outcome.
    Consume,
    /// Its owner gives it back to the board.
    Abandon,
    /// Its owner gives up on it for good.
    Trash,
    /// Its owner's session ended without ending the claim (an expired etcd
    /// lease, a closed session, a board file reopened after a crash): the
    /// orphan is re-queued.
    Release,
    /// Its owner gives it back because every task it can run is parked.
    Park,
    /// A parked task of a PARKED job is completed or timed out: claimable again.
    Deliver,
}

impl Event {
    /// Every event, in table order.
    pub const ALL: [Event; 9] = [
        Event::Claim,
        Event::Quarantine,
        Event::Cancel,
        Event::Consume,
        Event::Abandon,
        Event::Trash,
        Event::Release,
        Event::Park,
        Event::Deliver,
    ];

    /// Its name, e.g. `claim`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Claim => "claim",
            Event::Quarantine => "quarantine",
            Event::Cancel => "cancel",
            Event::Consume => "consume",
            Event::Abandon => "abandon",
            Event::Trash => "trash",
            Event::Release => "release",
            Event::Park => "park",
            Event::Deliver => "deliver",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table: `(event, from, to)` for every allowed transition; anything else is refused.
pub const TRANSITIONS: [(Event, JobState, JobState); 11] = [
    (Event::Claim, JobState::Unclaimed, JobState::Claimed),
    (Event::Quarantine, JobState::Unclaimed, JobState::Trashed),
    (Event::Cancel, JobState::Unclaimed, JobState::Complete),
    (Event::Cancel, JobState::Claimed, JobState::Claimed),
    (Event::Consume, JobState::Claimed, JobState::Complete),
    (Event::Abandon, JobState::Claimed, JobState::Unclaimed),
    (Event::Trash, JobState::Claimed, JobState::Trashed),
    (Event::Release, JobState::Claimed, JobState::Unclaimed),
    (Event::Park, JobState::Claimed, JobState::Parked),
    (Event::Deliver, JobState::Parked, JobState::Unclaimed),
    (Event::Cancel, JobState::Parked, JobState::Unclaimed),
];

/// A transition the table refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a job that is {from}")]
pub struct IllegalTransition {
    /// What was attempted.
    pub event: Event,
    /// The state it was attempted in.
    pub from: JobState,
}

impl IllegalTransition {
    /// The board error a caller gets for this refusal of job `job`, whose
    /// owner (if any) is `owner`: a refused claim (or quarantine, which only a
    /// claim attempt makes) is `AlreadyClaimed` or `NotClaimable`, as
    /// `JobBoard::claim` promises; anything else is `IllegalTransition`.
    pub fn into_error(self, job: JobId, owner: Option<&str>) -> Error {
        match (self.event, self.from) {
            (Event::Claim | Event::Quarantine, JobState::Claimed) => {
                Error::AlreadyClaimed { job, owner: owner.unwrap_or_default().to_owned() }
            }
            (Event::Claim | Event::Quarantine, state @ (JobState::Complete | JobState::Trashed | JobState::Parked)) => {
                Error::NotClaimable { job, state }
            }
            _ => Error::IllegalTransition { job, refused: self },
        }
    }
}

/// Where `event` takes a job in state `from`, or why it may not.
pub fn next_state(from: JobState, event: Event) -> Result<JobState, IllegalTransition> {
    TRANSITIONS
        .iter()
        .find(|(e, f, _)| *e == event && *f == from)
        .map(|(_, _, to)| *to)
        .ok_or(IllegalTransition { event, from })
}

/// When a job is poison: claimed `after` times without finishing, the next
/// claim attempt quarantines (trashes) it instead. `after == 0` never quarantines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineRule {
    after: u32,
}

impl QuarantineRule {
    /// Quarantine after `after` claims (`BoardConfig::quarantine_after`); 0 never quarantines.
    pub fn new(after: u32) -> Self {
        QuarantineRule { after }
    }

    /// Whether a job claimed `claims` times without finishing is poison.
    pub fn applies(self, claims: u32) -> bool {
        self.after > 0 && claims >= self.after
    }

    /// What a claim attempt of an unclaimed job claimed `claims` times is:
    /// [`Event::Quarantine`] for a poison job, else [`Event::Claim`].
    pub fn claim_event(self, claims: u32) -> Event {
        if self.applies(claims) {
            Event::Quarantine
        } else {
            Event::Claim
        }
    }

    /// The trash reason of a job quarantined after `claims` claims: the same words on every backend.
    pub fn reason(self, claims: u32) -> String {
        format!("quarantined: claimed {claims} times without finishing (limit {})", self.after)
    }
}

/// An event with what it carries: what a backend asks [`Status::apply`] to do.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Claim,
    Quarantine(QuarantineRule),
    Cancel,
    Consume(Outcome, Option<Failure>),
    Abandon,
    Trash(String),
    Release,
    Park,
    Deliver,
}

impl Change {
    pub(crate) fn event(&self) -> Event {
        match self {
            Change::Claim => Event::Claim,
            Change::Quarantine(_) => Event::Quarantine,
            Change::Cancel => Event::Cancel,
            Change::Consume(..) => Event::Consume,
            Change::Abandon => Event::Abandon,
            Change::Trash(_) => Event::Trash,
            Change::Release => Event::Release,
            Change::Park => Event::Park,
            Change::Deliver => Event::Deliver,
        }
    }
}

/// The part of a job that transitions change, as each backend stores it
/// (the owner is kept apart: it is set exactly while the state is CLAIMED).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Status {
    pub(crate) state: JobState,
    pub(crate) claims: u32,
    pub(crate) outcome: Option<Outcome>,
    pub(crate) failure: Option<Failure>,
    pub(crate) trash_reason: Option<String>,
    pub(crate) cancel_requested: bool,
    pub(crate) finished_at: Option<Millis>,
}

impl Status {
    /// A job's status as read.
    pub(crate) fn of(job: &Job) -> Status {
        Status {
            state: job.state,
            claims: job.claims,
            outcome: job.outcome,
            failure: job.failure.clone(),
            trash_reason: job.trash_reason.clone(),
            cancel_requested: job.cancel_requested,
            finished_at: job.finished_at,
        }
    }

    /// The status after `change` at time `now`, if the table allows it from this state.
    pub(crate) fn apply(&self, change: &Change, now: Millis) -> Result<Status, IllegalTransition> {
        let to = next_state(self.state, change.event())?;
        let mut next = Status { state: to, ..self.clone() };
        match change {
            Change::Claim => next.claims = self.claims.saturating_add(1),
            Change::Quarantine(rule) => {
                next.trash_reason = Some(rule.reason(self.claims));
                next.finished_at = Some(now);
            }
            // Unclaimed: cancelled at once. Claimed: the owner is told, and decides.
            // Parked: claimable again, flagged, so a claimer reverts what it did.
            Change::Cancel if to == JobState::Complete => {
                next.outcome = Some(Outcome::Cancelled);
                next.finished_at = Some(now);
            }
            Change::Cancel => next.cancel_requested = true,
            Change::Consume(outcome, failure) => {
                next.outcome = Some(*outcome);
                next.failure.clone_from(failure);
                next.finished_at = Some(now);
            }
            Change::Trash(reason) => {
                next.trash_reason = Some(reason.clone());
                next.finished_at = Some(now);
            }
            Change::Abandon | Change::Release | Change::Park | Change::Deliver => {}
        }
        Ok(next)
    }
}

#[cfg(test)]
#[path = "lifecycle/tests.rs"]
mod tests;
