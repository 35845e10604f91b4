//! Write-ahead under a failing logbook: a refused write stops the run before
//! anything acts on it, nothing more is decided or written while stopping, and
//! a later run of the same engine continues from what the logbook holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::{engine_on, ok, Hooked};
use crate::{task_fn, AtomDetail, AtomKind, AtomState, Engine, Error, Failure, Flow, FlowState, Storage, StorageError};

/// Memory storages that refuse some writes, the way a failing disk or an
/// unreachable etcd would.
struct Flaky;

impl Flaky {
    /// Refuses a batch holding an atom its `refuse` rule picks.
    fn refusing(mut refuse: impl FnMut(&AtomDetail) -> bool + Send + 'static) -> Arc<Hooked> {
        Hooked::new(move |changes| match changes.atoms.iter().find(|atom| refuse(atom)) {
            Some(atom) => Err(disk_gone(&atom.name)),
            None => Ok(()),
        })
    }

    /// Accepts every atom write but refuses to record the flow entering `state`.
    fn refusing_flow(state: FlowState) -> Arc<Hooked> {
        Hooked::new(move |changes| match changes.flow {
            Some(detail) if detail.state == state => Err(disk_gone(&detail.state.to_string())),
            _ => Ok(()),
        })
    }

    /// Refuses every atom write after the first `budget` ones.
    fn with_budget(budget: usize) -> Arc<Hooked> {
        let mut left = budget;
        Self::refusing(move |_| {
            if left == 0 {
                return true;
            }
            left -= 1;
            false
        })
    }
}

fn disk_gone(what: &str) -> StorageError {
    StorageError::Unavailable { message: format!("disk gone writing {what}"), source: None }
}

/// The disk is back: every write succeeds from now on.
fn heal(storage: &Hooked) {
    storage.set_hook(|_| Ok(()));
}

/// A task recording each call in `calls`.
fn counted(name: &'static str, calls: &Arc<Mutex<Vec<&'static str>>>) -> crate::TaskSpec {
    let calls = calls.clone();
    task_fn(name, move |_| {
        calls.lock().expect("lock").push(name);
        async move { Ok(json!(name)) }
    })
}

#[tokio::test]
async fn a_storage_error_stops_the_run_before_unrecorded_work() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    // Writes: [a RUNNING], [a SUCCESS, b RUNNING] fit the budget of 3 atom writes;
    // [b SUCCESS, c RUNNING] does not, so c must never start.
    let storage = Flaky::with_budget(3);
    let flow = Flow::linear("f").add(counted("a", &calls)).add(counted("b", &calls)).add(counted("c", &calls));
    let mut engine =
        Engine::builder(flow).storage(storage, Uuid::new_v4(), Uuid::new_v4()).build().await.expect("builds");
    let err = engine.run().await.expect_err("storage failure surfaces");
    assert!(matches!(err, Error::Storage(StorageError::Unavailable { .. })), "{err:?}");
    assert_eq!(*calls.lock().expect("lock"), ["a", "b"]);
}

#[tokio::test]
async fn a_run_after_a_storage_error_continues_from_what_was_recorded() {
    for concurrency in [1, 2] {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let storage = Flaky::with_budget(3);
        let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
        let flow = Flow::linear("f").add(counted("a", &calls)).add(counted("b", &calls)).add(counted("c", &calls));
        let mut engine = engine_on(flow, storage.clone(), book, flow_id, concurrency).await;
        engine.run().await.expect_err("storage failure surfaces");
        heal(&storage);
        // b's SUCCESS was never recorded, so it is not trusted: b runs again (at-least-once).
        let outcome = engine.run().await.expect("runs once the disk is back");
        assert_eq!(outcome.state, FlowState::Success);
        assert_eq!(*calls.lock().expect("lock"), ["a", "b", "b", "c"]);
        let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
        assert_eq!(stored.state, FlowState::Success);
        assert_eq!(stored.atoms["b"].state, AtomState::Success, "b's result is recorded, not only in memory");
        assert_eq!(stored.atoms["b"].executions, 2);
        assert_eq!(stored.atoms["a"].executions, 1);
    }
}

