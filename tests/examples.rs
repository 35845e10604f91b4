//! The flow files of `examples/` run as documented: every file validates offline, and on a
//! stock `conductor` given `examples/flows` the cake graph bakes, the server provisioning
//! creates its files (and, with a failing node, deletes them all again), and the http flow
//! talks to a real HTTP server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tests::conductor::{baton, bin_path, is_complete, post_job, task_executions, wait_job, ConductorProcess, OrFail};
use tests::flow_files::{BoardKind, RecordingServer, TestBoard};

const PATIENCE: Duration = Duration::from_secs(60);

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .or_fail()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// A stock conductor on a fresh embedded board running `examples/flows`, shell allowed.
fn conductor(name: &str) -> (TestBoard, ConductorProcess) {
    let board = TestBoard::new(BoardKind::Embedded, name).or_fail();
    let config = board.conductor(name, &examples().join("flows"), &["--task-kinds", "noop,sleep,fail,shell,http"]);
    let conductor = ConductorProcess::start(&config).or_fail();
    (board, conductor)
}

fn finished(endpoint: &str, id: &str) -> Value {
    wait_job(endpoint, id, PATIENCE, "the example job to finish", is_complete).or_fail()
}

#[test]
fn every_example_flow_file_validates_offline() {
    let mut files = yaml_files(&examples().join("flows"));
    files.extend(yaml_files(&examples().join("python-worker/flows")));
    assert!(files.len() >= 6, "the examples are where the README says: {files:?}");
    let mut args = vec!["flows".to_owned(), "validate".to_owned()];
    for file in &files {
        args.extend(["-f".to_owned(), file.display().to_string()]);
    }
    let out = std::process::Command::new(bin_path("baton")).args(&args).output().or_fail();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_cake_graph_bakes_with_both_ovens() {
    let (_board, conductor) = conductor("ex-cake");
    let id = post_job(&conductor.endpoint(), "bake-cake", &[]).or_fail();
    let job = finished(&conductor.endpoint(), &id);
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    let cake = &job["outputs"]["cake"];
    assert_eq!(cake["cake"], serde_json::json!(["flour", "eggs", "sugar"]), "{job}");
    let pans: Vec<&str> =
        cake["ovens"].as_array().ok_or("no ovens").or_fail().iter().filter_map(|o| o["pan"].as_str()).collect();
    assert_eq!(pans, ["round-pan", "square-pan"], "{job}");
}

#[test]
fn provisioning_creates_a_server_file_per_node_and_a_failing_node_deletes_them_all() {
    let (_board, conductor) = conductor("ex-servers");
    let endpoint = conductor.endpoint();
    let ok = tempfile::tempdir().or_fail();
    let dir = ok.path().display().to_string();
    let id = post_job(&endpoint, "provision-servers", &[("dir", &dir), ("nodes", "3")]).or_fail();
    let job = finished(&endpoint, &id);
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    for node in 0..3 {
        assert!(ok.path().join(format!("server-{node}")).is_file(), "server-{node} exists");
    }
    assert_eq!(std::fs::read_to_string(ok.path().join("cluster")).or_fail().trim(), "3");

    let failing = tempfile::tempdir().or_fail();
    let dir = failing.path().display().to_string();
    let store = [("dir", dir.as_str()), ("nodes", "3"), ("fail_node", "1")];
    let id = post_job(&endpoint, "provision-servers", &store).or_fail();
    let job = finished(&endpoint, &id);
    assert_eq!(job["outcome"].as_str(), Some("REVERTED"), "{job}");
    assert_eq!(task_executions(&job).get("check-server[1]"), Some(&3), "tried three times: {job}");
    let left: Vec<String> = std::fs::read_dir(failing.path())
        .or_fail()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.starts_with("server-") || name == "cluster")
        .collect();
    assert!(left.is_empty(), "every server file deleted again: {left:?}");
    let mut deleted: Vec<String> =
        std::fs::read_to_string(failing.path().join("deleted")).or_fail().lines().map(str::to_owned).collect();
    deleted.sort();
    assert_eq!(deleted, ["server-0", "server-1", "server-2"]);
}

fn status_api(method: &str, path: &str) -> (u16, &'static str) {
    match (method, path) {
        ("GET", "/status") => (200, r#"{"ok": true}"#),
        ("POST", "/records") => (201, r#"{"id": 7}"#),
        _ => (404, r#"{"error": "no such thing"}"#),
    }
}

#[test]
fn the_http_example_reads_and_records() {
    let server = RecordingServer::start(status_api).or_fail();
    let (_board, conductor) = conductor("ex-http");
    let id = post_job(&conductor.endpoint(), "http-check", &[("base", &server.url())]).or_fail();
    let job = finished(&conductor.endpoint(), &id);
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(job["outputs"]["record"], serde_json::json!({"id": 7}), "{job}");
    assert_eq!(server.requests(), ["GET /status", "POST /records"]);
    let listed = baton(&conductor.endpoint(), ["flows"]).ok_json().or_fail();
    assert!(listed.to_string().contains("bake-cake"), "the examples are on the board: {listed}");
}
