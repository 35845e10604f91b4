//! Batched writes: how many logbook writes a run makes and what each holds,
//! and that batching never breaks write-ahead (a task runs only once its
//! RUNNING and its inputs' SUCCESS are recorded; listeners hear only what is
//! recorded; a finished task is recorded before the engine waits on another).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use super::{engine_on, ok, Hooked};
use crate::{task_fn, AtomEvent, AtomState, Engine, Flow, FlowDetail, FlowState, Listener, MemoryStorage, Storage};

/// Every write of a run, each as a list like `["flow RUNNING", "a RUNNING"]`.
type WriteLog = Arc<Mutex<Vec<Vec<String>>>>;

/// Memory storage that logs every write.
fn logged() -> (Arc<Hooked>, WriteLog) {
    let writes: WriteLog = Arc::default();
    let log = writes.clone();
    let storage = Hooked::new(move |changes| {
        let mut entry: Vec<String> = changes.flow.map(|f| format!("flow {}", f.state)).into_iter().collect();
        entry.extend(changes.atoms.iter().map(|a| format!("{} {}", a.name, a.state)));
        log.lock().expect("lock").push(entry);
        Ok(())
    });
    (storage, writes)
}

async fn run_logged(flow: Flow, concurrency: usize) -> (FlowState, Vec<Vec<String>>) {
    let (storage, writes) = logged();
    let mut engine = Engine::builder(flow)
        .storage(storage, Uuid::new_v4(), Uuid::new_v4())
        .max_concurrency(concurrency)
        .build()
        .await
        .expect("builds");
    assert!(writes.lock().expect("lock").is_empty(), "building an engine for a fresh flow writes nothing");
    let outcome = engine.run().await.expect("runs");
    let writes = writes.lock().expect("lock").clone();
    (outcome.state, writes)
}

#[tokio::test]
async fn a_linear_step_costs_one_write() {
    for concurrency in [1, 4] {
        let flow = Flow::linear("f").add(ok("a")).add(ok("b")).add(ok("c"));
        let (state, writes) = run_logged(flow, concurrency).await;
        assert_eq!(state, FlowState::Success);
        assert_eq!(
            writes,
            [
                vec!["flow RUNNING", "a RUNNING"],
                vec!["a SUCCESS", "b RUNNING"],
                vec!["b SUCCESS", "c RUNNING"],
                vec!["flow SUCCESS", "c SUCCESS"],
            ],
            "concurrency {concurrency}"
        );
    }
}

#[tokio::test]
async fn a_fan_out_starts_with_one_write_and_joins_with_one_more() {
    let flow = Flow::linear("f")
        .add(ok("a"))
        .add(Flow::unordered("fan").add(ok("b1")).add(ok("b2")).add(ok("b3")))
        .add(ok("c"));
    let (state, writes) = run_logged(flow, 4).await;
    assert_eq!(state, FlowState::Success);
    assert_eq!(
        writes,
        [
            vec!["flow RUNNING", "a RUNNING"],
            vec!["a SUCCESS", "b1 RUNNING", "b2 RUNNING", "b3 RUNNING"],
            vec!["b1 SUCCESS", "b2 SUCCESS", "b3 SUCCESS", "c RUNNING"],
            vec!["flow SUCCESS", "c SUCCESS"],
        ]
    );
}

/// What a probe task saw in the logbook when it ran: its own state, and its producer's state and result.
type Seen = (String, AtomState, Option<AtomState>, Option<Value>);

