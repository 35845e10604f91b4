//! Reverts: every task that ran is undone in reverse order, the failed one included,
//! and a revert sees the task's inputs, `${result}` and `${failure.message}`.

use flows::FlowState;
use serde_json::json;

use super::{assert_state, kinds, parse, run};

#[tokio::test]
async fn reverts_run_in_reverse_order_and_see_result_and_failure() {
    let (kinds, calls) = kinds();
    let file = parse(
        r#"
name: undo
inputs:
  who: {type: string}
flow:
  linear:
    - task: a
      kind: record
      with: {label: "do", result: {id: a-1}}
      provides: {a_id: $.id}
      revert: {kind: record, with: {label: "undo ${a_id} ${result.a_id} after ${failure.message}"}}
    - task: b
      kind: record
      with: {label: "do ${who}"}
      revert: {kind: record, with: {label: "undo for ${who}"}}
    - task: c
      kind: noop
      revert: none
    - task: d
      kind: fail
      with: {message: boom}
      revert: {kind: record, with: {label: "undo ${result} ${failure.message}"}}
"#,
        &kinds,
    );
    let ran = run(&file, json!({"who": "me"}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    assert_eq!(
        calls.all(),
        vec!["a do", "b do me", "revert d undo null boom", "revert b undo for me", "revert a undo a-1 a-1 after boom"]
    );
}

#[tokio::test]
async fn a_failing_revert_leaves_the_flow_failed() {
    let (kinds, _) = kinds();
    let file = parse(
        "name: x\nflow:\n  linear:\n    - {task: a, kind: noop, revert: {kind: fail, with: {message: stuck}}}\n    - {task: b, kind: fail}\n",
        &kinds,
    );
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Failure);
}
