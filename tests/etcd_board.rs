//! etcd-only board behaviour: lease expiry, etcd restarts, watch compaction, fencing.
//!
//! The backend-neutral cases live in the conformance suite (`board.rs`); these
//! need a real etcd to stop, restart, compact or cut off.

use std::future::Future;
use std::time::Duration;

use flows::{FlowDetail, LogBook, StorageError};
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, Error, FlowFilter, JobBoard, JobState, NewJob, Outcome};
use serde_json::{json, Map, Value};
use tests::etcd::proxy::TcpProxy;
use tests::etcd::{unique_prefix, EtcdProcess};

#[path = "etcd_board/batches.rs"]
mod batches;
#[path = "etcd_board/epoch.rs"]
mod epoch;
#[path = "etcd_board/list_windows.rs"]
mod list_windows;
#[path = "etcd_board/listing.rs"]
mod listing;
#[path = "etcd_board/live_listing.rs"]
mod live_listing;
#[path = "etcd_board/long_queue.rs"]
mod long_queue;
#[path = "etcd_board/reads.rs"]
mod reads;
#[path = "etcd_board/txns.rs"]
mod txns;

/// Generous bound on anything that should happen within a lease TTL or two.
const PATIENCE: Duration = Duration::from_secs(20);

fn store(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

async fn shared_endpoint() -> String {
    tokio::task::spawn_blocking(|| EtcdProcess::shared().endpoint()).await.expect("the etcd starter thread panicked")
}

async fn connect(endpoint: &str, prefix: &str, owner: &str, ttl_secs: u64) -> EtcdBoard {
    let mut config = EtcdConfig::new(vec![endpoint.to_string()], BoardConfig::new(owner));
    config.prefix = prefix.to_string();
    config.lease_ttl = Duration::from_secs(ttl_secs);
    EtcdBoard::connect(config).await.unwrap_or_else(|e| panic!("connecting {owner} failed: {e}"))
}

/// Retries `op` until it succeeds or `PATIENCE` runs out.
async fn eventually<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = op().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_hands_job_to_second_claimer_and_fences_old_owner() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("lease-expiry");
    let old = connect(&endpoint, &prefix, "old-owner", 2).await;
    let new = connect(&endpoint, &prefix, "new-owner", 2).await;
    let job = old.post(NewJob::new("resize", store(json!({"size": 3})))).await.expect("post");

    let first = old.claim(job.id).await.expect("first claim");
    let storage = first.storage();
    storage.save_book(&LogBook::new(job.id, "resize")).await.expect("owner writes its logbook");
    storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), "resize")).await.expect("owner writes a flow");

    old.suspend_keep_alive();
    let second = eventually("the job to come back after the lease expired", || async {
        new.claim_next(&FlowFilter::any()).await.expect("claim_next").filter(|c| c.id() == job.id)
    })
    .await;
    assert_eq!(second.job().claims, 2, "both claims are counted");
    assert!(second.token() > first.token(), "a new claim gets a greater fencing token");
    let lost = first.lost();
    tokio::time::timeout(PATIENCE, lost.cancelled()).await.expect("the old owner's board sees its claim lost");

    let before = new.logbook(job.id).await.expect("read logbook");
    let late_write = storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), "stale")).await;
    assert!(matches!(late_write, Err(StorageError::ClaimLost(_))), "old owner's logbook write: {late_write:?}");
    let late_consume = first.consume(Outcome::Success, None).await;
    assert!(matches!(late_consume, Err(Error::ClaimLost { .. })), "old owner's consume: {late_consume:?}");
    assert_eq!(new.logbook(job.id).await.expect("read logbook"), before, "fenced writes changed nothing");

    let current = new.get(job.id).await.expect("get");
    assert_eq!((current.state, current.owner.as_deref()), (JobState::Claimed, Some("new-owner")));
    let done = second.consume(Outcome::Success, None).await.expect("new owner consumes");
    assert_eq!((done.state, done.outcome), (JobState::Complete, Some(Outcome::Success)));
    new.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeup_fires_when_lease_expiry_releases_a_job() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("expiry-wakeup");
    let dying = connect(&endpoint, &prefix, "dying", 2).await;
    let waiting = connect(&endpoint, &prefix, "waiting", 2).await;
    let job = waiting.post(NewJob::new("work", Map::new())).await.expect("post");
    let _claim = dying.claim(job.id).await.expect("claim");
    assert!(waiting.claim_next(&FlowFilter::any()).await.expect("claim_next").is_none(), "nothing else to claim");

    let mut wakeups = waiting.claimable();
    dying.suspend_keep_alive();
    tokio::time::timeout(PATIENCE, wakeups.changed()).await.expect("woken within the TTL").expect("board alive");
    let claim =
        eventually("the released job", || async { waiting.claim_next(&FlowFilter::any()).await.expect("claim_next") })
            .await;
    assert_eq!(claim.id(), job.id);
    waiting.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_claimed_too_often_is_quarantined_with_its_logbook() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("quarantine");
    let mut config = EtcdConfig::new(vec![endpoint.clone()], BoardConfig::new("flaky"));
    config.prefix = prefix;
    config.board.quarantine_after = 3;
    let board = EtcdBoard::connect(config).await.expect("connect");
    let job = board.post(NewJob::new("poison", Map::new())).await.expect("post");

    for round in 1..=3 {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next").expect("claimable");
        assert_eq!(claim.job().claims, round);
        if round == 1 {
            claim.storage().save_book(&LogBook::new(job.id, "poison")).await.expect("logbook write");
        }
        claim.abandon().await.expect("abandon");
    }
    assert!(
        board.claim_next(&FlowFilter::any()).await.expect("claim_next").is_none(),
        "a poison job is not handed out"
    );
    let trashed = board.get(job.id).await.expect("get");
    assert_eq!(trashed.state, JobState::Trashed);
    assert!(trashed.trash_reason.as_deref().unwrap_or_default().contains("quarantined"), "{trashed:?}");
    assert!(board.logbook(job.id).await.expect("logbook").is_some(), "the logbook is kept");
    assert!(matches!(board.claim(job.id).await, Err(Error::NotClaimable { state: JobState::Trashed, .. })));
    board.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_is_survived_by_the_same_board() {
    let mut etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("start etcd");
    let endpoint = etcd.endpoint();
    let prefix = unique_prefix("restart");
    let board = connect(&endpoint, &prefix, "survivor", 10).await;
    let before = board.post(NewJob::new("work", Map::new())).await.expect("post before");

    let mut etcd = tokio::task::spawn_blocking(move || {
        etcd.stop();
        etcd
    })
    .await
    .expect("stop etcd");
    let down = board.get(before.id).await;
    assert!(matches!(&down, Err(e) if e.is_retryable()), "while etcd is down: {down:?}");

    let etcd = tokio::task::spawn_blocking(move || {
        etcd.restart();
        etcd
    })
    .await
    .expect("restart etcd");
    let mut wakeups = board.claimable();
    let got = eventually("the board to work again", || async { board.get(before.id).await.ok() }).await;
    assert_eq!(got.id, before.id);
    assert!(!board.session_lost().is_cancelled(), "a short outage keeps the session");

    // The watch was re-opened: a post by another session wakes this one.
    let other = connect(&endpoint, &prefix, "other", 10).await;
    let after = other.post(NewJob::new("work", Map::new())).await.expect("post after");
    tokio::time::timeout(PATIENCE, wakeups.changed()).await.expect("woken after the restart").expect("board alive");
    let first = board.claim_next(&FlowFilter::any()).await.expect("claim after restart").expect("a job");
    assert_eq!(first.id(), before.id, "oldest first");
    first.consume(Outcome::Success, None).await.expect("consume after restart");
    assert_eq!(board.claim_next(&FlowFilter::any()).await.expect("claim").expect("second").id(), after.id);
    board.close().await.expect("close");
    other.close().await.expect("close");
    drop(etcd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_watch_recovers_after_compaction() {
    let endpoint = shared_endpoint().await;
    let target = endpoint.trim_start_matches("http://").to_string();
    let proxy = TcpProxy::start(&target).await;
    let prefix = unique_prefix("compaction");
    let cut_off = connect(&proxy.endpoint(), &prefix, "cut-off", 10).await;
    let other = connect(&endpoint, &prefix, "other", 10).await;

    let held = other.post(NewJob::new("long", Map::new())).await.expect("post");
    let claim = cut_off.claim(held.id).await.expect("claim");
    let mut wakeups = cut_off.claimable();

    // While the watch is cut off: a new job, a cancel request for our claim, then compaction
    // past everything the cut-off watch has seen.
    proxy.cut();
    // Only once the cut-off board itself sees etcd as unreachable is its watch surely broken.
    eventually("the cut-off board to lose etcd", || async {
        matches!(cut_off.get(held.id).await, Err(e) if e.is_retryable()).then_some(())
    })
    .await;
    let posted = other.post(NewJob::new("short", Map::new())).await.expect("post while cut off");
    other.request_cancel(held.id).await.expect("cancel request");
    let mut raw = etcd_client::Client::connect([endpoint.as_str()], None).await.expect("raw client");
    let revision = raw.get("/", None).await.expect("get").header().expect("header").revision();
    raw.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await.expect("compact");
    proxy.heal();

    tokio::time::timeout(PATIENCE, wakeups.changed()).await.expect("woken after re-listing").expect("board alive");
    tokio::time::timeout(PATIENCE, claim.cancelled().cancelled()).await.expect("cancel flag seen after re-listing");
    let next = cut_off.claim_next(&FlowFilter::any()).await.expect("claim_next").expect("the job posted meanwhile");
    assert_eq!(next.id(), posted.id);

    // And the watch goes on: a later post wakes it again.
    let mut wakeups = cut_off.claimable();
    other.post(NewJob::new("later", Map::new())).await.expect("post");
    tokio::time::timeout(PATIENCE, wakeups.changed()).await.expect("woken by a live event").expect("board alive");
    claim.consume(Outcome::Cancelled, None).await.expect("consume the cancelled job");
    next.abandon().await.expect("abandon");
    cut_off.close().await.expect("close");
    other.close().await.expect("close");
}

/// A session that cannot renew its lease fences itself off (its local deadline
/// passes while etcd is down). etcd keeps the lease across its restart, with
/// the TTL started afresh, so the owner key is still there when etcd is back:
/// the fenced-off claim's writes must still be refused and change nothing,
/// and the job must come back to the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_fenced_session_writes_nothing_while_etcd_still_holds_its_lease() {
    let mut etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("start etcd");
    let endpoint = etcd.endpoint();
    let prefix = unique_prefix("self-fence");
    let board = connect(&endpoint, &prefix, "fenced", 4).await;
    let job = board.post(NewJob::new("work", Map::new())).await.expect("post");
    let claim = board.claim(job.id).await.expect("claim");
    let storage = claim.storage();
    storage.save_book(&LogBook::new(job.id, "work")).await.expect("owner writes its logbook");

    etcd = tokio::task::spawn_blocking(move || {
        etcd.stop();
        etcd
    })
    .await
    .expect("stop etcd");
    tokio::time::timeout(PATIENCE, board.session_lost().cancelled()).await.expect("the session fences itself");
    assert!(claim.lost().is_cancelled(), "the claim is lost with its session");
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.restart();
        etcd
    })
    .await
    .expect("restart etcd");

    let before = eventually("etcd to answer again", || async { board.logbook(job.id).await.ok() }).await;
    let late_write = storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), "late")).await;
    assert!(matches!(late_write, Err(StorageError::ClaimLost(_))), "fenced-off logbook write: {late_write:?}");
    let late_consume = claim.consume(Outcome::Success, None).await;
    assert!(matches!(late_consume, Err(Error::ClaimLost { .. })), "fenced-off consume: {late_consume:?}");
    assert_eq!(board.logbook(job.id).await.expect("read logbook"), before, "fenced-off writes changed nothing");

    let next = connect(&endpoint, &prefix, "next", 4).await;
    let resumed =
        eventually("the job to come back", || async { next.claim_next(&FlowFilter::any()).await.ok().flatten() }).await;
    assert_eq!((resumed.id(), resumed.job().claims), (job.id, 2));
    let done = resumed.consume(Outcome::Success, None).await.expect("the next owner finishes it");
    assert_eq!(done.outcome, Some(Outcome::Success));
    next.close().await.expect("close");
    drop(etcd);
}

