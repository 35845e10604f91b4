//! `backlog` on SQLite: one COUNT and MIN per waiting state, answered from the
//! `jobs_claim_order` index (its first column is the state), never the table.

use rusqlite::Connection;

use super::db::sql_error;
use super::rows::to_u64;
use crate::backlog::Backlog;
use crate::error::Error;

pub(crate) fn read(tx: &Connection) -> Result<Backlog, Error> {
    let mut stmt = tx
        .prepare_cached("SELECT COUNT(*), MIN(created_at) FROM jobs INDEXED BY jobs_claim_order WHERE state = ?1")
        .map_err(sql_error)?;
    let mut waiting = |state: &str| {
        stmt.query_row([state], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?)))
            .map(|(count, oldest)| (to_u64(count), oldest.map(to_u64)))
            .map_err(sql_error)
    };
    let (queued, oldest_queued) = waiting("UNCLAIMED")?;
    let (parked, oldest_parked) = waiting("PARKED")?;
    Ok(Backlog { queued, oldest_queued, parked, oldest_parked })
}
