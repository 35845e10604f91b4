//! The demo factories: inputs are checked, flows compile and run as documented.

use std::sync::Arc;

use flows::{Engine, FlowState, MemoryStorage, RegistryError, Storage};
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
fn registry_declares_the_inputs() {
    let registry = registry();
    assert_eq!(registry.names(), ["chain", "provision-cluster"]);
    let cluster = registry.get("provision-cluster").unwrap();
    assert_eq!(cluster.required_inputs(), ["nodes", "step_ms"]);
    assert_eq!(cluster.optional_inputs(), ["flaky"]);
    assert_eq!(registry.get("chain").unwrap().required_inputs(), ["steps", "step_ms"]);
}

#[test]
fn missing_inputs_are_named() {
    let err = registry().build("chain", &store(json!({"steps": 3}))).unwrap_err();
    assert_eq!(err, RegistryError::MissingInputs { flow: "chain".into(), missing: vec!["step_ms".into()] });
}

#[test]
fn bad_inputs_are_refused_naming_the_input() {
    let cases = [
        ("provision-cluster", json!({"nodes": 0, "step_ms": 1}), "nodes"),
        ("provision-cluster", json!({"nodes": "three", "step_ms": 1}), "nodes"),
        ("provision-cluster", json!({"nodes": 2, "step_ms": -5}), "step_ms"),
        ("provision-cluster", json!({"nodes": 2, "step_ms": 1, "flaky": 2.5}), "flaky"),
        ("provision-cluster", json!({"nodes": 2, "step_ms": 1, "flaky": [1]}), "flaky"),
        ("chain", json!({"steps": 1.5, "step_ms": 1}), "steps"),
        ("chain", json!({"steps": 3, "step_ms": {"ms": 1}}), "step_ms"),
    ];
    for (flow, input, culprit) in cases {
        match registry().build(flow, &store(input.clone())) {
            Err(RegistryError::Build { message, .. }) => {
                assert!(message.contains(&format!("{culprit:?}")), "{flow} {input}: {message}")
            }
            other => panic!("{flow} {input}: expected a build error, got {other:?}"),
        }
    }
}

#[test]
fn numeric_strings_are_accepted() {
    assert!(registry().build("chain", &store(json!({"steps": "4", "step_ms": "0"}))).is_ok());
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
