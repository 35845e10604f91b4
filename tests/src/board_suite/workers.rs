//! Remote workers on the board: every session sees the others' workers by watch, a
//! removed worker leaves every set, and a session that ends takes its workers along.

use std::collections::BTreeMap;

use jobboard::{WorkerRecord, WorkerSet, WorkerTask};
use tokio::sync::watch;

use super::{within, BoardFactory};

fn record(conductor: &str, id: &str) -> WorkerRecord {
    WorkerRecord {
        id: id.to_owned(),
        conductor: conductor.to_owned(),
        address: "127.0.0.1:1".to_owned(),
        tasks: vec![WorkerTask { name: "billing.charge".to_owned(), can_revert: true, default_timeout_ms: 0 }],
        slots: 4,
        labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
        sdk: "test".to_owned(),
        since: 1,
    }
}

/// Waits until the set satisfies `wanted` (watch wake-ups only, bounded by `within`).
async fn until(set: &mut watch::Receiver<WorkerSet>, what: &str, wanted: impl Fn(&WorkerSet) -> bool) {
    within(what, async {
        loop {
            if wanted(&set.borrow_and_update()) {
                return;
            }
            set.changed().await.expect("the worker set closed");
        }
    })
    .await;
}

/// Workers recorded by one session appear in another's set and leave it when removed
/// or when the recording session ends.
pub async fn workers_are_seen_by_every_session_and_leave_with_theirs(f: &impl BoardFactory) {
    let a = f.session("cond-a").await;
    let b = f.session("cond-b").await;
    let mut seen_by_b = b.worker_set().await.expect("worker set");
    a.put_worker(&record("cond-a", "w1")).await.expect("put w1");
    a.put_worker(&record("cond-a", "w2")).await.expect("put w2");
    until(&mut seen_by_b, "both workers of a seen by b", |s| s.len() == 2).await;
    let w1 = seen_by_b.borrow()[&("cond-a".to_owned(), "w1".to_owned())].clone();
    assert_eq!(w1, record("cond-a", "w1"), "the record travels whole");
    a.remove_worker("cond-a", "w2").await.expect("remove w2");
    until(&mut seen_by_b, "w2 gone", |s| s.len() == 1).await;
    let mut seen_by_a = a.worker_set().await.expect("worker set");
    assert_eq!(seen_by_a.borrow_and_update().len(), 1, "a fresh set starts complete");
    b.put_worker(&record("cond-b", "w1")).await.expect("the same worker id on another conductor");
    until(&mut seen_by_a, "b's w1 seen by a", |s| s.len() == 2).await;
    f.kill_session("cond-a").await;
    until(&mut seen_by_b, "a's workers gone with its session", |s| {
        s.keys().all(|(conductor, _)| conductor == "cond-b") && s.len() == 1
    })
    .await;
    assert!(b.put_worker(&record("cond/b", "w9")).await.is_err(), "a '/' in a name is refused");
}
