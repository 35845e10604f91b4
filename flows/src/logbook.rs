//! The logbook model: what the engine records, and what a resumed run reads.
//!
//! A [`LogBook`] holds [`FlowDetail`]s; a `FlowDetail` holds one [`AtomDetail`]
//! per atom of the compiled flow. All of it is plain serde data so any
//! [`Storage`](crate::Storage) backend can persist it as JSON.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::failure::Failure;
use crate::state::{AtomState, FlowState, Intention};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The current time in [`Millis`].
pub fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A book of flow runs (one per job on the board).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBook {
    /// Identity of the book; for a job, the job id.
    pub id: Uuid,
    /// A human name.
    pub name: String,
    /// Free-form metadata.
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// When the book was created.
    pub created_at: Millis,
    /// When the book (or anything in it) was last written.
    pub updated_at: Millis,
    /// The flow runs recorded in this book, by flow id.
    #[serde(default)]
    pub flows: BTreeMap<Uuid, FlowDetail>,
}

impl LogBook {
    /// An empty book.
    pub fn new(id: Uuid, name: impl Into<String>) -> Self {
        let now = now_millis();
        LogBook { id, name: name.into(), meta: Map::new(), created_at: now, updated_at: now, flows: BTreeMap::new() }
    }
}

/// One run of one flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    /// Identity of this flow run.
    pub id: Uuid,
    /// The flow's name.
    pub name: String,
    /// The flow's state.
    pub state: FlowState,
    /// Free-form metadata (timings, the factory name, ...).
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Bumped by every write of the flow-level fields.
    #[serde(default)]
    pub version: u64,
    /// The atoms, by atom name (names are unique within a compiled flow).
    #[serde(default)]
    pub atoms: BTreeMap<String, AtomDetail>,
}

impl FlowDetail {
    /// A new, PENDING flow run with no atoms.
    pub fn new(id: Uuid, name: impl Into<String>) -> Self {
        FlowDetail {
            id,
            name: name.into(),
            state: FlowState::Pending,
            meta: Map::new(),
            version: 0,
            atoms: BTreeMap::new(),
        }
    }
}

/// Whether an atom is a task or a retry controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtomKind {
    /// A task.
    Task,
    /// A retry controller.
    Retry,
}

/// One attempt of a retry controller: the value it provided and what failed under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// What the retry's `execute` returned for this attempt.
    pub value: Value,
    /// Failures of atoms in the retried subflow during this attempt, by atom name.
    #[serde(default)]
    pub failures: BTreeMap<String, Failure>,
}

/// The recorded state of one atom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtomDetail {
    /// The atom's name, unique in its flow.
    pub name: String,
    /// Task or retry.
    pub kind: AtomKind,
    /// Current state.
    pub state: AtomState,
    /// What the engine means to do with it next.
    #[serde(default)]
    pub intention: Intention,
    /// The result of the last successful `execute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The failure of the last failed `execute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The failure of a failed `revert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_failure: Option<Failure>,
    /// For retry controllers: one entry per attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// How many times `execute` has been called, across resumes and retries.
    #[serde(default)]
    pub executions: u32,
    /// When `execute` was last called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// When the atom last reached a resting state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    /// Bumped by every write of this atom.
    #[serde(default)]
    pub version: u64,
    /// Free-form metadata (progress, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

/// The key of an atom's [`ParkRecord`](crate::park::ParkRecord) in its `meta`
/// (kept in meta so every backend stores it with no schema change).
pub const PARK_META: &str = "park";

impl AtomDetail {
    /// The park record of the atom's latest parked attempt, if it ever parked.
    pub fn park(&self) -> Option<crate::park::ParkRecord> {
        self.meta.get(PARK_META).and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Sets the park record (the engine's, when the atom parks).
    pub(crate) fn set_park(&mut self, record: &crate::park::ParkRecord) {
        self.meta.insert(PARK_META.into(), serde_json::to_value(record).unwrap_or_default());
    }

    /// A PENDING atom that intends to execute.
    pub fn new(name: impl Into<String>, kind: AtomKind) -> Self {
        AtomDetail {
            name: name.into(),
            kind,
            state: AtomState::Pending,
            intention: Intention::Execute,
            result: None,
            failure: None,
            revert_failure: None,
            attempts: Vec::new(),
            executions: 0,
            started_at: None,
            finished_at: None,
            version: 0,
            meta: Map::new(),
        }
    }
}
