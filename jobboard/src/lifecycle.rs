//! The job lifecycle: one table of transitions that every backend goes through.
//!
//! As the engine's `flows::state` does for atoms and flows, states are data:
//! a backend asks this module for every change of a job's state and never
//! writes one the table refuses (a refusal is an error, nothing is written).
//! The quarantine rule and its reason text live here too, so every backend
//! quarantines at the same count with the same words.
//!
//! | event \ from  | UNCLAIMED              | CLAIMED                      | PARKED                      | SUSPENDED                   | COMPLETE        | TRASHED |
//! |---------------|------------------------|------------------------------|-----------------------------|-----------------------------|-----------------|---------|
//! | `claim`       | CLAIMED (claims + 1)   | refused                      | refused                     | refused                     | refused         | refused |
//! | `quarantine`  | TRASHED (rule's reason)| refused                      | refused                     | refused                     | refused         | refused |
//! | `cancel`      | COMPLETE (CANCELLED)   | CLAIMED (cancel flag set)    | UNCLAIMED (cancel flag set) | UNCLAIMED (cancel flag set) | refused         | refused |
//! | `consume`     | refused                | COMPLETE (outcome, failure)  | refused                     | refused                     | refused         | refused |
//! | `abandon`     | refused                | UNCLAIMED                    | refused                     | refused                     | refused         | refused |
//! | `trash`       | refused                | TRASHED (reason)             | refused                     | refused                     | refused         | refused |
//! | `release`     | refused                | UNCLAIMED                    | refused                     | refused                     | refused         | refused |
//! | `park`        | refused                | PARKED                       | refused                     | refused                     | refused         | refused |
//! | `deliver`     | refused                | refused                      | UNCLAIMED                   | SUSPENDED                   | refused         | refused |
//! | `suspend`     | SUSPENDED              | CLAIMED (suspend flag set)   | SUSPENDED                   | refused                     | refused         | refused |
//! | `halt`        | refused                | SUSPENDED                    | refused                     | refused                     | refused         | refused |
//! | `resume`      | refused                | refused                      | refused                     | UNCLAIMED                   | refused         | refused |
//! | `retry`       | refused                | refused                      | refused                     | refused                     | UNCLAIMED (1)   | UNCLAIMED (2) |
//!
//! (1) only a job whose outcome is FAILURE (a revert failed): its owner finishes the
//! revert from the logbook. (2) the claim count restarts for the quarantine rule
//! (`claim_base`; the count itself only grows, it is the embedded board's fencing
//! token); the logbook is kept, so it resumes where it stopped. Refused besides:
//! `suspend` of a job whose cancel is pending, `resume` of one whose suspension is.
//!
//! SUSPENDED: an operator's `suspend`. An unclaimed or parked job is suspended at
//! once; a claimed one is flagged, its owner stops starting tasks, lets running
//! ones finish and gives the claim back SUSPENDED (`halt`; an `abandon` instead if
//! a cancel came meanwhile, so a claimer reverts). Completions of parked tasks of a
//! suspended job are recorded and wait for `resume`. Nothing claims it until then.

//! PARKED: every task the flow can run waits for a completion (see `parking`);
//! the owner gave the claim back, so nobody holds a slot for it, and it is not
//! claimable until a completion, a timeout (`deliver`) or a cancel makes it so.
//! A cancelled PARKED job is claimed again to revert what it did.
//!
//! A job is posted UNCLAIMED ([`POSTED`]). A job is CLAIMED exactly while it has
//! an owner. COMPLETE and TRASHED are final but for an operator's `retry`, so a
//! refused `cancel` of a finished job is how the API returns it unchanged.
//!
//! How a refusal reaches callers is decided once as well
//! ([`IllegalTransition::into_error`]): a refused claim is `AlreadyClaimed` or
//! `NotClaimable`; anything else is `Error::IllegalTransition`.

use std::fmt;

use flows::{Failure, Millis};

