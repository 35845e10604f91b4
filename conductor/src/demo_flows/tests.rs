//! The demo factories: inputs are checked, flows compile and run as documented.

use std::sync::Arc;

use flows::{Engine, FlowState, InputType, MemoryStorage, RegistryError, Rule, Storage};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::*;

fn store(value: Value) -> Map<String, Value> {
    value.as_object().expect("test stores are objects").clone()
}

/// Runs `flow` from `store` on an in-memory logbook; returns the outcome state and the executions of `atom`.
async fn run(flow_name: &str, store: Map<String, Value>, atom: &str) -> (FlowState, u32) {
    let flow = registry().build(flow_name, &store).expect("flow builds");
    let storage = Arc::new(MemoryStorage::new());
    let (book, id) = (Uuid::new_v4(), Uuid::new_v4());
    let mut engine = Engine::builder(flow)
        .store(store)
        .storage(storage.clone(), book, id)
        .max_concurrency(8)
        .build()
        .await
        .expect("flow compiles");
    let outcome = engine.run().await.expect("engine runs");
    let detail = storage.load_flow(book, id).await.expect("logbook readable").expect("flow detail saved");
    let executions = detail.atoms.get(atom).map_or(0, |a| a.executions);
    (outcome.state, executions)
}

#[test]
fn registry_declares_typed_inputs() {
    let registry = registry();
    assert_eq!(registry.names(), ["chain", "provision-cluster"]);
    let typed = |flow: &str| -> Vec<(String, InputType, bool)> {
        let schema = registry.get(flow).unwrap().schema();
        schema.iter().map(|(name, spec)| (name.to_owned(), spec.ty, spec.is_required())).collect()
    };
    assert_eq!(
        typed("chain"),
        [("steps".into(), InputType::Integer, true), ("step_ms".into(), InputType::Integer, true)]
    );
    assert_eq!(
        typed("provision-cluster"),
        [
            ("nodes".into(), InputType::Integer, true),
            ("step_ms".into(), InputType::Integer, false),
            ("flaky".into(), InputType::Number, false)
        ]
    );
    for flow in registry.names() {
        assert_eq!(registry.get(flow).unwrap().schema().lint(), [], "{flow}'s declarations are sound");
    }
}

#[test]
fn missing_inputs_are_named() {
    match registry().build("chain", &store(json!({"steps": 3}))).unwrap_err() {
        RegistryError::InvalidInputs { flow, problems } => {
            assert_eq!(flow, "chain");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!((problems[0].path.as_str(), problems[0].rule), ("step_ms", Rule::Required));
        }
        other => panic!("expected invalid inputs, got {other:?}"),
    }
}

#[test]
fn bad_inputs_are_refused_naming_the_input_and_the_rule() {
    let cases = [
        ("provision-cluster", json!({"nodes": 0}), "nodes", Rule::Minimum),
        ("provision-cluster", json!({"nodes": 1001}), "nodes", Rule::Maximum),
        ("provision-cluster", json!({"nodes": "three"}), "nodes", Rule::Type),
        ("provision-cluster", json!({"nodes": "3"}), "nodes", Rule::Type),
        ("provision-cluster", json!({"nodes": 2, "step_ms": -5}), "step_ms", Rule::Minimum),
        ("provision-cluster", json!({"nodes": 2, "flaky": [1]}), "flaky", Rule::Type),
        ("provision-cluster", json!({"nodes": 2, "flaky": -1}), "flaky", Rule::Minimum),
        ("chain", json!({"steps": -1, "step_ms": 1}), "steps", Rule::Minimum),
        ("chain", json!({"steps": 1.5, "step_ms": 1}), "steps", Rule::Type),
        ("chain", json!({"steps": 3, "step_ms": {"ms": 1}}), "step_ms", Rule::Type),
    ];
    for (flow, input, culprit, rule) in cases {
        match registry().validate(flow, &store(input.clone())) {
            Err(RegistryError::InvalidInputs { problems, .. }) => {
                let found: Vec<_> = problems.iter().map(|p| (p.path.as_str(), p.rule)).collect();
                assert_eq!(found, [(culprit, rule)], "{flow} {input}");
            }
            other => panic!("{flow} {input}: expected invalid inputs, got {other:?}"),
        }
    }
}

#[test]
fn flaky_must_be_a_count_or_a_probability() {
    let err = registry().build("provision-cluster", &store(json!({"nodes": 2, "flaky": 2.5}))).unwrap_err();
    assert!(matches!(&err, RegistryError::Build { message, .. } if message.contains("\"flaky\"")), "{err}");
}

#[test]
fn defaults_are_filled_in() {
    let done = registry().complete("provision-cluster", &store(json!({"nodes": 2}))).unwrap();
    assert_eq!(Value::Object(done), json!({"nodes": 2, "step_ms": 100, "flaky": 0}));
}

#[tokio::test]
async fn chain_runs_every_step_once() {
    let (state, executions) = run("chain", store(json!({"steps": 5, "step_ms": 1})), "step-5").await;
    assert_eq!(state, FlowState::Success);
    assert_eq!(executions, 1);
}

#[tokio::test]
async fn provision_cluster_retries_a_flaky_node_then_succeeds() {
    let input = store(json!({"nodes": 3, "step_ms": 1, "flaky": 2}));
    let (state, executions) = run("provision-cluster", input, "wait-for-server-0").await;
    assert_eq!(state, FlowState::Success);
    assert_eq!(executions, 3, "two flaky failures, then success");
}

#[tokio::test]
async fn provision_cluster_reverts_when_the_retry_is_exhausted() {
    let input = store(json!({"nodes": 2, "step_ms": 1, "flaky": NODE_ATTEMPTS}));
    let (state, executions) = run("provision-cluster", input, "configure-cluster").await;
    assert_eq!(state, FlowState::Reverted);
    assert_eq!(executions, 0, "configure never ran");
}
