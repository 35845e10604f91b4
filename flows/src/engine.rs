//! The engine: runs a compiled flow, reverts on failure, persists everything first.
//!
//! [`Engine::builder`] compiles the flow and loads (or creates) its
//! [`FlowDetail`] in the given [`Storage`]; [`Engine::run`] drives it to a
//! final state. A run started on a detail left by an earlier process resumes
//! it: atoms already SUCCESS are skipped and their saved results feed their
//! consumers; atoms found RUNNING are run again, so execution is
//! **at-least-once** and tasks must be idempotent; a revert in progress is
//! finished.
//!
//! With `max_concurrency(1)` every job (write RUNNING, execute, write the
//! outcome) runs inline on the caller's task. With more, a job is polled once
//! inline and handed to its own tokio task only if it has to wait, so quick
//! tasks cost no spawn; `eager_spawn(true)` spawns every job at once (for
//! tasks that compute for long without awaiting). Either way the engine yields
//! to the runtime every 256 jobs.
//!
//! Every transition is written before anything acts on it, and the writes are
//! batched: the loop stages what it decides and writes it all at once before it
//! next starts a job, waits, or ends (see `journal`), so a step of a linear flow
//! costs one storage write. A fresh flow is not written until its run starts.
//!
//! Submodules: `control` (suspend/cancel handle, deliveries), `job` (one call into user
//! code, or a retry's backoff), `journal` (staged writes and their flush),
//! `parking` (parked atoms: park records, the `parked` hook, deliveries),
//! `prepare` (fresh start or resume), `record` (checked transitions, joins),
//! `run` (the scheduling loop), `revert` (failure resolution, reverts,
//! retries), `values` (inputs, decider arguments, results).

mod control;
mod job;
mod journal;
mod parking;
mod prepare;
mod record;
mod revert;
mod run;
mod values;

use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::compile::{compile, Compiled, NodeKind};
use crate::error::Error;
use crate::failure::Failure;
use crate::listener::Listener;
use crate::logbook::{AtomDetail, AtomKind, FlowDetail};
use crate::pattern::Flow;
use crate::state::FlowState;
use crate::storage::{MemoryStorage, Storage};

pub use control::EngineControl;
#[cfg(test)]
pub(crate) use record::apply_transition;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// SUCCESS, REVERTED, FAILURE, SUSPENDED, or PARKED (nothing can run until a
    /// parked atom's result is delivered; see [`crate::park`]).
    pub state: FlowState,
    /// When not SUCCESS: the task failure that caused the revert (or `Cancelled`,
    /// or the revert failure that made the flow FAILURE).
    pub failure: Option<Failure>,
    /// Every published value of every atom that is SUCCESS, by published name.
    pub results: Map<String, Value>,
}

/// Failure kind of a run stopped by [`EngineControl::cancel`].
pub const CANCELLED: &str = "Cancelled";

/// Configures an [`Engine`].
pub struct EngineBuilder {
    flow: Flow,
    store: Map<String, Value>,
    storage: Option<(Arc<dyn Storage>, Uuid, Uuid)>,
    max_concurrency: usize,
    listeners: Vec<Arc<dyn Listener>>,
    eager_spawn: bool,
    retry_reverts: bool,
}

impl EngineBuilder {
    /// The initial store: values every atom can read by name.
    #[must_use]
    pub fn store(mut self, store: Map<String, Value>) -> Self {
        self.store = store;
        self
    }

    /// Where the logbook lives: `book` holds the flow detail `flow_id`. Without
    /// this the engine keeps its logbook in a private [`MemoryStorage`].
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>, book: Uuid, flow_id: Uuid) -> Self {
        self.storage = Some((storage, book, flow_id));
        self
    }

    /// How many atoms may run at once (at least 1; 1 runs serially). Default 1.
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Parallel engines: give every atom job its own tokio task from the start.
    ///
    /// By default a job is first polled on the engine's own task and only moved
    /// to a task of its own at its first await that is not ready at once; that
    /// makes quick tasks (and in-memory persistence) nearly free. A task that
    /// computes for long without awaiting would then hold up scheduling, so
    /// set this for CPU-heavy tasks (or have them use `spawn_blocking`).
    #[must_use]
    pub fn eager_spawn(mut self, eager: bool) -> Self {
        self.eager_spawn = eager;
        self
    }

    /// An operator's retry of a flow that ended FAILURE (a revert failed): the
    /// failed reverts are run again (REVERT_FAILURE -> REVERTING), and the revert
    /// is finished from the logbook. Without it a FAILURE flow is reported as it is.
    #[must_use]
    pub fn retry_failed_reverts(mut self, retry: bool) -> Self {
        self.retry_reverts = retry;
        self
    }

    /// Adds a listener.
    #[must_use]
    pub fn listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Compiles the flow and loads its detail from storage (a resume), or starts a
    /// fresh one; nothing is written until the run starts.
    pub async fn build(self) -> Result<Engine, Error> {
        let compiled = compile(&self.flow, self.store.keys().cloned())?;
        let (storage, book, flow_id) = match self.storage {
            Some(s) => s,
            None => (Arc::new(MemoryStorage::new()) as Arc<dyn Storage>, Uuid::new_v4(), Uuid::new_v4()),
        };
        let detail =
            storage.load_flow(book, flow_id).await?.unwrap_or_else(|| FlowDetail::new(flow_id, compiled.name.clone()));
        let (detail, details) = attach(&compiled, detail);
        Ok(Engine {
            details,
            eager_spawn: self.eager_spawn,
            retry_reverts: self.retry_reverts,
            compiled: Arc::new(compiled),
            store: Arc::new(self.store),
            storage,
            book,
            detail,
            max_concurrency: self.max_concurrency,
            listeners: self.listeners.into(),
            control: EngineControl::new(),
            stale: false,
        })
    }
}

