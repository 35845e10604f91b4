//! etcd-only: CLAIMED and UNCLAIMED listings take their candidates from what the board
//! watch keeps (queue view, held and owner keys), not from ranges over `P m/queue/`,
//! `P m/fqueue/<flow>/`, `P m/held/` and `P m/owner/`, which hold a deleted key for every
//! job claimed since etcd's last compaction (etcd 3.4 walks them all). The lister talks
//! to etcd through a recording proxy: its requests must name none of those prefixes'
//! range ends, and its listings must still be exact, after a compaction cut its watch too.

use std::time::Duration;

use jobboard::etcd::EtcdBoard;
use jobboard::{JobBoard, JobId, JobState, ListQuery, NewJob};
use serde_json::Map;
use tests::etcd::proxy::TcpProxy;
use tests::etcd::unique_prefix;

use super::listing::{orphan, post_finished};
use super::{connect, eventually, shared_endpoint, PATIENCE};

/// Jobs claimed and finished before the listings: the deleted index keys the listings must not walk.
const FINISHED: usize = 200;

/// The range ends a listing that ranged the index prefixes would send.
fn index_range_ends(prefix: &str, flows: &[&str]) -> Vec<String> {
    let mut ends: Vec<String> = ["queue", "held", "owner"].iter().map(|kind| format!("{prefix}m/{kind}0")).collect();
    let hex = |flow: &str| flow.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    ends.extend(flows.iter().map(|flow| format!("{prefix}m/fqueue/{}0", hex(flow))));
    ends
}

fn contains(sent: &[u8], needle: &str) -> bool {
    sent.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// The ids `query` lists (every page).
async fn listed(board: &EtcdBoard, mut query: ListQuery) -> Vec<JobId> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let page = board.list(&query).await.unwrap_or_else(|e| panic!("list({query:?}) failed: {e}"));
        ids.extend(page.jobs.iter().map(|job| job.id));
        match page.next {
            Some(next) => query.page_token = Some(next),
            None => return ids,
        }
    }
    panic!("paging {query:?} did not end");
}

fn query(state: JobState, flow: Option<&str>, limit: usize) -> ListQuery {
    ListQuery { state: Some(state), flow: flow.map(str::to_string), limit, page_token: None }
}

