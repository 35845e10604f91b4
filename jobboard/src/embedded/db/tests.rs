//! Group commit: writes queued together share one commit, a failed or panicking
//! write rolls back alone, answers come after the commit, and the file is free
//! to reopen as soon as the last handle is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use rusqlite::Connection;

use super::Db;
use crate::error::Error;

fn open(dir: &tempfile::TempDir) -> Db {
    let (db, ()) = Db::open(&dir.path().join("board.db"), |tx| {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)").map_err(super::sql_error)
    })
    .expect("open board file");
    db
}

/// The rows of `t`, read by a connection of its own (what is on disk).
fn rows_on_disk(dir: &tempfile::TempDir) -> Vec<i64> {
    let conn = Connection::open(dir.path().join("board.db")).expect("inspection connection");
    let mut stmt = conn.prepare("SELECT n FROM t ORDER BY n").expect("prepare");
    stmt.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
}

fn insert(db: &Db, n: i64) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> {
    let db = db.clone();
    Box::pin(async move {
        db.write(move |tx| tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map(drop).map_err(super::sql_error)).await
    })
}

/// Polls a write once: that queues it on the writer thread (it then waits for its answer).
fn queue(future: &mut Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>) {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending(), "a write answered before its batch could commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_together_share_one_commit_and_fail_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&dir);

    // A lone write commits by itself, at once.
    let start = db.stats();
    insert(&db, 1).await.expect("lone write");
    let lone = db.stats();
    assert_eq!((lone.writes - start.writes, lone.commits - start.commits), (1, 1));
    assert_eq!(rows_on_disk(&dir), vec![1], "a write is on disk when it answers");

    // Hold the writer inside a write until the others are queued behind it.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (entered, in_gate) = tokio::sync::oneshot::channel::<()>();
    let held = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |tx| {
                let _ = entered.send(());
                gate.recv().map_err(|_| Error::Closed)?;
                tx.execute("INSERT INTO t (n) VALUES (2)", []).map(drop).map_err(super::sql_error)
            })
            .await
        }
    });
    in_gate.await.expect("the held write started");
    let mut queued: Vec<_> = (10..30).map(|n| insert(&db, n)).collect();
    let failing_db = db.clone();
    let mut failing: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> = Box::pin(async move {
        failing_db
            .write(|tx| {
                tx.execute("INSERT INTO t (n) VALUES (500)", []).map_err(super::sql_error)?;
                Err(Error::InvalidInput("refused after writing".into()))
            })
            .await
    });
    let panicking_db = db.clone();
    let mut panicking: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> = Box::pin(async move {
        panicking_db
            .write(|tx| {
                tx.execute("INSERT INTO t (n) VALUES (600)", []).map_err(super::sql_error)?;
                panic!("a write that panics after writing");
            })
            .await
    });
    queue(&mut failing);
    for write in &mut queued {
        queue(write);
    }
    queue(&mut panicking);
    assert_eq!(rows_on_disk(&dir), vec![1], "nothing of a batch is visible before its commit");
    release.send(()).expect("release the held write");

    held.await.expect("held task").expect("held write");
    for write in queued {
        write.await.expect("queued write");
    }
    assert!(matches!(failing.await, Err(Error::InvalidInput(_))), "a failed write reports its own error");
    assert!(matches!(panicking.await, Err(Error::Backend { .. })), "a panicking write reports a backend error");
    let end = db.stats();
    assert_eq!(end.writes - lone.writes, 23, "the held write, 20 inserts, a failing and a panicking write");
    assert_eq!(end.commits - lone.commits, 2, "the held write's batch, then one batch for the 22 queued behind it");
    let mut expected = vec![1, 2];
    expected.extend(10..30);
    assert_eq!(rows_on_disk(&dir), expected, "every write of the batch but the failed and the panicking one");

    // The writer is still serving after a panic.
    insert(&db, 3).await.expect("write after a panic");
}

#[tokio::test]
async fn the_file_is_free_as_soon_as_the_last_handle_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    for n in 0..5 {
        let db = open(&dir);
        insert(&db, n).await.expect("write");
        drop(db);
    }
    assert_eq!(rows_on_disk(&dir), vec![0, 1, 2, 3, 4]);
}

/// A cached statement is not parsed and planned again for each new binding: SQLite,
/// built with STAT4, does that to statements such as the logbook's (a parameter on a
/// joined key, or on a non-unique index) unless its plans are kept; on the writer and
/// on the read connections alike.
#[tokio::test]
async fn cached_statements_keep_their_plan_across_bindings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, ()) = Db::open(&dir.path().join("board.db"), |tx| {
        tx.execute_batch(
            "CREATE TABLE books (id TEXT PRIMARY KEY, job_id TEXT NOT NULL); CREATE INDEX books_job ON books (job_id); \
             CREATE TABLE flows (id TEXT PRIMARY KEY, book_id TEXT NOT NULL); CREATE INDEX flows_book ON flows (book_id); \
             INSERT INTO books VALUES ('a', 'a'), ('b', 'b'), ('c', 'c'); INSERT INTO flows VALUES ('a', 'a'), ('b', 'b'), ('c', 'c');",
        )
        .map_err(super::sql_error)
    })
    .expect("open board file");
    fn reprepares(conn: &Connection) -> Result<Vec<i32>, Error> {
        let statements = [
            "SELECT 1 FROM flows f JOIN books b ON b.id = f.book_id WHERE f.id = ?1 AND b.id = ?1 AND b.job_id = ?1",
            "SELECT id FROM books WHERE job_id = ?1 ORDER BY id = job_id DESC LIMIT 1",
        ];
        let mut counts = Vec::new();
        for sql in statements {
            for id in ["a", "b", "c"] {
                let mut stmt = conn.prepare_cached(sql).map_err(super::sql_error)?;
                stmt.query_row([id], |_| Ok(())).map_err(super::sql_error)?;
            }
            counts.push(
                conn.prepare_cached(sql).map_err(super::sql_error)?.get_status(rusqlite::StatementStatus::RePrepare),
            );
        }
        Ok(counts)
    }
    assert_eq!(db.write(reprepares).await.expect("writer"), [0, 0], "the writer re-planned cached statements");
    assert_eq!(db.read(reprepares).await.expect("reader"), [0, 0], "a reader re-planned cached statements");
}
