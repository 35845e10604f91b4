//! Resume from a logbook: after a suspend, after a crash mid-run (RUNNING
//! atoms re-run, at-least-once), and in the middle of a revert.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use uuid::Uuid;

use super::{check, engine_on, ok, run_on};
use crate::{
    task_fn, AtomDetail, AtomKind, AtomState, EngineControl, Failure, Flow, FlowDetail, FlowState, MemoryStorage,
    Storage, TaskSpec,
};

/// A task that counts its executions and returns `value`.
fn counted(name: &str, value: Value, count: &Arc<AtomicUsize>) -> TaskSpec {
    let count = count.clone();
    task_fn(name, move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        let value = value.clone();
        async move { Ok(value) }
    })
}

fn chain(counts: &[Arc<AtomicUsize>; 4], suspend: Option<Arc<Mutex<Option<EngineControl>>>>) -> Flow {
    let b_count = counts[1].clone();
    let b = task_fn("b", move |_| {
        b_count.fetch_add(1, Ordering::SeqCst);
        if let Some(c) = suspend.as_ref().and_then(|s| s.lock().expect("lock").clone()) {
            c.suspend();
        }
        async { Ok(json!(2)) }
    })
    .provides("b_out");
    Flow::linear("chain")
        .add(counted("a", json!(1), &counts[0]).provides("a_out"))
        .add(b)
        .add(counted("c", json!(3), &counts[2]).requires(["a_out", "b_out"]).provides("c_out"))
        .add(counted("d", json!(4), &counts[3]).provides("d_out"))
}

#[tokio::test]
async fn suspend_then_resume_reruns_nothing_finished() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let slot: Arc<Mutex<Option<EngineControl>>> = Arc::default();

    let mut engine = engine_on(chain(&counts, Some(slot.clone())), storage.clone(), book, flow_id, 1).await;
    *slot.lock().expect("lock") = Some(engine.control());
    let first = engine.run().await.expect("runs");
    assert_eq!(first.state, FlowState::Suspended);
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.state, FlowState::Suspended);
    assert_eq!(stored.atoms["b"].state, AtomState::Success);
    assert!(!stored.atoms.contains_key("c"), "c never started");

    let ran = run_on(chain(&counts, None), json!({}), 1, storage, book, flow_id).await;
    check(&ran, FlowState::Success, &["c SUCCESS", "d SUCCESS"]);
    let runs: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(runs, [1, 1, 1, 1]);
    assert_eq!(ran.outcome.results["a_out"], json!(1), "saved results feed consumers and the outcome");
    assert_eq!(ran.outcome.results["c_out"], json!(3));
}

/// Writes a flow detail as a crashed process would have left it.
async fn crashed(
    storage: &MemoryStorage,
    state: FlowState,
    atoms: &[(&str, AtomState, Option<Value>)],
) -> (Uuid, Uuid) {
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let mut detail = FlowDetail::new(flow_id, "chain");
    detail.state = state;
    if state == FlowState::Reverting {
        detail.meta.insert("revert_all".into(), json!(true));
        detail.meta.insert("failure".into(), serde_json::to_value(Failure::task("c failed")).expect("json"));
    }
    storage.save_flow(book, &detail).await.expect("save flow");
    for (name, state, result) in atoms {
        let mut atom = AtomDetail::new(*name, AtomKind::Task);
        atom.state = *state;
        atom.executions = 1;
        atom.result = result.clone();
        if *state == AtomState::Failure {
            atom.failure = Some(Failure::task(format!("{name} failed")));
        }
        storage.save_atom(book, flow_id, &atom).await.expect("save atom");
    }
    (book, flow_id)
}

#[tokio::test]
async fn a_crash_mid_run_resumes_with_the_running_atom_run_again() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(
        &storage,
        FlowState::Running,
        &[
            ("a", AtomState::Success, Some(json!(1))),
            ("b", AtomState::Success, Some(json!(2))),
            ("c", AtomState::Running, None),
        ],
    )
    .await;
    let ran = run_on(chain(&counts, None), json!({}), 2, storage.clone(), book, flow_id).await;
    check(&ran, FlowState::Success, &["c PENDING", "c SUCCESS", "d SUCCESS"]);
    let runs: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(runs, [0, 0, 1, 1], "a and b are not run again");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.atoms["c"].executions, 2, "at-least-once: the interrupted execute counts");
}

