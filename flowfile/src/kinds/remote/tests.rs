//! The `remote` kind: open settings, reserved keys, inputs as keyword arguments,
//! the flow's timeout, and the worker's revert handler as the task's revert.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::{Failure, FlowState};
use serde_json::{json, Value};

use super::{Dispatch, RemoteCall};
use crate::tests::{assert_state, parse, problems, run};
use crate::Kinds;

/// Records every call; `fail_task` makes that task fail.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<RemoteCall>>,
    fail_task: Option<&'static str>,
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, call: RemoteCall) -> Result<Value, Failure> {
        let reverting = call.revert.is_some();
        let task = call.task.clone();
        let inputs = call.inputs.clone();
        self.calls.lock().expect("calls lock").push(call);
        if reverting {
            return Ok(Value::Null);
        }
        if self.fail_task == Some(task.as_str()) {
            return Err(Failure::new("CardDeclined", "no money"));
        }
        Ok(json!({"echo": inputs}))
    }
}

const FILE: &str = r#"
name: pay
inputs:
  customer: {type: string}
flow:
  linear:
    - task: charge
      kind: remote
      requires: [customer]
      with: {task: billing.charge, amount: 5, note: "for ${customer}", schedule_to_start: 2s, heartbeat_timeout: 1s}
      timeout: 30s
      provides: charged
    - task: ship
      kind: remote
      with: {task: shipping.send, what: "${charged.echo.amount}"}
"#;

fn kinds_with(recorder: Arc<Recorder>) -> Kinds {
    Kinds::default_allowed().remote_dispatch(recorder)
}

#[tokio::test]
async fn remote_calls_carry_inputs_as_keyword_arguments_and_the_flow_timeout() {
    let recorder = Arc::new(Recorder::default());
    let kinds = kinds_with(recorder.clone());
    let file = parse(FILE, &kinds);
    let ran = run(&file, json!({"customer": "ada"}), kinds).await;
    assert_state(&ran, FlowState::Success);
    let calls = recorder.calls.lock().expect("calls lock");
    assert_eq!(calls.len(), 2);
    let charge = &calls[0];
    assert_eq!(charge.task, "billing.charge");
    assert_eq!(charge.atom, "charge");
    assert_eq!(charge.attempt, 1);
    assert_eq!(Value::Object(charge.inputs.clone()), json!({"customer": "ada", "amount": 5, "note": "for ada"}));
    assert_eq!(charge.timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(charge.schedule_to_start, Some(std::time::Duration::from_secs(2)));
    assert_eq!(charge.heartbeat_timeout, Some(std::time::Duration::from_secs(1)));
    assert!(charge.revert.is_none());
    assert!(!charge.job.is_nil(), "the job id reaches the dispatcher");
    assert_eq!(Value::Object(calls[1].inputs.clone()), json!({"what": 5}), "a whole reference keeps its type");
}

#[tokio::test]
async fn a_failed_remote_flow_is_reverted_by_the_workers_revert_handlers() {
    let recorder = Arc::new(Recorder { fail_task: Some("shipping.send"), ..Recorder::default() });
    let kinds = kinds_with(recorder.clone());
    let file = parse(FILE, &kinds);
    let ran = run(&file, json!({"customer": "ada"}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    let calls = recorder.calls.lock().expect("calls lock");
    let reverts: Vec<(&str, &Result<Value, Failure>)> =
        calls.iter().filter_map(|c| c.revert.as_ref().map(|r| (c.task.as_str(), r))).collect();
    assert_eq!(reverts.len(), 2, "both tasks reverted: {reverts:?}");
    assert_eq!(reverts[0].0, "shipping.send");
    assert_eq!(reverts[0].1.as_ref().map_err(|f| f.kind.as_str()), Err("CardDeclined"));
    assert_eq!(reverts[1].0, "billing.charge");
    assert_eq!(reverts[1].1.as_ref().ok().and_then(|v| v.pointer("/echo/amount")), Some(&json!(5)));
}

#[tokio::test]
async fn revert_none_keeps_the_worker_out_of_the_revert() {
    let recorder = Arc::new(Recorder { fail_task: Some("billing.charge"), ..Recorder::default() });
    let kinds = kinds_with(recorder.clone());
    let text = "name: once\nflow:\n  linear:\n    - task: charge\n      kind: remote\n      with: {task: billing.charge}\n      revert: none\n";
    let file = parse(text, &kinds);
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    assert!(recorder.calls.lock().expect("calls lock").iter().all(|c| c.revert.is_none()));
}

#[tokio::test]
async fn without_a_hub_a_remote_task_fails_saying_so() {
    let kinds = Kinds::default_allowed();
    let text =
        "name: lonely\nflow:\n  linear:\n    - task: charge\n      kind: remote\n      with: {task: billing.charge}\n";
    let file = parse(text, &kinds);
    let ran = run(&file, json!({}), kinds).await;
    // Its revert is the worker's too, and fails the same way.
    assert_state(&ran, FlowState::Failure);
    let failure =
        ran.book.flows.values().next().expect("one flow").atoms["charge"].failure.as_ref().expect("failure recorded");
    assert_eq!(failure.kind, super::NO_HUB);
}

#[test]
fn remote_needs_a_task_name_and_valid_durations() {
    let lines = problems(
        "name: bad\nflow:\n  linear:\n    - task: a\n      kind: remote\n      with: {amount: 1}\n    - task: b\n      kind: remote\n      with: {task: x, schedule_to_start: soon}\n",
    );
    assert!(lines.iter().any(|l| l.contains("missing required setting \"task\"")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("schedule_to_start") && l.contains("soon")), "{lines:?}");
}

#[test]
fn remote_is_on_by_default() {
    assert!(Kinds::default_allowed().get("remote").is_some());
}

#[tokio::test]
async fn a_rust_flow_remote_task_dispatches_with_its_args_and_reverts_on_the_worker() {
    use flows::{Engine, Flow, TaskSpec};
    let recorder = Arc::new(Recorder { fail_task: Some("billing.charge"), ..Recorder::default() });
    let task = super::RemoteTask::new(recorder.clone(), "billing.charge").arg("amount", json!(7));
    let flow = Flow::linear("pay").add(TaskSpec::new("charge", Arc::new(task)).requires(["customer"]));
    let store = json!({"customer": "ada"}).as_object().cloned().unwrap_or_default();
    let mut engine = Engine::builder(flow).store(store).build().await.expect("engine builds");
    let outcome = engine.run().await.expect("engine runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    let calls = recorder.calls.lock().expect("calls lock");
    assert_eq!(calls.len(), 2, "execute, then the worker's revert");
    assert_eq!(Value::Object(calls[0].inputs.clone()), json!({"customer": "ada", "amount": 7}));
    assert_eq!(calls[1].revert.as_ref().map(|r| r.is_err()), Some(true), "the revert carries the failure");
}