use crate::error::Error;
use crate::job::{Job, JobId, JobState, OperatorAction, Outcome};

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
    /// An operator suspends it (`baton suspend`).
    Suspend,
    /// Its owner gives it back SUSPENDED: the flow stopped as asked.
    Halt,
    /// An operator resumes a suspended job.
    Resume,
    /// An operator retries a job that ended FAILURE, or a trashed one.
    Retry,
}

impl Event {
    /// Every event, in table order.
    pub const ALL: [Event; 13] = [
        Event::Claim,
        Event::Quarantine,
        Event::Cancel,
        Event::Consume,
        Event::Abandon,
        Event::Trash,
        Event::Release,
        Event::Park,
        Event::Deliver,
        Event::Suspend,
        Event::Halt,
        Event::Resume,
        Event::Retry,
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
            Event::Suspend => "suspend",
            Event::Halt => "halt",
            Event::Resume => "resume",
            Event::Retry => "retry",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table: `(event, from, to)` for every allowed transition; anything else is refused.
pub const TRANSITIONS: [(Event, JobState, JobState); 20] = [
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
    (Event::Cancel, JobState::Suspended, JobState::Unclaimed),
    (Event::Deliver, JobState::Suspended, JobState::Suspended),
    (Event::Suspend, JobState::Unclaimed, JobState::Suspended),
    (Event::Suspend, JobState::Claimed, JobState::Claimed),
    (Event::Suspend, JobState::Parked, JobState::Suspended),
    (Event::Halt, JobState::Claimed, JobState::Suspended),
    (Event::Resume, JobState::Suspended, JobState::Unclaimed),
    (Event::Retry, JobState::Complete, JobState::Unclaimed),
    (Event::Retry, JobState::Trashed, JobState::Unclaimed),
];

/// A transition the table refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a job that is {from}{}", why.map(|w| format!(" ({w})")).unwrap_or_default())]
pub struct IllegalTransition {
    /// What was attempted.
    pub event: Event,
    /// The state it was attempted in.
    pub from: JobState,
    /// Why, when the state alone does not say (e.g. `its outcome is SUCCESS`).
    pub why: Option<&'static str>,
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
            (
                Event::Claim | Event::Quarantine,
                state @ (JobState::Complete | JobState::Trashed | JobState::Parked | JobState::Suspended),
            ) => Error::NotClaimable { job, state },
            _ => Error::IllegalTransition { job, refused: self },
        }
    }
}

