//! Conversions between the board's types and the `baton.v1` wire messages.

use flows::{AtomDetail, AtomKind, Failure, FlowFactory, InputSpec};
use jobboard::{ConductorInfo, Job, JobState, Outcome};
use proto::pb;

use crate::local::LocalStatus;

/// The wire form of a job, with the given tasks (see [`tasks_to_pb`]).
pub fn job_to_pb(job: &Job, tasks: Vec<pb::Task>) -> pb::Job {
    pb::Job {
        id: job.id.to_string(),
        flow: job.flow.clone(),
        store_json: serde_json::Value::Object(job.store.clone()).to_string(),
        priority: job.priority,
        idempotency_key: job.idempotency_key.clone(),
        state: state_to_pb(job.state) as i32,
        owner: job.owner.clone(),
        claims: job.claims,
        outcome: job.outcome.map_or(pb::Outcome::Unspecified, outcome_to_pb) as i32,
        failure: job.failure.as_ref().map(failure_to_pb),
        trash_reason: job.trash_reason.clone(),
        cancel_requested: job.cancel_requested,
        created_at_ms: job.created_at,
        finished_at_ms: job.finished_at,
        tasks,
        flow_version: job.pin.as_ref().map(|p| p.version),
        flow_hash: job.pin.as_ref().map(|p| p.hash.clone()),
        warnings: Vec::new(),
        outputs_json: String::new(),
        requires: job.requires.clone(),
        deadline_ms: job.deadline,
        rerun_of: job.rerun_of.map(|id| id.to_string()),
        suspend_requested: job.suspend_requested,
        actions: job
            .actions
            .iter()
            .map(|a| pb::OperatorAction { action: a.action.clone(), by: a.by.clone(), at_ms: a.at })
            .collect(),
    }
}

/// The wire form of a job's atoms (see `outline::merge`).
pub fn tasks_to_pb(atoms: &[AtomDetail]) -> Vec<pb::Task> {
    atoms.iter().map(task_to_pb).collect()
}

fn task_to_pb(atom: &AtomDetail) -> pb::Task {
    let (kind, attempts) = match atom.kind {
        AtomKind::Task => ("task", atom.executions),
        // A reverted retry controller forgets its attempts; its executions still count them.
        AtomKind::Retry => ("retry", u32::try_from(atom.attempts.len()).unwrap_or(u32::MAX).max(atom.executions)),
    };
    pb::Task {
        name: atom.name.clone(),
        kind: kind.to_owned(),
        state: atom.state.as_str().to_owned(),
        attempts,
        executions: atom.executions,
        failure: atom.failure.as_ref().map(failure_to_pb),
        result_json: atom.result.as_ref().map(|result| result.to_string()),
        parked_deadline_ms: atom.park().filter(|_| atom.state == flows::AtomState::Parked).map(|p| p.deadline),
        completed_by: completed_by(atom).map(|c| c.who),
        completed_at_ms: completed_by(atom).map(|c| c.at),
    }
}

