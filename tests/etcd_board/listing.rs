//! etcd-only listing: an orphan (claimed, its owner key gone unseen, not yet
//! re-queued) lists as UNCLAIMED, and a CLAIMED or UNCLAIMED listing costs a
//! few requests however many finished jobs the board keeps.

use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use jobboard::etcd::EtcdBoard;
use jobboard::{FlowFilter, Job, JobBoard, JobId, JobState, ListQuery, NewJob, Outcome};
use serde_json::Map;
use tests::board_suite::{assert_filtered_listings_agree, assert_filtered_listings_agree_at};
use tests::etcd::metrics::kv_requests;
use tests::etcd::{unique_prefix, EtcdProcess};

use super::connect;

/// Finished jobs kept on the board: the old scan read every one of them per page.
const FINISHED: usize = 300;

/// Posts and finishes `n` jobs, a few at a time.
pub(super) async fn post_finished(board: &EtcdBoard, n: usize) {
    stream::iter(0..n)
        .map(|_| async move {
            let job = board.post(NewJob::new("work", Map::new())).await?;
            board.claim(job.id).await?.consume(Outcome::Success, None).await
        })
        .buffer_unordered(8)
        .try_collect::<Vec<Job>>()
        .await
        .expect("posting and finishing jobs failed");
}

/// Makes a claimed job an orphan the way an unseen lease expiry would: its
/// owner key goes, its state record (still CLAIMED) and `held` key stay. The
/// state is rewritten in the same txn so that the boards' watches take the
/// delete for an owner's own write and do not re-queue the job.
pub(super) async fn orphan(endpoint: &str, prefix: &str, id: JobId) {
    let mut raw = etcd_client::Client::connect([endpoint], None).await.expect("raw client");
    let state_key = format!("{prefix}m/state/{id}");
    let state = raw.get(state_key.as_str(), None).await.expect("get state").take_kvs().pop().expect("no state record");
    let txn = etcd_client::Txn::new().and_then([
        etcd_client::TxnOp::delete(format!("{prefix}m/owner/{id}"), None),
        etcd_client::TxnOp::put(state_key, state.value().to_vec(), None),
    ]);
    raw.txn(txn).await.expect("orphaning txn");
}

