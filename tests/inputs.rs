//! Typed inputs end to end: the real `baton` CLI posting to a real `conductor`, on
//! the embedded board and on etcd. A store that breaks a flow's input rules is
//! refused before anything is written, naming the field and the rule; defaults
//! are stored with the job; `baton flows` shows each input's type.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::time::Duration;

use serde_json::{json, Value};
use tests::conductor::{baton, get_job, post_job, wait_job, ConductorConfig, ConductorProcess, OrFail};
use tests::etcd::{unique_prefix, EtcdProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// One conductor on each board: (board name, process, the embedded board's directory kept alive).
fn conductors(test: &str) -> Vec<(&'static str, ConductorProcess, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().or_fail();
    let embedded =
        ConductorProcess::start(&ConductorConfig::embedded(dir.path(), &format!("{test}-embedded"))).or_fail();
    let etcd = ConductorConfig::etcd(
        &EtcdProcess::shared().endpoint(),
        &unique_prefix(test),
        &format!("{test}-etcd"),
        Duration::from_secs(3),
    );
    let etcd = ConductorProcess::start(&etcd).or_fail();
    vec![("embedded", embedded, Some(dir)), ("etcd", etcd, None)]
}

fn job_count(endpoint: &str) -> usize {
    match baton(endpoint, ["list"]).ok_json().or_fail() {
        Value::Array(jobs) => jobs.len(),
        other => panic!("`baton list` printed no list: {other}"),
    }
}

#[test]
fn a_post_breaking_the_input_rules_is_refused_naming_the_field_and_the_rule_and_writes_nothing() {
    for (board, conductor, _dir) in conductors("inputs-refused") {
        let endpoint = conductor.endpoint();
        let refused = baton(&endpoint, ["post", "chain", "-s", "steps=-1", "-s", "step_ms=1"]);
        assert!(!refused.success(), "{board}: the post was accepted: {}", refused.stdout());
        let stderr = refused.stderr();
        assert!(stderr.contains("steps: must be an integer >= 1, got -1"), "{board}: {stderr}");
        assert!(stderr.contains("InvalidArgument") || stderr.contains("invalid argument"), "{board}: {stderr}");

        let refused = baton(&endpoint, ["post", "provision-cluster", "-s", "nodes=0", "-s", "flaky=yes"]);
        assert!(!refused.success(), "{board}: the post was accepted: {}", refused.stdout());
        let stderr = refused.stderr();
        for expected in ["nodes: must be an integer >= 1, got 0", "flaky: must be a number, got \"yes\""] {
            assert!(stderr.contains(expected), "{board}: {expected:?} missing from {stderr}");
        }
        assert_eq!(job_count(&endpoint), 0, "{board}: a refused post wrote a job");
    }
}

#[test]
fn defaults_are_stored_with_the_job_and_flows_show_the_types() {
    for (board, conductor, _dir) in conductors("inputs-defaults") {
        let endpoint = conductor.endpoint();
        let id = post_job(&endpoint, "provision-cluster", &[("nodes", "1"), ("step_ms", "1")]).or_fail();
        let job = get_job(&endpoint, &id).or_fail();
        assert_eq!(job["store"], json!({"nodes": 1, "step_ms": 1, "flaky": 0}), "{board}: {job}");
        let done = wait_job(&endpoint, &id, PATIENCE, "the job to end", |job| job["state"] == "COMPLETE").or_fail();
        assert_eq!(done["outcome"], "SUCCESS", "{board}: {done}");

        let flows = baton(&endpoint, ["flows"]).ok_json().or_fail();
        let chain = flows.as_array().and_then(|f| f.iter().find(|f| f["name"] == "chain")).cloned().unwrap_or_default();
        assert_eq!(
            chain["inputs"][0],
            json!({"name": "steps", "type": "integer", "required": true, "minimum": 1, "maximum": 10000,
                   "description": "steps in the line"}),
            "{board}: {flows}"
        );
        let table = baton(&endpoint, ["flows", "--output", "table"]);
        assert!(table.success(), "{board}: {}", table.stderr());
        assert!(table.stdout().contains("steps: integer from 1 to 10000"), "{board}: {}", table.stdout());
    }
}
