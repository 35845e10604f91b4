//! Job SQL: post, read, list, claim, the fenced finishing writes, cancel, release, purge.
//!
//! Every function here runs inside one transaction its caller opened (see
//! `Db::write`), so each operation is atomic: a fenced write checks the claim
//! and acts in the same transaction, and a claim picks and takes its job in one.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use super::db::sql_error;
use super::rows::{raw_job, to_i64, to_text, to_u64, JOB_COLUMNS};
use crate::claim::FenceToken;
use crate::error::Error;
use crate::job::{FlowFilter, Job, JobId, JobPage, JobState, ListQuery, NewJob, Outcome};

/// The page size of a `list` that asks for 0.
const DEFAULT_PAGE: usize = 100;

/// Reads one job.
pub(crate) fn get(tx: &Transaction<'_>, id: JobId) -> Result<Option<Job>, Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    let raw = tx.query_row(&sql, [id.to_string()], raw_job).optional().map_err(sql_error)?;
    raw.map(|r| r.decode()).transpose()
}

/// Reads one job that must exist.
pub(crate) fn get_existing(tx: &Transaction<'_>, id: JobId) -> Result<Job, Error> {
    get(tx, id)?.ok_or(Error::NotFound(id))
}

/// Inserts a validated job, or returns the job already posted with its
/// idempotency key (then `false`: nothing was written).
pub(crate) fn post(tx: &Transaction<'_>, new: &NewJob, store_json: &str, now: u64) -> Result<(Job, bool), Error> {
    if let Some(key) = &new.idempotency_key {
        let existing: Option<String> = tx
            .query_row("SELECT job_id FROM idempotency_keys WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
        if let Some(id) = existing {
            let id = super::rows::parse_uuid(&id)?;
            return Ok((get_existing(tx, id)?, false));
        }
    }
    let id = JobId::new_v4();
    tx.execute(
        "INSERT INTO jobs (id, flow, store, priority, idempotency_key, created_at, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'UNCLAIMED')",
        params![id.to_string(), new.flow, store_json, new.priority, new.idempotency_key, to_i64(now)],
    )
    .map_err(sql_error)?;
    if let Some(key) = &new.idempotency_key {
        tx.execute("INSERT INTO idempotency_keys (key, job_id) VALUES (?1, ?2)", params![key, id.to_string()])
            .map_err(sql_error)?;
    }
    Ok((get_existing(tx, id)?, true))
}

/// One page of jobs, oldest first. The page token is the last job's `seq`.
pub(crate) fn list(tx: &Transaction<'_>, query: &ListQuery) -> Result<JobPage, Error> {
    let after: i64 = match &query.page_token {
        None => 0,
        Some(token) => token.parse().map_err(|_| Error::InvalidInput(format!("bad page token {token:?}")))?,
    };
    let limit = if query.limit == 0 { DEFAULT_PAGE } else { query.limit };
    let mut sql = format!("SELECT {JOB_COLUMNS}, seq FROM jobs WHERE seq > ?1");
    let mut args: Vec<SqlValue> = vec![SqlValue::Integer(after)];
    if let Some(state) = query.state {
        args.push(SqlValue::Text(state.as_str().to_owned()));
        sql.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(flow) = &query.flow {
        args.push(SqlValue::Text(flow.clone()));
        sql.push_str(&format!(" AND flow = ?{}", args.len()));
    }
    // One row more than the page tells whether there is a next page.
    args.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)));
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len()));

    let mut stmt = tx.prepare(&sql).map_err(sql_error)?;
    let rows =
        stmt.query_map(params_from_iter(args), |row| Ok((raw_job(row)?, row.get::<_, i64>(14)?))).map_err(sql_error)?;
    let mut jobs = Vec::new();
    let mut last_seq = None;
    let mut more = false;
    for row in rows {
        let (raw, seq) = row.map_err(sql_error)?;
        if jobs.len() == limit {
            more = true;
            break;
        }
        jobs.push(raw.decode()?);
        last_seq = Some(seq);
    }
    let next = if more { last_seq.map(|s| s.to_string()) } else { None };
    Ok(JobPage { jobs, next })
}

