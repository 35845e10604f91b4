//! `baton` with flow files on the conductor (`conductor --flows-dir`): `baton demo`, which
//! starts a real `conductor` child with its embedded demo flow files, and `--store` pairs
//! read as the types a flow file declares.
//!
//! Real processes only (build first: `cargo build --workspace --bins`).

use std::path::Path;

use serde_json::json;
use tests::conductor::{baton, ConductorConfig, ConductorProcess, OrFail};

/// Every live process whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(needle))
        .collect()
}

#[test]
fn demo_runs_a_flow_file_on_a_conductor_child_and_stops_it() {
    let data_dir = tempfile::tempdir().or_fail();
    let data = data_dir.path().display().to_string();
    // The endpoint of the harness is ignored: the demo talks to its own conductor.
    let out = baton("http://127.0.0.1:9", ["demo", "--flow", "chain", "--data-dir", &data]);
    assert!(out.success(), "demo failed: {}", out.stderr());
    let job = out.json().or_fail();
    assert_eq!((job["flow"].as_str(), job["state"].as_str()), (Some("chain"), Some("COMPLETE")), "{job}");
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(job["tasks"].as_array().map(Vec::len), Some(5), "five steps from the embedded chain.yaml: {job}");
    assert!(out.stderr().contains("baton demo: conductor"), "{}", out.stderr());
    let left = processes_mentioning(&data);
    assert!(left.is_empty(), "the demo's conductor outlived baton: {left:?}");
    let board: Vec<_> = std::fs::read_dir(&data).or_fail().flatten().collect();
    assert!(!board.is_empty(), "the board was not kept in --data-dir");

    // The default demo: provision-cluster, every node failing once and retried.
    let out = baton("http://127.0.0.1:9", ["demo"]);
    assert!(out.success(), "demo failed: {}", out.stderr());
    let job = out.json().or_fail();
    assert_eq!((job["flow"].as_str(), job["outcome"].as_str()), (Some("provision-cluster"), Some("SUCCESS")));
}

const TYPED: &str = "\
name: typed-inputs
inputs:
  version: {type: string}
  replicas: {type: integer, minimum: 1}
  ratio: {type: number, default: 0.5}
flow:
  linear:
    - task: nothing
      kind: noop
";

#[test]
fn store_pairs_take_the_types_a_flow_file_declares() {
    let flows = tempfile::tempdir().or_fail();
    std::fs::write(flows.path().join("typed-inputs.yaml"), TYPED).or_fail();
    let data = tempfile::tempdir().or_fail();
    let mut config = ConductorConfig::embedded(data.path(), "cli-typed-store");
    config.extra_args = vec!["--flows-dir".into(), path(flows.path())];
    let conductor = ConductorProcess::start(&config).or_fail();
    let endpoint = conductor.endpoint();

    let args = ["post", "typed-inputs", "-s", "version=1.10", "-s", "replicas=3", "-s", "ratio=1.10", "-s", "x=007"];
    let posted = baton(&endpoint, args).ok_json().or_fail();
    assert_eq!(
        posted["store"],
        json!({"version": "1.10", "replicas": 3, "ratio": 1.1, "x": "007"}),
        "a string input keeps its text; an undeclared one is JSON if it parses: {posted}"
    );

    // A text not of its type goes to the conductor as it is, which names the field and the rule.
    let refused = baton(&endpoint, ["post", "typed-inputs", "-s", "version=1", "-s", "replicas=many"]);
    assert!(!refused.success(), "{}", refused.stdout());
    assert!(refused.stderr().contains("replicas: must be an integer"), "{}", refused.stderr());
    let listed = baton(&endpoint, ["list"]).ok_json().or_fail();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "the refused post wrote a job: {listed}");
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
