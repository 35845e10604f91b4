//! Random and mutated requests against the Baton handlers over a real embedded board
//! (issue 12, "Bad input and abuse"): no request makes a handler panic, and every
//! refusal is a clear one: a code that says the request was at fault (never
//! INTERNAL or UNKNOWN), with a short message that is not empty.
//!
//! Requests come three ways: built from random fields (near-valid names and
//! stores among them), decoded from mutated bytes of valid encoded requests, and
//! flow files mutated from the examples. Cases are bounded to keep `cargo test` fast.

use std::sync::Arc;

use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, JobBoard};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use proto::pb;
use proto::pb::baton_server::Baton;
use tonic::{Code, Request, Status};

use crate::api::limits::MAX_ERROR_BYTES;
use crate::api::{ApiState, BatonService};

/// The handlers over a fresh embedded board with the demo flows, and a runtime to call them on.
struct Subject {
    service: BatonService,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn subject() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let board: Arc<dyn JobBoard> =
        Arc::new(EmbeddedBoard::open(&dir.path().join("board.sqlite3"), BoardConfig::new("fuzz")).unwrap());
    let state = ApiState::new(board, Arc::new(crate::demo_flows::registry()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Subject { service: BatonService::new(state), runtime, _dir: dir }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// An answer is Ok, or a refusal that blames the request, said briefly.
fn clear<T>(what: &str, answer: Result<T, Status>) -> Result<(), TestCaseError> {
    let Err(status) = answer else { return Ok(()) };
    let allowed = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::FailedPrecondition,
        Code::AlreadyExists,
        Code::OutOfRange,
        Code::Unimplemented,
    ];
    prop_assert!(allowed.contains(&status.code()), "{what}: {:?}: {}", status.code(), status.message());
    prop_assert!(!status.message().trim().is_empty(), "{what}: {:?} without a message", status.code());
    prop_assert!(status.message().len() <= MAX_ERROR_BYTES, "{what}: a {} byte message", status.message().len());
    Ok(())
}

/// A flow name: one the registry has, or anything.
fn flow() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("chain".to_owned()),
        Just("provision-cluster".to_owned()),
        Just(String::new()),
        ".{0,20}",
        (0usize..2000).prop_map(|n| "f".repeat(n)),
    ]
}

