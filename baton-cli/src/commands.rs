//! One function per `baton` subcommand, over the [`Fleet`] of `--endpoint`.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use proto::pb;
use serde_json::{Map, Value};

use crate::args::{Command, ListArgs, Output, PostArgs, EXIT_JOB_FAILED};
use crate::fleet::Fleet;
use crate::follow::{follow, Progress};
use crate::output::{self, job_json};
use crate::{inputs, status, store, workers};

/// Runs every subcommand but `demo` against the fleet.
pub async fn dispatch(fleet: &Fleet, command: Command, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        Command::Post(args) => {
            // Read and check the store file before anything else: a bad file posts
            // nothing, and says so even when no conductor is running.
            let mut store = store::read_optional(args.store_file.as_deref())?;
            store.extend(pairs(fleet, &args).await);
            post(fleet, args, store, out).await
        }
        Command::Get { id } => {
            let id = &id;
            let job = fleet.call(|c| async move { c.get_job(id.as_str()).await }).await;
            print_job(&job.with_context(|| format!("cannot get job {id}"))?, out, true)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List(args) => list(fleet, args, out).await,
        Command::Watch { id } => finish(fleet, &id, out).await,
        Command::Cancel { id } => {
            let id = &id;
            let job = fleet.call(|c| async move { c.cancel_job(id.as_str()).await }).await;
            print_job(&job.with_context(|| format!("cannot cancel job {id}"))?, out, true)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Suspend { id } => crate::operate::suspend(fleet, &id, out).await,
        Command::Resume { id } => crate::operate::resume(fleet, &id, out).await,
        Command::Retry { id } => crate::operate::retry(fleet, &id, out).await,
        Command::Rerun(args) => crate::operate::rerun(fleet, &args, out).await,
        Command::Flows(crate::args::FlowsArgs { command: Some(command) }) => {
            crate::definitions::run(fleet, command, out).await
        }
        Command::Complete(args) => crate::complete::run(fleet, &args, out).await,
        Command::Schedules(args) => crate::schedules::run(fleet, args, out).await,
        Command::Flows(_) => {
            let flows = fleet.call(|c| async move { c.list_flows().await }).await.context("cannot list flows")?;
            match out {
                Output::Json => print_json(&flows.iter().map(output::flow_json).collect())?,
                Output::Table => emit(&output::flows_table(&flows))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Conductors => {
            let conductors =
                fleet.call(|c| async move { c.list_conductors().await }).await.context("cannot list conductors")?;
            match out {
                Output::Json => print_json(&conductors.iter().map(output::conductor_json).collect())?,
                Output::Table => emit(&output::conductors_table(&conductors))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Workers => {
            let workers =
                fleet.call(|c| async move { c.list_workers(false).await }).await.context("cannot list workers")?;
            match out {
                Output::Json => print_json(&workers.iter().map(workers::worker_json).collect())?,
                Output::Table => emit(&workers::workers_table(&workers))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Drain { name, undo } => {
            let name = &name;
            let conductor = fleet.call(|c| async move { c.drain(name.as_str(), !undo).await }).await;
            let conductor = conductor.with_context(|| format!("cannot drain {name}"))?;
            match out {
                Output::Json => print_json(&output::conductor_json(&conductor))?,
                Output::Table => {
                    let what =
                        if conductor.draining { "draining: it claims no new jobs" } else { "claiming jobs again" };
                    emit(&format!("conductor {} is {what} ({} held)\n", conductor.name, conductor.jobs))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let (endpoint, found) = fleet
                .call(|c| async move { Ok((c.endpoint().to_owned(), c.get_status().await?)) })
                .await
                .context("cannot read the conductor's status")?;
            match out {
                Output::Json => print_json(&status::status_json(&endpoint, &found))?,
                Output::Table => emit(&status::status_detail(&endpoint, &found))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(_) => Err(anyhow!("demo runs its own conductor; it is not dispatched to an endpoint")),
    }
}

/// The `--store` pairs, each read as the type the flow declares for it (from `ListFlows`).
///
/// The look-up is best effort and leaves the post alone: it runs on a fleet of its own (so
/// the post still starts at the first endpoint, as it always has), and when no conductor
/// lists the flows the pairs are read as undeclared inputs and the post goes ahead (its
/// own failure, if any, is the one to report).
async fn pairs(fleet: &Fleet, args: &PostArgs) -> Map<String, Value> {
    if args.store.is_empty() {
        return Map::new();
    }
    let schema = match fleet.fresh().call(|c| async move { c.list_flows().await }).await {
        // An unknown flow gets no schema here; the conductor refuses it, naming it.
        Ok(flows) => {
            let name = args.flow_and_version().map_or(args.flow.as_str(), |(name, _)| name);
            flows.iter().find(|f| f.name == name).map(inputs::schema_of).unwrap_or_default()
        }
        Err(error) => {
            tracing::debug!(%error, "cannot list flows; --store values are read as undeclared inputs");
            flows::Schema::new()
        }
    };
    inputs::coerce_pairs(&schema, &args.store)
}

async fn post(fleet: &Fleet, args: PostArgs, store: Map<String, Value>, out: Output) -> anyhow::Result<ExitCode> {
    // A key of our own when none is given: a post re-sent to the next endpoint after a
    // timeout (the first may have written it) returns the job instead of making another.
    let (flow, version) = args.flow_and_version().map_err(|e| anyhow!(e))?;
    let key = args.idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = &pb::PostJobRequest {
        flow: flow.to_owned(),
        store_json: Value::Object(store).to_string(),
        priority: args.priority,
        idempotency_key: Some(key),
        version,
        deadline_in_ms: args.deadline.map(crate::operate::millis),
    };
    let job = fleet.call(|c| async move { c.post_job(request.clone()).await }).await;
    let job = job.with_context(|| format!("cannot post a {} job", args.flow))?;
    // Accepted, but it may wait: said on stderr, so stdout stays the job (id or JSON).
    for warning in &job.warnings {
        eprintln!("warning: {warning}");
    }
    if !args.wait {
        match out {
            Output::Json => print_json(&job_json(&job, false))?,
            Output::Table => emit(&format!("{}\n", job.id))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("posted job {} ({})", job.id, job.flow);
    finish(fleet, &job.id, out).await
}

/// Follows a job to its end, prints it, and turns its outcome into the exit status.
pub async fn finish(fleet: &Fleet, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    let mut progress = Progress::new(false);
    let job = follow(fleet, id, &mut progress).await?;
    print_job(&job, out, true)?;
    Ok(job_exit_code(&job))
}

/// 0 if the job ended COMPLETE with SUCCESS, else [`EXIT_JOB_FAILED`].
pub fn job_exit_code(job: &pb::Job) -> ExitCode {
    if output::succeeded(job) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_JOB_FAILED)
    }
}

async fn list(fleet: &Fleet, args: ListArgs, out: Output) -> anyhow::Result<ExitCode> {
    let mut request = pb::ListJobsRequest {
        state: args.state.unwrap_or(pb::JobState::Unspecified) as i32,
        flow: args.flow.unwrap_or_default(),
        page_size: args.limit.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        page_token: String::new(),
    };
    // Page by page, each page a call of its own: a page token means the same on every
    // conductor of the board, so a page can come from the next endpoint.
    let mut jobs = Vec::new();
    loop {
        let page_request = &request;
        let page = fleet.call(|c| async move { c.list_jobs(page_request.clone()).await }).await;
        let page = page.context("cannot list jobs")?;
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() || args.limit.is_some() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    if let Some(limit) = args.limit {
        jobs.truncate(limit);
    }
    match out {
        Output::Json => print_json(&jobs.iter().map(|job| job_json(job, false)).collect())?,
        Output::Table => emit(&output::jobs_table(&jobs))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a job: the `get` JSON shape, or the detail view.
pub fn print_job(job: &pb::Job, out: Output, with_tasks: bool) -> io::Result<()> {
    match out {
        Output::Json => print_json(&job_json(job, with_tasks)),
        Output::Table => emit(&output::job_detail(job)),
    }
}

pub fn print_json(value: &Value) -> io::Result<()> {
    // Serializing a `Value` cannot fail; fall back to compact text if it ever does.
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    emit(&format!("{text}\n"))
}

/// Writes to stdout, returning the error (`println!` would panic on a closed
/// pipe, e.g. `baton list | head`); `main` treats a broken pipe as success.
pub fn emit(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}