/// `quarantine_after = 0` means "never quarantine" (as on the embedded board),
/// not "quarantine at the first claim".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_after_zero_never_quarantines() {
    let endpoint = shared_endpoint().await;
    let mut config = EtcdConfig::new(vec![endpoint], BoardConfig::new("patient"));
    config.prefix = unique_prefix("no-quarantine");
    config.board.quarantine_after = 0;
    let board = EtcdBoard::connect(config).await.expect("connect");
    let job = board.post(NewJob::new("flaky", Map::new())).await.expect("post");
    for round in 1..=7 {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next").expect("still claimable");
        assert_eq!((claim.id(), claim.job().claims), (job.id, round));
        claim.abandon().await.expect("abandon");
    }
    let claim = board.claim(job.id).await.expect("claim by id");
    claim.consume(Outcome::Success, None).await.expect("consume");
    board.close().await.expect("close");
}

/// The retention purge removes finished jobs (consumed, trashed, cancelled)
/// with their logbooks and idempotency keys, and leaves live jobs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_finished_jobs_with_their_logbooks() {
    let endpoint = shared_endpoint().await;
    let mut config = EtcdConfig::new(vec![endpoint], BoardConfig::new("purger"));
    config.prefix = unique_prefix("purge");
    config.board.retention = Duration::ZERO;
    let board = EtcdBoard::connect(config).await.expect("connect");
    let keyed = NewJob { idempotency_key: Some("once".into()), ..NewJob::new("work", Map::new()) };
    let consumed = board.post(keyed.clone()).await.expect("post");
    let trashed = board.post(NewJob::new("work", Map::new())).await.expect("post");
    let cancelled = board.post(NewJob::new("work", Map::new())).await.expect("post");
    let waiting = board.post(NewJob::new("work", Map::new())).await.expect("post");
    let held = board.post(NewJob::new("work", Map::new())).await.expect("post");

    let claim = board.claim(consumed.id).await.expect("claim");
    claim.storage().save_book(&LogBook::new(consumed.id, "work")).await.expect("logbook");
    claim.consume(Outcome::Success, None).await.expect("consume");
    board.claim(trashed.id).await.expect("claim").trash("bad input").await.expect("trash");
    board.request_cancel(cancelled.id).await.expect("cancel");
    let _held = board.claim(held.id).await.expect("claim");
    // Finish times are in milliseconds: let the clock move past them.
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert_eq!(board.purge_expired().await.expect("purge"), 3);
    for gone in [consumed.id, trashed.id, cancelled.id] {
        assert!(matches!(board.get(gone).await, Err(Error::NotFound(id)) if id == gone), "job {gone} was not purged");
        assert_eq!(board.logbook(gone).await.expect("logbook"), None, "logbook of {gone} was not purged");
    }
    assert_eq!(board.get(waiting.id).await.expect("get").state, JobState::Unclaimed);
    assert_eq!(board.get(held.id).await.expect("get").state, JobState::Claimed);
    assert_eq!(board.purge_expired().await.expect("second purge"), 0, "nothing left to purge");
    let again = board.post(keyed).await.expect("post with the purged key");
    assert_ne!(again.id, consumed.id, "the purged job's idempotency key is free again");
    board.close().await.expect("close");
}

