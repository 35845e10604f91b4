//! Conversions between rows and values: jobs, enums spelled as text, JSON columns.

use rusqlite::{Connection, Params, Row};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::job::{Job, JobState, Outcome};

/// `query_row` through the connection's statement cache: a hot statement is
/// parsed once per connection, not once per call.
pub(crate) fn cached_row<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// `execute` through the connection's statement cache.
pub(crate) fn cached_exec<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// The job columns, in the order [`job_from_row`] reads them.
pub(crate) const JOB_COLUMNS: &str = "id, flow, store, priority, idempotency_key, created_at, state, owner, claims, \
     outcome, failure, trash_reason, cancel_requested, finished_at, pin, requires, deadline, rerun_of, \
     suspend_requested, claim_base, actions";

/// How many columns [`JOB_COLUMNS`] names (a query selecting more reads them from here on).
pub(crate) const JOB_COLUMN_COUNT: usize = 21;

/// A job row as stored, before its text columns are decoded.
pub(crate) struct RawJob {
    id: String,
    flow: String,
    store: String,
    priority: i32,
    idempotency_key: Option<String>,
    created_at: i64,
    state: String,
    owner: Option<String>,
    claims: i64,
    outcome: Option<String>,
    failure: Option<String>,
    trash_reason: Option<String>,
    cancel_requested: bool,
    finished_at: Option<i64>,
    pin: Option<String>,
    requires: Option<String>,
    deadline: Option<i64>,
    rerun_of: Option<String>,
    suspend_requested: bool,
    claim_base: i64,
    actions: String,
}

/// Reads a row selected with [`JOB_COLUMNS`]; decode it with [`RawJob::decode`].
pub(crate) fn raw_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: row.get(0)?,
        flow: row.get(1)?,
        store: row.get(2)?,
        priority: row.get(3)?,
        idempotency_key: row.get(4)?,
        created_at: row.get(5)?,
        state: row.get(6)?,
        owner: row.get(7)?,
        claims: row.get(8)?,
        outcome: row.get(9)?,
        failure: row.get(10)?,
        trash_reason: row.get(11)?,
        cancel_requested: row.get(12)?,
        finished_at: row.get(13)?,
        pin: row.get(14)?,
        requires: row.get(15)?,
        deadline: row.get(16)?,
        rerun_of: row.get(17)?,
        suspend_requested: row.get(18)?,
        claim_base: row.get(19)?,
        actions: row.get(20)?,
    })
}

impl RawJob {
    /// Decodes the text columns. Errors here are data corruption, not SQL errors.
    pub(crate) fn decode(self) -> Result<Job, Error> {
        Ok(Job {
            id: parse_uuid(&self.id)?,
            flow: self.flow,
            store: from_json(&self.store, "job store")?,
            priority: self.priority,
            idempotency_key: self.idempotency_key,
            created_at: to_u64(self.created_at),
            state: from_text::<JobState>(&self.state)?,
            owner: self.owner,
            claims: u32::try_from(self.claims).unwrap_or(u32::MAX),
            outcome: self.outcome.as_deref().map(from_text::<Outcome>).transpose()?,
            failure: self.failure.as_deref().map(|f| from_json(f, "job failure")).transpose()?,
            trash_reason: self.trash_reason,
            cancel_requested: self.cancel_requested,
            finished_at: self.finished_at.map(to_u64),
            pin: self.pin.as_deref().map(|p| from_json(p, "job pin")).transpose()?,
            requires: self.requires.as_deref().map(|r| from_json(r, "job requires")).transpose()?.unwrap_or_default(),
            deadline: self.deadline.map(to_u64),
            rerun_of: self.rerun_of.as_deref().map(parse_uuid).transpose()?,
            suspend_requested: self.suspend_requested,
            claim_base: u32::try_from(self.claim_base).unwrap_or(0),
            actions: from_json(&self.actions, "job actions")?,
        })
    }
}

/// Parses a uuid column.
pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|e| corrupt(format!("bad uuid {text:?}: {e}")))
}

/// An enum's serde spelling (`CLAIMED`, `PENDING`, `task`) as column text.
pub(crate) fn to_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        // Only unit enums are stored this way; anything else is a bug here.
        other => unreachable!("enum stored as text did not serialize to a string: {other:?}"),
    }
}

/// Reads an enum stored with [`to_text`].
pub(crate) fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    // Straight from the text: no String or JSON value per column (a logbook read decodes three per atom).
    let text_in: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = text.into_deserializer();
    T::deserialize(text_in).map_err(|e| corrupt(format!("bad enum value {text:?}: {e}")))
}

/// A value as a JSON column.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::InvalidInput(format!("value cannot be serialized as json: {e}")))
}

/// Reads a JSON column; `what` names it in the error.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("bad json in {what}: {e}")))
}

/// Millis and counters are stored as INTEGER (i64); values out of range saturate.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The reverse of [`to_i64`]; a negative value (never written) reads as 0.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A corrupt-data error.
pub(crate) fn corrupt(message: String) -> Error {
    Error::Backend { message: format!("corrupt board file: {message}"), source: None }
}
