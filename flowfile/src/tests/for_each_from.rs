//! `for_each_from` retries: one attempt per value of a list named in the flow. Inside
//! an `each` copy the name is read as every other reference in the copy is: the
//! copy's item, or a name provided in the copy, before the store.

use flows::FlowState;
use serde_json::json;

use super::{assert_state, kinds, parse, run};

/// Calls each number the retry gives (failing before attempt UNTIL), then notes the one reached.
const DIALING: &str = r#"{linear: [{task: call, kind: fail, with: {message: "no answer at ${number}", until_attempt: UNTIL}, requires: [number]}, {task: note, kind: record, with: {result: "${number}"}, provides: reached}], retry: {for_each_from: FROM, provides: number}}"#;

fn dialing(from: &str, until: u32) -> String {
    DIALING.replace("FROM", from).replace("UNTIL", &until.to_string())
}

#[tokio::test]
async fn a_for_each_retry_provides_the_value_it_tries() {
    let (kinds, _) = kinds();
    let text = format!(
        "name: phones\ninputs:\n  phone_directory: {{type: array, default: [111, 222, 333]}}\nflow: {}\n",
        dialing("phone_directory", 2)
    );
    let ran = run(&parse(&text, &kinds), json!({"phone_directory": [111, 222, 333]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["reached"], json!(222));
}

#[tokio::test]
async fn in_a_copy_it_tries_the_copys_item() {
    let (kinds, _) = kinds();
    let text = format!(
        "name: dial\ninputs:\n  offices: {{type: array}}\n  numbers: {{type: array}}\nflow:\n  linear:\n    - each: {{in: offices, as: numbers}}\n      linear: [{}]\n",
        dialing("numbers", 2)
    );
    // A store key of the same name must not be what the copies try.
    let ran = run(&parse(&text, &kinds), json!({"offices": [[11, 12], [21, 22, 23]], "numbers": [999]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["reached"], json!([12, 22]));
    assert_eq!(ran.outcome.results["number[0]"], json!(12));
}

#[tokio::test]
async fn in_a_copy_it_reads_a_name_provided_in_that_copy() {
    let (kinds, _) = kinds();
    let text = format!(
        "name: dial\ninputs:\n  offices: {{type: array}}\n  numbers: {{type: array, default: [999]}}\nflow:\n  linear:\n    - each: {{in: offices, as: office}}\n      linear:\n        - {{task: lookup, kind: record, with: {{result: \"${{office}}\"}}, provides: numbers}}\n        - {}\n",
        dialing("numbers", 3)
    );
    let ran = run(&parse(&text, &kinds), json!({"offices": [[11, 12, 13], [21, 22, 23]]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["reached"], json!([13, 23]));
}

#[tokio::test]
async fn on_a_task_in_a_copy_it_tries_the_copys_item() {
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