#[tokio::test]
async fn a_crash_mid_revert_finishes_the_revert() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(
        &storage,
        FlowState::Reverting,
        &[
            ("a", AtomState::Success, Some(json!(1))),
            ("b", AtomState::Success, Some(json!(2))),
            ("c", AtomState::Reverted, None),
        ],
    )
    .await;
    let ran = run_on(chain(&counts, None), json!({}), 1, storage, book, flow_id).await;
    check(&ran, FlowState::Reverted, &["b REVERTED", "a REVERTED"]);
    assert_eq!(ran.outcome.failure.map(|f| f.message), Some("c failed".to_owned()));
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 0));
}

#[tokio::test]
async fn a_failure_recorded_before_the_crash_is_resolved_on_resume() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(
        &storage,
        FlowState::Running,
        &[("a", AtomState::Success, Some(json!(1))), ("b", AtomState::Failure, None)],
    )
    .await;
    let ran = run_on(chain(&counts, None), json!({}), 1, storage, book, flow_id).await;
    check(&ran, FlowState::Reverted, &["b REVERTED", "a REVERTED"]);
    assert_eq!(ran.outcome.failure.map(|f| f.message), Some("b failed".to_owned()));
}

#[tokio::test]
async fn a_reverted_flow_runs_again_from_scratch_and_a_successful_one_does_nothing() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(&storage, FlowState::Reverted, &[("a", AtomState::Reverted, Some(json!(1)))]).await;
    let ran = run_on(chain(&counts, None), json!({}), 1, storage.clone(), book, flow_id).await;
    // The reset is a checked, announced REVERTED -> PENDING transition.
    check(&ran, FlowState::Success, &["a PENDING", "a SUCCESS", "b SUCCESS", "c SUCCESS", "d SUCCESS"]);
    let again = run_on(chain(&counts, None), json!({}), 1, storage, book, flow_id).await;
    check(&again, FlowState::Success, &[]);
    assert_eq!(again.outcome.results["d_out"], json!(4));
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 1));
}

#[tokio::test]
async fn a_crash_during_a_retry_finishes_reverting_the_subflow_and_retries() {
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let mut detail = FlowDetail::new(flow_id, "f");
    detail.state = FlowState::Running;
    storage.save_flow(book, &detail).await.expect("save");
    let mut r = AtomDetail::new("r", AtomKind::Retry);
    r.state = AtomState::Success;
    r.intention = crate::Intention::Retry;
    r.result = Some(json!(1));
    r.attempts.push(crate::Attempt { value: json!(1), failures: Default::default() });
    storage.save_atom(book, flow_id, &r).await.expect("save");
    let mut t = AtomDetail::new("t", AtomKind::Task);
    t.state = AtomState::Failure;
    t.failure = Some(Failure::task("first attempt failed"));
    storage.save_atom(book, flow_id, &t).await.expect("save");

    let flow = Flow::linear("f").retry(crate::Retry::times(3).named("r").provides("attempt")).add(ok("t"));
    let ran = run_on(flow, json!({}), 1, storage, book, flow_id).await;
    check(&ran, FlowState::Success, &["t REVERTED", "r RETRYING", "t PENDING", "r SUCCESS", "t SUCCESS"]);
}

#[tokio::test(start_paused = true)]
async fn a_failure_while_suspending_is_reverted_by_the_next_run() {
    let slot: Arc<Mutex<Option<EngineControl>>> = Arc::default();
    let control = slot.clone();
    let flow = || {
        Flow::unordered("u")
            .add(task_fn("slow_fail", |_| async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err(Failure::task("slow_fail failed"))
            }))
            .add(task_fn("suspender", {
                let control = control.clone();
                move |_| {
                    if let Some(c) = control.lock().expect("lock").clone() {
                        c.suspend();
                    }
                    async { Ok(json!("ok")) }
                }
            }))
            .add(ok("late"))
    };
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let mut engine = engine_on(flow(), storage.clone(), book, flow_id, 2).await;
    *slot.lock().expect("lock") = Some(engine.control());
    let first = engine.run().await.expect("runs");
    assert_eq!(first.state, FlowState::Suspended);
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.atoms["slow_fail"].state, AtomState::Failure);
    assert!(!stored.atoms.contains_key("late"), "nothing new started while suspending");

    *slot.lock().expect("lock") = None;
    let ran = run_on(flow(), json!({}), 2, storage, book, flow_id).await;
    assert_eq!(ran.outcome.state, FlowState::Reverted);
    let mut trace = ran.recorder.trace();
    trace.sort();
    assert_eq!(trace, ["slow_fail REVERTED", "suspender REVERTED"]);
    assert_eq!(ran.outcome.failure.map(|f| f.message), Some("slow_fail failed".to_owned()));
}

