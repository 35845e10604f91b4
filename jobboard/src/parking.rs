//! Parked tasks on the board: the park entry every backend keeps per parked
//! atom, and the rules of completing, timing out and cancelling one, decided
//! here once for both backends.
//!
//! A park entry is written by the owner's logbook write that records the atom
//! PARKED (the same transaction, so it exists before anyone learns the token);
//! from then on only the one conditional write of [`decide_complete`] /
//! [`decide_timeout`] / [`cancel_entry`] changes it: it checks the entry's
//! state, attempt and hash and records the outcome. Exactly one of completion,
//! timeout and cancel wins, because each one is that conditional write on the
//! same entry.
//!
//! Answers (the API maps them to codes): the same completion again is
//! [`Completed::Already`] (OK); a different one [`Error::CompletionConflict`]
//! (ALREADY_EXISTS); after the deadline, a cancel, or for an attempt since
//! superseded [`Error::ParkClosed`] (FAILED_PRECONDITION); a token whose secret
//! does not match, or that names no park, [`Error::TokenNotFound`] (NOT_FOUND,
//! with no hint which part was wrong).

use flows::park::{timed_out, CallbackToken, CompletedBy};
use flows::{AtomDetail, AtomState, Delivery, Failure, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::job::JobId;

/// What `ParkEntry::by` says for a completion by token.
const BY_TOKEN: &str = "token";

/// How many earlier attempts' hashes an entry keeps, to tell "superseded" from "wrong".
const PREVIOUS_KEPT: usize = 16;

/// Where a park entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParkState {
    /// Waiting for a completion.
    Parked,
    /// Completed (with a result or a failure).
    Completed,
    /// Its deadline passed first.
    TimedOut,
    /// The job was cancelled first.
    Cancelled,
}

impl ParkState {
    /// Its name, e.g. `TIMED_OUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParkState::Parked => "PARKED",
            ParkState::Completed => "COMPLETED",
            ParkState::TimedOut => "TIMED_OUT",
            ParkState::Cancelled => "CANCELLED",
        }
    }
}

/// A completion: the delivered result, or a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    /// The task's result (what it provides).
    Result(Value),
    /// The task failed, with this failure.
    Failure(Failure),
}

impl TaskOutcome {
    /// As the engine takes it.
    pub fn into_result(self) -> Result<Value, Failure> {
        match self {
            TaskOutcome::Result(v) => Ok(v),
            TaskOutcome::Failure(f) => Err(f),
        }
    }
}

/// The board's record of one parked atom (never the token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkEntry {
    /// The atom's name.
    pub atom: String,
    /// The parked attempt.
    pub attempt: u32,
    /// SHA-256 of the attempt's token secret, hex.
    pub token_hash: String,
    /// When it times out, ms since the epoch.
    pub deadline: Millis,
    /// Where it stands.
    pub state: ParkState,
    /// What completed it, once COMPLETED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskOutcome>,
    /// Who completed it: `token`, or the operator's name for an override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it left PARKED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Millis>,
    /// Earlier attempts of the same atom and their hashes (newest last, bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<(u32, String)>,
}

impl ParkEntry {
    /// The entry an owner's logbook write creates for `atom` when it is PARKED
    /// and not yet notified (a first park, or a re-issued token), keeping the
    /// hashes of earlier attempts from `before`. `None` for any other atom write,
    /// and for a re-issue whose attempt `before` shows settled already.
    pub fn for_atom(atom: &AtomDetail, before: Option<&ParkEntry>) -> Option<ParkEntry> {
        if atom.state != AtomState::Parked {
            return None;
        }
        let record = atom.park().filter(|r| !r.notified)?;
        // A re-issued token must not undo a completion (or timeout) of the same attempt
        // that landed first: the entry stays settled, and the owner's park is refused with it.
        if before.is_some_and(|b| b.attempt == record.attempt && b.state != ParkState::Parked) {
            return None;
        }
        let mut previous = before.map(|b| b.previous.clone()).unwrap_or_default();
        if let Some(b) = before.filter(|b| b.attempt != record.attempt) {
            previous.push((b.attempt, b.token_hash.clone()));
        }
        let excess = previous.len().saturating_sub(PREVIOUS_KEPT);
        previous.drain(..excess);
        Some(ParkEntry {
            atom: atom.name.clone(),
            attempt: record.attempt,
            token_hash: record.token_hash,
            deadline: record.deadline,
            state: ParkState::Parked,
            outcome: None,
            by: None,
            settled_at: None,
            previous,
        })
    }

