//! `noop`: does nothing; returns `with.result` (any JSON, references resolved) or null.

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};

use super::{Call, Kind, QuickCall};

/// The `noop` kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

#[async_trait]
impl Kind for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    fn settings(&self) -> &'static [&'static str] {
        &["result"]
    }
    fn check(&self, _with: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
    async fn run(&self, mut with: Map<String, Value>, _call: &Call) -> Result<Value, Failure> {
        Ok(result(&mut with))
    }
    fn run_at_once(&self, with: &mut Map<String, Value>, _call: &QuickCall<'_>) -> Option<Result<Value, Failure>> {
        Some(Ok(result(with)))
    }
}

fn result(with: &mut Map<String, Value>) -> Value {
    with.remove("result").unwrap_or(Value::Null)
}
