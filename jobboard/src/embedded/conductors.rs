//! Conductor SQL: the conductors registered by sessions of this process.
//!
//! A conductor row belongs to the session that registered it and vanishes
//! with it (on `close`), and every row is dropped when the board is opened:
//! conductors of a previous run are gone.

use rusqlite::{params, Connection};

use super::db::sql_error;
use super::jobs::held_by;
use super::rows::{from_json, to_i64, to_json, to_u64};
use crate::error::Error;
use crate::job::ConductorInfo;

/// Registers (or re-registers) a conductor for the session `owner`.
pub(crate) fn register(tx: &Connection, info: &ConductorInfo, owner: &str) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO conductors (name, address, since, draining, owner, kinds, rust_flows, features) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (name) DO UPDATE SET address = ?2, since = ?3, draining = ?4, owner = ?5, kinds = ?6, \
         rust_flows = ?7, features = ?8",
        params![
            info.name,
            info.address,
            to_i64(info.since),
            info.draining,
            owner,
            to_json(&info.task_kinds)?,
            to_json(&info.rust_flows)?,
            to_json(&info.features)?
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Lists the live conductors with the number of jobs their sessions hold.
pub(crate) fn list(tx: &Connection) -> Result<Vec<ConductorInfo>, Error> {
    let mut stmt = tx
        .prepare(
            "SELECT name, address, since, draining, owner, kinds, rust_flows, features FROM conductors ORDER BY name",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                ConductorInfo {
                    name: row.get(0)?,
                    address: row.get(1)?,
                    since: to_u64(row.get(2)?),
                    draining: row.get(3)?,
                    jobs: 0,
                    task_kinds: Vec::new(),
                    rust_flows: Vec::new(),
                    features: Vec::new(),
                },
                row.get::<_, String>(4)?,
                (row.get::<_, String>(5)?, row.get::<_, String>(6)?, row.get::<_, String>(7)?),
            ))
        })
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut info, owner, (kinds, rust_flows, features)) = row.map_err(sql_error)?;
        info.jobs = held_by(tx, &owner)?;
        info.task_kinds = from_json(&kinds, "conductor kinds")?;
        info.rust_flows = from_json(&rust_flows, "conductor rust flows")?;
        info.features = from_json(&features, "conductor features")?;
        out.push(info);
    }
    Ok(out)
}

/// Sets a live conductor's draining flag; `InvalidInput` if there is none of that name.
pub(crate) fn set_draining(tx: &Connection, name: &str, draining: bool) -> Result<(), Error> {
    let changed = tx
        .execute("UPDATE conductors SET draining = ?2 WHERE name = ?1", params![name, draining])
        .map_err(sql_error)?;
    if changed == 0 {
        return Err(Error::InvalidInput(format!("no live conductor named {name:?}")));
    }
    Ok(())
}

/// Removes the conductors a session registered (it ended).
pub(crate) fn remove_owner(tx: &Connection, owner: &str) -> Result<(), Error> {
    tx.execute("DELETE FROM conductors WHERE owner = ?1", [owner]).map_err(sql_error)?;
    Ok(())
}

/// Removes every conductor (the board was just opened: a previous run's are gone).
pub(crate) fn remove_all(tx: &Connection) -> Result<(), Error> {
    tx.execute("DELETE FROM conductors", []).map_err(sql_error)?;
    Ok(())
}