    /// What the engine is to be handed for this entry, once it is settled.
    pub fn delivery(&self) -> Option<Delivery> {
        let outcome = match (&self.state, &self.outcome) {
            (ParkState::Completed, Some(outcome)) => outcome.clone().into_result(),
            (ParkState::TimedOut, _) => Err(timed_out(&self.atom, self.deadline)),
            _ => return None,
        };
        let completed_by = match (&self.by, self.settled_at) {
            (Some(who), Some(at)) if who != BY_TOKEN => Some(CompletedBy { who: who.clone(), at }),
            _ => None,
        };
        Some(Delivery { atom: self.atom.clone(), attempt: self.attempt, outcome, completed_by })
    }

    fn settled(&self, state: ParkState, outcome: Option<TaskOutcome>, by: Option<String>, now: Millis) -> ParkEntry {
        ParkEntry { state, outcome, by, settled_at: Some(now), ..self.clone() }
    }
}

/// A completion accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// This call completed it.
    Now,
    /// It was already completed with the same outcome (an idempotent repeat).
    Already,
}

/// Who presents a completion.
#[derive(Debug, Clone)]
pub enum Presenter<'a> {
    /// A callback token (the credential).
    Token(&'a CallbackToken),
    /// An operator's override, by job and atom: completes the current attempt.
    Operator(&'a str),
}

/// What a backend does about a completion, after reading the entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Write this entry (conditionally on the one read); the answer is `Completed::Now`.
    Complete(ParkEntry),
    /// Answer at once: nothing to write.
    Answer(Completed),
    /// The deadline has passed: write this TIMED_OUT entry, then answer `ParkClosed`.
    Expire(ParkEntry),
}

/// Decides a completion of `entry` (as read; `None` if there is none).
pub(crate) fn decide_complete(
    job: JobId,
    entry: Option<&ParkEntry>,
    who: &Presenter<'_>,
    outcome: &TaskOutcome,
    now: Millis,
) -> Result<Verdict, Error> {
    let not_found = || Error::TokenNotFound;
    let entry = entry.ok_or_else(not_found)?;
    if let Presenter::Token(token) = who {
        let named = token.name();
        if named.job != job || named.atom != entry.atom {
            return Err(not_found());
        }
        if named.attempt != entry.attempt {
            let superseded = entry.previous.iter().any(|(a, h)| *a == named.attempt && token.matches(h));
            return if superseded {
                Err(closed(entry, "its attempt was superseded by a later one"))
            } else {
                Err(not_found())
            };
        }
        if !token.matches(&entry.token_hash) {
            return Err(not_found());
        }
    }
    let by = match who {
        Presenter::Token(_) => BY_TOKEN.to_owned(),
        Presenter::Operator(name) => (*name).to_owned(),
    };
    match entry.state {
        ParkState::Parked if now >= entry.deadline => {
            Ok(Verdict::Expire(entry.settled(ParkState::TimedOut, None, None, now)))
        }
        ParkState::Parked => {
            Ok(Verdict::Complete(entry.settled(ParkState::Completed, Some(outcome.clone()), Some(by), now)))
        }
        ParkState::Completed if entry.outcome.as_ref() == Some(outcome) => Ok(Verdict::Answer(Completed::Already)),
        ParkState::Completed => Err(Error::CompletionConflict { atom: entry.atom.clone() }),
        ParkState::TimedOut => Err(closed(entry, "its deadline passed")),
        ParkState::Cancelled => Err(closed(entry, "its job was cancelled")),
    }
}

/// The TIMED_OUT entry if `entry` is still parked in `attempt` and due at `now`.
pub(crate) fn decide_timeout(entry: &ParkEntry, attempt: u32, now: Millis) -> Option<ParkEntry> {
    (entry.state == ParkState::Parked && entry.attempt == attempt && entry.deadline <= now)
        .then(|| entry.settled(ParkState::TimedOut, None, None, now))
}

/// The CANCELLED entry if `entry` is still parked (its token dies with the cancel).
pub(crate) fn cancel_entry(entry: &ParkEntry, now: Millis) -> Option<ParkEntry> {
    (entry.state == ParkState::Parked).then(|| entry.settled(ParkState::Cancelled, None, None, now))
}

/// What an owner's park request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Parking {
    /// The job is PARKED and the claim is over.
    Parked,
    /// Completions arrived meanwhile: fold these in and run on (the claim stands).
    Delivered(Vec<Delivery>),
    /// A cancel was requested meanwhile: cancel the run (the claim stands).
    Cancelled,
}

/// The deliveries of settled entries whose attempt the engine still waits for.
pub(crate) fn delivered_for(entries: &[ParkEntry], waiting: &[(String, u32)]) -> Vec<Delivery> {
    entries
        .iter()
        .filter(|e| e.state != ParkState::Parked && waiting.iter().any(|(a, n)| *a == e.atom && *n == e.attempt))
        .filter_map(ParkEntry::delivery)
        .collect()
}

fn closed(entry: &ParkEntry, why: &str) -> Error {
    Error::ParkClosed { atom: entry.atom.clone(), why: why.to_owned() }
}

#[cfg(test)]
#[path = "parking/tests.rs"]
mod tests;
