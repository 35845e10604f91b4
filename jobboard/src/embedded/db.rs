//! `Db`: the one SQLite connection of a board file, used off the async runtime.
//!
//! A std `Mutex` guards the connection: every critical section is one short
//! SQL transaction run inside `spawn_blocking`, never held across an `.await`.
//! One connection (rather than a pool) also makes every transaction serial,
//! which is what makes a claim atomic without retry loops.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use super::schema;
use crate::error::Error;

/// How long a statement waits for a lock held by another connection (the
/// `sqlite3` tool inspecting the file, say) before giving up as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A shared handle on the board file's connection.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
    /// An exclusive lock on `<file>-lock`, held while this board is open: opening
    /// returns every CLAIMED job to the board, which must never happen under a
    /// live process's feet. A lock file of its own, because closing any other
    /// descriptor of the database would drop SQLite's own (POSIX) locks.
    _owner: Arc<File>,
}

impl Db {
    /// Opens (creating if needed) the file, sets WAL mode and checks the schema.
    pub(crate) fn open(path: &Path) -> Result<Db, Error> {
        let mut conn = Connection::open(path).map_err(|e| Error::Backend {
            message: format!("cannot open board file {}", path.display()),
            source: Some(Box::new(e)),
        })?;
        let owner = lock_exclusively(path)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
        // WAL lets `sqlite3` read the file while the board writes; FULL sync
        // makes every committed claim or outcome survive a power loss too.
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
        schema::migrate(&mut conn)?;
        Ok(Db { conn: Arc::new(Mutex::new(conn)), _owner: Arc::new(owner) })
    }

    /// Runs `f` in one IMMEDIATE transaction on a blocking thread; commits if it
    /// returns `Ok`, rolls back (drops the transaction) otherwise.
    pub(crate) async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql_error)?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in one read (DEFERRED) transaction on a blocking thread, so
    /// that multi-statement reads see one snapshot.
    pub(crate) async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(sql_error)?;
            f(&tx)
        })
        .await
    }

    /// The same as [`Db::write`], for synchronous callers (opening the board).
    pub(crate) fn write_blocking<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R, Error>) -> Result<R, Error> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql_error)?;
        Ok(out)
    }

    async fn run<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        let db = self.clone();
        match tokio::task::spawn_blocking(move || f(&mut db.lock())).await {
            Ok(out) => out,
            Err(e) => {
                Err(Error::Backend { message: "board database task failed".into(), source: Some(Box::new(e)) }.into())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic inside a critical section dropped its `Transaction`, which
        // rolled back: the connection is consistent, so keep serving.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
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
