//! `Readers`: a small pool of read connections on the board file.
//!
//! In WAL mode a reader sees the last commit while the writer thread writes,
//! so reads (job pages, logbooks for `WatchJob`) neither wait for a batch's
//! fsync nor hold up the next one. Connections are opened on demand and kept
//! for reuse, up to [`MAX_IDLE`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::{sql_error, BUSY_TIMEOUT, STATEMENT_CACHE};
use crate::error::Error;

/// How many idle read connections are kept for reuse.
const MAX_IDLE: usize = 8;

/// The read connections of one board file.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    // std Mutex: each critical section is a push or a pop, never across `.await`.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: &Path) -> Readers {
        Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    /// An idle connection, or a new one (query-only: it can never write).
    pub(super) fn take(&self) -> Result<Connection, Error> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path).map_err(|e| Error::Backend {
            message: format!("cannot open board file {} for reading", self.path.display()),
            source: Some(Box::new(e)),
        })?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
        conn.pragma_update(None, "query_only", true).map_err(sql_error)?;
        super::keep_plans(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Returns a connection for reuse (or closes it if enough are idle).
    pub(super) fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE && conn.is_autocommit() {
            idle.push(conn);
        }
    }
}
