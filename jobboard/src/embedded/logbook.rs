//! Logbook SQL: books, flow details and atom details, keyed by job.
//!
//! Semantics follow `flows::MemoryStorage` exactly (what a save creates or
//! updates, what it leaves alone), so the engine sees the same behaviour on
//! every backend. Fencing is the caller's job (`jobs::fence` in the same
//! transaction); this module only reads and writes rows.

use std::collections::BTreeMap;

use flows::{AtomDetail, FlowDetail, LogBook, StorageError};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::db::sql_error;
use super::rows::{cached_exec, cached_row, from_json, from_text, parse_uuid, to_i64, to_json, to_text, to_u64};
use crate::error::Error;
use crate::job::JobId;

/// Creates the book, or updates its name and meta; `updated_at` becomes `now`.
pub(crate) fn save_book(tx: &Connection, job: JobId, book: &LogBook, now: u64) -> Result<(), StorageError> {
    check_book_job(tx, book.id, job)?;
    cached_exec(
        tx,
        "INSERT INTO logbooks (id, job_id, name, meta, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (id) DO UPDATE SET name = ?3, meta = ?4, updated_at = ?6",
        params![
            book.id.to_string(),
            job.to_string(),
            book.name,
            to_json(&book.meta)?,
            to_i64(book.created_at),
            to_i64(now)
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Creates the flow detail (and its book, named after the flow, if missing),
/// or updates its name, state, meta and version; atoms are not written.
pub(crate) fn save_flow(
    tx: &Connection,
    job: JobId,
    book: Uuid,
    flow: &FlowDetail,
    now: u64,
) -> Result<(), StorageError> {
    check_book_job(tx, book, job)?;
    cached_exec(
        tx,
        "INSERT INTO logbooks (id, job_id, name, meta, created_at, updated_at) VALUES (?1, ?2, ?3, '{}', ?4, ?4) \
         ON CONFLICT (id) DO UPDATE SET updated_at = ?4",
        params![book.to_string(), job.to_string(), flow.name, to_i64(now)],
    )
    .map_err(sql_error)?;
    let owner_book: Option<String> =
        cached_row(tx, "SELECT book_id FROM flow_details WHERE id = ?1", [flow.id.to_string()], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
    if owner_book.is_some_and(|b| b != book.to_string()) {
        return Err(StorageError::Rejected {
            what: format!("flow {}", flow.id),
            message: "it belongs to another logbook".into(),
        });
    }
    cached_exec(
        tx,
        "INSERT INTO flow_details (id, book_id, name, state, meta, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (id) DO UPDATE SET name = ?3, state = ?4, meta = ?5, version = ?6",
        params![
            flow.id.to_string(),
            book.to_string(),
            flow.name,
            to_text(&flow.state),
            to_json(&flow.meta)?,
            to_i64(flow.version)
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Creates or replaces atom details, in order; the flow must exist in the book.
pub(crate) fn save_atoms(
    tx: &Connection,
    job: JobId,
    book: Uuid,
    flow: Uuid,
    atoms: &[AtomDetail],
) -> Result<(), StorageError> {
    let known: Option<i64> = cached_row(
        tx,
        "SELECT 1 FROM flow_details f JOIN logbooks b ON b.id = f.book_id \
             WHERE f.id = ?1 AND b.id = ?2 AND b.job_id = ?3",
        params![flow.to_string(), book.to_string(), job.to_string()],
        |row| row.get(0),
    )
    .optional()
    .map_err(sql_error)?;
    if known.is_none() {
        return Err(StorageError::NotFound(format!("flow {flow} in logbook {book}")));
    }
    // Cached: a batch writes many atoms, and every engine write prepares this statement.
    let mut insert = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO atom_details (flow_id, name, kind, state, intention, result, failure, \
             revert_failure, attempts, executions, started_at, finished_at, version, meta) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(sql_error)?;
    let flow = flow.to_string();
    for atom in atoms {
        let result = atom.result.as_ref().map(to_json).transpose()?;
        let failure = atom.failure.as_ref().map(to_json).transpose()?;
        let revert_failure = atom.revert_failure.as_ref().map(to_json).transpose()?;
        insert
            .execute(params![
                flow,
                atom.name,
                to_text(&atom.kind),
                to_text(&atom.state),
                to_text(&atom.intention),
                result,
                failure,
                revert_failure,
                to_json(&atom.attempts)?,
                atom.executions,
                atom.started_at.map(to_i64),
                atom.finished_at.map(to_i64),
                to_i64(atom.version),
                to_json(&atom.meta)?,
            ])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Reads a whole book of the job, with its flows and atoms.
pub(crate) fn load_book(tx: &Connection, job: JobId, book: Uuid) -> Result<Option<LogBook>, Error> {
    let row = cached_row(
        tx,
        "SELECT id, name, meta, created_at, updated_at FROM logbooks WHERE id = ?1 AND job_id = ?2",
        params![book.to_string(), job.to_string()],
        raw_book,
    )
    .optional()
    .map_err(sql_error)?;
    row.map(|raw| decode_book(tx, raw)).transpose()
}

/// Reads the job's logbook: the book named by the job's id, else its oldest.
pub(crate) fn book_of_job(tx: &Connection, job: JobId) -> Result<Option<LogBook>, Error> {
    let row = cached_row(
        tx,
        "SELECT id, name, meta, created_at, updated_at FROM logbooks WHERE job_id = ?1 \
             ORDER BY id = job_id DESC, created_at LIMIT 1",
        [job.to_string()],
        raw_book,
    )
    .optional()
    .map_err(sql_error)?;
    row.map(|raw| decode_book(tx, raw)).transpose()
}

/// Reads one flow detail of the job's book, with its atoms.
pub(crate) fn load_flow(tx: &Connection, job: JobId, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, Error> {
    let row = cached_row(
        tx,
        "SELECT f.id, f.name, f.state, f.meta, f.version FROM flow_details f JOIN logbooks b ON b.id = f.book_id \
             WHERE f.id = ?1 AND b.id = ?2 AND b.job_id = ?3",
        params![flow.to_string(), book.to_string(), job.to_string()],
        raw_flow,
    )
    .optional()
    .map_err(sql_error)?;
    row.map(|raw| decode_flow(tx, raw)).transpose()
}

/// Flows with at most this many atoms are read on the caller's thread (`Db::read_now`).
const SMALL_FLOW_ATOMS: i64 = 64;

/// [`load_flow`] if the flow is missing or has at most [`SMALL_FLOW_ATOMS`] atoms;
/// `None` (nothing decoded) for a bigger one.
pub(crate) fn load_small_flow(
    tx: &Connection,
    job: JobId,
    book: Uuid,
    flow: Uuid,
) -> Result<Option<Option<FlowDetail>>, Error> {
    // The primary key (flow_id, name) counts them without reading a row.
    let atoms: i64 =
        cached_row(tx, "SELECT count(*) FROM atom_details WHERE flow_id = ?1", [flow.to_string()], |row| row.get(0))
            .map_err(sql_error)?;
    if atoms > SMALL_FLOW_ATOMS {
        return Ok(None);
    }
    load_flow(tx, job, book, flow).map(Some)
}

/// Fails if the book exists and belongs to another job: one job's claim must
/// not write another job's logbook.
fn check_book_job(tx: &Connection, book: Uuid, job: JobId) -> Result<(), StorageError> {
    let holder: Option<String> =
        cached_row(tx, "SELECT job_id FROM logbooks WHERE id = ?1", [book.to_string()], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
    match holder {
        Some(other) if other != job.to_string() => Err(StorageError::Rejected {
            what: format!("logbook {book}"),
            message: format!("it belongs to job {other}, not {job}"),
        }),
        _ => Ok(()),
    }
}

type RawBook = (String, String, String, i64, i64);
type RawFlow = (String, String, String, String, i64);

fn raw_book(row: &Row<'_>) -> rusqlite::Result<RawBook> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn raw_flow(row: &Row<'_>) -> rusqlite::Result<RawFlow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn decode_book(tx: &Connection, (id, name, meta, created_at, updated_at): RawBook) -> Result<LogBook, Error> {
    let mut stmt = tx
        .prepare_cached("SELECT id, name, state, meta, version FROM flow_details WHERE book_id = ?1")
        .map_err(sql_error)?;
    let raws = stmt.query_map([&id], raw_flow).map_err(sql_error)?.collect::<Result<Vec<_>, _>>().map_err(sql_error)?;
    let mut flows = BTreeMap::new();
    for raw in raws {
        let flow = decode_flow(tx, raw)?;
        flows.insert(flow.id, flow);
    }
    Ok(LogBook {
        id: parse_uuid(&id)?,
        name,
        meta: from_json(&meta, "logbook meta")?,
        created_at: to_u64(created_at),
        updated_at: to_u64(updated_at),
        flows,
    })
}

fn decode_flow(tx: &Connection, (id, name, state, meta, version): RawFlow) -> Result<FlowDetail, Error> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT name, kind, state, intention, result, failure, revert_failure, attempts, executions, started_at, \
             finished_at, version, meta FROM atom_details WHERE flow_id = ?1",
        )
        .map_err(sql_error)?;
    let raws = stmt.query_map([&id], raw_atom).map_err(sql_error)?.collect::<Result<Vec<_>, _>>().map_err(sql_error)?;
    let mut atoms = BTreeMap::new();
    for raw in raws {
        let atom = raw.decode()?;
        atoms.insert(atom.name.clone(), atom);
    }
    Ok(FlowDetail {
        id: parse_uuid(&id)?,
        name,
        state: from_text(&state)?,
        meta: from_json(&meta, "flow meta")?,
        version: to_u64(version),
        atoms,
    })
}

/// An atom row before its text columns are decoded.
struct RawAtom {
    name: String,
    kind: String,
    state: String,
    intention: String,
    result: Option<String>,
    failure: Option<String>,
    revert_failure: Option<String>,
    attempts: String,
    executions: u32,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    version: i64,
    meta: String,
}

fn raw_atom(row: &Row<'_>) -> rusqlite::Result<RawAtom> {
    Ok(RawAtom {
        name: row.get(0)?,
        kind: row.get(1)?,
        state: row.get(2)?,
        intention: row.get(3)?,
        result: row.get(4)?,
        failure: row.get(5)?,
        revert_failure: row.get(6)?,
        attempts: row.get(7)?,
        executions: row.get(8)?,
        started_at: row.get(9)?,
        finished_at: row.get(10)?,
        version: row.get(11)?,
        meta: row.get(12)?,
    })
}

impl RawAtom {
    fn decode(self) -> Result<AtomDetail, Error> {
        Ok(AtomDetail {
            kind: from_text(&self.kind)?,
            state: from_text(&self.state)?,
            intention: from_text(&self.intention)?,
            result: self.result.as_deref().map(|r| from_json(r, "atom result")).transpose()?,
            failure: self.failure.as_deref().map(|f| from_json(f, "atom failure")).transpose()?,
            revert_failure: self.revert_failure.as_deref().map(|f| from_json(f, "atom revert failure")).transpose()?,
            attempts: from_json(&self.attempts, "atom attempts")?,
            executions: self.executions,
            started_at: self.started_at.map(to_u64),
            finished_at: self.finished_at.map(to_u64),
            version: to_u64(self.version),
            meta: from_json(&self.meta, "atom meta")?,
            name: self.name,
        })
    }
}
