//! Parked atoms: a task that hands its work to someone outside and finishes
//! later, when a result (or a failure) is delivered.
//!
//! A task parks by returning [`Park`] (converted into a [`Failure`] of kind
//! [`Failure::PARKED`], which the engine reads as an outcome, never as a
//! failure). The engine then mints a [`CallbackToken`], records the atom
//! PARKED with a [`ParkRecord`] (attempt, the token's hash, the deadline) and
//! only once that is written calls the task's [`Task::parked`](crate::Task::parked)
//! with the token, so nobody can complete what is not recorded. Other branches
//! keep running; when nothing else can, the run ends [`FlowState::Parked`](crate::FlowState::Parked).
//! A [`Delivery`] handed to [`EngineControl::deliver`](crate::EngineControl::deliver)
//! (before or during a run) moves the atom on: a result to SUCCESS (and to its
//! consumers), a failure to FAILURE (the flow's retries and reverts apply).
//! A delivery for another attempt, or for an atom that is not parked, is dropped.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::failure::Failure;
use crate::logbook::Millis;
use crate::task::Inputs;

mod token;

pub use token::{CallbackToken, TokenError, TokenName};

/// What a task returns to park: `Err(Park::after(timeout).into())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Park {
    timeout: Duration,
}

impl Park {
    /// Park until a delivery, or until `timeout` passes (then the atom fails with
    /// a [`Failure::TIMEOUT`] delivered by whoever watches deadlines).
    pub fn after(timeout: Duration) -> Self {
        Park { timeout }
    }

    /// How long the atom may stay parked.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The park request `failure` carries, if it is one.
    pub fn from_failure(failure: &Failure) -> Option<Park> {
        if failure.kind != Failure::PARKED {
            return None;
        }
        let ms = failure.details.as_ref().and_then(|d| d.get("timeout_ms")).and_then(Value::as_u64)?;
        Some(Park::after(Duration::from_millis(ms)))
    }
}

impl From<Park> for Failure {
    fn from(park: Park) -> Failure {
        let ms = u64::try_from(park.timeout.as_millis()).unwrap_or(u64::MAX);
        Failure::new(Failure::PARKED, format!("parked for at most {ms} ms")).with_details(json!({ "timeout_ms": ms }))
    }
}

/// What the logbook keeps of a parked attempt (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkRecord {
    /// The attempt (the atom's `executions` when it parked); a token of another
    /// attempt cannot complete it.
    pub attempt: u32,
    /// SHA-256 of the token's secret part, hex.
    pub token_hash: String,
    /// When the park times out, in ms since the epoch.
    pub deadline: Millis,
    /// The task's `parked` hook ran (the token was handed out). False after a
    /// crash before it ran: the next run mints a new token and runs it again.
    #[serde(default)]
    pub notified: bool,
}

/// What a task's `parked` hook is given, once the park is recorded.
#[derive(Clone)]
pub struct ParkedContext {
    pub(crate) atom: String,
    pub(crate) token: CallbackToken,
    pub(crate) deadline: Millis,
    pub(crate) inputs: Inputs,
}

impl std::fmt::Debug for ParkedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedContext")
            .field("atom", &self.atom)
            .field("token", &self.token)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl ParkedContext {
    /// A context, for calling a task's hook directly (tests, adapters).
    pub fn new(atom: impl Into<String>, token: CallbackToken, deadline: Millis) -> Self {
        ParkedContext { atom: atom.into(), token, deadline, inputs: Inputs::default() }
    }

    /// The same context with the task's arguments (what `execute` was given).
    #[must_use]
    pub fn with_inputs(mut self, inputs: Inputs) -> Self {
        self.inputs = inputs;
        self
    }

    /// The task's arguments, as `execute` had them.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// The atom's name in its flow.
    pub fn atom_name(&self) -> &str {
        &self.atom
    }

    /// The token that completes this attempt: the credential, never to be logged.
    pub fn token(&self) -> &CallbackToken {
        &self.token
    }

    /// The attempt that parked.
    pub fn attempt(&self) -> u32 {
        self.token.name().attempt
    }

    /// When the park times out, in ms since the epoch.
    pub fn deadline(&self) -> Millis {
        self.deadline
    }
}

/// A result or failure for a parked atom, from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The parked atom's name.
    pub atom: String,
    /// The attempt it is for.
    pub attempt: u32,
    /// The delivered result, or the failure (a timeout is one).
    pub outcome: Result<Value, Failure>,
    /// An operator's override: who completed it and when, recorded in the
    /// atom's meta under [`COMPLETED_BY`]. `None` for a token's completion.
    pub completed_by: Option<CompletedBy>,
}

/// The key of an operator's override in an atom's meta.
pub const COMPLETED_BY: &str = "completed_by";

/// Who completed a parked task by override, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedBy {
    /// The operator's name.
    pub who: String,
    /// When, in ms since the epoch.
    pub at: Millis,
}

impl Delivery {
    /// A delivery of `outcome` for `attempt` of `atom` (a token's completion, or a timeout).
    pub fn new(atom: impl Into<String>, attempt: u32, outcome: Result<Value, Failure>) -> Self {
        Delivery { atom: atom.into(), attempt, outcome, completed_by: None }
    }
}

/// The failure a parked attempt gets when its deadline passes.
pub fn timed_out(atom: &str, deadline: Millis) -> Failure {
    Failure::new(Failure::TIMEOUT, format!("{atom} was not completed by its deadline ({deadline} ms since the epoch)"))
}
