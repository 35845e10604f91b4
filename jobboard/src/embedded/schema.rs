//! The SQLite schema of the embedded board: every version's step, oldest first.
//!
//! Every table lives here so that the whole layout can be read in one place
//! (and with `sqlite3 board.db .schema`). A file records the version it is at in
//! `PRAGMA user_version`: the number of [`MIGRATIONS`] applied to it; `migrate.rs` applies
//! the missing ones, or refuses a file of a newer version. The logbook tables (`logbooks`,
//! `flow_details`, `atom_details`) use only portable types (TEXT, INTEGER,
//! JSON as TEXT) so the same layout can later serve PostgreSQL.

use rusqlite::Transaction;

use super::db::sql_error;
use crate::error::Error;

/// One step of the schema: run on a file at version `i` (its index in [`MIGRATIONS`]), it
/// leaves the file at version `i + 1`, inside the one transaction of the whole upgrade.
pub(crate) enum Step {
    /// Statements to run.
    Sql(&'static str),
    /// What SQL alone cannot say.
    Code(fn(&Transaction<'_>) -> Result<(), Error>),
}

/// Every step, oldest first. A schema change appends its step at the end; a released step
/// is never edited (files in the field were made by it).
pub(crate) const MIGRATIONS: &[Step] = &[
    Step::Sql(V1),
    Step::Sql(V2),
    Step::Sql(V3),
    Step::Code(to_v4),
    Step::Sql(V5),
    Step::Sql(V6),
    Step::Code(to_v7),
    Step::Sql(V8),
];

/// The schema version this code writes and understands (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: jobs, idempotency keys, logbooks, conductors.
const V1: &str = r#"
-- One row per job. `seq` is the insertion order: the FIFO tie-break and the
-- list page token. `claims` counts every claim and doubles as the fencing
-- token of the current claim (it only ever grows).
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    flow             TEXT    NOT NULL,
    store            TEXT    NOT NULL,              -- JSON object
    priority         INTEGER NOT NULL,
    idempotency_key  TEXT,
    created_at       INTEGER NOT NULL,              -- ms since the Unix epoch
    state            TEXT    NOT NULL CHECK (state IN ('UNCLAIMED', 'CLAIMED', 'COMPLETE', 'TRASHED')),
    owner            TEXT,                          -- set while CLAIMED
    claims           INTEGER NOT NULL DEFAULT 0,
    outcome          TEXT,                          -- set once COMPLETE
    failure          TEXT,                          -- JSON Failure
    trash_reason     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    finished_at      INTEGER
);
-- Claim order: the best claimable job is the first row of this index.
CREATE INDEX jobs_claim_order ON jobs (state, priority DESC, created_at, seq);
-- Owner lookups: releasing a session's claims, counting a conductor's jobs.
CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL;
-- Retention purge.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Idempotency keys: posting twice with one key returns the first job.
CREATE TABLE idempotency_keys (
    key    TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE
);

-- Logbooks, one per job (a book's id is normally its job's id).
CREATE TABLE logbooks (
    id         TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    meta       TEXT NOT NULL,                       -- JSON object
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX logbooks_job ON logbooks (job_id);

CREATE TABLE flow_details (
    id      TEXT PRIMARY KEY,
    book_id TEXT NOT NULL REFERENCES logbooks (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    state   TEXT NOT NULL,
    meta    TEXT NOT NULL,                          -- JSON object
    version INTEGER NOT NULL
);
CREATE INDEX flow_details_book ON flow_details (book_id);

CREATE TABLE atom_details (
    flow_id        TEXT NOT NULL REFERENCES flow_details (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    intention      TEXT NOT NULL,
    result         TEXT,                            -- JSON value
    failure        TEXT,                            -- JSON Failure
    revert_failure TEXT,                            -- JSON Failure
    attempts       TEXT NOT NULL,                   -- JSON array of Attempt
    executions     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    version        INTEGER NOT NULL,
    meta           TEXT NOT NULL,                   -- JSON object
    PRIMARY KEY (flow_id, name)
);

-- Conductors registered by sessions of the running process.
CREATE TABLE conductors (
    name     TEXT PRIMARY KEY,
    address  TEXT NOT NULL,
    since    INTEGER NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0,
    owner    TEXT NOT NULL                          -- the session that registered it
);
"#;

/// Version 2: flow definitions (see `flow_defs`).
const V2: &str = r#"
-- Every version of every flow definition; immutable once written.
CREATE TABLE flow_versions (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,                    -- 1, 2, ... per name
    hash       TEXT    NOT NULL,                    -- of the canonical definition
    source     TEXT    NOT NULL,                    -- the definition as applied
    applied_at INTEGER NOT NULL,                    -- ms since the Unix epoch
    PRIMARY KEY (name, version)
);

-- The current version of each flow definition.
CREATE TABLE flow_current (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"#;

/// Version 3: a job's pinned flow definition; what a conductor can run.
const V3: &str = r#"
ALTER TABLE jobs ADD COLUMN pin TEXT;                -- JSON FlowPin, for flow-file jobs
ALTER TABLE conductors ADD COLUMN kinds TEXT NOT NULL DEFAULT '[]';      -- JSON array: --task-kinds
ALTER TABLE conductors ADD COLUMN rust_flows TEXT NOT NULL DEFAULT '[]'; -- JSON array: built-in flows
"#;

/// Version 4: parked tasks (see `parks`), and PARKED among the job states.
const V4: &str = r#"
-- One row per atom of a job that ever parked: its entry (attempt, token hash,
-- deadline, state, outcome) as JSON. Only the hash of a token is stored.
CREATE TABLE parks (
    job_id   TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    atom     TEXT    NOT NULL,
    state    TEXT    NOT NULL,                      -- PARKED, COMPLETED, TIMED_OUT, CANCELLED
    deadline INTEGER NOT NULL,                      -- ms since the Unix epoch
    entry    TEXT    NOT NULL,                      -- JSON ParkEntry
    PRIMARY KEY (job_id, atom)
);
-- The deadline scan reads only what is due, from this index.
CREATE INDEX parks_due ON parks (deadline) WHERE state = 'PARKED';
"#;

/// Version 5: schedules (see `crate::schedules`).
const V5: &str = r#"
-- One row per schedule: its record (definition and firing state) as JSON. Every
-- change compares `revision` and bumps it (compare-and-swap).
CREATE TABLE schedules (
    name     TEXT    PRIMARY KEY,
    revision INTEGER NOT NULL,
    record   TEXT    NOT NULL                       -- JSON Schedule
);
"#;

/// Version 6: the features a job needs (see `crate::features`), and those a conductor has.
const V6: &str = r#"
ALTER TABLE jobs ADD COLUMN requires TEXT;                                -- JSON array; NULL: posted before v6, needs nothing
ALTER TABLE conductors ADD COLUMN features TEXT NOT NULL DEFAULT '[]';   -- JSON array
"#;

/// Version 7: job deadlines, reruns, operators' requests (suspend, retry) and their record.
const V7: &str = r#"
ALTER TABLE jobs ADD COLUMN deadline INTEGER;               -- ms since the Unix epoch: cancelled if unfinished
ALTER TABLE jobs ADD COLUMN rerun_of TEXT;                  -- the job this one reruns
ALTER TABLE jobs ADD COLUMN suspend_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN claim_base INTEGER NOT NULL DEFAULT 0;  -- claims before the last retry
ALTER TABLE jobs ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';     -- JSON array of OperatorAction
-- The deadline scan reads only unfinished, unflagged jobs that are due, from this index.
CREATE INDEX jobs_due ON jobs (deadline) WHERE deadline IS NOT NULL AND cancel_requested = 0
    AND state IN ('UNCLAIMED', 'CLAIMED', 'PARKED', 'SUSPENDED');
"#;

/// Version 8: `list` filtered by state or flow reads its page in `seq` order from an
/// index instead of sorting every job of that state (`jobs_claim_order` leads with the
/// state but orders by priority); a board that keeps many finished jobs lists in time
/// proportional to the page.
const V8: &str = r#"
CREATE INDEX jobs_list_state ON jobs (state, seq);
CREATE INDEX jobs_list_flow ON jobs (flow, seq);
"#;

/// The `jobs.state` CHECK of version 1, and the one of version 4 that admits PARKED. SQLite
/// cannot alter a CHECK; loosening one changes no stored row, which is the case
/// its documentation allows editing the schema text for (`writable_schema`).
const V1_STATES: &str = "CHECK (state IN ('UNCLAIMED', 'CLAIMED', 'COMPLETE', 'TRASHED'))";
const V4_STATES: &str = "CHECK (state IN ('UNCLAIMED', 'CLAIMED', 'PARKED', 'COMPLETE', 'TRASHED'))";
const V7_STATES: &str = "CHECK (state IN ('UNCLAIMED', 'CLAIMED', 'PARKED', 'SUSPENDED', 'COMPLETE', 'TRASHED'))";

fn to_v4(tx: &Transaction<'_>) -> Result<(), Error> {
    tx.execute_batch(V4).map_err(sql_error)?;
    edit_states(tx, V1_STATES, V4_STATES, "PARKED")
}

fn to_v7(tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
    tx.execute_batch(V7).map_err(sql_error)?;
    edit_states(tx, V4_STATES, V7_STATES, "SUSPENDED")
}

/// Replaces the jobs table's state CHECK `from` by `to`, which admits `state` too.
fn edit_states(tx: &rusqlite::Transaction<'_>, from: &str, to: &str, state: &str) -> Result<(), Error> {
    let schema_version: i64 = tx.pragma_query_value(None, "schema_version", |row| row.get(0)).map_err(sql_error)?;
    tx.pragma_update(None, "writable_schema", true).map_err(sql_error)?;
    let edited = tx
        .execute(
            "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'jobs'",
            [from, to],
        )
        .map_err(sql_error)?;
    tx.pragma_update(None, "schema_version", schema_version + 1).map_err(sql_error)?;
    tx.pragma_update(None, "writable_schema", false).map_err(sql_error)?;
    if edited != 1 {
        return Err(Error::Backend {
            message: format!("board file: cannot find the jobs table to admit {state}"),
            source: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::BoardConfig;
    use crate::JobBoard;

    /// A board file written before jobs were pinned (version 2) opens, and its jobs read
    /// with no pin and its conductors with nothing registered of what they run.
    #[tokio::test]
    async fn a_version_2_file_is_migrated_and_its_jobs_read_unpinned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("board.sqlite3");
        let id = uuid::Uuid::new_v4();
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            conn.execute_batch(V1).expect("v1");
            conn.execute_batch(V2).expect("v2");
            conn.pragma_update(None, "user_version", 2).expect("user_version");
            conn.execute(
                "INSERT INTO jobs (id, flow, store, priority, created_at, state) VALUES (?1, 'old', '{}', 0, 1, 'UNCLAIMED')",
                [id.to_string()],
            )
            .expect("an old job");
        }
        let board = crate::embedded::EmbeddedBoard::open(&path, BoardConfig::new("new")).expect("migrates");
        let job = board.get(id).await.expect("the old job reads");
        assert_eq!((job.flow.as_str(), job.pin), ("old", None));
        let conn = rusqlite::Connection::open(&path).expect("reopen");
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).expect("user_version");
        assert_eq!(version, SCHEMA_VERSION);
    }
}
