//! The writer thread: group commit of the board's write transactions.
//!
//! One thread owns the write connection. It takes the first queued write at
//! once (a lone writer waits for nothing) together with every write queued
//! meanwhile, up to [`MAX_BATCH`], and runs them one after another in one
//! IMMEDIATE transaction, each inside its own savepoint: a write that fails
//! rolls back to its savepoint and changes nothing, the others stand. One
//! COMMIT (one WAL fsync under `synchronous=FULL`) then makes the whole batch
//! durable, and only then is each caller told its result: nothing is reported
//! done, and so no wake-up fires, before it is on disk. Writes that queue up
//! while a commit is syncing form the next batch, so concurrent jobs share
//! fsyncs while a job alone pays exactly one per write.
//!
//! Batching changes how many commits there are, never the order of writes: a
//! batch applies them in the order they were queued, and one caller's writes
//! are queued one after another (each awaits the last).

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::sql_error;
use crate::error::Error;

/// The most writes one transaction takes: a bound on how long a batch holds
/// the write lock, and on how much a failed commit takes down with it.
const MAX_BATCH: usize = 128;

/// One queued write.
pub(super) type WriteOp = Box<dyn Write>;

/// A write waiting for the writer thread.
pub(super) trait Write: Send {
    /// Runs the write inside the batch's transaction, in a savepoint of its own.
    fn run(self: Box<Self>, conn: &Connection) -> Queued;
    /// Tells the caller the write never ran, and why.
    fn refuse(self: Box<Self>, error: Error);
}

/// What a write leaves behind until its batch commits.
pub(super) struct Queued {
    /// Tells the caller: `None` if the batch committed, else why it did not.
    settle: Box<dyn FnOnce(Option<Error>) + Send>,
    /// The write could not be confined to its savepoint (the transaction is
    /// in an unknown state): the whole batch must roll back.
    broken: Option<Error>,
}

/// A write `f` whose result goes to `reply` once its batch's fate is known.
pub(super) struct Pending<F, R, E> {
    pub(super) f: F,
    pub(super) reply: Box<dyn FnOnce(Result<R, E>) + Send>,
}

impl<F, R, E> Write for Pending<F, R, E>
where
    F: FnOnce(&Connection) -> Result<R, E> + Send,
    R: Send + 'static,
    E: From<Error> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Queued {
        let (out, broken) = in_savepoint(conn, self.f);
        let ok = out.is_ok();
        let reply = self.reply;
        // A write that succeeded but whose batch did not commit reports the batch's error;
        // a write that failed reports its own (it changed nothing either way).
        let settle = Box::new(move |fate: Option<Error>| {
            reply(match fate {
                Some(error) if ok => Err(error.into()),
                _ => out,
            })
        });
        Queued { settle, broken }
    }

    fn refuse(self: Box<Self>, error: Error) {
        (self.reply)(Err(error.into()));
    }
}

/// The handle on the writer thread; dropping it stops the thread after the
/// writes already queued, and waits for it (so the file's lock is released
/// when the last handle goes, and a reopen right after finds it free).
#[derive(Debug)]
pub(super) struct Writer {
    queue: Option<mpsc::Sender<WriteOp>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Counters>,
}

/// What the writer has done since the board was opened.
#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

/// Writes run and transactions committed since the board file was opened: with
/// group commit, concurrent writers make `commits` smaller than `writes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes run (each a savepoint in some transaction), committed or not.
    pub writes: u64,
    /// Transactions committed (each one WAL fsync).
    pub commits: u64,
}

impl Writer {
    /// Starts the thread on `conn`; it holds `lock` until it ends.
    pub(super) fn start(conn: Connection, lock: File) -> Result<Writer, Error> {
        let (queue, ops) = mpsc::channel::<WriteOp>();
        let stats = Arc::new(Counters::default());
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("baton-board-writer".into())
            .spawn(move || {
                let _lock = lock;
                writer_loop(&conn, &ops, &counters);
            })
            .map_err(|e| Error::Backend {
                message: "cannot start the board writer thread".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(Writer { queue: Some(queue), thread: Some(thread), stats })
    }

    /// What the writer has done so far.
    pub(super) fn stats(&self) -> WriteStats {
        WriteStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            commits: self.stats.commits.load(Ordering::Relaxed),
        }
    }

    /// Queues one write; `Closed` if the thread is gone.
    pub(super) fn send(&self, op: WriteOp) -> Result<(), Error> {
        self.queue.as_ref().and_then(|q| q.send(op).ok()).ok_or(Error::Closed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // Never join from the writer thread itself (a write that held the last handle).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn writer_loop(conn: &Connection, ops: &mpsc::Receiver<WriteOp>, counters: &Counters) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        counters.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        run_batch(conn, batch, counters);
    }
}

/// Runs one batch in one transaction and settles every write in it (counted
/// first, so that a caller who has its answer sees its commit counted).
fn run_batch(conn: &Connection, batch: Vec<WriteOp>, counters: &Counters) {
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        let error = sql_error(e);
        for op in batch {
            op.refuse(commit_error_of(&error));
        }
        return;
    }
    let mut queued = Vec::with_capacity(batch.len());
    let mut broken: Option<Error> = None;
    for op in batch {
        if let Some(error) = &broken {
            op.refuse(commit_error_of(error));
            continue;
        }
        let done = op.run(conn);
        broken = done.broken;
        queued.push(done.settle);
    }
    let fate = match broken {
        Some(error) => {
            let _ = run(conn, "ROLLBACK");
            Some(error)
        }
        // SQLite rolls a transaction back by itself on some errors (disk full, I/O).
        None if conn.is_autocommit() => {
            Some(Error::Backend { message: "sqlite rolled the board transaction back".into(), source: None })
        }
        None => match run(conn, "COMMIT") {
            Ok(()) => None,
            Err(e) => {
                let error = sql_error(e);
                if !conn.is_autocommit() {
                    let _ = run(conn, "ROLLBACK");
                }
                Some(error)
            }
        },
    };
    if fate.is_none() {
        counters.commits.fetch_add(1, Ordering::Relaxed);
    }
    for settle in queued {
        settle(fate.as_ref().map(commit_error_of));
    }
}

/// Runs one write inside a savepoint of the batch's transaction: a failed (or
/// panicking) write rolls back to it, leaving the batch's other writes.
fn in_savepoint<R, E>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R, E>) -> (Result<R, E>, Option<Error>)
where
    E: From<Error>,
{
    if let Err(e) = run(conn, "SAVEPOINT board_write") {
        let error = sql_error(e);
        let copy = commit_error_of(&error);
        return (Err(error.into()), Some(copy));
    }
    let out = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(out) => out,
        Err(_) => Err(Error::Backend { message: "a board write panicked".into(), source: None }.into()),
    };
    let end = if out.is_ok() {
        run(conn, "RELEASE board_write")
    } else {
        run(conn, "ROLLBACK TO board_write").and_then(|()| run(conn, "RELEASE board_write"))
    };
    match end {
        Ok(()) => (out, None),
        Err(e) => (out, Some(sql_error(e))),
    }
}

/// Runs one transaction-control statement, parsed once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A copy of a batch-wide error for each write of the batch (errors are not
/// `Clone`: the copy keeps the kind and the message, not the source).
fn commit_error_of(error: &Error) -> Error {
    match error {
        Error::Unavailable { message, .. } => Error::Unavailable { message: message.clone(), source: None },
        other => Error::Backend { message: format!("board write not committed: {other}"), source: None },
    }
}
