//! `Db`: the connections of a board file, used off the async runtime.
//!
//! Writes go to the writer thread (`writer`), which group-commits them: each
//! write is its own savepoint in a transaction shared with the writes queued
//! beside it, and its caller hears the result only after that transaction's
//! commit is on disk. One writer connection makes every write serial, which is
//! what makes a claim atomic without retry loops. Reads use a pool of read
//! connections (`readers`), one DEFERRED transaction each so a multi-statement
//! read sees one snapshot.

mod readers;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use self::readers::Readers;
pub use self::writer::WriteStats;
use self::writer::{Pending, Writer};
use crate::error::Error;

/// How long a statement waits for a lock held by another connection (the
/// `sqlite3` tool inspecting the file, say) before giving up as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: every statement of a claim, a
/// logbook write or a job read, so that none is parsed again.
const STATEMENT_CACHE: usize = 64;

/// A shared handle on the board file's connections.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
}

impl Db {
    /// Opens (creating if needed) the file, sets WAL mode, checks the schema,
    /// runs `setup` in the first transaction, and starts the writer thread.
    pub(crate) fn open<R>(path: &Path, setup: impl FnOnce(&Connection) -> Result<R, Error>) -> Result<(Db, R), Error> {
        let mut conn = Connection::open(path).map_err(|e| Error::Backend {
            message: format!("cannot open board file {}", path.display()),
            source: Some(Box::new(e)),
        })?;
        // An exclusive lock on `<file>-lock`, held by the writer thread while this board is
        // open: opening returns every CLAIMED job to the board, which must never happen under
        // a live process's feet. A lock file of its own, because closing any other descriptor
        // of the database would drop SQLite's own (POSIX) locks.
        let owner = lock_exclusively(path)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
        // WAL lets readers (and `sqlite3`) read the file while the board writes; FULL
        // sync makes every commit (a claim, a logbook write, an outcome) survive a power
        // loss: the WAL is fsynced before COMMIT returns.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(sql_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Backend {
                message: format!("cannot switch board file to WAL mode (got {mode})"),
                source: None,
            });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql_error)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sql_error)?;
        keep_plans(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        super::migrate::migrate(&mut conn, path)?;
        let out = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
            let out = setup(&tx)?;
            tx.commit().map_err(sql_error)?;
            out
        };
        let db = Db { writer: Arc::new(Writer::start(conn, owner)?), readers: Arc::new(Readers::new(path)) };
        Ok((db, out))
    }

    /// Runs `f` as one write of a group commit (see `writer`); `Ok` only once the
    /// transaction that holds it has committed. A failed `f` changes nothing.
    pub(crate) async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let reply = Box::new(move |out: Result<R, E>| {
            // The caller may have gone (its future dropped): the write stands regardless.
            let _ = reply.send(out);
        });
        self.writer.send(Box::new(Pending { f, reply }))?;
        answer
            .await
            .unwrap_or_else(|_| Err(Error::Backend { message: "the board writer stopped".into(), source: None }.into()))
    }

    /// Writes run and transactions committed since the file was opened.
    pub(crate) fn stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// Runs `f` in one read (DEFERRED) transaction on a read connection, on the
    /// caller's thread: for reads of a few rows by key (a job, its parked tasks, a
    /// small logbook), which take microseconds from the page cache while a hand-off
    /// to a blocking thread and back costs two thread switches. In WAL mode a read
    /// never waits for the writer. Anything that may read many rows uses [`Db::read`].
    pub(crate) fn read_now<R, E, F>(&self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&Connection) -> Result<R, E>,
    {
        let mut conn = self.readers.take()?;
        let out = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(sql_error)?;
            f(&tx)
        };
        self.readers.put(conn);
        out
    }

    /// Runs `f` in one read (DEFERRED) transaction on a read connection, on a
    /// blocking thread, so that multi-statement reads see one snapshot.
    pub(crate) async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        let readers = self.readers.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let out = {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(sql_error)?;
                f(&tx)
            };
            readers.put(conn);
            out
        });
        match task.await {
            Ok(out) => out,
            Err(e) => {
                Err(Error::Backend { message: "board database task failed".into(), source: Some(Box::new(e)) }.into())
            }
        }
    }
}

/// Turns on SQLite's query planner stability guarantee. This SQLite is built with
/// STAT4, under which a cached statement such as the logbook's (a parameter on a joined
/// key or a non-unique index: `logbooks.job_id`) is parsed and planned again on the
/// first step after every new binding; every job's logbook reads and writes did that
/// (an eighth of the conductor's CPU). The board never runs ANALYZE: no plan changes.
pub(super) fn keep_plans(conn: &Connection) -> Result<(), Error> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop).map_err(sql_error)
}

/// Takes the board file's process lock, or says which process-wide lock is held.
fn lock_exclusively(path: &Path) -> Result<File, Error> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push("-lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let cannot = |e: std::io::Error| Error::Backend {
        message: format!("cannot open the lock file {}", lock_path.display()),
        source: Some(Box::new(e)),
    };
    let file = File::options().read(true).write(true).create(true).truncate(false).open(&lock_path).map_err(cannot)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Unavailable {
            message: format!(
                "board file {} is open in another board (lock {} is held)",
                path.display(),
                lock_path.display()
            ),
            source: None,
        }),
        Err(TryLockError::Error(e)) => Err(cannot(e)),
    }
}

/// Maps a SQLite error: lock contention is retryable, anything else is a backend fault.
pub(crate) fn sql_error(err: rusqlite::Error) -> Error {
    let busy = matches!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked));
    if busy {
        Error::Unavailable { message: "board file is locked by another connection".into(), source: Some(Box::new(err)) }
    } else {
        Error::Backend { message: format!("sqlite: {err}"), source: Some(Box::new(err)) }
    }
}
