//! Typed inputs at the API: a bad store is refused naming every field and rule,
//! nothing is written, defaults are stored with the job, and `ListFlows` shows
//! each input's type and rules.

use proto::pb;
use serde_json::{json, Value};
use tonic::Code;

use super::{code, job_count, post, serve};

#[tokio::test]
async fn a_store_breaking_the_rules_is_refused_naming_every_problem_and_writes_nothing() {
    let server = serve().await;
    let (c, message) = code(server.client.post_job(post("chain", r#"{"steps": -1, "step_ms": 1}"#)).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert_eq!(message, r#"flow "chain" refuses its inputs: steps: must be an integer >= 1, got -1"#);

    let bad = r#"{"nodes": 0, "step_ms": "fast", "flaky": [1]}"#;
    let (c, message) = code(server.client.post_job(post("provision-cluster", bad)).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    for expected in [
        "nodes: must be an integer >= 1, got 0",
        r#"step_ms: must be an integer, got "fast""#,
        "flaky: must be a number, got [1]",
    ] {
        assert!(message.contains(expected), "{expected:?} missing from {message:?}");
    }

    let (c, message) = code(server.client.post_job(post("chain", "{}")).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("steps: is required (integer from 1 to 10000)"), "{message}");
    assert!(message.contains("step_ms: is required"), "{message}");
    assert_eq!(job_count(&server.board).await, 0, "no refused post wrote a job");
}

#[tokio::test]
async fn defaults_are_stored_with_the_job() {
    let server = serve().await;
    let job = server.client.post_job(post("provision-cluster", r#"{"nodes": 2, "extra": "kept"}"#)).await.unwrap();
    let expected = json!({"nodes": 2, "step_ms": 100, "flaky": 0, "extra": "kept"});
    let replied: Value = serde_json::from_str(&job.store_json).unwrap();
    assert_eq!(replied, expected, "the reply shows the completed store");
    let stored = server.board.get(job.id.parse().unwrap()).await.unwrap();
    assert_eq!(Value::Object(stored.store), expected, "the board keeps the completed store");
}

#[tokio::test]
async fn list_flows_shows_each_inputs_type_default_and_rules() {
    let server = serve().await;
    let flows = server.client.list_flows().await.unwrap();
    let cluster = flows.iter().find(|f| f.name == "provision-cluster").unwrap();
    assert_eq!(cluster.required_inputs, ["nodes"]);
    assert_eq!(cluster.optional_inputs, ["step_ms", "flaky"]);
    let inputs: Vec<(&str, &pb::InputSpec)> =
        cluster.inputs.iter().map(|i| (i.name.as_str(), i.spec.as_ref().unwrap())).collect();
    let names: Vec<&str> = inputs.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["nodes", "step_ms", "flaky"]);
    let (_, nodes) = inputs[0];
    assert_eq!(
        (nodes.r#type.as_str(), nodes.minimum, nodes.maximum, nodes.default_json.as_deref()),
        ("integer", Some(1.0), Some(1000.0), None)
    );
    let (_, step_ms) = inputs[1];
    assert_eq!(
        (step_ms.r#type.as_str(), step_ms.minimum, step_ms.default_json.as_deref()),
        ("integer", Some(0.0), Some("100"))
    );
    assert_eq!(inputs[2].1.r#type, "number");
}
