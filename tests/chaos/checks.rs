//! The history checker, run after everything is healed and the fleet has drained:
//! - `lost`: every posted job exists and is COMPLETE with outcome SUCCESS (none lost, none
//!   trashed, none stuck);
//! - `executions`: per task, the executions the steps file records never exceed the job's
//!   claims (one execution per claim at most), nor the logbook's count (RUNNING is stored
//!   before `execute`), and every task of a successful job ran at least once;
//! - `final_changed`: a job's record (with its tasks) is the same at the end as when it was
//!   first seen final;
//! - `listing`: listing (all states, and each state) agrees with what was posted;
//! - `idempotency`: posting again with each idempotency key returns the original job, and
//!   creates none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use tests::chaos::flow::{FLOW, STEPS_FILE};

use crate::cli::Cli;
use crate::poster::{post, Posted};
use crate::report::Report;

/// Executions recorded in the steps file, by (key, task).
#[derive(Debug, Default)]
pub struct Steps {
    pub by_task: BTreeMap<(String, String), u64>,
    pub total: u64,
}

/// Totals for the summary line.
#[derive(Debug, Default)]
pub struct Totals {
    pub claims: u64,
    pub executions: u64,
    /// Task executions beyond the first, from the steps file.
    pub reruns: u64,
}

/// Reads `<dir>/steps.log`; a malformed line is a finding.
pub fn read_steps(dir: &Path, report: &Report) -> Steps {
    let path = dir.join(STEPS_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut steps = Steps::default();
    for line in text.lines() {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            [key, task, pid] if pid.parse::<u32>().is_ok() => {
                *steps.by_task.entry((key.to_string(), task.to_string())).or_default() += 1;
                steps.total += 1;
            }
            _ => report.fail("executions", format!("malformed line in {}: {line:?}", path.display())),
        }
    }
    steps
}

/// Reads every posted job's final record (`baton get`), by id.
pub fn read_jobs(cli: &Cli, posted: &[Posted], report: &Report) -> BTreeMap<String, Value> {
    let mut jobs = BTreeMap::new();
    for job in posted {
        match cli.any(&["get", &job.id]) {
            Ok(record) => {
                jobs.insert(job.id.clone(), record);
            }
            Err(error) => report.fail("lost", format!("job {} ({}): {error}", job.id, job.key)),
        }
    }
    jobs
}

/// `lost` and `executions`.
pub fn check_jobs(posted: &[Posted], jobs: &BTreeMap<String, Value>, steps: &Steps, report: &Report) -> Totals {
    let mut totals = Totals { executions: steps.total, ..Totals::default() };
    let keys: BTreeSet<&str> = posted.iter().map(|p| p.key.as_str()).collect();
    for (key, task) in steps.by_task.keys().filter(|(key, _)| !keys.contains(key.as_str())) {
        report.fail("executions", format!("{task} of {key} recorded, but no job was posted with that key"));
    }
    for job in posted {
        let Some(record) = jobs.get(&job.id) else { continue };
        let claims = record["claims"].as_u64().unwrap_or(0);
        totals.claims += claims;
        let (state, outcome) = (record["state"].as_str().unwrap_or("?"), record["outcome"].as_str().unwrap_or("-"));
        if (state, outcome) != ("COMPLETE", "SUCCESS") {
            report.fail(
                "lost",
                format!("job {} ({}) is {state}/{outcome} after the drain, claims {claims}", job.id, job.key),
            );
        }
        let logbook: BTreeMap<&str, u64> = record["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["name"].as_str()?, t["executions"].as_u64()?)))
            .collect();
        for n in 1..=job.steps {
            let task = format!("step-{n}");
            let ran = steps.by_task.get(&(job.key.clone(), task.clone())).copied().unwrap_or(0);
            totals.reruns += ran.saturating_sub(1);
            let logged = logbook.get(task.as_str()).copied().unwrap_or(0);
            if ran > claims {
                report.fail("executions", format!("job {} {task} ran {ran} times over {claims} claim(s)", job.id));
            }
            if ran > logged {
                report
                    .fail("executions", format!("job {} {task} ran {ran} times, the logbook counts {logged}", job.id));
            }
            if ran == 0 && outcome == "SUCCESS" {
                report.fail("executions", format!("job {} succeeded but {task} never recorded an execution", job.id));
            }
        }
    }
    totals
}

/// `final_changed`: every snapshot taken when a job was first seen final matches its record now.
pub fn check_finals(first_final: &BTreeMap<String, Value>, jobs: &BTreeMap<String, Value>, report: &Report) {
    for (id, then) in first_final {
        match jobs.get(id) {
            Some(now) if now == then => {}
            Some(now) => {
                report.fail("final_changed", format!("job {id} changed after it was final: then {then}, now {now}"))
            }
            None => report.fail("final_changed", format!("job {id} was final, now it cannot be read")),
        }
    }
}

/// `listing`: the full listing and each state's listing agree with what was posted.
pub fn check_listing(cli: &Cli, posted: &[Posted], report: &Report) {
    let expected: BTreeMap<&str, &str> = posted.iter().map(|p| (p.id.as_str(), p.key.as_str())).collect();
    let listed = match cli.any(&["list", "--flow", FLOW]) {
        Ok(Value::Array(jobs)) => jobs,
        Ok(other) => return report.fail("listing", format!("`baton list` printed no array: {other}")),
        Err(error) => return report.fail("listing", error),
    };
    let mut seen = BTreeSet::new();
    for job in &listed {
        let (id, key) = (job["id"].as_str().unwrap_or("?"), job["idempotency_key"].as_str());
        if !seen.insert(id) {
            report.fail("listing", format!("job {id} listed twice"));
        }
        match expected.get(id) {
            None => report.fail("listing", format!("job {id} (key {key:?}) is listed but was never posted")),
            Some(posted_key) if key != Some(*posted_key) => {
                report.fail("listing", format!("job {id} listed with key {key:?}, posted with {posted_key:?}"))
            }
            Some(_) if job["state"].as_str() != Some("COMPLETE") => {
                report.fail("listing", format!("job {id} listed as {}", job["state"]))
            }
            Some(_) => {}
        }
    }
    for (id, key) in &expected {
        if !seen.contains(id) {
            report.fail("listing", format!("job {id} ({key}) was posted but is not listed"));
        }
    }
    for (state, want) in [("complete", expected.len()), ("claimed", 0), ("unclaimed", 0), ("trashed", 0)] {
        match cli.any(&["list", "--state", state, "--flow", FLOW]) {
            Ok(Value::Array(jobs)) if jobs.len() == want => {}
            Ok(Value::Array(jobs)) => {
                report.fail("listing", format!("{} job(s) listed {state}, expected {want}", jobs.len()))
            }
            Ok(other) => report.fail("listing", format!("`baton list --state {state}` printed no array: {other}")),
            Err(error) => report.fail("listing", error),
        }
    }
}

/// `idempotency`: each key posted again returns its original job.
pub fn check_reposts(cli: &Cli, posted: &[Posted], report: &Report) {
    for job in posted {
        match post(cli, &job.key, job.steps, job.step_ms) {
            Ok(id) if id == job.id => {}
            Ok(id) => report.fail("idempotency", format!("key {} posted again gave job {id}, not {}", job.key, job.id)),
            Err(error) => report.fail("idempotency", format!("key {} could not be posted again: {error}", job.key)),
        }
    }
}