/// A JSON value of a few levels.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A store's text: a near-valid store with random values, any JSON, or any text.
fn store() -> impl Strategy<Value = String> {
    prop_oneof![
        (json(), json()).prop_map(|(steps, ms)| serde_json::json!({"steps": steps, "step_ms": ms}).to_string()),
        (0u64..50, 0u64..5).prop_map(|(steps, ms)| format!(r#"{{"steps": {steps}, "step_ms": {ms}, "nodes": 1}}"#)),
        json().prop_map(|v| v.to_string()),
        ".{0,40}",
    ]
}

#[test]
fn random_posts_and_graphs_are_answered_clearly() {
    let subject = subject();
    let requests = (
        flow(),
        store(),
        any::<i32>(),
        proptest::option::of(".{0,10}"),
        proptest::option::of(0u32..4),
        proptest::option::of(any::<u64>()),
    );
    runner(160)
        .run(&requests, |(flow, store_json, priority, idempotency_key, version, deadline_in_ms)| {
            let post = pb::PostJobRequest {
                flow: flow.clone(),
                store_json: store_json.clone(),
                priority,
                idempotency_key,
                version,
                deadline_in_ms,
            };
            clear("post", subject.runtime.block_on(subject.service.post_job(Request::new(post))))?;
            let graph = pb::FlowGraphRequest { name: flow, version, format: String::new(), store_json };
            clear("graph", subject.runtime.block_on(subject.service.flow_graph(Request::new(graph))))
        })
        .unwrap();
}

/// Valid requests of every kind, encoded: the seeds the byte mutations start from.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let id = uuid::Uuid::new_v4().to_string();
    let file = pb::FlowFileText { file: "chain.yaml".into(), text: EXAMPLE.into() };
    let task = pb::TaskRef { job_id: id.clone(), task: "step".into() };
    vec![
        (
            "post",
            pb::PostJobRequest {
                flow: "chain".into(),
                store_json: r#"{"steps": 2, "step_ms": 0}"#.into(),
                priority: 3,
                idempotency_key: Some("k".into()),
                version: None,
                deadline_in_ms: None,
            }
            .encode_to_vec(),
        ),
        ("get", pb::GetJobRequest { id: id.clone() }.encode_to_vec()),
        ("cancel", pb::CancelJobRequest { id: id.clone() }.encode_to_vec()),
        (
            "list",
            pb::ListJobsRequest { state: 1, flow: "chain".into(), page_size: 5, page_token: "t".into() }
                .encode_to_vec(),
        ),
        ("drain", pb::DrainRequest { name: "fuzz".into(), draining: true }.encode_to_vec()),
        ("apply", pb::ApplyFlowsRequest { files: vec![file] }.encode_to_vec()),
        ("get_flow", pb::GetFlowRequest { name: "chain".into(), version: Some(1) }.encode_to_vec()),
        ("history", pb::FlowHistoryRequest { name: "chain".into() }.encode_to_vec()),
        ("delete", pb::DeleteFlowRequest { name: "chain".into() }.encode_to_vec()),
        (
            "complete",
            pb::CompleteTaskRequest {
                target: Some(pb::complete_task_request::Target::Task(task)),
                outcome: Some(pb::complete_task_request::Outcome::ResultJson("{}".into())),
                operator: "me".into(),
            }
            .encode_to_vec(),
        ),
    ]
}

const EXAMPLE: &str = include_str!("../../../../examples/flows/chain.yaml");

/// Flips, overwrites, inserts or deletes a few bytes.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, value, how) in edits {
        let at = at % (bytes.len() + 1);
        match how % 4 {
            0 if at < bytes.len() => bytes[at] ^= value,
            1 if at < bytes.len() => bytes[at] = value,
            2 => bytes.insert(at, value),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(value),
        }
    }
    bytes
}

/// Decodes `bytes` as the request `name` and calls its handler, if they decode.
fn call(subject: &Subject, name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let s = &subject.service;
    macro_rules! handle {
        ($ty:ty, $method:ident) => {
            match <$ty>::decode(bytes) {
                Ok(request) => clear(name, subject.runtime.block_on(s.$method(Request::new(request)))),
                Err(_) => Ok(()),
            }
        };
    }
    match name {
        "post" => handle!(pb::PostJobRequest, post_job),
        "get" => handle!(pb::GetJobRequest, get_job),
        "cancel" => handle!(pb::CancelJobRequest, cancel_job),
        "list" => handle!(pb::ListJobsRequest, list_jobs),
        "drain" => handle!(pb::DrainRequest, drain),
        "apply" => handle!(pb::ApplyFlowsRequest, apply_flows),
        "get_flow" => handle!(pb::GetFlowRequest, get_flow),
        "history" => handle!(pb::FlowHistoryRequest, flow_history),
        "delete" => handle!(pb::DeleteFlowRequest, delete_flow),
        "complete" => handle!(pb::CompleteTaskRequest, complete_task),
        other => panic!("no seed named {other}"),
    }
}

#[test]
fn mutated_encoded_requests_are_answered_clearly() {
    let subject = subject();
    let seeds = seeds();
    let cases = (0..seeds.len(), proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8));
    runner(400)
        .run(&cases, |(seed, edits)| {
            let (name, bytes) = &seeds[seed];
            call(&subject, name, &mutate(bytes.clone(), &edits))
        })
        .unwrap();
}

#[test]
fn mutated_flow_files_are_answered_clearly() {
    let subject = subject();
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6);
    runner(120)
        .run(&edits, |edits| {
            let text = String::from_utf8_lossy(&mutate(EXAMPLE.as_bytes().to_vec(), &edits)).into_owned();
            let request = pb::ApplyFlowsRequest { files: vec![pb::FlowFileText { file: "m.yaml".into(), text }] };
            clear("apply", subject.runtime.block_on(subject.service.apply_flows(Request::new(request))))
        })
        .unwrap();
}
