//! Job SQL: post, read, list, claim, the fenced finishing writes, release, purge.
//!
//! Every function here runs inside one transaction its caller opened (see
//! `Db::write`), so each operation is atomic: a fenced write checks the claim
//! and acts in the same transaction, and a claim picks and takes its job in one.
//! Every state change is the lifecycle table's (`lifecycle`): a job is read,
//! the table gives its new status, and [`transition`] writes it.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::db::sql_error;
use super::rows::{cached_exec, cached_row, raw_job, to_i64, to_text, to_u64, JOB_COLUMNS, JOB_COLUMN_COUNT};
use crate::claim::FenceToken;
use crate::error::Error;
use crate::job::{FlowFilter, Job, JobId, JobPage, JobState, ListQuery, NewJob};
use crate::lifecycle::{self, Change, Event, QuarantineRule, Status};

/// The page size of a `list` that asks for 0.
const DEFAULT_PAGE: usize = 100;

/// Reads one job.
pub(crate) fn get(tx: &Connection, id: JobId) -> Result<Option<Job>, Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    let raw = cached_row(tx, &sql, [id.to_string()], raw_job).optional().map_err(sql_error)?;
    raw.map(|r| r.decode()).transpose()
}

/// Reads one job that must exist.
pub(crate) fn get_existing(tx: &Connection, id: JobId) -> Result<Job, Error> {
    get(tx, id)?.ok_or(Error::NotFound(id))
}

/// Inserts a validated job, or returns the job already posted with its
/// idempotency key (then `false`: nothing was written).
pub(crate) fn post(tx: &Connection, new: &NewJob, store_json: &str, now: u64) -> Result<(Job, bool), Error> {
    if let Some(key) = &new.idempotency_key {
        let existing: Option<String> =
            cached_row(tx, "SELECT job_id FROM idempotency_keys WHERE key = ?1", [key], |row| row.get(0))
                .optional()
                .map_err(sql_error)?;
        if let Some(id) = existing {
            let id = super::rows::parse_uuid(&id)?;
            return Ok((get_existing(tx, id)?, false));
        }
    }
    let id = JobId::new_v4();
    cached_exec(
        tx,
        "INSERT INTO jobs (id, flow, store, priority, idempotency_key, created_at, state, pin, requires, deadline, rerun_of) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id.to_string(),
            new.flow,
            store_json,
            new.priority,
            new.idempotency_key,
            to_i64(now),
            lifecycle::POSTED.as_str(),
            new.pin.as_ref().map(super::rows::to_json).transpose()?,
            (!new.requires.is_empty()).then(|| super::rows::to_json(&new.requires)).transpose()?,
            new.deadline.map(to_i64),
            new.rerun_of.map(|id| id.to_string()),
        ],
    )
    .map_err(sql_error)?;
    if let Some(key) = &new.idempotency_key {
        cached_exec(tx, "INSERT INTO idempotency_keys (key, job_id) VALUES (?1, ?2)", params![key, id.to_string()])
            .map_err(sql_error)?;
    }
    Ok((get_existing(tx, id)?, true))
}

/// One page of jobs, oldest first. The page token is the last job's `seq`.
pub(crate) fn list(tx: &Connection, query: &ListQuery) -> Result<JobPage, Error> {
    let after: i64 = match &query.page_token {
        None => 0,
        Some(token) => token.parse().map_err(|_| Error::InvalidInput(format!("bad page token {token:?}")))?,
    };
    let limit = if query.limit == 0 { DEFAULT_PAGE } else { query.limit };
    let (sql, args) = list_statement(query, after, limit);
    let mut stmt = tx.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params_from_iter(args), |row| Ok((raw_job(row)?, row.get::<_, i64>(JOB_COLUMN_COUNT)?)))
        .map_err(sql_error)?;
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

/// The page query of `list`: in `seq` order from the PRIMARY KEY, or from the
/// `(state, seq)` or `(flow, seq)` index when filtered (no sort of a whole state).
pub(crate) fn list_statement(query: &ListQuery, after: i64, limit: usize) -> (String, Vec<SqlValue>) {
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
    (sql, args)
}

/// What one claim attempt did.
#[derive(Debug, Default)]
pub(crate) struct ClaimResult {
    /// The job now claimed by the caller, if any.
    pub(crate) claimed: Option<Job>,
    /// Jobs quarantined (trashed) on the way because they were claimed too often.
    pub(crate) quarantined: Vec<JobId>,
}

