//! A `for_each_from` retry inside an `each` copy reads its name as every other
//! reference in the copy does: the copy's item, or a name provided in the copy,
//! before the store.

use flows::FlowState;
use serde_json::json;

use super::{assert_state, kinds, parse, run};

#[tokio::test]
async fn for_each_from_the_copys_item_tries_that_items_values() {
    let (kinds, _) = kinds();
    let file = parse(
        r#"
name: dial
inputs:
  offices: {type: array}
  numbers: {type: array}
flow:
  linear:
    - each: {in: offices, as: numbers}
      name: office
      linear:
        - task: call
          kind: fail
          with: {message: "no answer at ${number}", until_attempt: 2}
          requires: [number]
        - {task: note, kind: record, with: {result: "${number}"}, provides: reached}
      retry: {for_each_from: numbers, provides: number}
"#,
        &kinds,
    );
    // A store key of the same name must not be what the copies try.
    let ran = run(&file, json!({"offices": [[11, 12], [21, 22, 23]], "numbers": [999]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["reached"], json!([12, 22]));
    assert_eq!(ran.outcome.results["number[0]"], json!(12));
}

#[tokio::test]
async fn for_each_from_a_name_provided_in_the_copy_reads_the_copys_own_value() {
    let (kinds, _) = kinds();
    let file = parse(
        r#"
name: dial
inputs:
  offices: {type: array}
  numbers: {type: array, default: [999]}
flow:
  linear:
    - each: {in: offices, as: office}
      linear:
        - {task: lookup, kind: record, with: {result: "${office}"}, provides: numbers}
        - linear:
            - task: call
              kind: fail
              with: {message: "no answer at ${number}", until_attempt: 3}
              requires: [number]
            - {task: note, kind: record, with: {result: "${number}"}, provides: reached}
          retry: {for_each_from: numbers, provides: number}
"#,
        &kinds,
    );
    let ran = run(&file, json!({"offices": [[11, 12, 13], [21, 22, 23]]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["reached"], json!([13, 23]));
}

#[tokio::test]
async fn for_each_from_a_task_retry_in_a_copy_reads_the_copys_item() {
    let (kinds, calls) = kinds();
    let file = parse(
        r#"
name: dial
inputs:
  offices: {type: array}
flow:
  linear:
    - each: {in: offices, as: numbers}
      linear:
        - task: call
          kind: record
          with: {label: "${number}"}
          requires: [number]
          retry: {for_each_from: numbers, provides: number}
"#,
        &kinds,
    );
    let ran = run(&file, json!({"offices": [[11], [21]]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    let mut called = calls.all();
    called.sort();
    assert_eq!(called, vec!["call[0] 11", "call[1] 21"]);
}
