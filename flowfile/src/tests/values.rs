//! Values: references and their types, defaults, secrets resolved late and redacted.

use std::sync::Arc;

use flows::FlowState;
use serde_json::json;

use super::{assert_state, kinds, parse, run};
use crate::secrets::DirSecrets;

#[tokio::test]
async fn references_keep_json_types_whole_and_embed_as_text_or_compact_json() {
    let (kinds, _) = kinds();
    let file = parse(
        r#"
name: refs
inputs:
  count: {type: integer, default: 555}
  tags: {type: array}
flow:
  linear:
    - task: make
      kind: record
      with: {result: {port: 8080, name: web}}
      provides: server
    - task: use
      kind: record
      with:
        result:
          whole: "${count}"
          field: "${server.port}"
          text: "n=${count} name=${server.name} tags=${tags}"
          escaped: "$${count} stays"
      provides: out
"#,
        &kinds,
    );
    let factory = file.factory(Arc::new(kinds.clone()));
    assert!(factory.schema().get("count").is_some_and(|spec| !spec.is_required()), "a default makes it optional");
    let ran = run(&file, json!({"tags": ["a", 1]}), kinds).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(
        ran.outcome.results["out"],
        json!({"whole": 555, "field": 8080, "text": "n=555 name=web tags=[\"a\",1]", "escaped": "${count} stays"})
    );
}

#[tokio::test]
async fn secrets_resolve_at_execute_time_and_are_redacted_everywhere_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "hunter2\n").expect("secret written");
    let (kinds, _) = kinds();
    let kinds = kinds.secrets(Arc::new(DirSecrets::new(dir.path())));
    let file = parse(
        r#"
name: secret
flow:
  linear:
    - task: echo
      kind: record
      with: {result: "auth=${secret.token}"}
      provides: echoed
    - task: leak
      kind: fail
      with: {message: "bad token ${secret.token}"}
"#,
        &kinds,
    );
    assert!(!file.canonical().contains("hunter2"));
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    let detail = ran.book.flows.values().next().expect("one flow");
    assert_eq!(detail.atoms["echo"].result, Some(json!("auth=***")));
    assert_eq!(detail.atoms["leak"].failure.as_ref().map(|f| f.message.as_str()), Some("bad token ***"));
    let logbook = serde_json::to_string(&ran.book).expect("logbook serialises");
    assert!(!logbook.contains("hunter2"), "secret in the logbook: {logbook}");
    assert!(!format!("{:?}", ran.outcome).contains("hunter2"));
}

#[tokio::test]
async fn a_missing_secret_fails_the_task_without_a_value() {
    let (kinds, _) = kinds();
    let file =
        parse("name: s\nflow:\n  linear:\n    - {task: t, kind: noop, with: {result: \"${secret.absent}\"}}\n", &kinds);
    let ran = run(&file, json!({}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    let failure = ran.outcome.failure.expect("a failure");
    assert_eq!(failure.kind, "SecretError");
    assert!(failure.message.contains("\"absent\" is not defined"), "{failure}");
}

#[test]
fn canonical_form_ignores_layout_and_comments() {
    let (kinds, _) = kinds();
    let a = parse("name: x\n# a comment\nflow: {linear: [{task: a, kind: sleep, with: {duration: 1s}}]}\n", &kinds);
    let b = parse(
        "flow:\n  linear:\n    - kind: sleep\n      task: a\n      with:\n        duration: 1s\nname: x\n",
        &kinds,
    );
    let c = parse("name: x\nflow: {linear: [{task: a, kind: sleep, with: {duration: 2s}}]}\n", &kinds);
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
    assert_eq!(a.hash().len(), 64);
}

#[test]
fn kinds_used_include_reverts_and_a_conductor_can_tell_what_it_lacks() {
    let (kinds, _) = kinds();
    let file = parse(
        "name: x\nflow:\n  linear:\n    - task: a\n      kind: sleep\n      with: {duration: 1ms}\n      revert: {kind: record}\n",
        &kinds,
    );
    let used = file.kinds_used();
    assert_eq!(used.iter().map(String::as_str).collect::<Vec<_>>(), vec!["record", "sleep"]);
    assert_eq!(crate::Kinds::default_allowed().missing(used.iter().map(String::as_str)), vec!["record"]);
    let refused = file.build(&serde_json::Map::new(), &crate::Kinds::default_allowed());
    assert!(refused.is_err_and(|e| e.contains("\"record\", which is not allowed here")));
}

/// Settings without references are settled once per task, and `noop` and `fail` answer
/// at once, without a future: results are what they were when every call resolved them.
#[tokio::test]
async fn settings_without_references_are_settled_once_and_quick_kinds_answer_alike() {
    let (kinds, _) = kinds();
    let file = parse(
        r#"
name: quick
flow:
  linear:
    - task: plain
      kind: noop
      with: {result: {escaped: "$${count} stays", n: 3, list: [a, "$$5"]}}
      provides: plain
    - task: nothing
      kind: noop
      provides: nothing
    - task: third-time
      kind: fail
      with: {until_attempt: 3, message: not yet}
      retry: {times: 3}
      provides: third
"#,
        &kinds,
    );
    let ran = run(&file, json!({}), kinds.clone()).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["plain"], json!({"escaped": "${count} stays", "n": 3, "list": ["a", "$$5"]}));
    assert_eq!(ran.outcome.results["nothing"], json!(null));
    assert_eq!(ran.outcome.results["third"], json!(null));

    let failing = parse("name: failing\nflow:\n  linear:\n    - {task: boom, kind: fail}\n", &kinds);
    let ran = run(&failing, json!({}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    let failure = ran.outcome.failure.as_ref().expect("a failure");
    assert!(failure.message.contains("boom failed on purpose"), "{failure:?}");
}
