//! Reads a job costs etcd, counted by etcd itself: a pick takes a small job's
//! spec from the queue entry it ranged, and reads a big one's on its own.

use jobboard::{FlowFilter, JobBoard, NewJob};
use serde_json::{json, Map, Value};
use tests::etcd::metrics::kv_requests;
use tests::etcd::{unique_prefix, EtcdProcess};

use super::connect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_takes_a_small_spec_from_its_queue_entry() {
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("the etcd starter panicked");
    let endpoint = etcd.endpoint();
    let board = connect(&endpoint, &unique_prefix("pick-reads"), "reader", 10).await;
    let ranges = || kv_requests(&endpoint, "Range");

    let mut reads = Vec::new();
    for text in ["small".to_string(), "x".repeat(4000)] {
        let mut store = Map::new();
        store.insert("text".into(), Value::String(text));
        store.insert("n".into(), json!(7));
        let mut job = NewJob::new("chain", store.clone());
        job.priority = 3;
        let posted = board.post(job).await.expect("post");
        let before = ranges();
        let pick = board.pick_next(&FlowFilter::any()).await.expect("pick_next").expect("the job is claimable");
        reads.push(ranges() - before);
        let picked = pick.job();
        assert_eq!(picked.id, posted.id);
        assert_eq!((&picked.flow, &picked.store, picked.priority), (&posted.flow, &store, 3), "the picked spec");
        assert_eq!(picked.created_at, posted.created_at);
        drop(pick);
        // Taken off the queue for the next round: the board is left with nothing claimable.
        let claim = board.claim(posted.id).await.expect("claim");
        assert_eq!(claim.job().store, store, "a bare claim's spec");
        claim.consume(jobboard::Outcome::Success, None).await.expect("consume");
    }
    assert_eq!(reads[1], reads[0] + 1, "a big spec is read on its own, a small one comes with its entry: {reads:?}");
    board.close().await.expect("close");
}
