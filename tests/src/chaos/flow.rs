//! The `chaos` flow: `steps` steps in a line, each of which first appends one line
//! `<key> <task> <pid>` to a steps file the test owns, then sleeps `step_ms`.
//!
//! The file is the count of executions kept outside the system under test: the logbook
//! can be wrong, the file cannot be rewritten by a conductor. A task has no access to its
//! job id, so the line names the job by the `key` input, which the chaos suite makes unique
//! per job (it is also the job's idempotency key). Each line is one `write` on a file opened
//! with `O_APPEND`, so lines of concurrent processes never interleave. A step whose line
//! cannot be written fails, which fails its job: an unrecorded execution would make the
//! count lie.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flows::{task_fn, Failure, Flow, FlowFactory, FlowRegistry, TaskSpec};
use serde_json::{json, Map, Value};

/// The flow's name.
pub const FLOW: &str = "chaos";
/// The steps file's name inside the directory the test gives.
pub const STEPS_FILE: &str = "steps.log";
/// The environment variable that names that directory for `chaos_conductor`.
pub const STEPS_DIR_ENV: &str = "CHAOS_STEPS_DIR";
/// The most steps one job may have.
const MAX_STEPS: u64 = 100;
/// The longest step.
const MAX_STEP_MS: u64 = 60_000;

/// A registry holding only the `chaos` flow, recording into `<steps_dir>/steps.log`.
pub fn registry(steps_dir: &Path) -> FlowRegistry {
    let file: Arc<PathBuf> = Arc::new(steps_dir.join(STEPS_FILE));
    let factory = FlowFactory::new(FLOW, move |store| {
        let key = match store.get("key") {
            Some(Value::String(key)) if !key.is_empty() && !key.contains(char::is_whitespace) => key.clone(),
            other => return Err(format!("input \"key\" must be a word, got {other:?}")),
        };
        let steps = whole_number(store, "steps", 1, MAX_STEPS)?;
        let step = Duration::from_millis(whole_number(store, "step_ms", 0, MAX_STEP_MS)?);
        let tasks = (1..=steps).map(|n| recorded_step(n, &key, step, file.clone()));
        Ok(Flow::linear(FLOW).add_all(tasks))
    })
    .requires(["key", "steps", "step_ms"])
    .describe("steps that record each execution in a file the chaos test owns");
    let mut registry = FlowRegistry::new();
    registry.register(factory);
    registry
}

fn recorded_step(n: u64, key: &str, step: Duration, file: Arc<PathBuf>) -> TaskSpec {
    let name = format!("step-{n}");
    let line = format!("{key} {name} {}\n", std::process::id());
    task_fn(name, move |_ctx| {
        let (line, file) = (line.clone(), file.clone());
        async move {
            append(&file, &line)
                .map_err(|e| Failure::task(format!("cannot record the step in {}: {e}", file.display())))?;
            tokio::time::sleep(step).await;
            Ok(json!({ "step": n }))
        }
    })
}

/// One `write` of the whole line on a file opened for appending.
fn append(file: &Path, line: &str) -> std::io::Result<()> {
    let mut handle = std::fs::OpenOptions::new().append(true).create(true).open(file)?;
    let written = handle.write(line.as_bytes())?;
    if written != line.len() {
        return Err(std::io::Error::other(format!("short write: {written} of {} bytes", line.len())));
    }
    Ok(())
}

fn whole_number(store: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<u64, String> {
    let value = match store.get(key) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    value
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("input {key:?} must be a whole number from {min} to {max}"))
}
