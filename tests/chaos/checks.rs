//! The history checker, run after everything is healed and the fleet has drained:
//! - `lost`: every posted job exists and is COMPLETE with outcome SUCCESS (none lost, none
//!   trashed, none stuck);
//! - `executions`: per task, the executions the steps file records never exceed the job's
//!   claims (one execution per claim at most), nor the logbook's count (RUNNING is stored
//!   before `execute`), and every task of a successful job ran at least once;
//! - `final_changed`: a job's record (with its tasks) is the same at the end as when it was
//!   first seen final;
//! - `listing`: listing (all states, and each state) agrees with what was posted;
//! - `idempotency`: posting again with each idempotency key returns the original job.
//!
//! The judging functions are pure (records in, findings out), so `selfcheck` can show each
//! of them failing on a history made to fail it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tests::chaos::flow::FLOW;

use crate::cli::Cli;
use crate::poster::{post, Posted};
use crate::report::Finding;

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

fn finding(check: &'static str, detail: String) -> Finding {
    Finding { check, detail }
}

/// Parses the steps file (`<key> <task> <pid>` lines); a malformed line is a finding.
pub fn parse_steps(text: &str) -> (Steps, Vec<Finding>) {
    let mut steps = Steps::default();
    let mut found = Vec::new();
    for line in text.lines() {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            [key, task, pid] if pid.parse::<u32>().is_ok() => {
                *steps.by_task.entry((key.to_string(), task.to_string())).or_default() += 1;
                steps.total += 1;
            }
            _ => found.push(finding("executions", format!("malformed line in the steps file: {line:?}"))),
        }
    }
    (steps, found)
}

/// Reads every posted job's record (`baton get`), by id; one that cannot be read is `lost`.
pub fn read_jobs(cli: &Cli, posted: &[Posted]) -> (BTreeMap<String, Value>, Vec<Finding>) {
    let mut jobs = BTreeMap::new();
    let mut found = Vec::new();
    for job in posted {
        match cli.any(&["get", &job.id]) {
            Ok(record) => {
                jobs.insert(job.id.clone(), record);
            }
            Err(error) => found.push(finding("lost", format!("job {} ({}): {error}", job.id, job.key))),
        }
    }
    (jobs, found)
}

/// `lost` and `executions`.
pub fn judge_jobs(posted: &[Posted], jobs: &BTreeMap<String, Value>, steps: &Steps) -> (Totals, Vec<Finding>) {
    let mut totals = Totals { executions: steps.total, ..Totals::default() };
    let mut found = Vec::new();
    let keys: BTreeSet<&str> = posted.iter().map(|p| p.key.as_str()).collect();
    for (key, task) in steps.by_task.keys().filter(|(key, _)| !keys.contains(key.as_str())) {
        found.push(finding("executions", format!("{task} of {key} recorded, but no job was posted with that key")));
    }
    for job in posted {
        let Some(record) = jobs.get(&job.id) else { continue };
        let claims = record["claims"].as_u64().unwrap_or(0);
        totals.claims += claims;
        let (state, outcome) = (record["state"].as_str().unwrap_or("?"), record["outcome"].as_str().unwrap_or("-"));
        if (state, outcome) != ("COMPLETE", "SUCCESS") {
            let detail = format!("job {} ({}) is {state}/{outcome} after the drain, claims {claims}", job.id, job.key);
            found.push(finding("lost", detail));
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
                found.push(finding(
                    "executions",
                    format!("job {} {task} ran {ran} times over {claims} claim(s)", job.id),
                ));
            }
            if ran > logged {
                found.push(finding(
                    "executions",
                    format!("job {} {task} ran {ran} times, the logbook counts {logged}", job.id),
                ));
            }
            if ran == 0 && outcome == "SUCCESS" {
                found.push(finding(
                    "executions",
                    format!("job {} succeeded but {task} never recorded an execution", job.id),
                ));
            }
        }
    }
    (totals, found)
}

/// `final_changed`: every snapshot taken when a job was first seen final matches its record now.
pub fn judge_finals(first_final: &BTreeMap<String, Value>, jobs: &BTreeMap<String, Value>) -> Vec<Finding> {
    let mut found = Vec::new();
    for (id, then) in first_final {
        match jobs.get(id) {
            Some(now) if now == then => {}
            Some(now) => found
                .push(finding("final_changed", format!("job {id} changed after it was final: then {then}, now {now}"))),
            None => found.push(finding("final_changed", format!("job {id} was final, now it cannot be read"))),
        }
    }
    found
}

/// `listing`: a full listing (`baton list` JSON) holds each posted job once, with its key, COMPLETE, and nothing else.
pub fn judge_listing(posted: &[Posted], listed: &[Value]) -> Vec<Finding> {
    let expected: BTreeMap<&str, &str> = posted.iter().map(|p| (p.id.as_str(), p.key.as_str())).collect();
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for job in listed {
        let (id, key) = (job["id"].as_str().unwrap_or("?"), job["idempotency_key"].as_str());
        if !seen.insert(id) {
            found.push(finding("listing", format!("job {id} listed twice")));
        }
        match expected.get(id) {
            None => found.push(finding("listing", format!("job {id} (key {key:?}) is listed but was never posted"))),
            Some(posted_key) if key != Some(*posted_key) => {
                found.push(finding("listing", format!("job {id} listed with key {key:?}, posted with {posted_key:?}")))
            }
            Some(_) if job["state"].as_str() != Some("COMPLETE") => {
                found.push(finding("listing", format!("job {id} listed as {}", job["state"])))
            }
            Some(_) => {}
        }
    }
    for (id, key) in &expected {
        if !seen.contains(id) {
            found.push(finding("listing", format!("job {id} ({key}) was posted but is not listed")));
        }
    }
    found
}

/// `listing` on the fleet: the full listing, then each state's listing by its count.
pub fn check_listing(cli: &Cli, posted: &[Posted]) -> Vec<Finding> {
    let mut found = match cli.any(&["list", "--flow", FLOW]) {
        Ok(Value::Array(jobs)) => judge_listing(posted, &jobs),
        Ok(other) => vec![finding("listing", format!("`baton list` printed no array: {other}"))],
        Err(error) => vec![finding("listing", error)],
    };
    for (state, want) in [("complete", posted.len()), ("claimed", 0), ("unclaimed", 0), ("trashed", 0)] {
        match cli.any(&["list", "--state", state, "--flow", FLOW]) {
            Ok(Value::Array(jobs)) if jobs.len() == want => {}
            Ok(Value::Array(jobs)) => {
                found.push(finding("listing", format!("{} job(s) listed {state}, expected {want}", jobs.len())))
            }
            Ok(other) => {
                found.push(finding("listing", format!("`baton list --state {state}` printed no array: {other}")))
            }
            Err(error) => found.push(finding("listing", error)),
        }
    }
    found
}

/// `idempotency`: each key posted again (same inputs, as a retry would) returns its original job.
pub fn check_reposts(cli: &Cli, posted: &[Posted]) -> Vec<Finding> {
    let mut found = Vec::new();
    for job in posted {
        match post(cli, &job.key, job.steps, job.step_ms) {
            Ok(id) if id == job.id => {}
            Ok(id) => found
                .push(finding("idempotency", format!("key {} posted again gave job {id}, not {}", job.key, job.id))),
            Err(error) => {
                found.push(finding("idempotency", format!("key {} could not be posted again: {error}", job.key)))
            }
        }
    }
    found
}
