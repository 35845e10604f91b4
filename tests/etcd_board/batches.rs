//! Group commit on etcd: writes of many jobs that arrive together share one
//! Txn, and each still gets exactly the answer its own Txn would have got.
//! Counted by etcd itself, on an etcd of each test's own.

use flows::{task_fn, Engine, Flow, FlowState};
use futures::future::join_all;
use jobboard::{FlowFilter, JobBoard, JobState, NewJob, Outcome};
use serde_json::{json, Map};
use tests::etcd::metrics::writes;
use tests::etcd::{unique_prefix, EtcdProcess};

use super::connect;

const JOBS: usize = 40;

async fn own_etcd() -> EtcdProcess {
    tokio::task::spawn_blocking(EtcdProcess::start).await.expect("the etcd starter panicked")
}

fn three_steps() -> Flow {
    let noop = |name: &str| task_fn(name, |_| async { Ok(json!(null)) });
    Flow::linear("chain").add(noop("step-1")).add(noop("step-2")).add(noop("step-3"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_share_txns_and_a_cancelled_pick_alone_loses() {
    let etcd = own_etcd().await;
    let endpoint = etcd.endpoint();
    let board = connect(&endpoint, &unique_prefix("batches"), "batching", 10).await;
    // Write Txns, counted as etcd's raft proposals (a batch is one; a claimer's reads are none).
    let txns = || writes(&endpoint);

    let start = txns();
    let posts = join_all((0..JOBS).map(|_| board.post(NewJob::new("chain", Map::new())))).await;
    let posted: Vec<_> = posts.into_iter().map(|job| job.expect("post")).collect();
    let post_txns = txns() - start;
    assert!(post_txns < JOBS as u64 / 4, "{JOBS} concurrent posts took {post_txns} Txns: they were not batched");

    let mut picks = Vec::new();
    while let Some(pick) = board.pick_next(&FlowFilter::any()).await.expect("pick_next") {
        picks.push(pick);
    }
    // Every job at once: picks not yet written hold their entries, and the rest stay in reach.
    assert_eq!(picks.len(), JOBS, "every posted job is picked once");
    // Cancelled after its pick: its first write (the claim) must fail, alone, in whatever batch it lands.
    let cancelled = picks[JOBS / 2].job().id;
    board.request_cancel(cancelled).await.expect("cancel an unclaimed job");
    let before = txns();
    let runs = picks.iter().map(|pick| async move {
        let id = pick.job().id;
        let run = async {
            let mut engine = Engine::builder(three_steps()).storage(pick.storage(), id, id).build().await?;
            engine.run().await
        };
        (id, run.await.map(|outcome| outcome.state))
    });
    let outcomes = join_all(runs).await;
    let run_txns = txns() - before;
    for (id, outcome) in &outcomes {
        match outcome {
            Ok(state) => {
                assert_ne!(*id, cancelled, "the cancelled job ran");
                assert_eq!(*state, FlowState::Success, "job {id}");
            }
            Err(e) => assert_eq!(*id, cancelled, "job {id} failed: {e}"),
        }
    }
    assert_eq!(outcomes.iter().filter(|(_, o)| o.is_err()).count(), 1, "only the cancelled job fails");
    // Alone, each job's run costs 4 Txns (txns.rs).
    assert!(run_txns < (JOBS as u64 - 1) * 4 / 2, "{JOBS} concurrent runs took {run_txns} Txns: not batched");

    for job in &posted {
        let stored = board.get(job.id).await.expect("get");
        if job.id == cancelled {
            assert_eq!((stored.state, stored.outcome), (JobState::Complete, Some(Outcome::Cancelled)));
            assert!(board.logbook(job.id).await.expect("logbook").is_none(), "the lost claim wrote a logbook");
        } else {
            assert_eq!(stored.state, JobState::Complete, "job {}", job.id);
            let book = board.logbook(job.id).await.expect("logbook").expect("a logbook");
            assert_eq!(book.flows[&job.id].state, FlowState::Success, "job {}", job.id);
        }
    }
    board.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_racing_with_one_idempotency_key_get_one_job_from_a_refused_batch() {
    let etcd = own_etcd().await;
    let board = connect(&etcd.endpoint(), &unique_prefix("batch-idem"), "batching", 10).await;
    // One key written by many members of a batch: etcd refuses it whole
    // (`duplicate key`), and the members go again one by one.
    let posts = (0..16).map(|i| {
        let mut job = NewJob::new("chain", Map::new());
        job.idempotency_key = Some(if i % 2 == 0 { "the-same".into() } else { format!("own-{i}") });
        board.post(job)
    });
    let posted: Vec<_> = join_all(posts).await.into_iter().map(|job| job.expect("post")).collect();
    let same: std::collections::HashSet<_> = posted.iter().step_by(2).map(|job| job.id).collect();
    assert_eq!(same.len(), 1, "posts with one idempotency key made {} jobs", same.len());
    let own: std::collections::HashSet<_> = posted.iter().skip(1).step_by(2).map(|job| job.id).collect();
    assert_eq!(own.len(), 8, "posts with their own keys made one job each");
    assert!(!own.iter().any(|id| same.contains(id)));
    let page = board.list(&jobboard::ListQuery::default()).await.expect("list");
    assert_eq!(page.jobs.len(), 9, "exactly nine jobs exist: {:?}", page.jobs.iter().map(|j| j.id).collect::<Vec<_>>());
    board.close().await.expect("close");
}

/// A member whose compares fail (a claim that ended) fails alone; the rest of its batch lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_an_ended_claim_fails_alone_in_its_batch() {
    let etcd = own_etcd().await;
    let board = connect(&etcd.endpoint(), &unique_prefix("batch-fence"), "batching", 10).await;
    for _ in 0..8 {
        board.post(NewJob::new("chain", Map::new())).await.expect("post");
    }
    let mut claims = Vec::new();
    while let Some(claim) = board.claim_next(&FlowFilter::any()).await.expect("claim_next") {
        claims.push(claim);
    }
    assert_eq!(claims.len(), 8);
    let storages: Vec<_> = claims.iter().map(|claim| (claim.id(), claim.storage())).collect();
    // One claim ends (given back to the queue); its storage, taken before, is now fenced off.
    let ended = claims.remove(3);
    let fenced = ended.id();
    ended.abandon().await.expect("abandon");

    let writes = storages.iter().map(|(id, storage)| async move {
        let mut book = flows::LogBook::new(*id, "book");
        book.created_at = 1;
        storage.save_book(&book).await
    });
    let results = join_all(writes).await;
    for ((id, _), result) in storages.iter().zip(&results) {
        match result {
            Err(flows::StorageError::ClaimLost(_)) => assert_eq!(*id, fenced, "job {id} lost its claim"),
            Err(e) => panic!("job {id}: {e}"),
            Ok(()) => {
                assert_ne!(*id, fenced, "the ended claim still wrote");
                assert!(board.logbook(*id).await.expect("logbook").is_some(), "job {id}: no logbook");
            }
        }
    }
    assert!(board.logbook(fenced).await.expect("logbook").is_none(), "the ended claim wrote a logbook");
    assert_eq!(board.get(fenced).await.expect("get").state, JobState::Unclaimed);
    board.close().await.expect("close");
}
