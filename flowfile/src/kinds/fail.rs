//! `fail`: always fails with `with.message` (for testing reverts and retries).
//!
//! `until_attempt: N` makes it fail only while the atom's attempt is below N and
//! return null from then on: with a retry of `times: 3` and `until_attempt: 3`
//! the task succeeds on its third try.

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};

use super::{is_deferred, Call, Kind, QuickCall};

/// The `fail` kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fail;

#[async_trait]
impl Kind for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn settings(&self) -> &'static [&'static str] {
        &["message", "until_attempt"]
    }
    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        match with.get("until_attempt") {
            Some(v) if !is_deferred(v) && v.as_u64().is_none() => {
                vec![format!("until_attempt: expected a whole number, found {v}")]
            }
            _ => Vec::new(),
        }
    }
    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        outcome(&with, &QuickCall::of(call))
    }
    fn run_at_once(&self, with: &mut Map<String, Value>, call: &QuickCall<'_>) -> Option<Result<Value, Failure>> {
        Some(outcome(with, call))
    }
}

fn outcome(with: &Map<String, Value>, call: &QuickCall<'_>) -> Result<Value, Failure> {
    if let Some(until) = with.get("until_attempt") {
        let until =
            until.as_u64().ok_or_else(|| Failure::task(format!("until_attempt is not a whole number: {until}")))?;
        if u64::from(call.attempt) >= until {
            return Ok(Value::Null);
        }
    }
    let message = match with.get("message") {
        None => format!("{} failed on purpose", call.atom),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Err(Failure::task(message))
}
