//! `Task`: the unit of work, and the contexts handed to `execute` and `revert`.
//!
//! A task sees only JSON values: its named inputs, and for `revert` the
//! outcome of its own `execute` plus the failures of the whole flow. That is
//! all persisted, so a resumed run can revert precisely what an earlier
//! process did.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::failure::Failure;
use crate::park::ParkedContext;

/// A unit of work with an optional undo.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// Does the work; the returned value is what the task `provides`.
    async fn execute(&self, ctx: &ExecuteContext) -> Result<Value, Failure>;

    /// Undoes `execute`. Called for every task that ran when the flow fails,
    /// including the one that failed (then `ctx.outcome()` is its failure).
    async fn revert(&self, ctx: &RevertContext) -> Result<(), Failure> {
        let _ = ctx;
        Ok(())
    }

    /// Called once a park this task asked for (by returning
    /// [`Park`](crate::park::Park)) is recorded: the place to hand the token to
    /// whoever will complete it. Called again with a new token if the process
    /// died before this returned. A failure here fails the parked attempt.
    async fn parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        let _ = ctx;
        Ok(())
    }
}

/// The named arguments of one task call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs(Map<String, Value>);

impl Inputs {
    /// Wraps a map of argument name to value.
    pub fn new(values: Map<String, Value>) -> Self {
        Inputs(values)
    }

    /// The argument `name`, if it was bound.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The argument `name`, or a `NotFound` failure naming it.
    pub fn require(&self, name: &str) -> Result<&Value, Failure> {
        self.0.get(name).ok_or_else(|| Failure::new(Failure::NOT_FOUND, format!("input {name:?} not bound")))
    }

    /// Every argument, by name.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The arguments as a JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// What `execute` is given.
#[derive(Debug, Clone)]
pub struct ExecuteContext {
    pub(crate) inputs: Inputs,
    pub(crate) atom: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) book: Uuid,
}

impl ExecuteContext {
    /// A context, for calling a task directly (tests, adapters).
    pub fn new(atom: impl Into<Arc<str>>, inputs: Inputs, attempt: u32) -> Self {
        ExecuteContext { inputs, atom: atom.into(), attempt, book: Uuid::nil() }
    }

    /// The same context in the logbook `book` (the engine sets it).
    #[must_use]
    pub fn in_book(mut self, book: Uuid) -> Self {
        self.book = book;
        self
    }

    /// The id of the logbook the engine records this run in (a conductor's job id);
    /// nil when the engine keeps its logbook in memory without one.
    pub fn book(&self) -> Uuid {
        self.book
    }

    /// The task's arguments.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// Shorthand for `inputs().get(name)`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inputs.get(name)
    }

    /// Shorthand for `inputs().require(name)`.
    pub fn require(&self, name: &str) -> Result<&Value, Failure> {
        self.inputs.require(name)
    }

    /// The atom's name in its flow.
    pub fn atom_name(&self) -> &str {
        &self.atom
    }

    /// The atom's name, shared: for keeping it beyond the call without copying it.
    pub fn atom_name_shared(&self) -> &Arc<str> {
        &self.atom
    }

    /// How many times `execute` has been called for this atom, this call included
    /// (counts retries and runs re-started after a crash).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What `revert` is given.
#[derive(Debug, Clone)]
pub struct RevertContext {
    pub(crate) inputs: Inputs,
    pub(crate) atom: Arc<str>,
    pub(crate) outcome: Result<Value, Failure>,
    pub(crate) flow_failures: BTreeMap<String, Failure>,
    pub(crate) attempt: u32,
    pub(crate) book: Uuid,
}

impl RevertContext {
    /// A context, for calling a task directly (tests, adapters).
    pub fn new(
        atom: impl Into<Arc<str>>,
        inputs: Inputs,
        outcome: Result<Value, Failure>,
        flow_failures: BTreeMap<String, Failure>,
    ) -> Self {
        RevertContext { inputs, atom: atom.into(), outcome, flow_failures, attempt: 0, book: Uuid::nil() }
    }

    /// The same context in the logbook `book`, undoing execute call number `attempt`
    /// (the engine sets both).
    #[must_use]
    pub fn in_book(mut self, book: Uuid, attempt: u32) -> Self {
        self.book = book;
        self.attempt = attempt;
        self
    }

    /// The id of the logbook the engine records this run in (a conductor's job id).
    pub fn book(&self) -> Uuid {
        self.book
    }

    /// The number of the execute call being undone (0 if unknown).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The same arguments `execute` was given.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// Shorthand for `inputs().get(name)`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inputs.get(name)
    }

    /// The atom's name in its flow.
    pub fn atom_name(&self) -> &str {
        &self.atom
    }

    /// What this task's `execute` produced: its result, or its failure.
    pub fn outcome(&self) -> Result<&Value, &Failure> {
        self.outcome.as_ref()
    }

    /// The result of `execute`, if it succeeded.
    pub fn result(&self) -> Option<&Value> {
        self.outcome.as_ref().ok()
    }

    /// The failure of `execute`, if this is the task that failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.outcome.as_ref().err()
    }

    /// Every execute failure in the flow so far, by atom name.
    pub fn flow_failures(&self) -> &BTreeMap<String, Failure> {
        &self.flow_failures
    }
}

/// The boxed closure behind [`task_fn`](crate::task_fn).
pub(crate) type ExecFn = dyn Fn(ExecuteContext) -> BoxFuture<'static, Result<Value, Failure>> + Send + Sync;
/// The boxed closure behind `TaskSpec::revert_fn`.
pub(crate) type RevertFn = dyn Fn(RevertContext) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync;

/// A task made of closures (see [`task_fn`](crate::task_fn)).
pub(crate) struct FnTask {
    pub(crate) exec: Arc<ExecFn>,
}

#[async_trait]
impl Task for FnTask {
    async fn execute(&self, ctx: &ExecuteContext) -> Result<Value, Failure> {
        (self.exec)(ctx.clone()).await
    }
}

/// Boxes an execute closure.
pub(crate) fn boxed_exec<F, Fut>(f: F) -> Arc<ExecFn>
where
    F: Fn(ExecuteContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, Failure>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// Boxes a revert closure.
pub(crate) fn boxed_revert<F, Fut>(f: F) -> Arc<RevertFn>
where
    F: Fn(RevertContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}
