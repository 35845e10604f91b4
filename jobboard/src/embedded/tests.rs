//! Unit tests of the embedded board: the file itself (schema, WAL, inspection
//! by another connection), reopen recovery, purge, and SQL details the shared
//! conformance suite (`tests/board.rs`) does not reach.

use std::path::Path;
use std::time::Duration;

use flows::{FlowDetail, LogBook, StorageError};
use rusqlite::Connection;
use serde_json::Map;
use tempfile::TempDir;
use uuid::Uuid;

use super::schema::SCHEMA_VERSION;
use super::EmbeddedBoard;
use crate::board::JobBoard;
use crate::error::Error;
use crate::job::{BoardConfig, ConductorInfo, FlowFilter, JobState, ListQuery, NewJob, Outcome};

fn temp_board(config: BoardConfig) -> (TempDir, EmbeddedBoard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = EmbeddedBoard::open(&dir.path().join("board.db"), config).expect("open");
    (dir, board)
}

fn new_job(key: Option<&str>) -> NewJob {
    NewJob { idempotency_key: key.map(str::to_owned), ..NewJob::new("work", Map::new()) }
}

/// A second connection, as the `sqlite3` tool would open the file.
fn inspect(dir: &TempDir) -> Connection {
    Connection::open(dir.path().join("board.db")).expect("inspection connection")
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).expect("count")
}

#[tokio::test]
async fn new_file_is_wal_with_schema_version_and_readable_while_open() {
    let (dir, board) = temp_board(BoardConfig::new("me"));
    board.post(new_job(None)).await.expect("post");
    let conn = inspect(&dir);
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).expect("user_version");
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).expect("journal_mode");
    assert_eq!((version, mode.as_str()), (SCHEMA_VERSION, "wal"));
    assert_eq!(count(&conn, "jobs"), 1, "a committed post is visible to another connection");
}

#[test]
fn a_file_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("board.db");
    Connection::open(&path).and_then(|c| c.pragma_update(None, "user_version", 99)).expect("prepare file");
    match EmbeddedBoard::open(&path, BoardConfig::new("me")) {
        Err(Error::UnsupportedFormat { found, .. }) => assert_eq!(found, "99"),
        other => panic!("opening a newer file gave {other:?}"),
    }
}

#[test]
fn an_unopenable_path_is_a_backend_error_naming_it() {
    let missing = Path::new("/nonexistent-dir-for-baton-tests/board.db");
    match EmbeddedBoard::open(missing, BoardConfig::new("me")) {
        Err(Error::Backend { message, .. }) => assert!(message.contains("nonexistent-dir"), "message: {message}"),
        other => panic!("opening {} gave {other:?}", missing.display()),
    }
}

/// Opening releases every CLAIMED job, so a file in use must not be opened a
/// second time (by another process, or another board value in this one).
#[tokio::test]
async fn a_board_file_in_use_is_not_opened_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("board.db");
    let first = EmbeddedBoard::open(&path, BoardConfig::new("first")).expect("open");
    let id = first.post(new_job(None)).await.expect("post").id;
    let claim = first.claim(id).await.expect("claim");
    match EmbeddedBoard::open(&path, BoardConfig::new("second")) {
        Err(Error::Unavailable { message, .. }) => assert!(message.contains("board.db"), "message: {message}"),
        other => panic!("a second open of a file in use gave {other:?}"),
    }
    assert_eq!(first.get(id).await.expect("get").owner.as_deref(), Some("first"), "the claim survived");
    claim.abandon().await.expect("the first board still owns its claim");
    drop(first);
    let second = EmbeddedBoard::open(&path, BoardConfig::new("second")).expect("open once the first is gone");
    assert_eq!(second.get(id).await.expect("get").state, JobState::Unclaimed);
}

#[tokio::test]
async fn reopen_releases_claims_and_forgets_conductors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("board.db");
    let id = {
        let board = EmbeddedBoard::open(&path, BoardConfig::new("first")).expect("open");
        let info = ConductorInfo {
            name: "c1".into(),
            address: "a:1".into(),
            since: 1,
            draining: false,
            jobs: 0,
            task_kinds: vec!["noop".into()],
            rust_flows: vec!["chain".into()],
            features: vec!["file-flow".into()],
        };
        board.register_conductor(&info).await.expect("register");
        assert_eq!(board.conductors().await.expect("conductors"), vec![info]);
        let id = board.post(new_job(None)).await.expect("post").id;
        let _held = board.claim(id).await.expect("claim");
        id
    };
    let board = EmbeddedBoard::open(&path, BoardConfig::new("second")).expect("reopen");
    assert_eq!(board.conductors().await.expect("conductors"), Vec::new());
    let job = board.get(id).await.expect("get");
    assert_eq!((job.state, job.owner), (JobState::Unclaimed, None));
}

