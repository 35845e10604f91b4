//! # flows: Baton's workflow engine library
//!
//! A flow is a graph of tasks; the engine runs it in parallel where the graph
//! allows, reverts what ran when something fails, and writes every transition
//! to a logbook first so that a run can be resumed anywhere. This crate knows
//! nothing of etcd, gRPC or the command line.
//!
//! ## Layout
//! - [`failure`]: `Failure`, a task failure as a persisted value.
//! - [`state`]: atom and flow states and their transition tables.
//! - [`logbook`]: `LogBook`, `FlowDetail`, `AtomDetail`: what is recorded.
//! - [`storage`]: the `Storage` trait the engine writes through, and `MemoryStorage`.

#![warn(missing_docs)]

pub mod failure;
pub mod logbook;
pub mod state;
pub mod storage;

pub use failure::Failure;
pub use logbook::{AtomDetail, AtomKind, Attempt, FlowDetail, LogBook, Millis};
pub use state::{AtomState, FlowState, Intention};
pub use storage::{MemoryStorage, Storage, StorageError};