/// An operator's override recorded on the atom, if any.
fn completed_by(atom: &AtomDetail) -> Option<flows::CompletedBy> {
    atom.meta.get(flows::park::COMPLETED_BY).and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The wire form of a failure and its cause chain.
pub fn failure_to_pb(failure: &Failure) -> pb::Failure {
    pb::Failure {
        kind: failure.kind.clone(),
        message: failure.message.clone(),
        details_json: failure.details.as_ref().map(ToString::to_string).unwrap_or_default(),
        cause: failure.cause.as_deref().map(|cause| Box::new(failure_to_pb(cause))),
    }
}

/// The wire form of a conductor.
pub fn conductor_to_pb(info: &ConductorInfo) -> pb::Conductor {
    pb::Conductor {
        name: info.name.clone(),
        address: info.address.clone(),
        jobs: info.jobs,
        since_ms: info.since,
        draining: info.draining,
        task_kinds: info.task_kinds.clone(),
        rust_flows: info.rust_flows.clone(),
        features: info.features.clone(),
    }
}

/// A conductor's own status, with its board's availability now (`Err` naming why not).
pub fn local_status_to_pb(local: &LocalStatus, board: Result<impl Sized, String>) -> pb::ConductorStatus {
    let (sessions_started, sessions_lost) = local.sessions();
    let (board, board_cause) = match board {
        Ok(_) => (pb::BoardStatus::Available, String::new()),
        Err(cause) => (pb::BoardStatus::Unavailable, cause),
    };
    let running = local
        .running_jobs()
        .into_iter()
        .map(|(id, job)| pb::RunningJob {
            id: id.to_string(),
            flow: job.flow,
            claim_token: job.token,
            claimed_ms: job.claimed_ms,
        })
        .collect();
    pb::ConductorStatus {
        name: local.name.clone(),
        board: board.into(),
        board_cause,
        sessions_started,
        sessions_lost,
        draining: local.drain.is_draining(),
        running,
        started_ms: local.started_ms,
    }
}

/// The wire form of a flow factory: its inputs with their types and rules.
pub fn flow_to_pb(factory: &FlowFactory) -> pb::Flow {
    let schema = factory.schema();
    let named = |required: bool| {
        schema.iter().filter(|(_, spec)| spec.is_required() == required).map(|(name, _)| name.to_owned()).collect()
    };
    pb::Flow {
        name: factory.name().to_owned(),
        required_inputs: named(true),
        optional_inputs: named(false),
        description: factory.description().to_owned(),
        inputs: schema
            .iter()
            .map(|(name, spec)| pb::Input { name: name.to_owned(), spec: Some(input_spec_to_pb(spec)) })
            .collect(),
        kind: "rust".to_owned(),
        version: 0,
        runs_here: true,
    }
}

/// The wire form of a stored flow version; `with_source` includes its text.
pub fn definition_to_pb(def: &jobboard::FlowVersion, current: bool, with_source: bool) -> pb::FlowDefinition {
    pb::FlowDefinition {
        name: def.name.clone(),
        version: def.version,
        hash: def.hash.clone(),
        source: if with_source { def.source.clone() } else { String::new() },
        applied_ms: def.applied_ms,
        current,
    }
}

/// The wire form of an input's type and rules.
pub fn input_spec_to_pb(spec: &InputSpec) -> pb::InputSpec {
    pb::InputSpec {
        r#type: spec.ty.as_str().to_owned(),
        default_json: spec.default.as_ref().map(ToString::to_string),
        enum_json: spec.enum_values.iter().map(ToString::to_string).collect(),
        minimum: spec.minimum,
        maximum: spec.maximum,
        min_items: spec.min_items.map(|n| u64::try_from(n).unwrap_or(u64::MAX)),
        items: spec.items.as_deref().map(|items| Box::new(input_spec_to_pb(items))),
        pattern: spec.pattern.as_ref().map(|p| p.as_str().to_owned()),
        description: spec.description.clone(),
    }
}

/// The wire enum of a job state.
pub fn state_to_pb(state: JobState) -> pb::JobState {
    match state {
        JobState::Unclaimed => pb::JobState::Unclaimed,
        JobState::Claimed => pb::JobState::Claimed,
        JobState::Complete => pb::JobState::Complete,
        JobState::Trashed => pb::JobState::Trashed,
        JobState::Parked => pb::JobState::Parked,
        JobState::Suspended => pb::JobState::Suspended,
    }
}

/// The board's job state for a wire enum; `None` for UNSPECIFIED (any state).
pub fn state_from_pb(state: pb::JobState) -> Option<JobState> {
    match state {
        pb::JobState::Unspecified => None,
        pb::JobState::Unclaimed => Some(JobState::Unclaimed),
        pb::JobState::Claimed => Some(JobState::Claimed),
        pb::JobState::Complete => Some(JobState::Complete),
        pb::JobState::Trashed => Some(JobState::Trashed),
        pb::JobState::Parked => Some(JobState::Parked),
        pb::JobState::Suspended => Some(JobState::Suspended),
    }
}

/// The wire enum of an outcome.
pub fn outcome_to_pb(outcome: Outcome) -> pb::Outcome {
    match outcome {
        Outcome::Success => pb::Outcome::Success,
        Outcome::Reverted => pb::Outcome::Reverted,
        Outcome::Failure => pb::Outcome::Failure,
        Outcome::Cancelled => pb::Outcome::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use flows::{AtomState, Pattern};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn job() -> Job {
        Job {
            id: Uuid::new_v4(),
            flow: "chain".into(),
            store: json!({"steps": 3, "big": 12345678901234567890u64}).as_object().cloned().unwrap_or_default(),
            priority: 2,
            idempotency_key: Some("k".into()),
            created_at: 1000,
            state: JobState::Complete,
            owner: None,
            claims: 1,
            outcome: Some(Outcome::Reverted),
            failure: Some(Failure::task("boom").with_cause(Failure::new("Timeout", "slow"))),
            trash_reason: None,
            cancel_requested: false,
            finished_at: Some(2000),
            pin: Some(jobboard::FlowPin { version: 3, hash: "abc".into() }),
            requires: vec!["file-flow".into(), "parking".into()],
            deadline: None,
            rerun_of: None,
            suspend_requested: false,
            claim_base: 0,
            actions: Vec::new(),
        }
    }

    #[test]
    fn job_fields_survive_the_wire_form() {
        let job = job();
        let wire = job_to_pb(&job, Vec::new());
        assert_eq!(wire.id, job.id.to_string());
        assert_eq!(wire.state(), pb::JobState::Complete);
        assert_eq!(wire.outcome(), pb::Outcome::Reverted);
        let store: serde_json::Value = serde_json::from_str(&wire.store_json).unwrap();
        assert_eq!(store, serde_json::Value::Object(job.store.clone()), "store must be lossless");
        let failure = wire.failure.unwrap();
        assert_eq!(failure.message, "boom");
        assert_eq!(failure.cause.unwrap().kind, "Timeout");
        assert_eq!(wire.finished_at_ms, Some(2000));
        assert_eq!((wire.flow_version, wire.flow_hash.as_deref()), (Some(3), Some("abc")), "the pin is shown");
        assert_eq!(wire.requires, job.requires, "the required features are shown");
        assert!(wire.tasks.is_empty());
    }

    #[test]
    fn tasks_carry_state_attempts_and_executions() {
        let mut task = AtomDetail::new("step-1", AtomKind::Task);
        task.state = AtomState::Success;
        task.executions = 2;
        let mut retry = AtomDetail::new("r", AtomKind::Retry);
        retry.executions = 3;
        retry.attempts = vec![flows::Attempt { value: serde_json::Value::Null, failures: Default::default() }];
        let tasks = tasks_to_pb(&[task, retry]);
        assert_eq!((tasks[0].kind.as_str(), tasks[0].state.as_str()), ("task", "SUCCESS"));
        assert_eq!((tasks[0].attempts, tasks[0].executions), (2, 2));
        assert_eq!((tasks[1].kind.as_str(), tasks[1].attempts, tasks[1].executions), ("retry", 3, 3));
    }

    #[test]
    fn input_specs_carry_their_type_and_rules_on_the_wire() {
        // The reading side (what a client makes of `ListFlows`) is the CLI's: baton-cli/src/inputs.rs.
        let spec = InputSpec::integer().minimum(1.0).maximum(10.0).default(serde_json::json!(3)).describe("steps");
        let wire = input_spec_to_pb(&spec);
        assert_eq!((wire.r#type.as_str(), wire.default_json.as_deref()), ("integer", Some("3")));
        assert_eq!((wire.minimum, wire.maximum, wire.description.as_str()), (Some(1.0), Some(10.0), "steps"));
        let spec = InputSpec::array(InputSpec::string().pattern(Pattern::new("^n[0-9]+$").unwrap())).min_items(1);
        let wire = input_spec_to_pb(&spec);
        let items = wire.items.as_deref().expect("array items on the wire");
        assert_eq!((wire.r#type.as_str(), wire.min_items), ("array", Some(1)));
        assert_eq!((items.r#type.as_str(), items.pattern.as_deref()), ("string", Some("^n[0-9]+$")));
        let wire = input_spec_to_pb(&InputSpec::string().one_of([serde_json::json!("a"), serde_json::json!("b")]));
        assert_eq!(wire.enum_json, ["\"a\"", "\"b\""]);
        assert_eq!(input_spec_to_pb(&InputSpec::any()).r#type, "any");
    }

    #[test]
    fn states_round_trip() {
        for state in [
            JobState::Unclaimed,
            JobState::Claimed,
            JobState::Parked,
            JobState::Suspended,
            JobState::Complete,
            JobState::Trashed,
        ] {
            assert_eq!(state_from_pb(state_to_pb(state)), Some(state));
        }
        assert_eq!(state_from_pb(pb::JobState::Unspecified), None);
    }
}
