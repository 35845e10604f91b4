//! `await` from a file: the task parks, `notify` runs after the park is
//! recorded with `${callback.token}`/`${callback.url}` and the task's inputs,
//! a delivered result flows to the next task; callbacks are names only in notify.

use std::sync::Arc;

use flows::{CallbackToken, Delivery, Engine, FlowState, MemoryStorage, Storage};
use serde_json::{json, Map};
use uuid::Uuid;

use super::{kinds, parse, problems};

const FILE: &str = r#"
name: approval
inputs:
  who: {type: string}
flow:
  linear:
    - task: approve
      kind: await
      with:
        timeout: 72h
        notify:
          kind: record
          with: {label: "${callback.token} ${callback.url} ${who}"}
      provides: approval
    - task: use
      kind: record
      with: {result: {got: "${approval}"}}
      provides: used
"#;

#[tokio::test]
async fn an_await_parks_notifies_with_its_token_and_takes_the_delivered_result() {
    let (kinds, calls) = kinds();
    let kinds = kinds.callback_base("https://baton.example:8080/");
    let file = parse(FILE, &kinds);
    let factory = file.factory(Arc::new(kinds));
    let mut store = Map::new();
    store.insert("who".into(), json!("ops"));
    let store = factory.complete(&store).expect("inputs");
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let engine = |flow| Engine::builder(flow).store(store.clone()).storage(storage.clone(), book, flow_id).build();

    let mut first = engine(factory.build(&store).expect("builds")).await.expect("engine");
    assert_eq!(first.run().await.expect("runs").state, FlowState::Parked);
    let notified = calls.all();
    assert_eq!(notified.len(), 1, "{notified:?}");
    let words: Vec<&str> = notified[0].split(' ').collect();
    let [atom, token, url, who] = words.as_slice() else { panic!("{notified:?}") };
    assert_eq!((*atom, *who), ("approve", "ops"));
    assert_eq!(*url, format!("https://baton.example:8080/v1/callbacks/{token}"));
    let token = CallbackToken::parse(token).expect("a token");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    let record = stored.atoms["approve"].park().expect("parked");
    assert!(token.matches(&record.token_hash));
    assert!(!serde_json::to_string(&stored).expect("json").contains(&token.expose()));

    let mut second = engine(factory.build(&store).expect("builds")).await.expect("engine");
    second.control().deliver(Delivery::new("approve", 1, Ok(json!("yes"))));
    let done = second.run().await.expect("runs");
    assert_eq!(done.state, FlowState::Success);
    assert_eq!(done.results["used"], json!({"got": "yes"}));
    assert_eq!(calls.all().len(), 2, "notify ran once: {:?}", calls.all());
}

#[test]
fn callbacks_are_names_only_inside_notify() {
    let outside = FILE.replace("{result: {got: \"${approval}\"}}", "{label: \"${callback.token}\"}");
    let found = problems(&outside);
    assert!(found.iter().any(|p| p.contains("is known only inside an await task's notify")), "{found:?}");
    let unknown = FILE.replace("${callback.url}", "${callback.secret}");
    let found = problems(&unknown);
    assert!(found.iter().any(|p| p.contains("a callback has only token and url")), "{found:?}");
    let untimed = FILE.replace("timeout: 72h", "");
    assert!(problems(&untimed).iter().any(|p| p.contains("missing required setting \"timeout\"")));
}