/// Every id of one (small) page of `query`.
async fn ids(board: &EtcdBoard, query: &ListQuery) -> Vec<JobId> {
    board.list(query).await.expect("list").jobs.iter().map(|j| j.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_state_listings_cost_the_page_not_the_board() {
    // An etcd of its own: the counters must see this board's requests only.
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("the etcd starter panicked");
    let endpoint = etcd.endpoint();
    let prefix = unique_prefix("list-open");
    let board = connect(&endpoint, &prefix, "lister", 10).await;

    let early = board.post(NewJob::new("other", Map::new())).await.expect("post");
    post_finished(&board, FINISHED).await;
    let mut new = NewJob::new("work", Map::new());
    new.priority = 5;
    let urgent = board.post(new).await.expect("post");
    let claimed: Vec<_> =
        [board.post(NewJob::new("work", Map::new())).await, board.post(NewJob::new("other", Map::new())).await]
            .into_iter()
            .map(|posted| posted.expect("post").id)
            .collect();
    let mut live = Vec::new();
    for id in &claimed {
        live.push(board.claim(*id).await.expect("claim"));
    }
    let lost = board.post(NewJob::new("other", Map::new())).await.expect("post");
    let _orphaned_claim = board.claim(lost.id).await.expect("claim");
    orphan(&endpoint, &prefix, lost.id).await;
    let late = board.post(NewJob::new("work", Map::new())).await.expect("post");

    let unclaimed = ListQuery { state: Some(JobState::Unclaimed), limit: 10, ..ListQuery::default() };
    let claimed_query = ListQuery { state: Some(JobState::Claimed), limit: 10, ..ListQuery::default() };
    let requests = || kv_requests(&endpoint, "Range") + kv_requests(&endpoint, "Txn");

    let before = requests();
    assert_eq!(ids(&board, &claimed_query).await, claimed, "the orphan is not CLAIMED");
    let claimed_cost = requests() - before;
    let before = requests();
    assert_eq!(ids(&board, &unclaimed).await, vec![early.id, urgent.id, lost.id, late.id], "in creation order");
    let unclaimed_cost = requests() - before;
    let other = ListQuery { flow: Some("other".into()), ..unclaimed.clone() };
    let before = requests();
    assert_eq!(ids(&board, &other).await, vec![early.id, lost.id], "the orphan's flow comes from its record");
    let filtered_cost = requests() - before;
    println!(
        "list over {FINISHED} finished jobs, limit 10: CLAIMED {claimed_cost}, UNCLAIMED {unclaimed_cost}, \
         UNCLAIMED of one flow {filtered_cost} Range+Txn requests"
    );
    for (what, cost) in [("CLAIMED", claimed_cost), ("UNCLAIMED", unclaimed_cost), ("flow's UNCLAIMED", filtered_cost)]
    {
        assert!(cost <= 4, "listing {what} jobs took {cost} requests over {FINISHED} finished jobs");
    }

    let orphan_job = board.get(lost.id).await.expect("get");
    assert_eq!((orphan_job.state, orphan_job.owner, orphan_job.claims), (JobState::Unclaimed, None, 1));
    let shared: Arc<dyn JobBoard> = Arc::new(board.clone());
    assert_filtered_listings_agree(&shared, &["work", "other"]).await;

    // The orphan is claimable, and the listings follow.
    let reclaimed = board.claim(lost.id).await.expect("the orphan is claimable");
    assert_eq!(ids(&board, &claimed_query).await, vec![claimed[0], claimed[1], lost.id]);
    assert_eq!(ids(&board, &unclaimed).await, vec![early.id, urgent.id, late.id]);
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next").is_some());
    drop((live, reclaimed));
    board.close().await.expect("close");
}

/// A backlog past the queue index's limit: UNCLAIMED listings scan instead, and
/// still page through exactly the unclaimed jobs, in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_backlog_lists_in_order_past_the_queue_index_limit() {
    const BACKLOG: usize = 2_010;
    let endpoint = super::shared_endpoint().await;
    let prefix = unique_prefix("list-backlog");
    let board = connect(&endpoint, &prefix, "lister", 10).await;
    let mut posted: Vec<JobId> = stream::iter(0..BACKLOG)
        .map(|n| {
            let board = &board;
            async move {
                let flow = if n % 2 == 0 { "even" } else { "odd" };
                board.post(NewJob::new(flow, Map::new())).await.map(|job| job.id)
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await
        .expect("posting the backlog failed");
    posted.sort();
    let claimed: Vec<JobId> = posted.iter().step_by(500).copied().collect();
    let mut claims = Vec::new();
    for id in &claimed {
        claims.push(board.claim(*id).await.expect("claim"));
    }
    let unclaimed: Vec<JobId> = posted.iter().filter(|id| !claimed.contains(id)).copied().collect();
    let mut listed = Vec::new();
    let mut query = ListQuery { state: Some(JobState::Unclaimed), limit: 700, ..ListQuery::default() };
    loop {
        let page = board.list(&query).await.expect("list");
        listed.extend(page.jobs.iter().map(|job| job.id));
        match page.next {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert_eq!(listed, unclaimed, "UNCLAIMED past the index limit");
    let odd =
        ListQuery { state: Some(JobState::Unclaimed), flow: Some("odd".into()), limit: 5, ..ListQuery::default() };
    let first_odd: Vec<JobId> = {
        let jobs = board.list(&ListQuery { flow: Some("odd".into()), limit: 10, ..ListQuery::default() }).await;
        jobs.expect("list").jobs.iter().filter(|j| j.state == JobState::Unclaimed).map(|j| j.id).take(5).collect()
    };
    assert_eq!(ids(&board, &odd).await, first_odd, "one flow's UNCLAIMED past the index limit");
    drop(claims);
    board.close().await.expect("close");
}

/// More claimed jobs than one txn may read (etcd allows 128 operations; a listing
/// reads 2 or 3 per job): pages that cross the split still agree with the full listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_larger_than_one_txn_agree_with_the_full_listing() {
    let endpoint = super::shared_endpoint().await;
    let prefix = unique_prefix("list-wide");
    let board = Arc::new(connect(&endpoint, &prefix, "lister", 10).await);
    let mut claims = Vec::new();
    for n in 0..140 {
        let job = board.post(NewJob::new(if n % 3 == 0 { "a" } else { "b" }, Map::new())).await.expect("post");
        if n < 130 {
            claims.push(board.claim(job.id).await.expect("claim"));
        }
    }
    let dyn_board: Arc<dyn JobBoard> = board.clone();
    assert_filtered_listings_agree_at(&dyn_board, &["a"], &[0, 61, 131]).await;
    drop(claims);
    board.close().await.expect("close");
}