#[tokio::test]
async fn purge_removes_old_finished_jobs_with_logbooks_and_keys() {
    let config = BoardConfig { retention: Duration::ZERO, ..BoardConfig::new("me") };
    let (dir, board) = temp_board(config);
    let done = board.post(new_job(Some("k"))).await.expect("post");
    let claim = board.claim(done.id).await.expect("claim");
    let book = LogBook::new(done.id, "book");
    claim.storage().save_book(&book).await.expect("save_book");
    claim.storage().save_flow(book.id, &FlowDetail::new(Uuid::new_v4(), "f")).await.expect("save_flow");
    claim.consume(Outcome::Success, None).await.expect("consume");
    let junk = board.post(new_job(None)).await.expect("post");
    board.claim(junk.id).await.expect("claim").trash("junk").await.expect("trash");
    let waiting = board.post(new_job(None)).await.expect("post");

    // Retention zero: anything finished before now is old enough.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(board.purge_expired().await.expect("purge"), 2);
    assert!(matches!(board.get(done.id).await, Err(Error::NotFound(_))));
    assert!(matches!(board.get(junk.id).await, Err(Error::NotFound(_))));
    assert_eq!(board.get(waiting.id).await.expect("get").state, JobState::Unclaimed);
    let conn = inspect(&dir);
    for table in ["logbooks", "flow_details", "idempotency_keys"] {
        assert_eq!(count(&conn, table), 0, "purge left rows in {table}");
    }
    // The key of a purged job is free again.
    assert_ne!(board.post(new_job(Some("k"))).await.expect("post").id, done.id);
}

#[tokio::test]
async fn a_bad_page_token_is_invalid_input() {
    let (_dir, board) = temp_board(BoardConfig::new("me"));
    let query = ListQuery { page_token: Some("not-a-token".into()), ..ListQuery::default() };
    assert!(matches!(board.list(&query).await, Err(Error::InvalidInput(_))));
}

#[tokio::test]
async fn quarantine_zero_never_quarantines() {
    let (_dir, board) = temp_board(BoardConfig { quarantine_after: 0, ..BoardConfig::new("me") });
    let id = board.post(new_job(None)).await.expect("post").id;
    for attempt in 1..=8 {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next").expect("claimable");
        assert_eq!(claim.job().claims, attempt);
        claim.abandon().await.expect("abandon");
    }
    assert_eq!(board.get(id).await.expect("get").state, JobState::Unclaimed);
}

#[tokio::test]
async fn a_cancel_requested_before_a_reclaim_reaches_the_new_owner_at_once() {
    let (_dir, board) = temp_board(BoardConfig::new("me"));
    let id = board.post(new_job(None)).await.expect("post").id;
    let claim = board.claim(id).await.expect("claim");
    board.request_cancel(id).await.expect("request_cancel");
    claim.abandon().await.expect("abandon");
    let again = board.claim(id).await.expect("reclaim");
    assert!(again.cancelled().is_cancelled());
}

#[tokio::test]
async fn a_claim_cannot_write_another_jobs_logbook() {
    let (_dir, board) = temp_board(BoardConfig::new("me"));
    let (first, second) =
        (board.post(new_job(None)).await.expect("post"), board.post(new_job(None)).await.expect("post"));
    let first_claim = board.claim(first.id).await.expect("claim");
    first_claim.storage().save_book(&LogBook::new(first.id, "first")).await.expect("save_book");
    let second_claim = board.claim(second.id).await.expect("claim");
    let stolen = second_claim.storage().save_book(&LogBook::new(first.id, "stolen")).await;
    assert!(matches!(stolen, Err(StorageError::Rejected { .. })), "writing another job's book gave {stolen:?}");
    let book = board.logbook(first.id).await.expect("logbook").expect("book");
    assert_eq!(book.name, "first");
}

#[tokio::test]
async fn sessions_share_the_file_and_close_only_releases_their_own_claims() {
    let (_dir, board) = temp_board(BoardConfig::new("main"));
    let other = board.session("other");
    let (mine, theirs) =
        (board.post(new_job(None)).await.expect("post"), board.post(new_job(None)).await.expect("post"));
    let _mine = board.claim(mine.id).await.expect("claim");
    let _theirs = other.claim(theirs.id).await.expect("claim");
    other.close().await.expect("close");
    assert!(other.session_lost().is_cancelled() && !board.session_lost().is_cancelled());
    assert_eq!(board.get(theirs.id).await.expect("get").state, JobState::Unclaimed);
    assert_eq!(board.get(mine.id).await.expect("get").owner.as_deref(), Some("main"));
    assert!(matches!(other.post(new_job(None)).await, Err(Error::Closed)));
}

