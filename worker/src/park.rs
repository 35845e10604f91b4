//! Parking a task: [`Park`], what an execute function returns (as `Err(Park::after(t).into())`)
//! when something outside will finish the task later, and [`Callback`], what the task's
//! parked handler is given once the conductor has recorded the park.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::context::TaskError;

/// The kind of the [`TaskError`] a [`Park`] becomes (read back by the SDK, never sent).
pub(crate) const PARKED: &str = "Parked";

/// A task that parks: it is not done, a completion (`baton complete TOKEN`, gRPC
/// `CompleteTask`, the webhook) finishes it within `timeout`, else it fails with kind
/// `Timeout`. The task needs a parked handler ([`Builder::parked`](crate::Builder::parked)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Park {
    timeout: Duration,
}

impl Park {
    /// Park for at most `timeout` (more than zero).
    pub fn after(timeout: Duration) -> Self {
        Park { timeout }
    }

    /// How long the park may last.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The park `error` carries, if it is one.
    pub(crate) fn from_error(error: &TaskError) -> Option<Park> {
        if error.kind != PARKED {
            return None;
        }
        let ms = error.details.as_ref().and_then(|d| d.get("timeout_ms")).and_then(Value::as_u64)?;
        Some(Park::after(Duration::from_millis(ms)))
    }
}

impl From<Park> for TaskError {
    fn from(park: Park) -> TaskError {
        let ms = u64::try_from(park.timeout.as_millis()).unwrap_or(u64::MAX);
        TaskError { details: Some(json!({ "timeout_ms": ms })), ..TaskError::new(PARKED, "parked") }
    }
}

/// What completes a parked attempt, given to the task's parked handler.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub(crate) token: String,
    pub(crate) url: String,
    pub(crate) deadline_ms: u64,
}

impl Callback {
    /// The callback token: hand it to whoever completes the task; never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The conductor's webhook for the token (`POST` `{"result": ...}`); empty when the
    /// conductor has no HTTP listener.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// When the park times out, in ms since the Unix epoch.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback").field("token", &"<redacted>").field("deadline_ms", &self.deadline_ms).finish()
    }
}
