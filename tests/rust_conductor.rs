//! The library path for Rust users: `examples/rust-conductor`, a conductor built on the
//! library with its own Rust flow, runs a job of that flow through the real CLI.

use std::time::Duration;

use tests::conductor::{
    baton, bin_path, post_job, succeeded_tasks, wait_job, ConductorConfig, ConductorProcess, OrFail,
};

#[test]
fn a_conductor_built_on_the_library_runs_its_own_rust_flow() {
    let dir = tempfile::tempdir().or_fail();
    let mut config = ConductorConfig::embedded(dir.path(), "rust-conductor");
    config.binary = "rust-conductor";
    let conductor = ConductorProcess::start(&config).or_fail();
    let api = conductor.endpoint();

    let flows = baton(&api, ["flows"]).ok_json().or_fail();
    let names: Vec<&str> = flows.as_array().into_iter().flatten().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["word-count"], "only its own flows: {flows}");

    let id = post_job(&api, "word-count", &[("text", "to be or not to be")]).or_fail();
    let job = wait_job(&api, &id, Duration::from_secs(60), "completion", |job| job["state"] == "COMPLETE").or_fail();
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(succeeded_tasks(&job), ["split", "count", "report"]);
    // Each task's result, as recorded in the logbook, is part of the job.
    let result = |name: &str| {
        job["tasks"].as_array().into_iter().flatten().find(|t| t["name"] == name).map(|t| t["result"].clone())
    };
    assert_eq!(result("split"), Some(serde_json::json!(["to", "be", "or", "not", "to", "be"])));
    assert_eq!(result("report"), Some(serde_json::json!({"top": "be", "times": 2})));
    let table = std::process::Command::new(bin_path("baton")).args(["--endpoint", &api, "get", &id]).output().or_fail();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("RESULT") && table.contains(r#"{"times":2,"top":"be"}"#), "{table}");

    let refused = baton(&api, ["post", "word-count", "--store", "words=3"]);
    assert!(!refused.success(), "its typed inputs are checked at post");
    assert!(refused.stderr().contains("text"), "{}", refused.stderr());
}
