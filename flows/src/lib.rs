//! # flows: Baton's workflow engine library
//!
//! A flow is a graph of tasks; the engine runs it in parallel where the graph
//! allows, reverts what ran when something fails, and writes every transition
//! to a logbook first so that a run can be resumed anywhere. This crate knows
//! nothing of etcd, gRPC or the command line.
//!
//! ## Example
//! ```
//! use flows::{task_fn, Engine, ExecuteContext, Failure, Flow, FlowState};
//! use serde_json::json;
//!
//! let flow = Flow::linear("greet")
//!     .add(task_fn("name", |_| async { Ok(json!("world")) }).provides("who"))
//!     .add(
//!         task_fn("hello", |ctx: ExecuteContext| async move {
//!             let who = ctx.require("who")?.as_str().ok_or_else(|| Failure::task("who is not a string"))?;
//!             Ok(json!(format!("hello {who}")))
//!         })
//!         .requires(["who"])
//!         .provides("greeting"),
//!     );
//! let runtime = tokio::runtime::Runtime::new().expect("runtime");
//! let outcome = runtime.block_on(async {
//!     let mut engine = Engine::builder(flow).max_concurrency(4).build().await?;
//!     engine.run().await
//! })?;
//! assert_eq!(outcome.state, FlowState::Success);
//! assert_eq!(outcome.results["greeting"], json!("hello world"));
//! # Ok::<(), flows::Error>(())
//! ```
//!
//! ## Semantics worth knowing
//! - Every transition is persisted before the engine acts on it; a storage error
//!   stops the run with `Error::Storage` (nothing new starts, running atoms finish
//!   and record their outcome). A later `run` of the same engine, like one whose
//!   future was dropped part-way, starts again from what the logbook holds.
//! - A cancel or suspend request is honoured once; a later `run` is not affected.
//! - Panics in tasks and deciders are failures of the flow, not of the engine.
//! - Resume is **at-least-once**: an atom found RUNNING in the logbook runs again.
//! - A retry's REVERT defers to the enclosing retry (TaskFlow's `defer_reverts`);
//!   with none, everything is reverted.
//! - A decider saying no ends the target and everything after it IGNORE.
//!
//! ## Layout
//! - [`task`](mod@task): the `Task` trait and the contexts `execute` and `revert` receive.
//! - [`atom`]: `TaskSpec`, a task plus its wiring (`requires`, `provides`, `rebind`, `inject`, `timeout`).
//! - [`retry`]: retry controllers (`Retry::times`, `for_each`, ...), decisions and backoff.
//! - [`pattern`]: `Flow`: linear, unordered and graph patterns, links and deciders.
//! - [`compile`](mod@compile): checks a flow (every culprit at once) and builds its execution graph.
//! - [`scope`]: name lookup (inject, store, nearest predecessor), resolved at compile time.
//! - [`engine`]: `Engine`, the parallel reverting runner, with suspend, cancel and resume.
//! - [`listener`]: observers of transitions; `LoggingListener`, `TimingListener`.
//! - [`registry`]: `FlowRegistry`, flows by name built from a store.
//! - [`inputs`]: `Schema` and `InputSpec`, a flow's typed inputs, checked when a job is posted.
//! - [`export`]: DOT and Mermaid text of a compiled flow.
//! - [`error`]: `Error`, why the engine could not run (task failures are values).
//! - [`failure`]: `Failure`, a task failure as a persisted value.
//! - [`state`]: atom and flow states and their transition tables.
//! - [`logbook`]: `LogBook`, `FlowDetail`, `AtomDetail`: what is recorded.
//! - [`park`]: parked atoms: `Park`, callback tokens, park records, deliveries.
//! - [`storage`]: the `Storage` trait the engine writes through, and `MemoryStorage`.

#![warn(missing_docs)]

pub mod atom;
pub mod compile;
pub mod engine;
pub mod error;
pub mod export;
pub mod failure;
pub mod inputs;
pub mod listener;
pub mod logbook;
pub mod park;
pub mod pattern;
pub mod registry;
pub mod retry;
pub mod scope;
pub mod state;
pub mod storage;
pub mod task;

#[cfg(test)]
mod tests;

pub use atom::{task, task_fn, Provides, TaskSpec};
pub use compile::{compile, CompileError, CompileProblem, Compiled};
pub use engine::{Engine, EngineBuilder, EngineControl, RunOutcome, CANCELLED};
pub use error::Error;
pub use failure::Failure;
pub use inputs::{InputProblem, InputSpec, InputType, Pattern, PatternError, Rule, Schema};
pub use listener::{AtomEvent, Listener, LoggingListener, TimingListener};
pub use logbook::{now_millis, AtomDetail, AtomKind, Attempt, FlowDetail, LogBook, Millis, PARK_META};
pub use park::{CallbackToken, CompletedBy, Delivery, Park, ParkRecord, ParkedContext, TokenError, TokenName};
pub use pattern::{Decider, Flow, FlowKind, Node};
pub use registry::{FlowFactory, FlowRegistry, RegistryError};
pub use retry::{Backoff, Decision, Retry, RetryController};
pub use state::{check_atom_transition, check_flow_transition, AtomState, FlowState, Intention};
pub use storage::{FlowChanges, FlowEnd, MemoryStorage, Storage, StorageError};
pub use task::{ExecuteContext, Inputs, RevertContext, Task};