/// The interleaving is up to the scheduler, so this catches a missing
/// in-transaction `closed` check only in some runs; the assertion holds in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_claim_outlives_a_close_it_races_with() {
    let (_dir, board) = temp_board(BoardConfig::new("main"));
    for round in 0..50 {
        let id = board.post(new_job(None)).await.expect("post").id;
        let session = board.session(format!("racer-{round}"));
        let claimer = session.clone();
        let claiming = tokio::spawn(async move { claimer.claim_next(&FlowFilter::any()).await.map(|c| c.is_some()) });
        // Vary which side reaches the database first.
        for _ in 0..round % 4 {
            tokio::task::yield_now().await;
        }
        session.close().await.expect("close");
        match claiming.await.expect("claimer panicked") {
            Ok(_) | Err(Error::Closed) => {}
            Err(e) => panic!("round {round}: claim racing close failed with {e}"),
        }
        let job = board.get(id).await.expect("get");
        assert_eq!(job.state, JobState::Unclaimed, "round {round}: a claim outlived its closed session");
        board.claim(id).await.expect("claim").consume(Outcome::Success, None).await.expect("consume");
    }
}

#[tokio::test]
async fn a_three_task_job_is_seven_writes_each_committed_at_once_when_alone() {
    let (_dir, board) = temp_board(BoardConfig::new("counter"));
    let start = board.write_stats();
    let posted = board.post(new_job(None)).await.expect("post");
    let claim = board.claim_next(&FlowFilter::any()).await.expect("claim").expect("the posted job");
    let flow = flows::Flow::linear("three")
        .add_all((1..=3).map(|n| flows::task_fn(format!("t{n}"), |_ctx| async { Ok(serde_json::json!(null)) })));
    let mut engine =
        flows::Engine::builder(flow).storage(claim.storage(), posted.id, posted.id).build().await.expect("engine");
    let before_run = board.write_stats();
    engine.run().await.expect("the flow runs");
    let after_run = board.write_stats();
    claim.consume(Outcome::Success, None).await.expect("consume");
    let end = board.write_stats();
    // The engine's floor: the first RUNNING, two step boundaries (SUCCESS with the next
    // RUNNING), the last SUCCESS with the flow's.
    assert_eq!(after_run.writes - before_run.writes, 4, "logbook writes of a 3-task linear flow");
    assert_eq!(end.writes - start.writes, 7, "post, claim, 4 logbook writes, consume");
    assert_eq!(end.commits - start.commits, 7, "a lone writer waits for no batch: one commit per write");
}

#[tokio::test]
async fn on_its_consuming_storage_a_three_task_job_is_six_writes() {
    let (_dir, board) = temp_board(BoardConfig::new("counter"));
    let start = board.write_stats();
    let posted = board.post(new_job(None)).await.expect("post");
    let claim = board.claim_next(&FlowFilter::any()).await.expect("claim").expect("the posted job");
    let flow = flows::Flow::linear("three")
        .add_all((1..=3).map(|n| flows::task_fn(format!("t{n}"), |_ctx| async { Ok(serde_json::json!(null)) })));
    let storage = claim.consuming_storage();
    let mut engine = flows::Engine::builder(flow).storage(storage, posted.id, posted.id).build().await.expect("engine");
    engine.run().await.expect("the flow runs");
    assert!(claim.is_consumed(), "the last logbook write consumed the job");
    let job = claim.consume(Outcome::Success, None).await.expect("consume");
    let end = board.write_stats();
    assert_eq!((job.state, job.outcome), (JobState::Complete, Some(Outcome::Success)));
    assert_eq!(end.writes - start.writes, 6, "post, claim, 4 logbook writes, the last with the consume");
    assert_eq!(end.commits - start.commits, 6, "a lone writer waits for no batch: one commit per write");
}

#[tokio::test]
async fn filtered_listings_read_an_index_in_page_order() {
    let (dir, board) = temp_board(BoardConfig::new("me"));
    board.post(new_job(None)).await.expect("post");
    let conn = inspect(&dir);
    let filters =
        [(Some(JobState::Complete), None), (None, Some("f")), (Some(JobState::Unclaimed), Some("f")), (None, None)];
    for (state, flow) in filters {
        let query = ListQuery { state, flow: flow.map(str::to_owned), limit: 100, page_token: None };
        let (sql, args) = super::jobs::list_statement(&query, 0, 100);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{query:?} sorts: {plan:?}");
        assert!(plan.iter().any(|step| step.starts_with("SEARCH")), "{query:?} scans: {plan:?}");
    }
}

