//! The board epoch: no claim from before an etcd restore is accepted after it.

use std::time::Duration;

use flows::{FlowDetail, LogBook, StorageError};
use jobboard::{Error, FlowFilter, JobBoard, NewJob, Outcome};
use serde_json::json;
use tests::etcd::proxy::TcpProxy;
use tests::etcd::{unique_prefix, EtcdProcess};

use super::{connect, eventually, shared_endpoint, store, PATIENCE};

async fn epoch(endpoint: &str, prefix: &str) -> Option<String> {
    let mut client = etcd_client::Client::connect([endpoint], None).await.expect("etcd client");
    let resp = client.get(format!("{prefix}m/epoch"), None).await.expect("read the epoch");
    resp.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_epoch_voids_every_claim_of_the_old_one_even_one_that_did_not_see_it_move() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("epoch-moved");
    let proxy = TcpProxy::start(endpoint.trim_start_matches("http://")).await;
    let old = connect(&proxy.endpoint(), &prefix, "old-epoch", 10).await;
    assert_eq!(epoch(&endpoint, &prefix).await.as_deref(), Some("1"), "the first session creates epoch 1");
    let job = old.post(NewJob::new("resize", store(json!({})))).await.expect("post");
    let claim = old.claim(job.id).await.expect("claim");
    let storage = claim.storage();
    storage.save_book(&LogBook::new(job.id, "resize")).await.expect("owner writes before the restore");
    let before = old.logbook(job.id).await.expect("logbook");

    // The operator's last step of a restore, while this session is cut off and cannot see it.
    proxy.cut();
    let mut client = etcd_client::Client::connect([endpoint.as_str()], None).await.expect("etcd client");
    client.put(format!("{prefix}m/epoch"), "2", None).await.expect("bump the epoch");
    proxy.heal();
    let write = storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), "stale")).await;
    assert!(matches!(write, Err(StorageError::ClaimLost(_))), "a write of the old epoch is refused: {write:?}");
    let lost = old.session_lost();
    tokio::time::timeout(PATIENCE, lost.cancelled()).await.expect("the old session fences itself");
    assert!(matches!(claim.consume(Outcome::Success, None).await, Err(Error::ClaimLost { .. })));

    let new = connect(&endpoint, &prefix, "new-epoch", 10).await;
    assert_eq!(new.logbook(job.id).await.expect("logbook"), before, "nothing of the old epoch landed");
    let again = eventually("the job to be claimable in the new epoch", || async {
        new.claim_next(&FlowFilter::any()).await.expect("claim_next").filter(|c| c.id() == job.id)
    })
    .await;
    again.consume(Outcome::Success, None).await.expect("a claim of the new epoch writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_snapshot_is_detected_and_moves_the_epoch() {
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("start etcd");
    let endpoint = etcd.endpoint();
    let prefix = unique_prefix("epoch-restore");
    let board = connect(&endpoint, &prefix, "before-restore", 10).await;
    let job = board.post(NewJob::new("resize", store(json!({})))).await.expect("post");
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = dir.path().join("board.db");
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.save_snapshot(&snapshot);
        (etcd, snapshot)
    });
    let (mut etcd, snapshot) = etcd.await.expect("snapshot");
    // After the snapshot: a claim and logbook writes that the restore will undo.
    let claim = board.claim(job.id).await.expect("claim");
    let storage = claim.storage();
    storage.save_book(&LogBook::new(job.id, "resize")).await.expect("write after the snapshot");
    for n in 0..20 {
        storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), format!("f{n}"))).await.expect("write");
    }

    let etcd_back = tokio::task::spawn_blocking(move || {
        etcd.restore_snapshot(&snapshot);
        etcd
    });
    let _etcd = etcd_back.await.expect("restore");
    let lost = board.session_lost();
    tokio::time::timeout(PATIENCE, lost.cancelled()).await.expect("the session sees etcd went back and fences itself");
    assert_eq!(epoch(&endpoint, &prefix).await.as_deref(), Some("2"), "the board moved to a new epoch");
    let write = storage.save_flow(job.id, &FlowDetail::new(uuid::Uuid::new_v4(), "stale")).await;
    assert!(matches!(write, Err(StorageError::ClaimLost(_))), "{write:?}");

    let after = connect(&endpoint, &prefix, "after-restore", 10).await;
    let job_now = after.get(job.id).await.expect("the job as the snapshot has it");
    assert_eq!(job_now.claims, 0, "the restore undid the claim: {job_now:?}");
    let again = after.claim(job.id).await.expect("claimable in the new epoch");
    again.consume(Outcome::Success, None).await.expect("and finished");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
