//! `noop`: does nothing; returns `with.result` (any JSON, references resolved) or null.

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};

use super::{Call, Kind};

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
        Ok(with.remove("result").unwrap_or(Value::Null))
    }
}