/// A flow's detail reads the same whether it is small (read on the caller's thread)
/// or over the small-flow bound (read on a blocking thread), and a missing one is `None`.
#[tokio::test]
async fn small_and_big_flows_load_whole() {
    let (_dir, board) = temp_board(BoardConfig::new("me"));
    for atoms in [0, 3, 65, 200] {
        let job = board.post(new_job(None)).await.expect("post");
        let claim = board.claim(job.id).await.expect("claim");
        let storage = claim.storage();
        assert!(storage.load_flow(job.id, job.id).await.expect("load").is_none(), "a flow never saved");
        let detail = FlowDetail::new(job.id, "f");
        let details: Vec<flows::AtomDetail> =
            (0..atoms).map(|n| flows::AtomDetail::new(format!("t{n}"), flows::AtomKind::Task)).collect();
        let refs: Vec<&flows::AtomDetail> = details.iter().collect();
        let changes = flows::FlowChanges { flow: Some(&detail), atoms: &refs };
        storage.save_changes(job.id, job.id, changes).await.expect("save");
        let loaded = storage.load_flow(job.id, job.id).await.expect("load").expect("saved flow");
        assert_eq!(loaded.atoms.len(), atoms, "atoms of a flow of {atoms}");
        assert!(loaded.atoms.contains_key(&format!("t{}", atoms.saturating_sub(1))) || atoms == 0);
    }
}

#[tokio::test]
async fn on_its_pick_a_three_task_job_is_five_writes() {
    let (_dir, board) = temp_board(BoardConfig::new("counter"));
    let start = board.write_stats();
    let posted = board.post(new_job(None)).await.expect("post");
    let pick = board.pick_next(&FlowFilter::any()).await.expect("pick").expect("the posted job");
    assert_eq!(board.write_stats().writes - start.writes, 1, "a pick writes nothing");
    let flow = flows::Flow::linear("three")
        .add_all((1..=3).map(|n| flows::task_fn(format!("t{n}"), |_ctx| async { Ok(serde_json::json!(null)) })));
    let mut engine =
        flows::Engine::builder(flow).storage(pick.storage(), posted.id, posted.id).build().await.expect("engine");
    engine.run().await.expect("the flow runs");
    let claim = pick.claim().await.expect("the first write claimed the job");
    assert!(claim.is_consumed(), "the last logbook write consumed the job");
    let job = claim.consume(Outcome::Success, None).await.expect("consume");
    let end = board.write_stats();
    assert_eq!((job.state, job.outcome, job.claims), (JobState::Complete, Some(Outcome::Success), 1));
    assert_eq!(
        end.writes - start.writes,
        5,
        "post, 4 logbook writes, the first with the claim, the last with the consume"
    );
    assert_eq!(end.commits - start.commits, 5, "a lone writer waits for no batch: one commit per write");
}

/// A run dropped while its first write (the claim) is in flight, as a deadline drops it,
/// still leaves the claim recorded on the pick: the job is never claimed by a conductor
/// that believes it never claimed it.
#[tokio::test]
async fn a_first_write_dropped_in_flight_still_records_its_claim() {
    use futures::FutureExt;
    let (_dir, board) = temp_board(BoardConfig::new("me"));
    let posted = board.post(new_job(None)).await.expect("post");
    let pick = board.pick_next(&FlowFilter::any()).await.expect("pick").expect("the posted job");
    let storage = pick.storage();
    let detail = FlowDetail::new(posted.id, "f");
    let atom = flows::AtomDetail::new("t1", flows::AtomKind::Task);
    let atoms = [&atom];
    let first = storage.save_changes(posted.id, posted.id, flows::FlowChanges { flow: Some(&detail), atoms: &atoms });
    assert!(first.now_or_never().is_none(), "the claim waits for the writer thread");
    let claim = pick.made().await.expect("the claim step finished and was recorded");
    assert_eq!(board.get(posted.id).await.expect("get").state, JobState::Claimed);
    let loaded = claim.storage().load_flow(posted.id, posted.id).await.expect("load").expect("the first batch");
    assert!(loaded.atoms.contains_key("t1"), "the batch landed with the claim");
    claim.consume(Outcome::Success, None).await.expect("the claim is ours to end");
}
