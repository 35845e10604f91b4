//! `sleep`: waits `duration` (`500ms`, `2s`, ...; or a number of milliseconds), cancellably.

use std::time::Duration;

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};

use super::{is_deferred, require_keys, Call, Kind};

/// The `sleep` kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

/// `duration` as text (`1s`) or a whole number of milliseconds.
pub(crate) fn duration(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Number(n) => {
            n.as_u64().map(Duration::from_millis).ok_or_else(|| format!("{n} is not a whole number of milliseconds"))
        }
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?} is not a duration such as 500ms or 2s ({e})")),
        other => Err(format!("expected a duration such as 500ms or 2s, found {other}")),
    }
}

#[async_trait]
impl Kind for Sleep {
    fn name(&self) -> &'static str {
        "sleep"
    }
    fn settings(&self) -> &'static [&'static str] {
        &["duration"]
    }
    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        let mut problems = require_keys(with, &["duration"]);
        if let Some(v) = with.get("duration").filter(|v| !is_deferred(v)) {
            if let Err(e) = duration(v) {
                problems.push(format!("duration: {e}"));
            }
        }
        problems
    }
    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        let wait = duration(with.get("duration").unwrap_or(&Value::Null)).map_err(Failure::task)?;
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(Value::Null),
            () = call.cancel.cancelled() => Err(Failure::task(format!("{} was cancelled while sleeping", call.atom))),
        }
    }
}
