//! Patterns built from files and run: nesting, graph links and conditions, `each` with fan-in, retries (`for_each_from`: see `for_each_from`).

use std::sync::Arc;

use flows::{AtomState, FlowState};
use serde_json::json;

use super::{assert_state, kinds, parse, run};

#[tokio::test]
async fn linear_unordered_and_graph_nest() {
    let (kinds, calls) = kinds();
    let file = parse(
        r#"
name: nest
flow:
  linear:
    - task: first
      kind: record
    - unordered:
        - {task: u1, kind: record}
        - {task: u2, kind: record}
    - graph:
        - {task: g-late, kind: record, after: [g-early]}
        - {task: g-early, kind: record}
    - task: last
      kind: record
"#,
        &kinds,
    );
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Success);
    let order = calls.all();
    let at =
        |name: &str| order.iter().position(|c| c == name).unwrap_or_else(|| panic!("{name} not called: {order:?}"));
    assert_eq!(order.len(), 6, "{order:?}");
    assert_eq!(at("first"), 0);
    assert!(at("u1") < at("g-early") && at("u2") < at("g-early"), "{order:?}");
    assert!(at("g-early") < at("g-late"), "{order:?}");
    assert_eq!(at("last"), 5);
}

#[tokio::test]
async fn a_link_condition_on_the_predecessors_result_skips_the_target() {
    let (kinds, calls) = kinds();
    let file = parse(
        r#"
name: cond
flow:
  graph:
    - {task: check, kind: record, with: {result: {ok: false, zone: b}}}
    - task: when-ok
      kind: record
      after: [{id: check, when: {equals: {path: $.ok, value: true}}}]
    - task: when-zone
      kind: record
      after: [{id: check, when: {one_of: {path: $.zone, values: [a, b]}}}]
"#,
        &kinds,
    );
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(calls.all(), vec!["check", "when-zone"]);
}

const EACH: &str = r#"
name: each
inputs:
  nodes: {type: array, items: {type: string}}
flow:
  linear:
    - unordered:
        - each: {in: nodes, as: node}
          name: server
          linear:
            - task: create
              kind: record
              with: {result: {id: "srv-${node}"}}
              provides: {server_id: $.id}
            - task: wait
              kind: record
              with: {result: "${server_id} up"}
              provides: status
    - task: configure
      kind: record
      with: {result: {servers: "${server_id}", status: "${status}"}}
      provides: config
"#;

#[tokio::test]
async fn each_makes_one_copy_per_item_and_fans_in_in_item_order() {
    let (kinds, calls) = kinds();
    let file = parse(EACH, &kinds);
    let ran = run(&file, json!({"nodes": ["a", "b", "c"]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(
        ran.outcome.results["config"],
        json!({"servers": ["srv-a", "srv-b", "srv-c"], "status": ["srv-a up", "srv-b up", "srv-c up"]})
    );
    // Names provided inside a copy stay local to it: each wait saw its own create's id.
    assert_eq!(ran.outcome.results["server_id[1]"], json!("srv-b"));
    let mut called = calls.all();
    called.sort();
    assert_eq!(called, vec!["configure", "create[0]", "create[1]", "create[2]", "wait[0]", "wait[1]", "wait[2]"]);
    let detail = ran.book.flows.values().next().expect("one flow");
    assert!(detail.atoms.contains_key("server[*]"), "fan-in atom: {:?}", detail.atoms.keys());
}

#[tokio::test]
async fn each_over_a_whole_number_counts_from_zero() {
    let (kinds, _) = kinds();
    let file = parse(
        r#"
name: count
inputs:
  n: {type: integer}
flow:
  linear:
    - each: {in: n, as: i}
      linear:
        - {task: square, kind: record, with: {result: "${i}"}, provides: got}
    - {task: all, kind: record, with: {result: "${got}"}, provides: out}
"#,
        &kinds,
    );
    // Typed inputs are checked before the flow is built: text for an integer is refused
    // there (the CLI coerces `--store n=3` by the declared type).
    let refused =
        file.factory(Arc::new(kinds.clone())).build(&json!({"n": "3"}).as_object().cloned().unwrap_or_default());
    assert!(refused.is_err_and(|e| e.to_string().contains("must be an integer")));
    let ran = run(&file, json!({"n": 3}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["out"], json!([0, 1, 2]));
}

#[tokio::test]
async fn a_retry_succeeds_on_the_third_try() {
    // `fail` with `until_attempt: 3` fails while its attempt number is below 3.
    let (kinds, _) = kinds();
    let text = r#"
name: flaky
flow:
  linear:
    - task: flaky
      kind: fail
      with: {message: not yet, until_attempt: 3}
      retry: {times: TIMES, delay: 1ms}
"#;
    let file = parse(&text.replace("TIMES", "3"), &kinds);
    let ran = run(&file, json!({}), kinds.clone()).await;
    assert_state(&ran, FlowState::Success);
    let detail = ran.book.flows.values().next().expect("one flow");
    assert_eq!(detail.atoms["flaky"].executions, 3);
    assert_eq!(detail.atoms["flaky_retry"].attempts.len(), 3);

    let file = parse(&text.replace("TIMES", "2"), &kinds);
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    assert_eq!(ran.outcome.failure.as_ref().map(|f| f.message.as_str()), Some("not yet"));
    let detail = ran.book.flows.values().next().expect("one flow");
    assert_eq!(detail.atoms["flaky"].state, AtomState::Reverted);
}
