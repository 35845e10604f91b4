//! `baton complete`: completes a parked task with its callback token, or as an
//! operator's override by job and task. The token is read from the command line
//! and sent once; it is never printed.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use proto::pb;
use proto::pb::complete_task_request::{Outcome, Target};
use serde_json::json;

use crate::args::{CompleteArgs, Output};
use crate::fleet::Fleet;

/// Runs `baton complete`.
pub async fn run(fleet: &Fleet, args: &CompleteArgs, out: Output) -> anyhow::Result<ExitCode> {
    let request = request(args)?;
    let what = match &args.job {
        Some(job) => format!("task {} of job {job}", args.task.as_deref().unwrap_or_default()),
        None => "the parked task".to_owned(),
    };
    let request = &request;
    let now = fleet
        .call(|c| async move { c.complete_task(request.clone()).await })
        .await
        .with_context(|| format!("cannot complete {what}"))?;
    let said = if now { "completed" } else { "already completed with this outcome" };
    let mut stdout = io::stdout().lock();
    match out {
        Output::Json => writeln!(stdout, "{}", json!({ "completed_now": now }))?,
        Output::Table => writeln!(stdout, "{what}: {said}")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The request `args` describe (clap makes sure exactly one target and one outcome are given).
fn request(args: &CompleteArgs) -> anyhow::Result<pb::CompleteTaskRequest> {
    let target = match (&args.token, &args.job, &args.task) {
        (Some(token), _, _) => Target::Token(token.trim().to_owned()),
        (None, Some(job), Some(task)) => Target::Task(pb::TaskRef { job_id: job.clone(), task: task.clone() }),
        _ => return Err(anyhow!("give a token, or --job and --task")),
    };
    let outcome = match (&args.result, &args.result_file, &args.fail) {
        (Some(json), _, _) => Outcome::ResultJson(checked(json, "--result")?),
        (None, Some(path), _) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                io::stdin().read_to_string(&mut text).context("cannot read the result from stdin")?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            }
            Outcome::ResultJson(checked(&text, &path.display().to_string())?)
        }
        (None, None, Some(message)) => Outcome::Failure(message.clone()),
        _ => return Err(anyhow!("give --result, --result-file or --fail")),
    };
    let operator = match &args.job {
        Some(_) => args.operator.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into()),
        None => String::new(),
    };
    Ok(pb::CompleteTaskRequest { target: Some(target), outcome: Some(outcome), operator })
}

/// `text` if it is JSON, else a one-line error naming where it came from.
fn checked(text: &str, from: &str) -> anyhow::Result<String> {
    serde_json::from_str::<serde_json::Value>(text).with_context(|| format!("{from} is not JSON"))?;
    Ok(text.trim().to_owned())
}
