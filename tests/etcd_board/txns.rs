//! etcd Txns per job, counted by etcd itself: the write counts ARCHITECTURE.md
//! states as invariants. A 3-task linear job run by the engine on its pick's
//! storage, as the conductor's job runner does: post 1, the pick none, the
//! engine's first write (flow and first task RUNNING) in the claim's Txn 1,
//! each step boundary (one task's SUCCESS with the next one's RUNNING) 1, the
//! last write (the last task's SUCCESS, the flow's SUCCESS) in the consume's
//! Txn 1: 5 in all, the floor under the write-ahead rule.

use flows::{task_fn, Engine, Flow, FlowState};
use jobboard::{FlowFilter, JobBoard, JobState, NewJob, Outcome};
use serde_json::{json, Map};
use tests::etcd::metrics::writes;
use tests::etcd::{unique_prefix, EtcdProcess};

use super::connect;

fn noop(name: &str) -> flows::TaskSpec {
    task_fn(name, |_| async { Ok(json!(null)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_task_linear_job_costs_five_txns() {
    // An etcd of its own: the counters must see this board's requests only.
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start).await.expect("the etcd starter panicked");
    let endpoint = etcd.endpoint();
    let board = connect(&endpoint, &unique_prefix("txns-per-job"), "counted", 10).await;
    // Write Txns, counted as etcd's raft proposals: a pick's read of the queue is a Txn of reads.
    let txns = || writes(&endpoint);

    let start = txns();
    let posted = board.post(NewJob::new("chain", Map::new())).await.expect("post");
    assert_eq!(txns() - start, 1, "a post is one Txn");

    let before = txns();
    let pick = board.pick_next(&FlowFilter::any()).await.expect("pick_next").expect("the job is claimable");
    assert_eq!(txns() - before, 0, "a pick writes nothing");

    let flow = Flow::linear("chain").add(noop("step-1")).add(noop("step-2")).add(noop("step-3"));
    let mut engine =
        Engine::builder(flow).storage(pick.storage(), posted.id, posted.id).build().await.expect("the engine builds");
    assert_eq!(txns() - before, 0, "building an engine for a first claim writes nothing");
    let outcome = engine.run().await.expect("the flow runs");
    assert_eq!(outcome.state, FlowState::Success);
    assert_eq!(txns() - before, 4, "one Txn per engine write: the first with the claim, the last with the consume");
    let claim = pick.claim().await.expect("the first write claimed the job");
    assert!(claim.is_consumed(), "the last logbook write did not consume the job");

    let before = txns();
    let job = claim.consume(Outcome::Success, None).await.expect("consume");
    assert_eq!(txns() - before, 0, "the job was already consumed: no Txn");
    assert_eq!((job.state, job.outcome), (JobState::Complete, Some(Outcome::Success)));
    assert_eq!(
        txns() - start,
        5,
        "a 3-task linear job: post, 3 steps, the first with the claim, the last with the consume"
    );

    let stored = board.get(posted.id).await.expect("get");
    assert_eq!((stored.state, stored.outcome), (JobState::Complete, Some(Outcome::Success)));
    let book = board.logbook(posted.id).await.expect("logbook").expect("the job has a logbook");
    let flow = &book.flows[&posted.id];
    assert_eq!(flow.state, FlowState::Success);
    assert!(flow.atoms.values().all(|a| a.state == flows::AtomState::Success), "{flow:?}");
    board.close().await.expect("close");
}
