//! `baton suspend`, `resume`, `retry` and `rerun`: an operator's controls on one job,
//! and the `--deadline` of `post` and `rerun`. Each prints the job as `get` does
//! (`rerun`: the new job); a refusal names the job's state (FAILED_PRECONDITION).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use proto::pb;
use serde_json::{Map, Value};

use crate::args::{Output, RerunArgs};
use crate::commands::print_job;
use crate::fleet::Fleet;
use crate::inputs;

/// A `--deadline`: a duration above zero (flow-file syntax: `30s`, `2h`).
pub fn parse_deadline(text: &str) -> Result<Duration, String> {
    match flowfile::duration::parse_duration(text).map_err(|e| e.to_string())? {
        Duration::ZERO => Err(format!("{text:?} would cancel the job at once; use a duration above zero, e.g. 2h")),
        duration => Ok(duration),
    }
}

/// A duration in whole milliseconds, as the API takes it.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `baton suspend ID`.
pub async fn suspend(fleet: &Fleet, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    let job = fleet.call(|c| async move { c.suspend_job(id).await }).await;
    print_job(&job.with_context(|| format!("cannot suspend job {id}"))?, out, true)?;
    Ok(ExitCode::SUCCESS)
}

/// `baton resume ID`.
pub async fn resume(fleet: &Fleet, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    let job = fleet.call(|c| async move { c.resume_job(id).await }).await;
    print_job(&job.with_context(|| format!("cannot resume job {id}"))?, out, true)?;
    Ok(ExitCode::SUCCESS)
}

/// `baton retry ID`.
pub async fn retry(fleet: &Fleet, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    let job = fleet.call(|c| async move { c.retry_job(id).await }).await;
    print_job(&job.with_context(|| format!("cannot retry job {id}"))?, out, true)?;
    Ok(ExitCode::SUCCESS)
}

/// `baton rerun ID [--store K=V]...`: the `--store` values are read as the flow declares them.
pub async fn rerun(fleet: &Fleet, args: &RerunArgs, out: Output) -> anyhow::Result<ExitCode> {
    let id = args.id.as_str();
    let store = if args.store.is_empty() {
        Map::new()
    } else {
        let old = fleet.call(|c| async move { c.get_job(id).await }).await;
        let old = old.with_context(|| format!("cannot rerun job {id}"))?;
        let schema = match fleet.fresh().call(|c| async move { c.list_flows().await }).await {
            Ok(flows) => flows.iter().find(|f| f.name == old.flow).map(inputs::schema_of).unwrap_or_default(),
            Err(error) => {
                tracing::debug!(%error, "cannot list flows; --store values are read as undeclared inputs");
                flows::Schema::new()
            }
        };
        inputs::coerce_pairs(&schema, &args.store)
    };
    // A key of our own, as `post` has: a rerun re-sent to the next endpoint posts once.
    let request = pb::RerunJobRequest {
        id: id.to_owned(),
        store_json: Value::Object(store).to_string(),
        deadline_in_ms: args.deadline.map(millis),
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
    };
    let request = &request;
    let job = fleet.call(|c| async move { c.rerun_job(request.clone()).await }).await;
    let job = job.with_context(|| format!("cannot rerun job {id}"))?;
    match out {
        Output::Json => print_job(&job, out, false)?,
        Output::Table => crate::commands::emit(&format!("{}\n", job.id))?,
    }
    Ok(ExitCode::SUCCESS)
}
