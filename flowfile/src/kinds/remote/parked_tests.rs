//! A remote task that parks: the dispatcher answers an execute with a park, the engine
//! records it, and only then the callback goes back through the dispatcher as a hand-off
//! (the worker's parked handler) with the task's inputs and a token that completes the
//! recorded attempt; a delivered result flows on. A park answered to a hand-off or a
//! revert is refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flows::{CallbackToken, Delivery, Engine, Failure, FlowState, MemoryStorage, Park, Storage};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{only_executes_park, Dispatch, RemoteCall, BAD_PARK};
use crate::tests::parse;
use crate::Kinds;

/// Parks `approvals.request`, records hand-offs, echoes anything else.
#[derive(Default)]
struct Parker {
    calls: Mutex<Vec<RemoteCall>>,
}

#[async_trait]
impl Dispatch for Parker {
    async fn dispatch(&self, call: RemoteCall) -> Result<Value, Failure> {
        let parks = call.task == "approvals.request" && call.park.is_none() && call.revert.is_none();
        let inputs = call.inputs.clone();
        self.calls.lock().expect("calls lock").push(call);
        if parks {
            return Err(Park::after(Duration::from_secs(3600)).into());
        }
        Ok(json!({"echo": inputs}))
    }
}

const FILE: &str = r#"
name: remote-approval
inputs:
  ticket: {type: string}
flow:
  linear:
    - task: approve
      kind: remote
      requires: [ticket]
      with: {task: approvals.request, note: "ticket ${ticket}"}
      provides: approval
    - task: record
      kind: remote
      with: {task: approvals.record, approval: "${approval}"}
      provides: recorded
"#;

#[tokio::test]
async fn a_parked_remote_task_hands_its_token_to_the_worker_and_takes_the_delivered_result() {
    let parker = Arc::new(Parker::default());
    let kinds = Kinds::default_allowed().remote_dispatch(parker.clone());
    let file = parse(FILE, &kinds);
    let factory = file.factory(Arc::new(kinds));
    let mut store = Map::new();
    store.insert("ticket".into(), json!("T-1"));
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let engine = |flow| Engine::builder(flow).store(store.clone()).storage(storage.clone(), book, flow_id).build();

    let mut first = engine(factory.build(&store).expect("builds")).await.expect("engine");
    assert_eq!(first.run().await.expect("runs").state, FlowState::Parked);
    let handoff = {
        let calls = parker.calls.lock().expect("calls lock");
        assert_eq!(calls.len(), 2, "the execute, then the hand-off: {calls:?}");
        assert!(calls[0].park.is_none());
        let handoff = &calls[1];
        assert_eq!(
            (handoff.task.as_str(), handoff.atom.as_str(), handoff.attempt),
            ("approvals.request", "approve", 1)
        );
        assert_eq!(Value::Object(handoff.inputs.clone()), json!({"ticket": "T-1", "note": "ticket T-1"}));
        assert!(
            !format!("{handoff:?}").contains(&handoff.park.as_ref().expect("a hand-off").token),
            "Debug hides the token"
        );
        handoff.park.clone().expect("a hand-off")
    };
    let token = CallbackToken::parse(&handoff.token).expect("a token");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    let record = stored.atoms["approve"].park().expect("parked");
    assert!(token.matches(&record.token_hash), "the token completes the recorded attempt");
    assert_eq!(handoff.deadline, record.deadline);

    let mut second = engine(factory.build(&store).expect("builds")).await.expect("engine");
    second.control().deliver(Delivery::new("approve", 1, Ok(json!("yes"))));
    let done = second.run().await.expect("runs");
    assert_eq!(done.state, FlowState::Success);
    assert_eq!(done.results["recorded"], json!({"echo": {"approval": "yes"}}));
    assert_eq!(parker.calls.lock().expect("calls lock").len(), 3, "no second hand-off");
}

#[test]
fn only_an_execute_may_park() {
    let call = |revert: bool| RemoteCall {
        job: Uuid::nil(),
        atom: "a".into(),
        task: "t".into(),
        attempt: 1,
        inputs: Map::new(),
        timeout: None,
        schedule_to_start: None,
        heartbeat_timeout: None,
        revert: revert.then_some(Ok(Value::Null)),
        cancel: tokio_util::sync::CancellationToken::new(),
        park: None,
    };
    let parked = || Err(Park::after(Duration::from_secs(1)).into());
    assert!(only_executes_park(&call(false), parked()).is_err_and(|f| f.kind == Failure::PARKED));
    assert!(only_executes_park(&call(true), parked()).is_err_and(|f| f.kind == BAD_PARK));
    let handoff = RemoteCall { park: Some(super::Handoff { token: "x".into(), deadline: 1 }), ..call(false) };
    assert!(only_executes_park(&handoff, parked()).is_err_and(|f| f.kind == BAD_PARK));
    assert_eq!(only_executes_park(&handoff, Ok(json!(1))).ok(), Some(json!(1)));
}
