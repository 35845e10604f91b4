//! Park SQL of the embedded board: the `parks` table (one row per parked
//! atom of a job, its entry as JSON, indexed by deadline while PARKED), and
//! the conditional writes the rules in `crate::parking` decide. Each function
//! runs inside its caller's transaction, so checking an entry and writing it
//! (with the job's transition) is one atomic step.

use flows::{AtomDetail, Millis};
use rusqlite::{params, Connection, OptionalExtension};

use super::db::sql_error;
use super::jobs;
use super::rows::to_i64;
use crate::claim::FenceToken;
use crate::error::Error;
use crate::job::{JobId, JobState};
use crate::lifecycle::Change;
use crate::parking::{self, delivered_for, Completed, ParkEntry, Parking, Presenter, TaskOutcome, Verdict};

/// Reads one entry.
pub(crate) fn entry(tx: &Connection, job: JobId, atom: &str) -> Result<Option<ParkEntry>, Error> {
    let text: Option<String> = tx
        .query_row("SELECT entry FROM parks WHERE job_id = ?1 AND atom = ?2", params![job.to_string(), atom], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql_error)?;
    text.map(|t| super::rows::from_json(&t, "park entry")).transpose()
}

/// Every entry of a job, by atom name.
pub(crate) fn entries(tx: &Connection, job: JobId) -> Result<Vec<ParkEntry>, Error> {
    let mut stmt = tx.prepare("SELECT entry FROM parks WHERE job_id = ?1 ORDER BY atom").map_err(sql_error)?;
    let rows = stmt.query_map([job.to_string()], |r| r.get::<_, String>(0)).map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error).and_then(|t| super::rows::from_json(&t, "park entry"))).collect()
}

fn put(tx: &Connection, job: JobId, entry: &ParkEntry) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO parks (job_id, atom, state, deadline, entry) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (job_id, atom) DO UPDATE SET state = ?3, deadline = ?4, entry = ?5",
        params![
            job.to_string(),
            entry.atom,
            entry.state.as_str(),
            to_i64(entry.deadline),
            super::rows::to_json(entry)?
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// The owner's logbook write: every atom written PARKED and not yet notified
/// gets its entry in the same transaction.
pub(crate) fn record_atoms(tx: &Connection, job: JobId, atoms: &[AtomDetail]) -> Result<(), Error> {
    let fresh = |a: &&AtomDetail| a.state == flows::AtomState::Parked && a.park().is_some_and(|r| !r.notified);
    for atom in atoms.iter().filter(fresh) {
        let before = entry(tx, job, &atom.name)?;
        if let Some(new) = ParkEntry::for_atom(atom, before.as_ref()) {
            put(tx, job, &new)?;
        }
    }
    Ok(())
}

/// What a settled entry did to its job, for the caller's wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// The job was PARKED and is claimable again.
    Claimable,
    /// The job is claimed: its owner is to be told.
    Owner,
    /// Nothing to wake.
    Nobody,
}

/// Writes a settled entry and moves a PARKED job on (`deliver`).
fn settle(tx: &Connection, job: JobId, entry: &ParkEntry, now: Millis) -> Result<Woke, Error> {
    put(tx, job, entry)?;
    let current = jobs::get_existing(tx, job)?;
    Ok(match current.state {
        JobState::Parked => {
            jobs::transition(tx, &current, &Change::Deliver, None, now)?;
            Woke::Claimable
        }
        JobState::Claimed => Woke::Owner,
        _ => Woke::Nobody,
    })
}

/// A completion of `atom` of `job`: the answer (or the refusal), and whom to wake.
pub(crate) fn complete(
    tx: &Connection,
    job: JobId,
    atom: &str,
    who: &Presenter<'_>,
    outcome: &TaskOutcome,
    now: Millis,
) -> Result<(Result<Completed, Error>, Woke), Error> {
    let current = entry(tx, job, atom)?;
    match parking::decide_complete(job, current.as_ref(), who, outcome, now) {
        Err(refused) => Ok((Err(refused), Woke::Nobody)),
        Ok(Verdict::Answer(answer)) => Ok((Ok(answer), Woke::Nobody)),
        Ok(Verdict::Complete(done)) => Ok((Ok(Completed::Now), settle(tx, job, &done, now)?)),
        Ok(Verdict::Expire(expired)) => {
            let woke = settle(tx, job, &expired, now)?;
            Ok((Err(Error::ParkClosed { atom: atom.to_owned(), why: "its deadline passed".into() }), woke))
        }
    }
}

/// Times out up to `limit` due entries, earliest deadline first (the partial
/// index on PARKED deadlines makes this cost the due ones only). Returns the
/// jobs touched and whom to wake.
pub(crate) fn time_out_due(tx: &Connection, limit: usize, now: Millis) -> Result<Vec<(JobId, Woke)>, Error> {
    let due: Vec<(String, String)> = {
        let mut stmt = tx
            .prepare(
                "SELECT job_id, atom FROM parks WHERE state = 'PARKED' AND deadline <= ?1 ORDER BY deadline LIMIT ?2",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![to_i64(now), i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let mut touched = Vec::with_capacity(due.len());
    for (job, atom) in due {
        let job = super::rows::parse_uuid(&job)?;
        let Some(current) = entry(tx, job, &atom)? else { continue };
        if let Some(expired) = parking::decide_timeout(&current, current.attempt, now) {
            touched.push((job, settle(tx, job, &expired, now)?));
        }
    }
    Ok(touched)
}

/// Kills every parked entry of `job` (its cancel): their tokens get FAILED_PRECONDITION.
pub(crate) fn cancel_all(tx: &Connection, job: JobId, now: Millis) -> Result<(), Error> {
    for current in entries(tx, job)? {
        if let Some(cancelled) = parking::cancel_entry(&current, now) {
            put(tx, job, &cancelled)?;
        }
    }
    Ok(())
}

/// The owner's request to park the job, fenced: refused for completions or a
/// cancel that arrived meanwhile (the claim stands then).
pub(crate) fn park_job(
    tx: &Connection,
    job: JobId,
    owner: &str,
    token: FenceToken,
    waiting: &[(String, u32)],
    now: Millis,
) -> Result<Parking, Error> {
    jobs::fence(tx, job, owner, token)?;
    let delivered = delivered_for(&entries(tx, job)?, waiting);
    if !delivered.is_empty() {
        return Ok(Parking::Delivered(delivered));
    }
    let current = jobs::get_existing(tx, job)?;
    if current.cancel_requested {
        return Ok(Parking::Cancelled);
    }
    jobs::transition(tx, &current, &Change::Park, None, now)?;
    Ok(Parking::Parked)
}