/// What one claim attempt did.
#[derive(Debug, Default)]
pub(crate) struct ClaimResult {
    /// The job now claimed by the caller, if any.
    pub(crate) claimed: Option<Job>,
    /// Jobs quarantined (trashed) on the way because they were claimed too often.
    pub(crate) quarantined: Vec<JobId>,
}

/// Claims the best unclaimed job the filter accepts: priority first, then
/// oldest. Poison jobs met on the way are quarantined (and skipped).
pub(crate) fn claim_next(
    tx: &Transaction<'_>,
    owner: &str,
    filter: &FlowFilter,
    quarantine_after: u32,
    now: u64,
) -> Result<ClaimResult, Error> {
    let mut sql = String::from("SELECT id, claims FROM jobs WHERE state = 'UNCLAIMED'");
    let args: Vec<SqlValue> = filter.0.iter().map(|f| SqlValue::Text(f.clone())).collect();
    if !args.is_empty() {
        let marks: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND flow IN ({})", marks.join(", ")));
    }
    // Walks the `jobs_claim_order` index; only quarantined jobs are skipped.
    sql.push_str(" ORDER BY priority DESC, created_at, seq LIMIT 1");
    let mut result = ClaimResult::default();
    loop {
        let best: Option<(String, i64)> = tx
            .query_row(&sql, params_from_iter(args.iter()), |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(sql_error)?;
        let Some((id, claims)) = best else { return Ok(result) };
        let id = super::rows::parse_uuid(&id)?;
        if is_poison(claims, quarantine_after) {
            quarantine(tx, id, claims, now)?;
            result.quarantined.push(id);
            continue;
        }
        result.claimed = Some(take(tx, id, owner)?);
        return Ok(result);
    }
}

/// Claims one given job; a poison job is quarantined instead (`quarantined`
/// names it, `claimed` is `None`).
pub(crate) fn claim_one(
    tx: &Transaction<'_>,
    id: JobId,
    owner: &str,
    quarantine_after: u32,
    now: u64,
) -> Result<ClaimResult, Error> {
    let job = get_existing(tx, id)?;
    match job.state {
        JobState::Unclaimed => {}
        JobState::Claimed => {
            return Err(Error::AlreadyClaimed { job: id, owner: job.owner.unwrap_or_default() });
        }
        state => return Err(Error::NotClaimable { job: id, state }),
    }
    if is_poison(i64::from(job.claims), quarantine_after) {
        quarantine(tx, id, i64::from(job.claims), now)?;
        return Ok(ClaimResult { claimed: None, quarantined: vec![id] });
    }
    Ok(ClaimResult { claimed: Some(take(tx, id, owner)?), quarantined: Vec::new() })
}

/// A job claimed `quarantine_after` times without finishing is poison; 0 disables quarantine.
fn is_poison(claims: i64, quarantine_after: u32) -> bool {
    quarantine_after > 0 && claims >= i64::from(quarantine_after)
}

fn quarantine(tx: &Transaction<'_>, id: JobId, claims: i64, now: u64) -> Result<(), Error> {
    let reason = format!("quarantined: claimed {claims} times without finishing");
    tracing::warn!(job = %id, claims, "quarantining job");
    tx.execute(
        "UPDATE jobs SET state = 'TRASHED', owner = NULL, trash_reason = ?2, finished_at = ?3 WHERE id = ?1",
        params![id.to_string(), reason, to_i64(now)],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Takes an unclaimed job: the new claim count is the claim's fencing token.
fn take(tx: &Transaction<'_>, id: JobId, owner: &str) -> Result<Job, Error> {
    tx.execute(
        "UPDATE jobs SET state = 'CLAIMED', owner = ?2, claims = claims + 1 WHERE id = ?1 AND state = 'UNCLAIMED'",
        params![id.to_string(), owner],
    )
    .map_err(sql_error)?;
    get_existing(tx, id)
}

/// Fails with `ClaimLost` unless the job is still CLAIMED by `owner` under `token`.
pub(crate) fn fence(tx: &Transaction<'_>, id: JobId, owner: &str, token: FenceToken) -> Result<(), Error> {
    let current: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'CLAIMED' AND owner = ?2 AND claims = ?3",
            params![id.to_string(), owner, to_i64(token)],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    match current {
        Some(_) => Ok(()),
        None => Err(Error::ClaimLost { job: id, token }),
    }
}

/// How an owner ends its claim.
#[derive(Debug)]
pub(crate) enum Finish {
    /// COMPLETE with an outcome and the flow's failure (as JSON).
    Consume(Outcome, Option<String>),
    /// Back to UNCLAIMED.
    Abandon,
    /// TRASHED with a reason.
    Trash(String),
}

/// Ends a claim, fenced: nothing changes unless the claim is current.
pub(crate) fn finish(
    tx: &Transaction<'_>,
    id: JobId,
    owner: &str,
    token: FenceToken,
    how: Finish,
    now: u64,
) -> Result<Job, Error> {
    fence(tx, id, owner, token)?;
    let id_text = id.to_string();
    let changed = match how {
        Finish::Consume(outcome, failure) => tx.execute(
            "UPDATE jobs SET state = 'COMPLETE', owner = NULL, outcome = ?2, failure = ?3, finished_at = ?4 \
             WHERE id = ?1",
            params![id_text, to_text(&outcome), failure, to_i64(now)],
        ),
        Finish::Abandon => tx.execute("UPDATE jobs SET state = 'UNCLAIMED', owner = NULL WHERE id = ?1", [&id_text]),
        Finish::Trash(reason) => tx.execute(
            "UPDATE jobs SET state = 'TRASHED', owner = NULL, trash_reason = ?2, finished_at = ?3 WHERE id = ?1",
            params![id_text, reason, to_i64(now)],
        ),
    }
    .map_err(sql_error)?;
    debug_assert_eq!(changed, 1, "the fence just saw the row");
    get_existing(tx, id)
}

/// Requests cancellation: an unclaimed job completes as CANCELLED at once, a
/// claimed one is flagged; a finished one is left as it is.
pub(crate) fn request_cancel(tx: &Transaction<'_>, id: JobId, now: u64) -> Result<Job, Error> {
    let job = get_existing(tx, id)?;
    match job.state {
        JobState::Unclaimed => {
            tx.execute(
                "UPDATE jobs SET state = 'COMPLETE', outcome = ?2, finished_at = ?3 WHERE id = ?1",
                params![id.to_string(), to_text(&Outcome::Cancelled), to_i64(now)],
            )
            .map_err(sql_error)?;
        }
        JobState::Claimed => {
            tx.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", [id.to_string()]).map_err(sql_error)?;
        }
        JobState::Complete | JobState::Trashed => return Ok(job),
    }
    get_existing(tx, id)
}

/// Returns every job `owner` holds to UNCLAIMED (its session ended); returns their ids.
pub(crate) fn release_owner(tx: &Transaction<'_>, owner: &str) -> Result<Vec<JobId>, Error> {
    let mut stmt = tx
        .prepare(
            "UPDATE jobs SET state = 'UNCLAIMED', owner = NULL WHERE state = 'CLAIMED' AND owner = ?1 RETURNING id",
        )
        .map_err(sql_error)?;
    let ids = stmt.query_map([owner], |row| row.get::<_, String>(0)).map_err(sql_error)?;
    ids.map(|id| super::rows::parse_uuid(&id.map_err(sql_error)?)).collect()
}

/// Returns every claimed job to UNCLAIMED: on open, no claim of a previous run survives.
pub(crate) fn release_all(tx: &Transaction<'_>) -> Result<usize, Error> {
    tx.execute("UPDATE jobs SET state = 'UNCLAIMED', owner = NULL WHERE state = 'CLAIMED'", []).map_err(sql_error)
}

/// Deletes complete and trashed jobs finished before `before`, with their
/// logbooks and idempotency keys (by cascade).
pub(crate) fn purge(tx: &Transaction<'_>, before: u64) -> Result<usize, Error> {
    tx.execute("DELETE FROM jobs WHERE state IN ('COMPLETE', 'TRASHED') AND finished_at < ?1", [to_i64(before)])
        .map_err(sql_error)
}

/// How many jobs `owner` holds now.
pub(crate) fn held_by(tx: &Transaction<'_>, owner: &str) -> Result<u32, Error> {
    let n: i64 = tx
        .query_row("SELECT COUNT(*) FROM jobs WHERE state = 'CLAIMED' AND owner = ?1", [owner], |row| row.get(0))
        .map_err(sql_error)?;
    Ok(u32::try_from(to_u64(n)).unwrap_or(u32::MAX))
}
