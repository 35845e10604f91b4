//! What the CLI prints: JSON shapes that scripts rely on, and tables for people.
//!
//! JSON shapes (stable): a job is an object with `id`, `flow`, `state`,
//! `owner`, `outcome`, `claims`, `priority`, `store`, ... and, from `get`,
//! `tasks` (a list of `{name, kind, state, attempts, executions, failure, result}`); a
//! conductor is `{name, address, jobs, since, draining}`; a flow is `{name,
//! required, optional, description, inputs}`, each input `{name, type, required}`
//! plus the rules it has (`default`, `enum`, `minimum`, `maximum`, `min_items`,
//! `items`, `pattern`, `description`), named as in a flow file.

use proto::pb;
use serde_json::{json, Map, Value};

use comfy_table::{ContentArrangement, Table};

use crate::inputs::input_spec_from_pb;

pub use crate::time::format_time;

/// A job state's name without the wire prefix: `COMPLETE`.
pub fn state_name(job: &pb::Job) -> &'static str {
    state_text(job.state())
}

/// A wire job state's name: `COMPLETE`.
pub fn state_text(state: pb::JobState) -> &'static str {
    match state {
        pb::JobState::Unspecified => "UNKNOWN",
        pb::JobState::Unclaimed => "UNCLAIMED",
        pb::JobState::Claimed => "CLAIMED",
        pb::JobState::Complete => "COMPLETE",
        pb::JobState::Trashed => "TRASHED",
        pb::JobState::Parked => "PARKED",
        pb::JobState::Suspended => "SUSPENDED",
    }
}

/// An outcome's name without the wire prefix, `None` while the job runs.
pub fn outcome_name(job: &pb::Job) -> Option<&'static str> {
    match job.outcome() {
        pb::Outcome::Unspecified => None,
        pb::Outcome::Success => Some("SUCCESS"),
        pb::Outcome::Reverted => Some("REVERTED"),
        pb::Outcome::Failure => Some("FAILURE"),
        pb::Outcome::Cancelled => Some("CANCELLED"),
    }
}

/// Whether the job is over (COMPLETE or TRASHED).
pub fn is_finished(job: &pb::Job) -> bool {
    matches!(job.state(), pb::JobState::Complete | pb::JobState::Trashed)
}

/// Whether the job ended COMPLETE with SUCCESS.
pub fn succeeded(job: &pb::Job) -> bool {
    job.state() == pb::JobState::Complete && job.outcome() == pb::Outcome::Success
}

/// Tasks finished (SUCCESS or IGNORE) and tasks in all; retry controllers are not counted.
pub fn progress(job: &pb::Job) -> (usize, usize) {
    let tasks = job.tasks.iter().filter(|t| t.kind != "retry");
    let (done, total) = tasks.fold((0, 0), |(done, total), t| {
        (done + usize::from(matches!(t.state.as_str(), "SUCCESS" | "IGNORE")), total + 1)
    });
    (done, total)
}

/// The JSON form of a job; `tasks` only when asked (the `get` shape).
pub fn job_json(job: &pb::Job, with_tasks: bool) -> Value {
    let store: Value = serde_json::from_str(&job.store_json).unwrap_or_else(|_| Value::String(job.store_json.clone()));
    let mut value = json!({
        "id": job.id,
        "flow": job.flow,
        "state": state_name(job),
        "owner": job.owner,
        "outcome": outcome_name(job),
        "claims": job.claims,
        "priority": job.priority,
        "idempotency_key": job.idempotency_key,
        "store": store,
        "created_at": job.created_at_ms,
        "finished_at": job.finished_at_ms,
        "failure": job.failure.as_ref().map(failure_json),
        "trash_reason": job.trash_reason,
        "cancel_requested": job.cancel_requested,
    });
    if with_tasks {
        value["tasks"] = job.tasks.iter().map(task_json).collect();
        value["outputs"] = serde_json::from_str(&job.outputs_json).unwrap_or_else(|_| json!({}));
    }
    // Fields added with flow files: present only where they say something, so the
    // shapes scripts already read are unchanged for Rust flows.
    if let Some(version) = job.flow_version {
        value["flow_version"] = json!(version);
        value["flow_hash"] = json!(job.flow_hash);
    }
    if !job.requires.is_empty() {
        value["requires"] = json!(job.requires);
    }
    if !job.warnings.is_empty() {
        value["warnings"] = json!(job.warnings);
    }
    // Operators' controls: likewise only where they say something.
    if let Some(deadline) = job.deadline_ms {
        value["deadline"] = json!(deadline);
    }
    if let Some(rerun_of) = &job.rerun_of {
        value["rerun_of"] = json!(rerun_of);
    }
    if job.suspend_requested {
        value["suspend_requested"] = json!(true);
    }
    if !job.actions.is_empty() {
        value["actions"] = job.actions.iter().map(|a| json!({"action": a.action, "by": a.by, "at": a.at_ms})).collect();
    }
    value
}