#[tokio::test]
async fn a_task_runs_only_once_its_running_and_its_inputs_are_recorded() {
    for concurrency in [1, 3] {
        let storage = Arc::new(MemoryStorage::new());
        let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let probe = |name: &'static str, input: Option<&'static str>| {
            let (storage, seen) = (storage.clone(), seen.clone());
            let spec = task_fn(name, move |_| {
                let (storage, seen) = (storage.clone(), seen.clone());
                async move {
                    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow recorded");
                    let producer = input.map(|p| &stored.atoms[p]);
                    let entry = (
                        name.to_owned(),
                        stored.atoms[name].state,
                        producer.map(|p| p.state),
                        producer.and_then(|p| p.result.clone()),
                    );
                    seen.lock().expect("lock").push(entry);
                    Ok(json!(name))
                }
            });
            match input {
                Some(p) => spec.requires([p]).provides(name),
                None => spec.provides(name),
            }
        };
        let flow = Flow::graph("g").add(probe("a", None)).add(probe("b", Some("a"))).add(probe("c", Some("b")));
        let mut engine = engine_on(flow, storage.clone(), book, flow_id, concurrency).await;
        assert_eq!(engine.run().await.expect("runs").state, FlowState::Success);
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            [
                ("a".to_owned(), AtomState::Running, None, None),
                ("b".to_owned(), AtomState::Running, Some(AtomState::Success), Some(json!("a"))),
                ("c".to_owned(), AtomState::Running, Some(AtomState::Success), Some(json!("b"))),
            ],
            "concurrency {concurrency}"
        );
    }
}

/// Notes, at each announcement, what the logbook holds for the atom (or flow) announced.
struct RecordedCheck {
    storage: Arc<MemoryStorage>,
    book: Uuid,
    flow_id: Uuid,
    /// (what, the state announced, the state recorded at that moment).
    heard: Mutex<Vec<(String, String, Option<String>)>>,
}

impl RecordedCheck {
    fn stored(&self) -> Option<FlowDetail> {
        // MemoryStorage never awaits, so polling it to completion here is immediate.
        futures::executor::block_on(self.storage.load_flow(self.book, self.flow_id)).expect("load")
    }
}

impl Listener for RecordedCheck {
    fn on_flow(&self, _flow: &str, _from: FlowState, to: FlowState) {
        let stored = self.stored().map(|f| f.state.to_string());
        self.heard.lock().expect("lock").push(("flow".into(), to.to_string(), stored));
    }
    fn on_atom(&self, event: &AtomEvent<'_>) {
        let stored = self.stored().and_then(|f| f.atoms.get(event.atom).map(|a| a.state.to_string()));
        self.heard.lock().expect("lock").push((event.atom.to_owned(), event.to.to_string(), stored));
    }
}

#[tokio::test]
async fn listeners_hear_only_what_is_recorded() {
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let check = Arc::new(RecordedCheck { storage: storage.clone(), book, flow_id, heard: Mutex::default() });
    let flow = Flow::linear("f").add(ok("a")).add(ok("b")).add(super::boom("c"));
    let mut engine = Engine::builder(flow)
        .storage(storage.clone(), book, flow_id)
        .listener(check.clone())
        .build()
        .await
        .expect("builds");
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Reverted);
    let heard = check.heard.lock().expect("lock").clone();
    // Flow: RUNNING, REVERTING, REVERTED; a and b: RUNNING, SUCCESS, REVERTING, REVERTED;
    // c: RUNNING, FAILURE, REVERTING, REVERTED.
    assert_eq!(heard.len(), 3 + 12, "{heard:#?}");
    for (i, (what, to, stored)) in heard.iter().enumerate() {
        // Recorded as announced, or already moved on to a state announced later in the same
        // write (c's FAILURE goes out with its REVERTING): never ahead of the logbook.
        let later = |state: &String| heard[i..].iter().any(|(w, t, _)| w == what && t == state);
        let ok = stored.as_ref().is_some_and(|s| s == to || later(s));
        assert!(ok, "{what} {to} announced while the logbook holds {stored:?}: {heard:#?}");
    }
}

#[tokio::test]
async fn a_finished_task_is_recorded_before_the_engine_waits_on_a_slow_one() {
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let watcher = storage.clone();
    // `slow` finishes only once the logbook shows `fast` SUCCESS (or gives up after 5 s).
    let slow = task_fn("slow", move |_| {
        let storage = watcher.clone();
        async move {
            for _ in 0..500 {
                let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
                if stored.atoms.get("fast").map(|a| a.state) == Some(AtomState::Success) {
                    return Ok(json!("saw fast recorded"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(json!("fast never recorded"))
        }
    });
    let flow = Flow::unordered("f").add(ok("fast")).add(slow.provides("slow"));
    let mut engine = engine_on(flow, storage.clone(), book, flow_id, 2).await;
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.results.get("slow"), Some(&json!("saw fast recorded")));
}
