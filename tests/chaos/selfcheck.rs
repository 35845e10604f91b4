//! The checker checks itself at the start of every run: each judging function must pass a
//! sound history and fail one made to break its rule. A checker that cannot fail would let
//! every run pass; a failure here is a `checker` finding.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::checks::{judge_finals, judge_jobs, judge_listing, parse_steps};
use crate::owners::{disagreements, Running};
use crate::poster::Posted;
use crate::report::{Finding, Report};

/// Runs every case; mistakes of the checker go to `report` as `checker` findings.
pub fn run(report: &Report) {
    let posted = vec![Posted { key: "k1".into(), id: "j1".into(), steps: 2, step_ms: 100 }];
    let record = |state: &str, outcome: &str, claims: u64, executions: u64| {
        let task = |name: &str| json!({"name": name, "state": "SUCCESS", "executions": executions});
        json!({"id": "j1", "state": state, "outcome": outcome, "claims": claims, "tasks": [task("step-1"), task("step-2")]})
    };
    let jobs = |record: Value| BTreeMap::from([("j1".to_string(), record)]);
    let steps = |text: &str| parse_steps(text).0;
    let sound = jobs(record("COMPLETE", "SUCCESS", 2, 2));
    let once = steps("k1 step-1 7\nk1 step-2 7\n");
    let rerun = steps("k1 step-1 7\nk1 step-1 8\nk1 step-2 8\n");

    let mut expect = |case: &str, found: Vec<Finding>, check: Option<&str>| {
        let checks: BTreeSet<&str> = found.iter().map(|f| f.check).collect();
        let right = match check {
            None => checks.is_empty(),
            Some(check) => checks.len() == 1 && checks.contains(check),
        };
        if !right {
            report.fail("checker", format!("{case}: expected {check:?}, the checker found {found:?}"));
        }
    };
    expect("a sound history", judge_jobs(&posted, &sound, &once).1, None);
    expect("a rerun within the claims", judge_jobs(&posted, &sound, &rerun).1, None);
    expect("a trashed job", judge_jobs(&posted, &jobs(record("TRASHED", "-", 2, 2)), &once).1, Some("lost"));
    expect("a job left claimed", judge_jobs(&posted, &jobs(record("CLAIMED", "-", 2, 2)), &once).1, Some("lost"));
    expect(
        "more runs than claims",
        judge_jobs(&posted, &jobs(record("COMPLETE", "SUCCESS", 1, 2)), &rerun).1,
        Some("executions"),
    );
    expect(
        "more runs than the logbook",
        judge_jobs(&posted, &jobs(record("COMPLETE", "SUCCESS", 2, 1)), &rerun).1,
        Some("executions"),
    );
    expect("a step that never ran", judge_jobs(&posted, &sound, &steps("k1 step-1 7\n")).1, Some("executions"));
    expect(
        "a step of no job",
        judge_jobs(&posted, &sound, &steps("k1 step-1 7\nk1 step-2 7\nk9 step-1 7\n")).1,
        Some("executions"),
    );
    expect("a torn line", parse_steps("k1 step-1 7\nk1 st").1, Some("executions"));

    let changed = jobs(record("COMPLETE", "SUCCESS", 3, 2));
    expect("a final record unchanged", judge_finals(&sound, &sound), None);
    expect("a final record changed", judge_finals(&sound, &changed), Some("final_changed"));

    let listed = |id: &str, key: &str, state: &str| json!({"id": id, "idempotency_key": key, "state": state});
    expect("a sound listing", judge_listing(&posted, &[listed("j1", "k1", "COMPLETE")]), None);
    expect("a missing job", judge_listing(&posted, &[]), Some("listing"));
    expect(
        "an extra job",
        judge_listing(&posted, &[listed("j1", "k1", "COMPLETE"), listed("j2", "k1", "COMPLETE")]),
        Some("listing"),
    );
    expect(
        "a job listed twice",
        judge_listing(&posted, &[listed("j1", "k1", "COMPLETE"), listed("j1", "k1", "COMPLETE")]),
        Some("listing"),
    );
    expect("a job listed unfinished", judge_listing(&posted, &[listed("j1", "k1", "CLAIMED")]), Some("listing"));

    let runs = |pairs: &[(&str, &str)]| -> Running {
        let mut running = Running::new();
        for (name, job) in pairs {
            running.entry(name.to_string()).or_default().insert(job.to_string());
        }
        running
    };
    let owners = |case: &str, before: Running, board: Value, after: Running, agree: bool| {
        if disagreements(&before, &board, &after).is_empty() != agree {
            report.fail("checker", format!("owners, {case}: expected agreement {agree}"));
        }
    };
    let claimed_by_a = json!([{"id": "j1", "owner": "a"}]);
    owners("owner runs its job", runs(&[("a", "j1")]), claimed_by_a.clone(), runs(&[("a", "j1")]), true);
    owners("claimed while the board was read", runs(&[]), claimed_by_a.clone(), runs(&[("a", "j1")]), true);
    owners("finished while the board was read", runs(&[("a", "j1")]), json!([]), runs(&[]), true);
    owners("claimed by a conductor not running it", runs(&[("b", "j1")]), claimed_by_a, runs(&[("b", "j1")]), false);
    owners("run without a claim", runs(&[("a", "j1")]), json!([]), runs(&[("a", "j1")]), false);
}