fn task_json(task: &pb::Task) -> Value {
    json!({
        "name": task.name,
        "kind": task.kind,
        "state": task.state,
        "attempts": task.attempts,
        "executions": task.executions,
        "failure": task.failure.as_ref().map(failure_json),
        "result": task.result_json.as_deref().map(result_json),
        "parked_deadline": task.parked_deadline_ms,
        "completed_by": task.completed_by,
        "completed_at": task.completed_at_ms,
    })
}

/// A task's recorded result: the JSON it is, or its text if it does not parse.
fn result_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A result for a table cell: compact JSON, cut to a readable length.
fn result_cell(text: &str) -> String {
    const WIDTH: usize = 40;
    match text.char_indices().nth(WIDTH) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn failure_json(failure: &pb::Failure) -> Value {
    let details: Option<Value> = (!failure.details_json.is_empty()).then(|| {
        serde_json::from_str(&failure.details_json).unwrap_or_else(|_| Value::String(failure.details_json.clone()))
    });
    json!({
        "kind": failure.kind,
        "message": failure.message,
        "details": details,
        "cause": failure.cause.as_deref().map(failure_json),
    })
}

/// The JSON form of a conductor.
pub fn conductor_json(c: &pb::Conductor) -> Value {
    json!({
        "name": c.name, "address": c.address, "jobs": c.jobs, "since": c.since_ms, "draining": c.draining,
        "task_kinds": c.task_kinds, "rust_flows": c.rust_flows, "features": c.features,
    })
}

/// The JSON form of a flow factory.
pub fn flow_json(f: &pb::Flow) -> Value {
    let inputs: Vec<Value> = f
        .inputs
        .iter()
        .map(|input| {
            let mut fields = Map::from_iter([("name".to_owned(), json!(input.name))]);
            fields.extend(input_spec_json(&input.spec.clone().unwrap_or_default()));
            Value::Object(fields)
        })
        .collect();
    json!({
        "name": f.name,
        "required": f.required_inputs,
        "optional": f.optional_inputs,
        "description": f.description,
        "inputs": inputs,
        "kind": f.kind,
        "version": (f.kind == "file").then_some(f.version),
        "runs_here": f.runs_here,
    })
}

/// An input's type and the rules it has, as a flow file writes them.
fn input_spec_json(spec: &pb::InputSpec) -> Map<String, Value> {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    // A bound of 1.0 reads as 1 in a flow file; show it the same way.
    let number = |n: f64| if n.fract() == 0.0 && n.abs() < 1e15 { json!(n as i64) } else { json!(n) };
    let mut out = Map::new();
    out.insert("type".into(), json!(spec.r#type));
    out.insert("required".into(), json!(spec.default_json.is_none()));
    let optional = [
        ("default", spec.default_json.as_deref().map(parse)),
        (
            "enum",
            Some(spec.enum_json.iter().map(|v| parse(v)).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .map(Value::Array),
        ),
        ("minimum", spec.minimum.map(number)),
        ("maximum", spec.maximum.map(number)),
        ("min_items", spec.min_items.map(|n| json!(n))),
        ("items", spec.items.as_deref().map(|items| Value::Object(input_spec_json(items)))),
        ("pattern", spec.pattern.as_ref().map(|p| json!(p))),
        ("description", Some(json!(spec.description)).filter(|_| !spec.description.is_empty())),
    ];
    out.extend(optional.into_iter().filter_map(|(key, value)| Some((key.to_owned(), value?))));
    out
}

/// `steps: integer from 1 to 10000`, and `= DEFAULT` for an optional input.
fn input_cell(input: &pb::Input) -> String {
    let spec = input.spec.clone().unwrap_or_default();
    let summary = input_spec_from_pb(&spec).map_or_else(|_| spec.r#type.clone(), |s| s.summary());
    match &spec.default_json {
        Some(default) => format!("{}: {summary} = {default}", input.name),
        None => format!("{}: {summary}", input.name),
    }
}

/// A failure and its causes on one line: `TaskError: boom <- Timeout: slow`.
pub fn failure_line(failure: &pb::Failure) -> String {
    let mut line = format!("{}: {}", failure.kind, failure.message);
    let mut cause = failure.cause.as_deref();
    while let Some(c) = cause {
        line.push_str(&format!(" <- {}: {}", c.kind, c.message));
        cause = c.cause.as_deref();
    }
    line
}

/// A job in full, for people: fields, then the tasks.
pub fn job_detail(job: &pb::Job) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{:<10}{value}\n", format!("{name}:")));
    field("id", &job.id);
    match job.flow_version {
        Some(version) => field("flow", &format!("{} (file, version {version})", job.flow)),
        None => field("flow", &job.flow),
    }
    let state = match outcome_name(job) {
        Some(outcome) => format!("{} ({outcome})", state_name(job)),
        None => state_name(job).to_owned(),
    };
    field("state", &state);
    field("owner", job.owner.as_deref().unwrap_or("-"));
    field("claims", &job.claims.to_string());
    field("priority", &job.priority.to_string());
    field("store", &job.store_json);
    if !job.requires.is_empty() {
        field("requires", &job.requires.join(", "));
    }
    field("created", &format_time(job.created_at_ms));
    if let Some(finished) = job.finished_at_ms {
        field("finished", &format_time(finished));
    }
    if let Some(failure) = &job.failure {
        field("failure", &failure_line(failure));
    }
    if let Some(reason) = &job.trash_reason {
        field("trashed", reason);
    }
    if job.cancel_requested {
        field("cancel", "requested");
    }
    if job.suspend_requested {
        field("suspend", "requested");
    }
    if let Some(deadline) = job.deadline_ms {
        field("deadline", &format_time(deadline));
    }
    if let Some(rerun_of) = &job.rerun_of {
        field("rerun of", rerun_of);
    }
    for action in &job.actions {
        field("operator", &format!("{} by {} at {}", action.action, action.by, format_time(action.at_ms)));
    }
    let outputs: Map<String, Value> = serde_json::from_str(&job.outputs_json).unwrap_or_default();
    if !outputs.is_empty() {
        out.push_str("outputs:\n");
        for (name, value) in &outputs {
            out.push_str(&format!("  {name} = {}\n", result_cell(&value.to_string())));
        }
    }
    if !job.tasks.is_empty() {
        let (done, total) = progress(job);
        out.push_str(&format!("tasks:    {done}/{total} done\n"));
        let rows = job.tasks.iter().map(|t| {
            vec![
                format!("  {}", t.name),
                t.kind.clone(),
                match t.parked_deadline_ms {
                    Some(deadline) => format!("{} until {}", t.state, format_time(deadline)),
                    None => t.state.clone(),
                },
                t.attempts.to_string(),
                t.executions.to_string(),
                t.result_json.as_deref().map(result_cell).unwrap_or_default(),
                t.failure.as_ref().map(failure_line).unwrap_or_default(),
            ]
        });
        out.push_str(&table(&["  TASK", "KIND", "STATE", "ATTEMPTS", "EXECUTIONS", "RESULT", "FAILURE"], rows));
    }
    out
}

/// Jobs as a table.
pub fn jobs_table(jobs: &[pb::Job]) -> String {
    let rows = jobs.iter().map(|j| {
        vec![
            j.id.clone(),
            j.flow.clone(),
            state_name(j).to_owned(),
            outcome_name(j).unwrap_or("-").to_owned(),
            j.owner.clone().unwrap_or_else(|| "-".to_owned()),
            j.claims.to_string(),
            format_time(j.created_at_ms),
        ]
    });
    table(&["ID", "FLOW", "STATE", "OUTCOME", "OWNER", "CLAIMS", "CREATED"], rows)
}

/// Conductors as a table.
pub fn conductors_table(conductors: &[pb::Conductor]) -> String {
    let rows = conductors.iter().map(|c| {
        vec![
            c.name.clone(),
            c.address.clone(),
            c.jobs.to_string(),
            if c.draining { "yes" } else { "no" }.to_owned(),
            format_time(c.since_ms),
        ]
    });
    table(&["NAME", "ADDRESS", "JOBS", "DRAINING", "SINCE"], rows)
}

/// Flows as a table.
pub fn flows_table(flows: &[pb::Flow]) -> String {
    let cells = |f: &pb::Flow, required: bool| {
        let inputs = f.inputs.iter().filter(|i| i.spec.as_ref().is_some_and(|s| s.default_json.is_none()) == required);
        inputs.map(input_cell).collect::<Vec<_>>().join("; ")
    };
    let kind = |f: &pb::Flow| match (f.kind.as_str(), f.runs_here) {
        ("file", true) => format!("file v{}", f.version),
        ("file", false) => format!("file v{} (not here)", f.version),
        _ => "rust".to_owned(),
    };
    let rows =
        flows.iter().map(|f| vec![f.name.clone(), kind(f), cells(f, true), cells(f, false), f.description.clone()]);
    table(&["NAME", "KIND", "REQUIRES", "OPTIONAL", "DESCRIPTION"], rows)
}

/// Left-aligned columns two spaces apart, fitted to the terminal's width when stdout is
/// one (long cells wrap within their column); piped, lines are as long as their cells.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().copied())
        .add_rows(rows);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.lines().map(|line| format!("{}\n", line.trim_end())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> pb::Job {
        pb::Job {
            id: "4b7c".into(),
            flow: "chain".into(),
            store_json: r#"{"steps":2}"#.into(),
            state: pb::JobState::Complete as i32,
            outcome: pb::Outcome::Success as i32,
            claims: 1,
            created_at_ms: 0,
            tasks: vec![
                pb::Task {
                    name: "step-1".into(),
                    kind: "task".into(),
                    state: "SUCCESS".into(),
                    attempts: 1,
                    executions: 1,
                    failure: None,
                    result_json: None,
                    parked_deadline_ms: None,
                    completed_by: None,
                    completed_at_ms: None,
                },
                pb::Task {
                    name: "r".into(),
                    kind: "retry".into(),
                    state: "SUCCESS".into(),
                    attempts: 2,
                    executions: 2,
                    failure: None,
                    result_json: None,
                    parked_deadline_ms: None,
                    completed_by: None,
                    completed_at_ms: None,
                },
                pb::Task {
                    name: "step-2".into(),
                    kind: "task".into(),
                    state: "RUNNING".into(),
                    attempts: 1,
                    executions: 1,
                    failure: None,
                    result_json: None,
                    parked_deadline_ms: None,
                    completed_by: None,
                    completed_at_ms: None,
                },
            ],
            ..pb::Job::default()
        }
    }

    #[test]
    fn get_shape_has_the_documented_keys() {
        let value = job_json(&job(), true);
        for key in ["id", "flow", "state", "owner", "outcome", "claims", "tasks"] {
            assert!(value.get(key).is_some(), "missing {key} in {value}");
        }
        assert_eq!(value["state"], "COMPLETE");
        assert_eq!(value["outcome"], "SUCCESS");
        assert_eq!(value["owner"], Value::Null);
        assert_eq!(value["store"], json!({"steps": 2}));
        let task = &value["tasks"][0];
        for key in ["name", "state", "attempts", "executions"] {
            assert!(task.get(key).is_some(), "missing {key} in {task}");
        }
        assert_eq!(task["executions"], 1);
    }

    #[test]
    fn list_shape_has_no_tasks() {
        let value = job_json(&job(), false);
        assert!(value.get("tasks").is_none());
        assert_eq!(value["id"], "4b7c");
    }

    #[test]
    fn conductor_shape_has_the_documented_keys() {
        let c = pb::Conductor {
            name: "c1".into(),
            address: "127.0.0.1:1".into(),
            jobs: 2,
            since_ms: 5,
            draining: true,
            task_kinds: vec!["noop".into()],
            rust_flows: vec![],
            features: vec!["file-flow".into()],
        };
        assert_eq!(
            conductor_json(&c),
            json!({"name": "c1", "address": "127.0.0.1:1", "jobs": 2, "since": 5, "draining": true,
                   "task_kinds": ["noop"], "rust_flows": [], "features": ["file-flow"]})
        );
    }

    #[test]
    fn progress_counts_tasks_not_retries() {
        assert_eq!(progress(&job()), (1, 2));
    }

    #[test]
    fn running_job_has_no_outcome() {
        let mut j = job();
        j.state = pb::JobState::Claimed as i32;
        j.outcome = pb::Outcome::Unspecified as i32;
        assert_eq!(job_json(&j, false)["outcome"], Value::Null);
        assert!(!is_finished(&j) && !succeeded(&j));
    }

    #[test]
    fn tables_align_columns() {
        let text = table(&["A", "BB"], vec![vec!["long".into(), "x".into()]]);
        assert_eq!(text, "A     BB\nlong  x\n");
    }

    /// `provision-cluster` as `ListFlows` describes it.
    fn provision_cluster() -> pb::Flow {
        let integer = |minimum, maximum| pb::InputSpec {
            r#type: "integer".into(),
            minimum: Some(minimum),
            maximum: Some(maximum),
            ..pb::InputSpec::default()
        };
        let input = |name: &str, spec| pb::Input { name: name.into(), spec: Some(spec) };
        pb::Flow {
            name: "provision-cluster".into(),
            required_inputs: vec!["nodes".into()],
            optional_inputs: vec!["step_ms".into(), "flaky".into()],
            description: "create servers, then configure the cluster".into(),
            inputs: vec![
                input("nodes", pb::InputSpec { description: "servers to create".into(), ..integer(1.0, 1000.0) }),
                input("step_ms", pb::InputSpec { default_json: Some("100".into()), ..integer(0.0, 3_600_000.0) }),
                input(
                    "flaky",
                    pb::InputSpec {
                        r#type: "number".into(),
                        minimum: Some(0.0),
                        default_json: Some("0".into()),
                        ..pb::InputSpec::default()
                    },
                ),
            ],
            kind: "rust".into(),
            version: 0,
            runs_here: true,
        }
    }

    #[test]
    fn flows_show_each_inputs_type_and_rules() {
        let wire = provision_cluster();
        let text = flows_table(std::slice::from_ref(&wire));
        assert!(text.contains("nodes: integer from 1 to 1000"), "{text}");
        assert!(text.contains("step_ms: integer from 0 to 3600000 = 100; flaky: number >= 0 = 0"), "{text}");
        let shown = flow_json(&wire);
        assert_eq!(shown["required"], json!(["nodes"]));
        assert_eq!(
            shown["inputs"][0],
            json!({"name": "nodes", "type": "integer", "required": true, "minimum": 1, "maximum": 1000,
                   "description": "servers to create"})
        );
        assert_eq!((&shown["inputs"][1]["default"], &shown["inputs"][1]["required"]), (&json!(100), &json!(false)));
    }
}