/// The board's open jobs, as the test made them.
struct Open {
    unclaimed: Vec<JobId>,
    claimed: Vec<JobId>,
    /// Each open job's flow.
    flows: Vec<(JobId, &'static str)>,
}

impl Open {
    fn of(&self, ids: &[JobId], flow: &str) -> Vec<JobId> {
        ids.iter().copied().filter(|id| self.flows.iter().any(|(i, f)| i == id && *f == flow)).collect()
    }
}

/// Lists CLAIMED and UNCLAIMED (all flows and flow "b", in pages of 2 and whole) and
/// checks them against `open`; returns what the lister sent meanwhile.
async fn check_listings(lister: &EtcdBoard, proxy: &TcpProxy, open: &Open, when: &str) -> Vec<u8> {
    proxy.record();
    for limit in [2, 100] {
        for (state, expected) in [(JobState::Unclaimed, &open.unclaimed), (JobState::Claimed, &open.claimed)] {
            let got = listed(lister, query(state, None, limit)).await;
            assert_eq!(&got, expected, "{state:?} jobs in pages of {limit}, {when}");
            let got = listed(lister, query(state, Some("b"), limit)).await;
            assert_eq!(got, open.of(expected, "b"), "{state:?} jobs of flow b in pages of {limit}, {when}");
        }
    }
    proxy.recorded()
}

/// Posts a job of `flow`, noting its flow.
async fn post(writer: &EtcdBoard, flows: &mut Vec<(JobId, &'static str)>, flow: &'static str) -> JobId {
    let id = writer.post(NewJob::new(flow, Map::new())).await.expect("post").id;
    flows.push((id, flow));
    id
}

/// The index prefixes' range ends in `sent`.
fn ranged(sent: &[u8], prefix: &str) -> Vec<String> {
    index_range_ends(prefix, &["a", "b"]).into_iter().filter(|end| contains(sent, end)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_state_listings_do_not_range_the_index_prefixes() {
    let endpoint = shared_endpoint().await;
    let proxy = TcpProxy::start(endpoint.trim_start_matches("http://")).await;
    let prefix = unique_prefix("live-list");
    let lister = connect(&proxy.endpoint(), &prefix, "lister", 10).await;
    let writer = connect(&endpoint, &prefix, "writer", 10).await;
    post_finished(&writer, FINISHED).await;

    let mut flows = Vec::new();
    let mut posted = Vec::new();
    for n in 0..8 {
        let flow = if n % 2 == 0 { "a" } else { "b" };
        posted.push(writer.post(NewJob::new(flow, Map::new())).await.expect("post").id);
        flows.push((posted[n], flow));
    }
    let mut claims = Vec::new();
    for id in [posted[1], posted[2], posted[5], posted[6]] {
        claims.push(writer.claim(id).await.expect("claim"));
    }
    // Released by an unseen lease expiry: held, no owner key, not re-queued yet.
    orphan(&endpoint, &prefix, posted[6]).await;
    let open = Open {
        unclaimed: vec![posted[0], posted[3], posted[4], posted[6], posted[7]],
        claimed: vec![posted[1], posted[2], posted[5]],
        flows,
    };

    let sent = check_listings(&lister, &proxy, &open, "from the watch").await;
    assert!(contains(&sent, &format!("{prefix}m/state/{}", posted[0])), "the recording holds the listings' reads");
    assert_eq!(ranged(&sent, &prefix), Vec::<String>::new(), "the listings ranged index prefixes");

    // The recording would show such a range.
    let mut raw = etcd_client::Client::connect([proxy.endpoint()], None).await.expect("raw client");
    proxy.record();
    let queue = format!("{prefix}m/queue/");
    raw.get(queue, Some(etcd_client::GetOptions::new().with_prefix().with_keys_only())).await.expect("get");
    assert_eq!(ranged(&proxy.recorded(), &prefix), vec![format!("{prefix}m/queue0")]);
    drop(claims);
    lister.close().await.expect("close");
    writer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_stay_exact_across_a_compaction_that_cuts_the_watch() {
    let endpoint = shared_endpoint().await;
    let proxy = TcpProxy::start(endpoint.trim_start_matches("http://")).await;
    let prefix = unique_prefix("live-compact");
    let lister = connect(&proxy.endpoint(), &prefix, "lister", 10).await;
    let writer = connect(&endpoint, &prefix, "writer", 10).await;
    let mut flows = Vec::new();
    let (queued, taken, finished) = (
        post(&writer, &mut flows, "a").await,
        post(&writer, &mut flows, "b").await,
        post(&writer, &mut flows, "b").await,
    );
    let kept = writer.claim(finished).await.expect("claim");
    let sent = check_listings(
        &lister,
        &proxy,
        &Open { unclaimed: vec![queued, taken], claimed: vec![finished], flows: flows.clone() },
        "before the cut",
    )
    .await;
    assert_eq!(ranged(&sent, &prefix), Vec::<String>::new(), "the listings ranged index prefixes");

    // While the lister is cut off: one job claimed, one finished, one posted, one orphaned;
    // then a compaction past everything its watch saw.
    proxy.cut();
    eventually("the cut-off board to lose etcd", || async {
        matches!(lister.get(queued).await, Err(e) if e.is_retryable()).then_some(())
    })
    .await;
    let claim = writer.claim(taken).await.expect("claim");
    kept.consume(jobboard::Outcome::Success, None).await.expect("consume");
    let lost = post(&writer, &mut flows, "a").await;
    let orphaned = writer.claim(lost).await.expect("claim");
    orphan(&endpoint, &prefix, lost).await;
    let late = post(&writer, &mut flows, "b").await;
    let mut raw = etcd_client::Client::connect([endpoint.as_str()], None).await.expect("raw client");
    let revision = raw.get("/", None).await.expect("get").header().expect("header").revision();
    raw.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await.expect("compact");
    proxy.heal();

    let open = Open { unclaimed: vec![queued, lost, late], claimed: vec![taken], flows };
    // At once, while the watch re-lists (from etcd ranges, or from the watch once it has).
    check_listings(&lister, &proxy, &open, "right after the cut healed").await;
    // Then from the re-listed watch.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let sent = check_listings(&lister, &proxy, &open, "after the re-listing").await;
        if ranged(&sent, &prefix).is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the listings still range index prefixes after the re-listing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it goes on following writes.
    let newest = writer.post(NewJob::new("b", Map::new())).await.expect("post").id;
    let unclaimed = listed(&lister, query(JobState::Unclaimed, Some("b"), 0)).await;
    assert_eq!(unclaimed, vec![late, newest], "a job posted after the re-listing");
    drop((claim, orphaned));
    lister.close().await.expect("close");
    writer.close().await.expect("close");
}