/// Where `event` takes a job in state `from`, or why it may not.
pub fn next_state(from: JobState, event: Event) -> Result<JobState, IllegalTransition> {
    TRANSITIONS.iter().find(|(e, f, _)| *e == event && *f == from).map(|(_, _, to)| *to).ok_or(IllegalTransition {
        event,
        from,
        why: None,
    })
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
    /// (Callers pass the claims since its last `retry`: see [`claims_since_retry`].)
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

/// The claims the quarantine rule counts: those since the job's last `retry`.
pub fn claims_since_retry(claims: u32, claim_base: u32) -> u32 {
    claims.saturating_sub(claim_base)
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
    /// A cancel because the job's deadline passed: the failure it ends with.
    Expire(Failure),
    Suspend,
    Halt,
    Resume,
    Retry,
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
            Change::Expire(_) => Event::Cancel,
            Change::Suspend => Event::Suspend,
            Change::Halt => Event::Halt,
            Change::Resume => Event::Resume,
            Change::Retry => Event::Retry,
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
    pub(crate) suspend_requested: bool,
    pub(crate) claim_base: u32,
    pub(crate) actions: Vec<OperatorAction>,
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
            suspend_requested: job.suspend_requested,
            claim_base: job.claim_base,
            actions: job.actions.clone(),
        }
    }

    /// The status after `change` at time `now`, if the table allows it from this state.
    pub(crate) fn apply(&self, change: &Change, now: Millis) -> Result<Status, IllegalTransition> {
        // The owner's "stopped as asked" after a cancel came meanwhile gives the job back
        // claimable (an abandon) so that a claimer reverts, instead of SUSPENDED.
        // And a park after a suspend request is that suspension.
        let event = match change {
            Change::Halt if self.cancel_requested => Event::Abandon,
            Change::Park if self.suspend_requested => Event::Halt,
            other => other.event(),
        };
        let to = next_state(self.state, event)?;
        let refuse = |why| Err(IllegalTransition { event, from: self.state, why: Some(why) });
        match change {
            Change::Suspend if self.cancel_requested => return refuse("its cancellation is pending"),
            Change::Suspend if self.suspend_requested => return refuse("its suspension is pending"),
            Change::Retry if self.state == JobState::Complete && self.outcome != Some(Outcome::Failure) => {
                return refuse(retry_refusal(self.outcome));
            }
            _ => {}
        }
        let mut next = Status { state: to, ..self.clone() };
        if to == JobState::Suspended {
            next.suspend_requested = false;
        }
        match change {
            Change::Claim => next.claims = self.claims.saturating_add(1),
            Change::Quarantine(rule) => {
                next.trash_reason = Some(rule.reason(claims_since_retry(self.claims, self.claim_base)));
                next.finished_at = Some(now);
            }
            // Unclaimed: cancelled at once. Claimed: the owner is told, and decides.
            // Parked or suspended: claimable again, flagged, so a claimer reverts what it did.
            // An expired job carries its deadline failure from the request on (shown while it reverts).
            Change::Cancel | Change::Expire(_) => {
                if let Change::Expire(failure) = change {
                    next.failure = Some(failure.clone());
                }
                if to == JobState::Complete {
                    next.outcome = Some(Outcome::Cancelled);
                    next.finished_at = Some(now);
                } else {
                    next.cancel_requested = true;
                }
            }
            Change::Consume(outcome, failure) => {
                next.outcome = Some(*outcome);
                // A flow cancelled because its deadline passed ends with that failure, whoever noticed first.
                next.failure = match (&self.failure, failure) {
                    (Some(expired), _) if *outcome == Outcome::Cancelled && operate::is_deadline(expired) => {
                        Some(operate::deadline_failure_with(expired, failure.clone()))
                    }
                    _ => failure.clone(),
                };
                next.finished_at = Some(now);
            }
            Change::Trash(reason) => {
                next.trash_reason = Some(reason.clone());
                next.finished_at = Some(now);
            }
            Change::Suspend if to == JobState::Claimed => next.suspend_requested = true,
            Change::Retry => {
                next.claim_base = self.claims;
                next.outcome = None;
                next.failure = None;
                next.trash_reason = None;
                next.finished_at = None;
                next.cancel_requested = false;
                next.suspend_requested = false;
            }
            Change::Abandon
            | Change::Release
            | Change::Park
            | Change::Deliver
            | Change::Suspend
            | Change::Halt
            | Change::Resume => {}
        }
        Ok(next)
    }

    /// Records an operator's action (bounded: the newest [`ACTIONS_KEPT`]).
    pub(crate) fn record(&mut self, action: &str, by: &str, at: Millis) {
        self.actions.push(OperatorAction { action: action.to_owned(), by: by.to_owned(), at });
        let excess = self.actions.len().saturating_sub(ACTIONS_KEPT);
        self.actions.drain(..excess);
    }
}

/// How many operator actions a job's record keeps.
pub const ACTIONS_KEPT: usize = 32;

fn retry_refusal(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Success) => {
            "its outcome is SUCCESS; only a FAILURE or TRASHED job can be retried; rerun it instead"
        }
        Some(Outcome::Reverted) => {
            "its outcome is REVERTED; only a FAILURE or TRASHED job can be retried; rerun it instead"
        }
        Some(Outcome::Cancelled) => {
            "its outcome is CANCELLED; only a FAILURE or TRASHED job can be retried; rerun it instead"
        }
        _ => "only a FAILURE or TRASHED job can be retried",
    }
}

#[path = "lifecycle/fold.rs"]
pub(crate) mod fold;
#[path = "lifecycle/operate.rs"]
pub mod operate;

#[cfg(test)]
#[path = "lifecycle/tests.rs"]
mod tests;
