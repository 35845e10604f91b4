//! Task kinds: what a flow file's `kind:` names.
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

pub mod http;
pub mod shell;
mod with;

/// One call of a kind's task.
#[derive(Debug, Clone)]
pub struct Call {
    pub atom: String,
    pub attempt: u32,
    pub timeout: Option<Duration>,
    pub cancel: CancellationToken,
}

#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// The name a flow file's `kind:` uses.
    fn name(&self) -> &'static str;
    /// The keys `with` accepts (unknown keys are errors; used for "did you mean").
    fn settings(&self) -> &'static [&'static str];
    /// Problems with `with` found without running anything (types, required keys), each "key: what is wrong".
    fn check(&self, with: &Map<String, Value>) -> Vec<String>;
    /// Runs the task with its settings, references already resolved.
    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, flows::Failure>;
}