/// How many jobs wait to be claimed (an index count on `state`).
pub(crate) fn count_unclaimed(tx: &Connection) -> Result<u64, Error> {
    let sql = "SELECT count(*) FROM jobs WHERE state = 'UNCLAIMED'";
    let count: i64 = cached_row(tx, sql, [], |row| row.get(0)).map_err(sql_error)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Claims the best unclaimed job the filter accepts: priority first, then
/// oldest. Poison jobs met on the way are quarantined (and skipped).
pub(crate) fn claim_next(
    tx: &Connection,
    owner: &str,
    filter: &FlowFilter,
    quarantine_after: u32,
    now: u64,
) -> Result<ClaimResult, Error> {
    let (sql, args) = claimable_query(filter, &[]);
    let mut result = ClaimResult::default();
    loop {
        let best: Option<String> =
            cached_row(tx, &sql, params_from_iter(args.iter()), |row| row.get(0)).optional().map_err(sql_error)?;
        let Some(id) = best else { return Ok(result) };
        let job = get_existing(tx, super::rows::parse_uuid(&id)?)?;
        let (job, event) = claim_attempt(tx, job, owner, quarantine_after, now)?;
        if event == Event::Quarantine {
            result.quarantined.push(job.id);
            continue;
        }
        result.claimed = Some(job);
        return Ok(result);
    }
}

/// The query for the best unclaimed job the filter accepts, passing `skip` by:
/// priority first, then oldest; its one column is the job id.
pub(crate) fn claimable_query(filter: &FlowFilter, skip: &[JobId]) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("SELECT id FROM jobs WHERE state = 'UNCLAIMED'");
    let mut args: Vec<SqlValue> = filter.flows.iter().map(|f| SqlValue::Text(f.clone())).collect();
    if !args.is_empty() {
        let marks: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND flow IN ({})", marks.join(", ")));
    }
    if let Some(has) = &filter.features {
        // No feature the job requires is missing here (NULL: posted by older code, needs nothing).
        let first = args.len() + 1;
        args.extend(has.iter().map(|f| SqlValue::Text(f.clone())));
        let marks: Vec<String> = (first..first + has.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(
            " AND (requires IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(jobs.requires) WHERE json_each.value NOT IN ({})))",
            marks.join(", ")
        ));
    }
    if !skip.is_empty() {
        let first = args.len() + 1;
        args.extend(skip.iter().map(|id| SqlValue::Text(id.to_string())));
        let marks: Vec<String> = (first..first + skip.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND id NOT IN ({})", marks.join(", ")));
    }
    // Walks the `jobs_claim_order` index; only quarantined jobs are skipped.
    sql.push_str(" ORDER BY priority DESC, created_at, seq LIMIT 1");
    (sql, args)
}

/// Claims one given job; a poison job is quarantined instead (`quarantined`
/// names it, `claimed` is `None`).
pub(crate) fn claim_one(
    tx: &Connection,
    id: JobId,
    owner: &str,
    quarantine_after: u32,
    now: u64,
) -> Result<ClaimResult, Error> {
    let (job, event) = claim_attempt(tx, get_existing(tx, id)?, owner, quarantine_after, now)?;
    match event {
        Event::Quarantine => Ok(ClaimResult { claimed: None, quarantined: vec![id] }),
        _ => Ok(ClaimResult { claimed: Some(job), quarantined: Vec::new() }),
    }
}

/// One claim attempt of `job` by `owner`: a claim (the new claim count is the
/// claim's fencing token), or a quarantine of a poison job. Refused, as
/// `AlreadyClaimed` or `NotClaimable`, unless the job is unclaimed.
fn claim_attempt(
    tx: &Connection,
    job: Job,
    owner: &str,
    quarantine_after: u32,
    now: u64,
) -> Result<(Job, Event), Error> {
    let rule = QuarantineRule::new(quarantine_after);
    match rule.claim_event(lifecycle::claims_since_retry(job.claims, job.claim_base)) {
        Event::Quarantine => {
            let job = transition(tx, &job, &Change::Quarantine(rule), None, now)?;
            tracing::warn!(job = %job.id, claims = job.claims, "quarantining job");
            Ok((job, Event::Quarantine))
        }
        event => Ok((transition(tx, &job, &Change::Claim, Some(owner), now)?, event)),
    }
}

/// Applies `change` at `now` to `job` (as just read in this transaction)
/// through the lifecycle table, and writes the new status: a refusal is an
/// error and writes nothing. The owner is `claimer` after a claim, kept while
/// the job stays CLAIMED, and cleared otherwise.
pub(crate) fn transition(
    tx: &Connection,
    job: &Job,
    change: &Change,
    claimer: Option<&str>,
    now: u64,
) -> Result<Job, Error> {
    let next =
        Status::of(job).apply(change, now).map_err(|refused| refused.into_error(job.id, job.owner.as_deref()))?;
    write_status(tx, job, next, claimer)
}

/// [`transition`] for an operator's request: `(action, by)` is recorded on the job.
pub(crate) fn transition_recorded(
    tx: &Connection,
    job: &Job,
    change: &Change,
    (action, by): (&str, &str),
    now: u64,
) -> Result<Job, Error> {
    let mut next =
        Status::of(job).apply(change, now).map_err(|refused| refused.into_error(job.id, job.owner.as_deref()))?;
    next.record(action, by, now);
    write_status(tx, job, next, None)
}

/// Writes `next`, the status of `job` after a transition.
fn write_status(tx: &Connection, job: &Job, next: Status, claimer: Option<&str>) -> Result<Job, Error> {
    let owner = match next.state {
        JobState::Claimed => claimer.or(job.owner.as_deref()),
        _ => None,
    };
    let failure = next.failure.as_ref().map(super::rows::to_json).transpose()?;
    let changed = cached_exec(
        tx,
        "UPDATE jobs SET state = ?3, owner = ?4, claims = ?5, outcome = ?6, failure = ?7, trash_reason = ?8, \
             cancel_requested = ?9, finished_at = ?10, suspend_requested = ?11, claim_base = ?12, actions = ?13 \
             WHERE id = ?1 AND state = ?2",
        params![
            job.id.to_string(),
            job.state.as_str(),
            next.state.as_str(),
            owner,
            next.claims,
            next.outcome.as_ref().map(to_text),
            failure,
            next.trash_reason,
            next.cancel_requested,
            next.finished_at.map(to_i64),
            next.suspend_requested,
            next.claim_base,
            super::rows::to_json(&next.actions)?,
        ],
    )
    .map_err(sql_error)?;
    if changed != 1 {
        // Read in this same transaction: only a bug gets here.
        return Err(Error::Backend { message: format!("job {} changed while changing it", job.id), source: None });
    }
    get_existing(tx, job.id)
}

/// Fails with `ClaimLost` unless the job is still CLAIMED by `owner` under `token`.
pub(crate) fn fence(tx: &Connection, id: JobId, owner: &str, token: FenceToken) -> Result<(), Error> {
    let current: Option<i64> = cached_row(
        tx,
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

/// Ends a claim by `change` (consume, abandon or trash), fenced: nothing
/// changes unless the claim is current.
pub(crate) fn finish(
    tx: &Connection,
    id: JobId,
    owner: &str,
    token: FenceToken,
    change: &Change,
    now: u64,
) -> Result<Job, Error> {
    fence(tx, id, owner, token)?;
    transition(tx, &get_existing(tx, id)?, change, None, now)
}

/// Returns every job `owner` holds to UNCLAIMED (its session ended); returns their ids.
pub(crate) fn release_owner(tx: &Connection, owner: &str, now: u64) -> Result<Vec<JobId>, Error> {
    release(tx, "SELECT id FROM jobs WHERE state = 'CLAIMED' AND owner = ?1", [owner], now)
}

/// Returns every claimed job to UNCLAIMED: on open, no claim of a previous run survives.
pub(crate) fn release_all(tx: &Connection, now: u64) -> Result<usize, Error> {
    Ok(release(tx, "SELECT id FROM jobs WHERE state = 'CLAIMED'", [], now)?.len())
}

/// Releases (the lifecycle's orphan re-queue) every job `select` finds; returns their ids.
fn release<P: rusqlite::Params>(tx: &Connection, select: &str, args: P, now: u64) -> Result<Vec<JobId>, Error> {
    let ids: Vec<String> = {
        let mut stmt = tx.prepare_cached(select).map_err(sql_error)?;
        let rows = stmt.query_map(args, |row| row.get::<_, String>(0)).map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let mut released = Vec::with_capacity(ids.len());
    for id in ids {
        let job = get_existing(tx, super::rows::parse_uuid(&id)?)?;
        released.push(transition(tx, &job, &Change::Release, None, now)?.id);
    }
    Ok(released)
}

/// Deletes complete and trashed jobs finished before `before`, with their
/// logbooks and idempotency keys (by cascade).
pub(crate) fn purge(tx: &Connection, before: u64) -> Result<usize, Error> {
    cached_exec(tx, "DELETE FROM jobs WHERE state IN ('COMPLETE', 'TRASHED') AND finished_at < ?1", [to_i64(before)])
        .map_err(sql_error)
}

/// How many jobs `owner` holds now.
pub(crate) fn held_by(tx: &Connection, owner: &str) -> Result<u32, Error> {
    let n: i64 =
        cached_row(tx, "SELECT COUNT(*) FROM jobs WHERE state = 'CLAIMED' AND owner = ?1", [owner], |row| row.get(0))
            .map_err(sql_error)?;
    Ok(u32::try_from(to_u64(n)).unwrap_or(u32::MAX))
}
