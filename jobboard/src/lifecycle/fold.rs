//! The folded claim: a job *picked* (chosen, nothing written) is claimed by
//! its first logbook write, in one atomic step with that write (see `pick`).
//!
//! One rule for both backends, decided here at the pick:
//! - a job the quarantine rule catches is quarantined instead, never picked;
//! - otherwise the claim is the table's `claim` from the status as picked
//!   (refused, as `AlreadyClaimed`/`NotClaimable`, unless UNCLAIMED), and the
//!   claim holds only if the job is *unchanged since the pick*: the backend's
//!   atomic step compares what it read (etcd: no owner key, the state key's
//!   mod revision, the board epoch; SQLite: UNCLAIMED with the same claim
//!   count). A job changed meanwhile (claimed elsewhere, cancelled, suspended,
//!   removed) is not claimed, and nothing of the write lands: `ClaimLost`.
//! - A job never claimed before has no logbook (only an owner writes one), so
//!   a pick of it reads none.

use flows::Millis;

use super::{claims_since_retry, Change, Event, IllegalTransition, QuarantineRule, Status};
use crate::job::Job;

/// What a pick leads to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Picked {
    /// Claim it with the first write: the status the claim will store.
    Claim(Status),
    /// Claimed too often: quarantine it (a separate write), and pick another.
    Quarantine,
}

/// The rule above, for `status` as read (`owned`: whether someone holds it).
pub(crate) fn pick(status: &Status, rule: QuarantineRule, now: Millis) -> Result<Picked, IllegalTransition> {
    if rule.claim_event(claims_since_retry(status.claims, status.claim_base)) == Event::Quarantine {
        return Ok(Picked::Quarantine);
    }
    status.apply(&Change::Claim, now).map(Picked::Claim)
}

/// Whether a job whose status was `picked` may hold no logbook yet (read none).
pub(crate) fn no_logbook_yet(picked: &Status) -> bool {
    picked.claims == 0
}

/// `job` as its claim will store it: `next` (from [`pick`]) with `owner`.
pub(crate) fn claimed_view(job: &Job, next: Status, owner: &str) -> Job {
    Job {
        state: next.state,
        owner: Some(owner.to_owned()),
        claims: next.claims,
        outcome: next.outcome,
        failure: next.failure,
        trash_reason: next.trash_reason,
        cancel_requested: next.cancel_requested,
        finished_at: next.finished_at,
        suspend_requested: next.suspend_requested,
        claim_base: next.claim_base,
        actions: next.actions,
        ..job.clone()
    }
}
