//! Operators' requests on the embedded board (cancel, suspend, resume, retry),
//! the deadline's cancel, and the overdue scan: each one transaction through
//! the lifecycle table (`jobs::transition`), recording who asked.

use rusqlite::{params, Connection};

use super::db::sql_error;
use super::jobs;
use super::parks;
use super::rows::{parse_uuid, to_i64, to_u64};
use crate::error::Error;
use crate::job::{Job, JobId, JobState};
use crate::lifecycle::operate::{deadline_failure, Operation, FLEET};
use crate::lifecycle::{Change, Event};

/// What a request did, for the caller's wake-ups.
#[derive(Debug)]
pub(crate) struct Operated {
    pub(crate) job: Job,
    /// The job changed (a refused cancel of a finished job did not).
    pub(crate) changed: bool,
}

/// Applies `op` (or, with `expire`, the deadline's cancel) to job `id`, recording `by`.
pub(crate) fn operate(
    tx: &Connection,
    id: JobId,
    op: Operation,
    by: &str,
    expire: Option<u64>,
    now: u64,
) -> Result<Operated, Error> {
    let job = jobs::get_existing(tx, id)?;
    let unchanged = |job| Ok(Operated { job, changed: false });
    if op == Operation::Cancel
        && (crate::lifecycle::next_state(job.state, Event::Cancel).is_err()
            || (job.state == JobState::Claimed && job.cancel_requested))
    {
        return unchanged(job);
    }
    let change = match expire {
        Some(deadline) => Change::Expire(deadline_failure(deadline)),
        None => op.change(),
    };
    let action = if expire.is_some() { "deadline" } else { op.as_str() };
    let job = jobs::transition_recorded(tx, &job, &change, (action, by), now)?;
    if job.cancel_requested && matches!(change, Change::Cancel | Change::Expire(_)) {
        parks::cancel_all(tx, id, now)?;
    }
    Ok(Operated { job, changed: true })
}

/// Cancels up to `limit` unfinished, unflagged jobs whose deadline passed; returns them.
pub(crate) fn cancel_overdue(tx: &Connection, limit: usize, now: u64) -> Result<Vec<Job>, Error> {
    // The same condition as the `jobs_due` index's, so the scan reads only due rows.
    let ids: Vec<(String, i64)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, deadline FROM jobs WHERE deadline IS NOT NULL AND cancel_requested = 0 \
                 AND state IN ('UNCLAIMED', 'CLAIMED', 'PARKED', 'SUSPENDED') AND deadline <= ?1 \
                 ORDER BY deadline LIMIT ?2",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![to_i64(now), i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let mut cancelled = Vec::with_capacity(ids.len());
    for (id, deadline) in ids {
        let id = parse_uuid(&id)?;
        let done = operate(tx, id, Operation::Cancel, FLEET, Some(to_u64(deadline)), now)?;
        cancelled.push(done.job);
    }
    Ok(cancelled)
}