#[tokio::test]
async fn a_job_finishing_while_the_run_stops_decides_nothing_more() {
    let reverts = Arc::new(AtomicUsize::new(0));
    let counted_reverts = reverts.clone();
    // slow fails only after x's SUCCESS write has been refused, so its failure reaches
    // an engine that is already stopping.
    let slow = task_fn("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(Failure::task("slow failed"))
    })
    .revert_fn(move |_| {
        counted_reverts.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let mut refused = false;
    let storage = Flaky::refusing(move |atom| {
        let refuse = !refused && atom.name == "x" && atom.state == AtomState::Success;
        refused |= refuse;
        refuse
    });
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let flow = Flow::unordered("f").add(slow).add(ok("x"));
    let mut engine = engine_on(flow, storage.clone(), book, flow_id, 2).await;
    let err = engine.run().await.expect_err("storage failure surfaces");
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(
        stored.atoms["slow"].state,
        AtomState::Running,
        "nothing is written after an error, not even the outcome of a job that was in flight"
    );
    assert_eq!(stored.state, FlowState::Running, "no revert was started on top of the error");
    assert!(!stored.meta.contains_key("revert_all"));
    assert_eq!(reverts.load(Ordering::SeqCst), 0);

    // The next run resolves the recorded failure: everything that ran is reverted.
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    assert_eq!(outcome.failure.map(|f| f.message), Some("slow failed".to_owned()));
    assert_eq!(reverts.load(Ordering::SeqCst), 1);
}

#[test]
fn an_illegal_transition_is_refused_and_changes_nothing() {
    let mut detail = AtomDetail::new("a", AtomKind::Task);
    let err = crate::engine::apply_transition(&mut detail, AtomState::Success).expect_err("refused");
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err:?}");
    assert_eq!((detail.state, detail.version), (AtomState::Pending, 0));
}

#[tokio::test]
async fn a_refused_first_write_runs_nothing_and_a_later_run_starts_afresh() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let storage = Flaky::refusing(|_| true);
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let flow = Flow::linear("f").add(counted("a", &calls)).add(counted("b", &calls));
    let mut engine =
        Engine::builder(flow).storage(storage.clone(), book, flow_id).build().await.expect("builds without writing");
    let err = engine.run().await.expect_err("storage failure surfaces");
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert!(calls.lock().expect("lock").is_empty(), "a's RUNNING was not recorded, so a never ran");
    assert!(storage.load_flow(book, flow_id).await.expect("load").is_none(), "nothing written");

    heal(&storage);
    let outcome = engine.run().await.expect("runs once the disk is back");
    assert_eq!(outcome.state, FlowState::Success);
    assert_eq!(*calls.lock().expect("lock"), ["a", "b"]);
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!((stored.atoms["a"].executions, stored.atoms["b"].executions), (1, 1));
}

#[tokio::test]
async fn a_refused_suspend_stops_the_run_and_records_nothing_more() {
    let slot: Arc<Mutex<Option<crate::EngineControl>>> = Arc::default();
    let control = slot.clone();
    let slow = task_fn("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(json!("slow"))
    });
    let trigger = task_fn("trigger", move |_| {
        if let Some(c) = control.lock().expect("lock").as_ref() {
            c.suspend();
        }
        async { Ok(json!("trigger")) }
    });
    let storage = Flaky::refusing_flow(FlowState::Suspending);
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let flow = Flow::unordered("f").add(slow).add(trigger);
    let mut engine = engine_on(flow, storage.clone(), book, flow_id, 2).await;
    *slot.lock().expect("lock") = Some(engine.control());
    let err = engine.run().await.expect_err("the refused SUSPENDING surfaces");
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    // trigger's SUCCESS was written before the loop waited for slow; then SUSPENDING was
    // refused, and slow finished after that error, so its outcome is not written: it
    // runs again next time.
    assert_eq!(stored.state, FlowState::Running);
    assert_eq!(stored.atoms["trigger"].state, AtomState::Success);
    assert_eq!(stored.atoms["slow"].state, AtomState::Running);
}
