//! One function per `baton` subcommand, over a connected [`Client`].

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use proto::{pb, Client, ClientError};
use serde_json::{Map, Value};

use super::follow::{follow, Progress};
use super::output::{self, job_json};
use super::store::build_store;
use super::{Command, ListArgs, Output, PostArgs, EXIT_JOB_FAILED};
use crate::api::convert::state_to_pb;

/// Connects to the first of `endpoints` (comma-separated: several conductors of one
/// fleet) that answers, in order, with a message that says what to do when none does.
/// A malformed endpoint is refused at once, before any is tried.
pub async fn connect(endpoints: &str) -> anyhow::Result<Client> {
    let list: Vec<&str> = endpoints.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if list.is_empty() {
        return Err(anyhow!("no endpoint given: set --endpoint or BATON_ENDPOINT"));
    }
    for endpoint in &list {
        if let Err(e) = tonic::transport::Endpoint::from_shared(endpoint.to_string()) {
            return Err(anyhow!("invalid endpoint {endpoint:?}: {e}"));
        }
    }
    for endpoint in &list {
        match Client::connect(*endpoint).await {
            Ok(client) => return Ok(client),
            Err(ClientError::Connect { .. }) => tracing::debug!(endpoint, "endpoint does not answer; trying the next"),
            Err(other) => return Err(anyhow!(other)),
        }
    }
    Err(anyhow!(
        "cannot reach baton at {}: is a conductor running? (set --endpoint or BATON_ENDPOINT)",
        list.join(", ")
    ))
}

/// Runs every subcommand but `demo` against `endpoint`.
pub async fn dispatch(endpoint: &str, command: Command, out: Output) -> anyhow::Result<ExitCode> {
    if let Command::Post(args) = command {
        // Read and check the store before anything else: a bad file posts nothing,
        // and says so even when no conductor is running.
        let store = build_store(args.store_file.as_deref(), &args.store)?;
        let client = connect(endpoint).await?;
        return post(&client, args, store, out).await;
    }
    let client = &connect(endpoint).await?;
    match command {
        Command::Post(_) => Err(anyhow!("post is handled above")),
        Command::Get { id } => {
            let job = client.get_job(&id).await.with_context(|| format!("cannot get job {id}"))?;
            print_job(&job, out, true)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List(args) => list(client, args, out).await,
        Command::Watch { id } => watch(client, &id, out).await,
        Command::Cancel { id } => {
            let job = client.cancel_job(&id).await.with_context(|| format!("cannot cancel job {id}"))?;
            print_job(&job, out, true)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Flows => {
            let flows = client.list_flows().await.context("cannot list flows")?;
            match out {
                Output::Json => print_json(&flows.iter().map(output::flow_json).collect())?,
                Output::Table => emit(&output::flows_table(&flows))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Conductors => {
            let conductors = client.list_conductors().await.context("cannot list conductors")?;
            match out {
                Output::Json => print_json(&conductors.iter().map(output::conductor_json).collect())?,
                Output::Table => emit(&output::conductors_table(&conductors))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Drain { name, undo } => {
            let conductor = client.drain(&name, !undo).await.with_context(|| format!("cannot drain {name}"))?;
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
        Command::Demo(_) => Err(anyhow!("demo runs its own conductor; it is not dispatched to an endpoint")),
    }
}

async fn post(client: &Client, args: PostArgs, store: Map<String, Value>, out: Output) -> anyhow::Result<ExitCode> {
    let request = pb::PostJobRequest {
        flow: args.flow.clone(),
        store_json: Value::Object(store).to_string(),
        priority: args.priority,
        idempotency_key: args.idempotency_key,
    };
    let job = client.post_job(request).await.with_context(|| format!("cannot post a {} job", args.flow))?;
    if !args.wait {
        match out {
            Output::Json => print_json(&job_json(&job, false))?,
            Output::Table => emit(&format!("{}\n", job.id))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("posted job {} ({})", job.id, job.flow);
    finish(client, &job.id, out).await
}

async fn watch(client: &Client, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    finish(client, id, out).await
}

/// Follows a job to its end, prints it, and turns its outcome into the exit status.
pub async fn finish(client: &Client, id: &str, out: Output) -> anyhow::Result<ExitCode> {
    let mut progress = Progress::new(false);
    let job = follow(client, id, &mut progress).await?;
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

async fn list(client: &Client, args: ListArgs, out: Output) -> anyhow::Result<ExitCode> {
    let request = pb::ListJobsRequest {
        state: args.state.map_or(pb::JobState::Unspecified, state_to_pb) as i32,
        flow: args.flow.unwrap_or_default(),
        page_size: args.limit.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        page_token: String::new(),
    };
    let jobs = match args.limit {
        Some(limit) => {
            let mut jobs = client.list_jobs(request).await.context("cannot list jobs")?.jobs;
            jobs.truncate(limit);
            jobs
        }
        None => client.list_all_jobs(request).await.context("cannot list jobs")?,
    };
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

fn print_json(value: &Value) -> io::Result<()> {
    // Serializing a `Value` cannot fail; fall back to compact text if it ever does.
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    emit(&format!("{text}\n"))
}

/// Writes to stdout, returning the error (`println!` would panic on a closed
/// pipe, e.g. `baton list | head`); `main` treats a broken pipe as success.
fn emit(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}
