//! etcd-only listing over a wide time range: `list` ranges id-time windows from the
//! board's list floor (`P floor`), so these cases put jobs years, days and milliseconds
//! apart (ids carry their creation time), page through them with tokens inside gaps, and
//! check that the floor never hides a job: it starts at the oldest job, a post from a
//! clock behind it takes an id at it, and the purge raises it only past purged jobs.

use std::sync::Arc;
use std::time::Duration;

use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, JobBoard, JobId, JobState, ListQuery, NewJob, Outcome};
use serde_json::Map;
use tests::board_suite::assert_filtered_listings_agree_at;
use tests::etcd::unique_prefix;

use super::{connect, shared_endpoint};

const DAY_MS: u64 = 86_400_000;

/// An id created at `ms` (version 7 layout), told apart from others of that ms by `n`.
fn id_at(ms: u64, n: u64) -> JobId {
    JobId::from_u128((u128::from(ms) << 80) | (0x7u128 << 76) | (0x8u128 << 60) | u128::from(n))
}

fn ms_of(id: JobId) -> u64 {
    (id.as_u128() >> 80) as u64
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The spec and state records of a finished job of each kind, as a board writes them.
async fn templates(endpoint: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let prefix = unique_prefix("list-templates");
    let board = connect(endpoint, &prefix, "templater", 10).await;
    let mut raw = etcd_client::Client::connect([endpoint], None).await.expect("raw client");
    let mut records = Vec::new();
    for (flow, trash) in [("work", false), ("other", false), ("work", true)] {
        let job = board.post(NewJob::new(flow, Map::new())).await.expect("post");
        let claim = board.claim(job.id).await.expect("claim");
        if trash {
            claim.trash("template").await.expect("trash");
        } else {
            claim.consume(Outcome::Success, None).await.expect("consume");
        }
        let mut value = Vec::new();
        for key in [format!("{prefix}spec/{}", job.id), format!("{prefix}m/state/{}", job.id)] {
            value.push(raw.get(key, None).await.expect("get").take_kvs().pop().expect("a record").value().to_vec());
        }
        let state = value.pop().expect("the state record");
        records.push((value.pop().expect("the spec record"), state));
    }
    board.close().await.expect("close");
    records
}

/// Writes finished jobs at `ids` under `prefix`, around any board, cycling through `templates`.
async fn write_jobs(endpoint: &str, prefix: &str, ids: &[JobId], templates: &[(Vec<u8>, Vec<u8>)]) {
    let mut raw = etcd_client::Client::connect([endpoint], None).await.expect("raw client");
    for (i, id) in ids.iter().enumerate() {
        let (spec, state) = &templates[i % templates.len()];
        let txn = etcd_client::Txn::new().and_then([
            etcd_client::TxnOp::put(format!("{prefix}spec/{id}"), spec.clone(), None),
            etcd_client::TxnOp::put(format!("{prefix}m/state/{id}"), state.clone(), None),
        ]);
        raw.txn(txn).await.expect("writing a job");
    }
}

async fn floor(endpoint: &str, prefix: &str) -> Option<JobId> {
    let mut raw = etcd_client::Client::connect([endpoint], None).await.expect("raw client");
    let kv = raw.get(format!("{prefix}floor"), None).await.expect("get floor").take_kvs().pop()?;
    Some(String::from_utf8_lossy(kv.value()).parse().expect("the floor is an id"))
}

/// Every id `query` lists, page by page.
async fn all_pages(board: &EtcdBoard, mut query: ListQuery) -> Vec<JobId> {
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let page = board.list(&query).await.expect("list");
        ids.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => query.page_token = Some(next),
            None => return ids,
        }
    }
    panic!("paging did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_through_jobs_years_and_milliseconds_apart() {
    let endpoint = shared_endpoint().await;
    let templates = templates(&endpoint).await;
    let prefix = unique_prefix("list-wide");
    let now = now_ms();
    let start = now - 3 * 365 * DAY_MS;
    let mut ids = Vec::new();
    // Several in one millisecond, a run of consecutive ones, then days, a year, and an
    // hour ago, each cluster denser than a first window aims at, with empty time between.
    ids.extend((0..7).map(|n| id_at(start, n)));
    ids.extend((1..=5).map(|ms| id_at(start + ms, 0)));
    ids.extend((0..30).map(|i| id_at(start + DAY_MS + i * 10, 0)));
    ids.extend((0..10).map(|i| id_at(start + 400 * DAY_MS + i * 3_600_000, 0)));
    ids.extend((0..40).map(|i| id_at(now - 3_600_000 + i, 0)));
    write_jobs(&endpoint, &prefix, &ids, &templates).await;
    // `write_jobs` cycles through the templates: every third one is a trashed job.
    let mut trashed: Vec<JobId> = ids.iter().copied().skip(2).step_by(3).collect();
    trashed.sort();
    let mut other: Vec<JobId> = ids.iter().copied().skip(1).step_by(3).collect();
    other.sort();

    let board = connect(&endpoint, &prefix, "lister", 10).await;
    assert_eq!(floor(&endpoint, &prefix).await.map(ms_of), Some(start), "the floor starts at the oldest job");
    let mut posted = Vec::new();
    for _ in 0..5 {
        posted.push(board.post(NewJob::new("work", Map::new())).await.expect("post").id);
    }
    ids.extend(&posted);
    ids.sort();

    for limit in [1, 7, 1000] {
        let got = all_pages(&board, ListQuery { limit, ..ListQuery::default() }).await;
        assert_eq!(got, ids, "every job, in id order, pages of {limit}");
    }
    // Page tokens inside empty time and inside a cluster.
    for token in
        [id_at(start + 2 * DAY_MS, 0), id_at(start + 3, 1), id_at(now - 3_600_000 + 20, 5), id_at(start - 1, 0)]
    {
        let query = ListQuery { limit: 4, page_token: Some(token.to_string()), ..ListQuery::default() };
        let expected: Vec<JobId> = ids.iter().copied().filter(|id| *id > token).collect();
        assert_eq!(all_pages(&board, query).await, expected, "the jobs after {token}");
    }
    let shared: Arc<dyn JobBoard> = Arc::new(board.clone());
    assert_filtered_listings_agree_at(&shared, &["work", "other"], &[3, 1000]).await;
    let query = ListQuery { state: Some(JobState::Trashed), limit: 2, ..ListQuery::default() };
    assert_eq!(all_pages(&board, query).await, trashed, "the trashed jobs, pages of 2");
    let query = ListQuery { flow: Some("other".into()), limit: 3, ..ListQuery::default() };
    assert_eq!(all_pages(&board, query).await, other, "the jobs of flow other, pages of 3");
    board.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_behind_the_floor_posts_at_the_floor_and_is_listed() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("list-skew");
    let board = connect(&endpoint, &prefix, "poster", 10).await;
    let first = board.post(NewJob::new("work", Map::new())).await.expect("post");
    // As if a conductor whose clock runs 10 s ahead had raised the floor.
    let ahead = id_at(now_ms() + 10_000, 0);
    let ahead_floor = JobId::from_u128(ahead.as_u128() & !((1u128 << 80) - 1));
    let mut raw = etcd_client::Client::connect([endpoint.as_str()], None).await.expect("raw client");
    raw.put(format!("{prefix}floor"), ahead_floor.to_string(), None).await.expect("put floor");
    let behind = board.post(NewJob::new("work", Map::new())).await.expect("a post behind the floor still lands");
    assert!(ms_of(behind.id) >= ms_of(ahead_floor), "{} took an id below the floor {ahead_floor}", behind.id);
    let listed = all_pages(&board, ListQuery { limit: 1, ..ListQuery::default() }).await;
    assert_eq!(listed.last(), Some(&behind.id), "the job posted at the floor is listed (after the others)");
    // A missing floor is made again by the next post, which is then listed too.
    raw.delete(format!("{prefix}floor"), None).await.expect("delete floor");
    let again = board.post(NewJob::new("work", Map::new())).await.expect("a post without a floor");
    assert!(floor(&endpoint, &prefix).await.is_some(), "the post recreated the floor");
    let listed = all_pages(&board, ListQuery::default()).await;
    assert!(listed.contains(&again.id) && listed.contains(&first.id), "{listed:?}");
    board.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_raises_the_floor_past_purged_jobs_only() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("list-purge");
    let mut config = EtcdConfig::new(vec![endpoint.clone()], BoardConfig::new("purger"));
    config.prefix = prefix.clone();
    config.board.retention = Duration::ZERO;
    let board = EtcdBoard::connect(config).await.expect("connect");
    let old = board.post(NewJob::new("work", Map::new())).await.expect("post");
    board.claim(old.id).await.expect("claim").consume(Outcome::Success, None).await.expect("consume");
    let open = board.post(NewJob::new("work", Map::new())).await.expect("post");
    let before = floor(&endpoint, &prefix).await.expect("a floor");
    assert!(before <= old.id);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(board.purge_expired().await.expect("purge"), 1);
    let raised = floor(&endpoint, &prefix).await.expect("a floor");
    assert_eq!(ms_of(raised), ms_of(open.id), "raised to the oldest job left");
    assert!(raised < open.id);
    assert_eq!(all_pages(&board, ListQuery::default()).await, vec![open.id]);
    // With nothing left, the floor moves up to the purger's clock; later posts are above it.
    board.request_cancel(open.id).await.expect("cancel");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // (Ids run ahead of this clock for a while after another case's post at a floor ahead: never below the job.)
    let purged_at = now_ms();
    assert_eq!(board.purge_expired().await.expect("purge"), 1);
    assert!(floor(&endpoint, &prefix).await.expect("a floor") >= id_at(purged_at, 0).min(open.id));
    let late = board.post(NewJob::new("work", Map::new())).await.expect("post");
    assert_eq!(all_pages(&board, ListQuery::default()).await, vec![late.id]);
    board.close().await.expect("close");
}
