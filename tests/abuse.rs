//! Bad input against a real conductor (issue 12, "Bad input and abuse"): requests
//! over the API's size limits are refused as INVALID_ARGUMENT naming the field, the
//! limit and the size, with short messages (a huge echoed value once came back as
//! RESOURCE_EXHAUSTED "metadata size exceeds hard limit").
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use proto::{pb, Client};
use tests::conductor::{ConductorConfig, ConductorProcess, OrFail};
use tonic::Code;

/// What the API answered: its code and message.
async fn answer<T>(call: impl std::future::Future<Output = Result<T, proto::ClientError>>) -> (Code, String) {
    match call.await {
        Ok(_) => (Code::Ok, String::new()),
        Err(proto::ClientError::Rpc(status)) => (status.code(), status.message().to_owned()),
        Err(other) => panic!("the call failed on the way: {other}"),
    }
}

/// Every answer to bad input: INVALID_ARGUMENT, short, with the expected text.
fn assert_refused((code, message): (Code, String), expected: &str) {
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains(expected), "{expected:?} missing from {message:?}");
    assert!(message.len() <= 8 * 1024, "a {} byte message", message.len());
}

fn flow_file(name: &str) -> String {
    format!("name: {name}\nflow:\n  linear:\n    - task: a\n      kind: noop\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_limits_are_refused_naming_field_limit_and_size() {
    let dir = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&ConductorConfig::embedded(dir.path(), "abuse-limits")).or_fail();
    let client = Client::connect(conductor.endpoint()).await.or_fail();
    let huge = "f".repeat(100_000);

    let post = pb::PostJobRequest { flow: huge.clone(), ..Default::default() };
    let refused = answer(client.post_job(post)).await;
    let expected = format!("flow: 100000 bytes, over the limit of 256 bytes (\"{}\"…(100000 bytes))", "f".repeat(64));
    assert_eq!(refused, (Code::InvalidArgument, expected));

    assert_refused(answer(client.get_job(huge.clone())).await, "id: 100000 bytes, over the limit of 64 bytes");
    assert_refused(answer(client.get_job("not-a-job")).await, "\"not-a-job\" is not a job id");
    assert_refused(answer(client.cancel_job(huge.clone())).await, "id: 100000 bytes");
    assert_refused(answer(client.drain(huge.clone(), true)).await, "name: 100000 bytes, over the limit of 256");
    assert_refused(answer(client.flow_history(huge.clone())).await, "name: 100000 bytes");
    let list = pb::ListJobsRequest { page_token: huge.clone(), ..Default::default() };
    assert_refused(answer(client.list_jobs(list)).await, "page_token: 100000 bytes, over the limit of 1024");

    let keys: serde_json::Map<String, serde_json::Value> =
        (0..2000).map(|i| (format!("k{i}"), serde_json::json!(i))).collect();
    let post = pb::PostJobRequest {
        flow: "chain".into(),
        store_json: serde_json::Value::Object(keys).to_string(),
        ..Default::default()
    };
    assert_refused(answer(client.post_job(post)).await, "store_json: 2000 keys, over the limit of 1024");
    let post = pb::PostJobRequest {
        flow: "chain".into(),
        store_json: format!("{{\"steps\": \"{}\"}}", "x".repeat(2 << 20)),
        ..Default::default()
    };
    assert_refused(answer(client.post_job(post)).await, "store_json: 2097165 bytes, over the limit of 1048576 bytes");

    // Flow files: too big, a name too long inside one, and many files full of problems.
    let big =
        pb::FlowFileText { file: "big.yaml".into(), text: format!("{}#{}", flow_file("big"), "x".repeat(300_000)) };
    assert_refused(answer(client.apply_flows(vec![big])).await, "files[0].text (\"big.yaml\"): 300");
    let long_name = pb::FlowFileText { file: "long.yaml".into(), text: flow_file(&"n".repeat(100_000)) };
    assert_refused(answer(client.apply_flows(vec![long_name])).await, "…(100000 bytes) is longer than 256 bytes");
    let bad: String = (0..200).map(|i| format!("unknown{i}: {}\n", "v".repeat(500))).collect();
    let files = (0..30).map(|i| pb::FlowFileText { file: format!("bad{i}.yaml"), text: bad.clone() }).collect();
    assert_refused(answer(client.apply_flows(files)).await, "nothing applied");

    // A page larger than the limit is served at the limit, not refused.
    let list = pb::ListJobsRequest { page_size: u32::MAX, ..Default::default() };
    assert_eq!(answer(client.list_jobs(list)).await.0, Code::Ok);

    // Over the message limit, tonic refuses the request before any handler.
    let post = pb::PostJobRequest { flow: "chain".into(), store_json: "x".repeat(5 << 20), ..Default::default() };
    let (code, message) = answer(client.post_job(post)).await;
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert!(message.contains("4194304"), "{message}");

    // The conductor still works.
    let store = r#"{"steps": 1, "step_ms": 0}"#.into();
    let post = pb::PostJobRequest { flow: "chain".into(), store_json: store, ..Default::default() };
    client.post_job(post).await.or_fail();
}