/// Splits a loaded flow detail into its flow-level fields and one atom detail per
/// graph node, in node order. Atoms are matched by name, as in TaskFlow: the
/// detail's own name (the poster's choice) does not matter, atoms the definition
/// lost stay in storage untouched, new ones start PENDING.
fn attach(compiled: &Compiled, mut detail: FlowDetail) -> (FlowDetail, Vec<AtomDetail>) {
    let mut stored = std::mem::take(&mut detail.atoms);
    let details = compiled
        .nodes
        .iter()
        .map(|n| {
            let kind = if matches!(n.kind, NodeKind::Retry { .. }) { AtomKind::Retry } else { AtomKind::Task };
            stored.remove(&n.name).unwrap_or_else(|| AtomDetail::new(n.name.clone(), kind))
        })
        .collect();
    (detail, details)
}

/// Runs one flow against one flow detail.
pub struct Engine {
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) store: Arc<Map<String, Value>>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) book: Uuid,
    /// The flow-level fields as last loaded or written (its `atoms` map stays empty).
    pub(crate) detail: FlowDetail,
    /// One atom detail per graph node, as last loaded or written (joins: never persisted).
    pub(crate) details: Vec<AtomDetail>,
    /// Spawn every job at once instead of polling it inline first.
    pub(crate) eager_spawn: bool,
    pub(crate) retry_reverts: bool,
    pub(crate) max_concurrency: usize,
    pub(crate) listeners: Arc<[Arc<dyn Listener>]>,
    pub(crate) control: EngineControl,
    /// The last run stopped with an error or was dropped part-way, so the in-memory
    /// details may be missing or hold changes the logbook refused: the next run
    /// reloads them from storage first.
    pub(crate) stale: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("flow", &self.compiled.name)
            .field("book", &self.book)
            .field("flow_id", &self.detail.id)
            .field("state", &self.detail.state)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts configuring an engine for `flow`.
    pub fn builder(flow: Flow) -> EngineBuilder {
        EngineBuilder {
            flow,
            store: Map::new(),
            storage: None,
            max_concurrency: 1,
            listeners: Vec::new(),
            eager_spawn: false,
            retry_reverts: false,
        }
    }

    /// A handle to suspend or cancel the run from elsewhere.
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// The compiled flow.
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// The logbook book id.
    pub fn book_id(&self) -> Uuid {
        self.book
    }

    /// The flow detail id.
    pub fn flow_id(&self) -> Uuid {
        self.detail.id
    }

    /// The flow's state as last recorded.
    pub fn state(&self) -> FlowState {
        self.detail.state
    }

    /// The atoms parked as last recorded, with their parked attempts: what a
    /// PARKED run waits for.
    pub fn parked(&self) -> Vec<(String, u32)> {
        self.details
            .iter()
            .filter(|d| d.state == crate::state::AtomState::Parked)
            .filter_map(|d| d.park().map(|r| (d.name.clone(), r.attempt)))
            .collect()
    }

    /// Runs the flow to SUCCESS, REVERTED, FAILURE or SUSPENDED. `Err` means the
    /// engine itself could not go on (storage failed, a bug was caught); what was
    /// persisted up to then is consistent and a later run can resume from it.
    /// A later `run` on the same engine continues from what the logbook holds.
    pub async fn run(&mut self) -> Result<RunOutcome, Error> {
        if self.stale {
            self.reload().await?;
        }
        // Stays set if this future is dropped mid-run (its jobs are then aborted and
        // the in-memory details are gone): the next run starts from the logbook.
        self.stale = true;
        let outcome = run::run(self).await;
        self.stale = outcome.is_err();
        outcome
    }

    /// Replaces the in-memory details with what storage holds, so nothing goes on
    /// from state that was never recorded.
    async fn reload(&mut self) -> Result<(), Error> {
        let id = self.detail.id;
        // Nothing recorded yet (the first write failed): start afresh, as `build` does.
        let detail = self
            .storage
            .load_flow(self.book, id)
            .await?
            .unwrap_or_else(|| FlowDetail::new(id, self.compiled.name.clone()));
        (self.detail, self.details) = attach(&self.compiled, detail);
        self.stale = false;
        Ok(())
    }
}
