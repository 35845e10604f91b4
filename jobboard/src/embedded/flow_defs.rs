//! Flow definition SQL: versions in `flow_versions`, the current one in `flow_current`.
//!
//! An apply is one IMMEDIATE transaction (SQLite has one writer at a time), so
//! reading the history and writing the new version cannot interleave with
//! another apply; what it writes is decided by `flow_defs::decide`.

use rusqlite::{params, Connection, OptionalExtension};

use super::db::sql_error;
use super::rows::{to_i64, to_u64};
use crate::error::Error;
use crate::flow_defs::{decide, Applied, ApplyRule, Decision, FlowVersion, NewFlowVersion};

/// Applies `def` under `rule` at `now`.
pub(crate) fn apply(tx: &Connection, def: &NewFlowVersion, rule: ApplyRule, now: u64) -> Result<Applied, Error> {
    let history: Vec<(u32, String)> = {
        let mut stmt = tx
            .prepare("SELECT version, hash FROM flow_versions WHERE name = ?1 ORDER BY version")
            .map_err(sql_error)?;
        let rows = stmt.query_map(params![def.name], |row| Ok((row.get(0)?, row.get(1)?))).map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let current: Option<u32> = tx
        .query_row("SELECT version FROM flow_current WHERE name = ?1", params![def.name], |row| row.get(0))
        .optional()
        .map_err(sql_error)?;
    let seen: Vec<(u32, &str)> = history.iter().map(|(v, h)| (*v, h.as_str())).collect();
    match decide(&seen, current, &def.hash, rule) {
        Decision::Unchanged(applied) => Ok(applied),
        Decision::Create(version) => {
            tx.execute(
                "INSERT INTO flow_versions (name, version, hash, source, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![def.name, version, def.hash, def.source, to_i64(now)],
            )
            .map_err(sql_error)?;
            tx.execute(
                "INSERT INTO flow_current (name, version) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET version = ?2",
                params![def.name, version],
            )
            .map_err(sql_error)?;
            Ok(Applied { version, created: true, current: version })
        }
    }
}

/// One version, or the current one.
pub(crate) fn version(tx: &Connection, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
    let unknown = || Error::UnknownFlow { name: name.to_owned(), version };
    let version = match version {
        Some(v) => v,
        None => tx
            .query_row("SELECT version FROM flow_current WHERE name = ?1", params![name], |row| row.get(0))
            .optional()
            .map_err(sql_error)?
            .ok_or_else(unknown)?,
    };
    tx.query_row(
        "SELECT name, version, hash, source, applied_at FROM flow_versions WHERE name = ?1 AND version = ?2",
        params![name, version],
        read_version,
    )
    .optional()
    .map_err(sql_error)?
    .ok_or_else(unknown)
}

/// Every version of one flow, oldest first.
pub(crate) fn history(tx: &Connection, name: &str) -> Result<Vec<FlowVersion>, Error> {
    let mut stmt = tx
        .prepare("SELECT name, version, hash, source, applied_at FROM flow_versions WHERE name = ?1 ORDER BY version")
        .map_err(sql_error)?;
    let rows = stmt.query_map(params![name], read_version).map_err(sql_error)?;
    let versions: Vec<FlowVersion> = rows.collect::<Result<_, _>>().map_err(sql_error)?;
    if versions.is_empty() {
        return Err(Error::UnknownFlow { name: name.to_owned(), version: None });
    }
    Ok(versions)
}

/// The current version of every flow, by name.
pub(crate) fn current(tx: &Connection) -> Result<Vec<FlowVersion>, Error> {
    let mut stmt = tx
        .prepare(
            "SELECT v.name, v.version, v.hash, v.source, v.applied_at FROM flow_current c \
             JOIN flow_versions v ON v.name = c.name AND v.version = c.version ORDER BY c.name",
        )
        .map_err(sql_error)?;
    let rows = stmt.query_map([], read_version).map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Removes every version of `name`, unless an unfinished job uses it (checked
/// in the same transaction, so no post can slip in between); `UnknownFlow` if it had none.
pub(crate) fn delete(tx: &Connection, name: &str) -> Result<(), Error> {
    let open: Option<String> = tx
        .query_row(
            "SELECT id FROM jobs WHERE flow = ?1 AND state IN ('UNCLAIMED', 'CLAIMED') LIMIT 1",
            params![name],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    if let Some(job) = open {
        let job = job.parse().map_err(|e| Error::Backend { message: format!("job id {job:?}: {e}"), source: None })?;
        return Err(Error::FlowInUse { name: name.to_owned(), job });
    }
    let removed = tx.execute("DELETE FROM flow_versions WHERE name = ?1", params![name]).map_err(sql_error)?;
    tx.execute("DELETE FROM flow_current WHERE name = ?1", params![name]).map_err(sql_error)?;
    if removed == 0 {
        return Err(Error::UnknownFlow { name: name.to_owned(), version: None });
    }
    Ok(())
}

fn read_version(row: &rusqlite::Row<'_>) -> rusqlite::Result<FlowVersion> {
    Ok(FlowVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        hash: row.get(2)?,
        source: row.get(3)?,
        applied_ms: to_u64(row.get(4)?),
    })
}