/// A board dropped without `close` (with its claims) is a crashed conductor:
/// it must stop renewing its lease, so etcd releases its jobs one TTL later,
/// instead of a keep-alive task holding them for the life of the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_board_stops_renewing_and_its_jobs_come_back() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("dropped");
    let dropped = connect(&endpoint, &prefix, "dropped", 2).await;
    let job = dropped.post(NewJob::new("work", Map::new())).await.expect("post");
    let claim = dropped.claim(job.id).await.expect("claim");
    drop(claim);
    drop(dropped);

    let survivor = connect(&endpoint, &prefix, "survivor", 2).await;
    let resumed = eventually("the dropped board's job to come back", || async {
        survivor.claim_next(&FlowFilter::any()).await.expect("claim_next")
    })
    .await;
    assert_eq!((resumed.id(), resumed.job().claims), (job.id, 2));
    resumed.consume(Outcome::Success, None).await.expect("consume");
    survivor.close().await.expect("close");
}

/// Requests that can be saved are not sent: a filtered claim ranges the
/// all-flows queue once (not once per flow) when the head holds its jobs, or
/// when the whole queue holds none; on a job's first claim the logbook is
/// known to be empty until written; a later claim reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_claim_and_first_logbook_load_save_requests() {
    // An etcd of its own: the counters must see this board's requests only.
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("the etcd starter panicked");
    let endpoint = etcd.endpoint();
    let board = connect(&endpoint, &unique_prefix("saved-requests"), "counted", 10).await;
    let filter = FlowFilter::flows(vec!["provision-cluster".into(), "chain".into()]);
    let ranges = || tests::etcd::metrics::kv_requests(&endpoint, "Range");
    // A claim is one read (the queue around its head, a Txn of two ranges) and one write.
    let requests = || ranges() + tests::etcd::metrics::kv_requests(&endpoint, "Txn");

    let job = board.post(NewJob::new("chain", Map::new())).await.expect("post");
    let before = requests();
    let claim = board.claim_next(&filter).await.expect("claim_next").expect("the chain job is claimable");
    assert_eq!((claim.id(), claim.job().claims), (job.id, 1));
    assert_eq!(requests() - before, 2, "a filtered claim with its job at the head reads once (and claims)");

    let before = ranges();
    let storage = claim.storage();
    let flow = FlowDetail::new(uuid::Uuid::new_v4(), "chain");
    assert_eq!(storage.load_flow(job.id, flow.id).await.expect("load_flow"), None);
    assert_eq!(storage.load_book(job.id).await.expect("load_book"), None);
    assert_eq!(ranges() - before, 0, "a first claim's logbook is known to be empty");
    storage.save_flow(job.id, &flow).await.expect("save_flow");
    let before = ranges();
    assert_eq!(claim.storage().load_flow(job.id, flow.id).await.expect("load_flow"), Some(flow.clone()));
    assert_eq!(ranges() - before, 1, "after a write the logbook is read");

    let before = ranges();
    assert!(board.claim_next(&filter).await.expect("claim_next").is_none());
    assert_eq!(ranges() - before, 1, "an empty queue is one range, not one per flow");

    claim.abandon().await.expect("abandon");
    let again = board.claim_next(&filter).await.expect("claim_next").expect("the abandoned job is claimable");
    assert_eq!(again.job().claims, 2);
    let before = ranges();
    assert_eq!(again.storage().load_flow(job.id, flow.id).await.expect("load_flow"), Some(flow));
    assert_eq!(ranges() - before, 1, "a second claim reads the logbook");
    again.consume(Outcome::Success, None).await.expect("consume");
    board.close().await.expect("close");
}
