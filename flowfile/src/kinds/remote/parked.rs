//! A remote task that parks: its worker answered `parked` (the dispatcher turns that
//! into [`flows::Park`]), the engine recorded the park, and only then the callback goes
//! to the task's parked handler on a worker: a [`RemoteCall`] with [`RemoteCall::park`]
//! set, through the same [`Dispatch`](super::Dispatch) seam, so the worker can hand the
//! token to whatever will complete the task. Nobody learns a token that completes nothing.

use std::fmt;

use flows::{Failure, Millis, ParkedContext};
use serde_json::Value;

use super::RemoteCall;

/// What completes a parked remote attempt, as its parked handler receives it.
#[derive(Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The callback token: a credential, never logged (`Debug` leaves it out).
    pub token: String,
    /// When the park times out, in ms since the epoch.
    pub deadline: Millis,
}

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff").field("token", &"<redacted>").field("deadline", &self.deadline).finish()
    }
}

impl Handoff {
    /// The hand-off of the park `ctx` describes.
    pub fn of(ctx: &ParkedContext) -> Self {
        Handoff { token: ctx.token().expose(), deadline: ctx.deadline() }
    }
}

/// Kind of the failure when a worker parks a call that cannot park (a revert, a hand-off).
pub const BAD_PARK: &str = "BadPark";

/// A dispatcher's outcome for `call`, with a park where none is possible made a failure:
/// only an execute parks.
pub fn only_executes_park(call: &RemoteCall, outcome: Result<Value, Failure>) -> Result<Value, Failure> {
    match outcome {
        Err(failure) if failure.kind == Failure::PARKED && (call.revert.is_some() || call.park.is_some()) => {
            let what = if call.revert.is_some() { "a revert" } else { "a parked handler" };
            Err(Failure::new(BAD_PARK, format!("remote task {:?} ({}): {what} cannot park", call.task, call.atom)))
        }
        other => other,
    }
}
