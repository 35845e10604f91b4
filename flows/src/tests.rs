//! Shared helpers for the engine's scenario tests: a recording listener,
//! a memory storage whose writes pass through a hook, tiny task builders and
//! one `check` helper comparing transition traces.

mod batching;
mod compile_errors;
mod final_write;
mod inputs;
mod listeners;
mod lookup;
mod parking;
mod props;
mod resume;
mod retries;
mod scenarios;
mod storage_errors;

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use uuid::Uuid;

use async_trait::async_trait;

use crate::{
    task_fn, AtomEvent, Engine, Failure, Flow, FlowChanges, FlowDetail, FlowState, Listener, LogBook, MemoryStorage,
    RunOutcome, Storage, StorageError, TaskSpec,
};

/// Records every transition as `"<atom> <STATE>"` (flow ones as `"flow <STATE>"`).
#[derive(Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Recorder {
    pub(crate) fn all(&self) -> Vec<String> {
        self.events.lock().expect("recorder lock").clone()
    }

    /// Atom events, without the RUNNING and REVERTING steps (implied by what follows).
    pub(crate) fn trace(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|e| !e.starts_with("flow ") && !e.ends_with(" RUNNING") && !e.ends_with(" REVERTING"))
            .collect()
    }
}

impl Listener for Recorder {
    fn on_flow(&self, _flow: &str, _from: FlowState, to: FlowState) {
        self.events.lock().expect("recorder lock").push(format!("flow {to}"));
    }
    fn on_atom(&self, e: &AtomEvent<'_>) {
        self.events.lock().expect("recorder lock").push(format!("{} {}", e.atom, e.to));
    }
}

/// What a [`Hooked`] storage does with each batch before it is written: `Err` refuses it.
pub(crate) type Hook = Box<dyn FnMut(&FlowChanges<'_>) -> Result<(), StorageError> + Send>;

/// Memory storage whose every `save_changes` is shown to a hook first; a batch
/// the hook refuses writes nothing, as a failed transaction would.
pub(crate) struct Hooked {
    inner: MemoryStorage,
    hook: Mutex<Hook>,
}

impl Hooked {
    pub(crate) fn new(hook: impl FnMut(&FlowChanges<'_>) -> Result<(), StorageError> + Send + 'static) -> Arc<Self> {
        Arc::new(Hooked { inner: MemoryStorage::new(), hook: Mutex::new(Box::new(hook)) })
    }

    /// Replaces the hook (e.g. the disk is back).
    pub(crate) fn set_hook(&self, hook: impl FnMut(&FlowChanges<'_>) -> Result<(), StorageError> + Send + 'static) {
        *self.hook.lock().expect("hook lock") = Box::new(hook);
    }
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked").finish_non_exhaustive()
    }
}

#[async_trait]
impl Storage for Hooked {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.inner.save_book(book).await
    }
    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.inner.load_book(book).await
    }
    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.inner.load_flow(book, flow).await
    }
    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        (self.hook.lock().expect("hook lock"))(&changes)?;
        self.inner.save_changes(book, flow, changes).await
    }
}

/// What a test run leaves behind.
pub(crate) struct Ran {
    pub(crate) outcome: RunOutcome,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) storage: Arc<MemoryStorage>,
    pub(crate) book: Uuid,
    pub(crate) flow_id: Uuid,
}

/// Runs `flow` on a fresh in-memory logbook.
pub(crate) async fn run(flow: Flow, store: Value, concurrency: usize) -> Ran {
    let storage = Arc::new(MemoryStorage::new());
    run_on(flow, store, concurrency, storage, Uuid::new_v4(), Uuid::new_v4()).await
}

/// Runs `flow` against a given logbook (to resume).
pub(crate) async fn run_on(
    flow: Flow,
    store: Value,
    concurrency: usize,
    storage: Arc<MemoryStorage>,
    book: Uuid,
    flow_id: Uuid,
) -> Ran {
    let recorder = Arc::new(Recorder::default());
    let store: Map<String, Value> = store.as_object().cloned().unwrap_or_default();
    let mut engine = Engine::builder(flow)
        .store(store)
        .storage(storage.clone(), book, flow_id)
        .max_concurrency(concurrency)
        .listener(recorder.clone())
        .build()
        .await
        .expect("test flow builds");
    let outcome = engine.run().await.expect("engine runs");
    Ran { outcome, recorder, storage, book, flow_id }
}

/// An engine for `flow` over a given logbook, running `concurrency` atoms at once.
pub(crate) async fn engine_on(
    flow: Flow,
    storage: Arc<dyn Storage>,
    book: Uuid,
    flow_id: Uuid,
    concurrency: usize,
) -> Engine {
    Engine::builder(flow).storage(storage, book, flow_id).max_concurrency(concurrency).build().await.expect("builds")
}

/// Asserts the final state and the (RUNNING/REVERTING-free) atom trace.
#[track_caller]
pub(crate) fn check(ran: &Ran, state: FlowState, trace: &[&str]) {
    assert_eq!(ran.outcome.state, state, "final state; trace: {:#?}", ran.recorder.all());
    let actual = ran.recorder.trace();
    assert_eq!(actual, trace, "atom trace");
}

/// Asserts `first` appears in the trace before `then`.
#[track_caller]
pub(crate) fn assert_before(trace: &[String], first: &str, then: &str) {
    let a = trace.iter().position(|e| e == first).unwrap_or_else(|| panic!("{first:?} not in {trace:#?}"));
    let b = trace.iter().position(|e| e == then).unwrap_or_else(|| panic!("{then:?} not in {trace:#?}"));
    assert!(a < b, "{first:?} should come before {then:?} in {trace:#?}");
}

/// A task returning its own name.
pub(crate) fn ok(name: &str) -> TaskSpec {
    let value = json!(name);
    task_fn(name, move |_| {
        let value = value.clone();
        async move { Ok(value) }
    })
}

/// A task that always fails.
pub(crate) fn boom(name: &str) -> TaskSpec {
    let message = format!("{name} failed");
    task_fn(name, move |_| {
        let message = message.clone();
        async move { Err(Failure::task(message)) }
    })
}