#[tokio::test]
async fn resume_matches_atoms_by_name_and_ignores_atoms_the_definition_lost() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(
        &storage,
        FlowState::Suspended,
        &[("a", AtomState::Success, Some(json!(1))), ("gone", AtomState::Success, Some(json!("old")))],
    )
    .await;
    let ran = run_on(chain(&counts, None), json!({}), 1, storage.clone(), book, flow_id).await;
    check(&ran, FlowState::Success, &["b SUCCESS", "c SUCCESS", "d SUCCESS"]);
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.atoms["gone"].result, Some(json!("old")), "left alone");
    assert!(!ran.outcome.results.contains_key("gone"));
}

#[tokio::test]
async fn the_same_engine_continues_after_a_suspend_inside_nested_subflows() {
    for concurrency in [1, 3] {
        let counts: [Arc<AtomicUsize>; 4] = Default::default();
        let slot: Arc<Mutex<Option<EngineControl>>> = Arc::default();
        let suspender = slot.clone();
        let b = task_fn("b", move |_| {
            if let Some(c) = suspender.lock().expect("lock").take() {
                c.suspend();
            }
            async { Ok(json!(2)) }
        });
        // Subflow entries and exits are joins: derived again by every run, each move checked.
        let flow =
            Flow::linear("f").add(Flow::unordered("first").add(counted("a", json!(1), &counts[0])).add(b)).add(
                Flow::linear("second")
                    .add(counted("c", json!(3), &counts[2]))
                    .add(Flow::unordered("third").add(counted("d", json!(4), &counts[3]))),
            );
        let mut engine = crate::Engine::builder(flow).max_concurrency(concurrency).build().await.expect("builds");
        *slot.lock().expect("lock") = Some(engine.control());
        assert_eq!(engine.run().await.expect("runs").state, FlowState::Suspended);
        assert_eq!(counts[2].load(Ordering::SeqCst), 0, "nothing after the suspend started");
        let outcome = engine.run().await.expect("runs again");
        assert_eq!(outcome.state, FlowState::Success);
        let runs: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, [1, 0, 1, 1], "a, c and d ran once each (b is not counted)");
        assert_eq!(outcome.results.len(), 0, "nothing here provides a name");
    }
}

#[tokio::test]
async fn a_revert_failure_recorded_before_the_crash_ends_the_flow_in_failure() {
    let counts: [Arc<AtomicUsize>; 4] = Default::default();
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = crashed(&storage, FlowState::Reverting, &[("a", AtomState::Success, Some(json!(1)))]).await;
    let mut b = AtomDetail::new("b", AtomKind::Task);
    b.state = AtomState::RevertFailure;
    b.failure = Some(Failure::task("b failed"));
    b.revert_failure = Some(Failure::task("undo of b failed"));
    storage.save_atom(book, flow_id, &b).await.expect("save atom");

    let ran = run_on(chain(&counts, None), json!({}), 1, storage.clone(), book, flow_id).await;
    // Not hidden by finishing the revert as if b were undone: a is left as it is.
    check(&ran, FlowState::Failure, &[]);
    let failure = ran.outcome.failure.expect("failure");
    assert_eq!(failure.message, "undo of b failed");
    assert_eq!(failure.cause.map(|c| c.message), Some("c failed".to_owned()), "the revert's cause is kept");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.state, FlowState::Failure);
    assert_eq!(stored.atoms["a"].state, AtomState::Success);
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 0), "nothing ran");
}
