//! Flow files stored on the board, end to end: real `conductor` processes and the real
//! `baton` CLI, each scenario on the embedded board and on etcd (`scenario::embedded`,
//! `scenario::etcd`).
//!
//! - `baton flows apply|get|history|delete|graph`, an unchanged apply being a no-op, a bad
//!   file refusing the whole apply, a delete refused while a job uses the flow;
//! - a job pinned to the version it was posted against: it finishes on that version after
//!   a newer one is applied and its conductor is killed (SIGKILL) mid-run; `NAME@1`;
//! - a job's outputs (every name its tasks provided);
//! - `--flows-dir` never moving a flow's current version back;
//! - a flow file refused the name of a Rust flow, and the other way round;
//! - a job pinned to a version needing a kind its conductor lacks, left to one that has it.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tests::conductor::{baton, bin_path, is_complete, wait_job, ConductorConfig, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

tests::on_both_boards!(
    flows_are_applied_read_and_deleted_through_baton,
    a_job_runs_the_version_it_was_pinned_to,
    flows_dir_never_moves_current_back,
    a_flow_file_may_not_take_a_rust_flows_name,
    a_job_needing_a_kind_it_lacks_waits_for_a_conductor_that_has_it,
);

/// A slow first step, then a mark that says which version ran.
fn pinned_flow(mark: &str, sleep: &str) -> String {
    format!(
        "name: pinned\ninputs:\n  who: {{type: string, default: world}}\nflow:\n  linear:\n    \
         - task: wait\n      kind: sleep\n      with: {{duration: {sleep}}}\n    \
         - task: mark\n      kind: noop\n      with: {{result: {{version: {mark}, who: \"${{who}}\"}}}}\n      \
         provides: [version, who]\n"
    )
}

/// A flow whose shape depends on its input (`each`).
const FAN_FLOW: &str = "name: fan\ninputs:\n  nodes: {type: array, items: {type: string}}\nflow:\n  linear:\n    \
                        - each: {in: nodes, as: node}\n      linear:\n        - task: visit\n          kind: noop\n";

/// Uses `shell`, which the scenarios' conductors do not allow: its jobs wait.
const SHELL_FLOW: &str =
    "name: shelly\nflow:\n  linear:\n    - task: run\n      kind: shell\n      with: {run: [\"true\"]}\n";

/// Writes `text` as `name` in `dir` and returns the path's text.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).or_fail();
    path.display().to_string()
}

/// `baton --endpoint ENDPOINT ARGS` with the table output (for people): `(ok, stdout, stderr)`.
fn table(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin_path("baton"))
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .env_remove("BATON_ENDPOINT")
        .output()
        .or_fail();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn finished(endpoint: &str, id: &str) -> Value {
    wait_job(endpoint, id, PATIENCE, "completion", is_complete).or_fail()
}

/// `baton ARGS` that must succeed, as JSON.
fn ok(endpoint: &str, args: &[&str]) -> Value {
    baton(endpoint, args).ok_json().or_fail()
}

/// `baton flows apply -f FILES`, returning `(name, version, created)` per file.
fn apply(endpoint: &str, files: &[&str]) -> Vec<(String, u64, bool)> {
    let mut args = vec!["flows", "apply"];
    for file in files {
        args.extend(["-f", file]);
    }
    let applied = ok(endpoint, &args);
    let list = applied.as_array().unwrap_or_else(|| panic!("a list: {applied}"));
    list.iter()
        .map(|a| {
            let name = a["name"].as_str().unwrap_or_default().to_owned();
            (name, a["version"].as_u64().unwrap_or_default(), a["created"].as_bool().unwrap_or_default())
        })
        .collect()
}

fn history_versions(endpoint: &str, name: &str) -> Vec<(u64, bool)> {
    let history = ok(endpoint, &["flows", "history", name]);
    let list = history.as_array().unwrap_or_else(|| panic!("a list: {history}"));
    list.iter().map(|v| (v["version"].as_u64().unwrap_or_default(), v["current"] == true)).collect()
}

fn flows_are_applied_read_and_deleted_through_baton(kind: BoardKind) {
    let board = TestBoard::new(kind, "bf-defs").or_fail();
    let empty = flows_dir(&[]).or_fail();
    let conductor = ConductorProcess::start(&board.conductor("bf-defs", empty.path(), &[])).or_fail();
    let endpoint = conductor.endpoint();
    let files = tempfile::tempdir().or_fail();
    let v1 = write(files.path(), "pinned.yaml", &pinned_flow("1", "1ms"));
    let v2 = write(files.path(), "pinned-v2.yaml", &pinned_flow("2", "1ms"));

    assert_eq!(apply(&endpoint, &[&v1]), vec![("pinned".to_owned(), 1, true)]);
    // The table form says what happened per file.
    let (applied, stdout, stderr) = table(&endpoint, &["flows", "apply", "-f", &v1]);
    assert!(applied && stdout.contains("flow pinned version 1 unchanged"), "{stdout}{stderr}");
    assert_eq!(history_versions(&endpoint, "pinned"), vec![(1, true)], "an unchanged apply stores nothing");
    assert_eq!(apply(&endpoint, &[&v2]), vec![("pinned".to_owned(), 2, true)]);
    assert_eq!(history_versions(&endpoint, "pinned"), vec![(1, false), (2, true)]);

    let current = ok(&endpoint, &["flows", "get", "pinned"]);
    assert_eq!(current["version"].as_u64(), Some(2));
    assert_eq!(current["source"].as_str(), Some(pinned_flow("2", "1ms").as_str()), "the file comes back as applied");
    let (_, printed, stderr) = table(&endpoint, &["flows", "get", "pinned", "--version", "1"]);
    assert_eq!(printed, pinned_flow("1", "1ms"), "{stderr}");

    let flows = ok(&endpoint, &["flows"]);
    let listed = flows.as_array().and_then(|l| l.iter().find(|f| f["name"] == "pinned")).cloned();
    let listed = listed.unwrap_or_else(|| panic!("pinned is listed: {flows}"));
    assert_eq!((listed["kind"].as_str(), listed["version"].as_u64()), (Some("file"), Some(2)), "{listed}");
    assert_eq!(listed["optional"], serde_json::json!(["who"]), "{listed}");

    // Graphs: plain, and one whose shape needs an input (said clearly without it).
    let (_, dot, stderr) = table(&endpoint, &["flows", "graph", "pinned"]);
    assert!(dot.starts_with("digraph") && dot.contains("\"mark\""), "{dot}{stderr}");
    let (_, mermaid, stderr) = table(&endpoint, &["flows", "graph", "pinned", "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart"), "{mermaid}{stderr}");
    let fan = write(files.path(), "fan.yaml", FAN_FLOW);
    apply(&endpoint, &[&fan]);
    let missing = baton(&endpoint, ["flows", "graph", "fan"]);
    assert!(!missing.success(), "{}", missing.stdout());
    assert!(missing.stderr().contains("--store") && missing.stderr().contains("nodes"), "{}", missing.stderr());
    let (_, drawn, stderr) = table(&endpoint, &["flows", "graph", "fan", "--store", r#"nodes=["a","b"]"#]);
    assert!(drawn.contains("visit[1]"), "{drawn}{stderr}");

    // A file with a problem refuses the whole apply, naming where.
    let bad = write(files.path(), "bad.yaml", "name: bad\nflow:\n  linear:\n    - task: a\n      kind: nope\n");
    let shelly = write(files.path(), "shelly.yaml", SHELL_FLOW);
    let refused = baton(&endpoint, ["flows", "apply", "-f", &shelly, "-f", &bad]);
    assert!(!refused.success(), "{}", refused.stdout());
    assert!(refused.stderr().contains(&format!("{bad}:5:13")), "{}", refused.stderr());
    assert!(!baton(&endpoint, ["flows", "get", "shelly"]).success(), "nothing was applied");

    // A delete is refused while a job uses the flow (this conductor lacks shell: it waits).
    apply(&endpoint, &[&shelly]);
    let waiting = ok(&endpoint, &["post", "shelly"]);
    let id = waiting["id"].as_str().unwrap_or_default().to_owned();
    let in_use = baton(&endpoint, ["flows", "delete", "shelly"]);
    assert!(!in_use.success() && in_use.stderr().contains(&id), "names the job: {}", in_use.stderr());
    ok(&endpoint, &["cancel", &id]);
    ok(&endpoint, &["flows", "delete", "shelly"]);
    let gone = baton(&endpoint, ["flows", "get", "shelly"]);
    assert!(!gone.success() && gone.stderr().contains("shelly"), "{}", gone.stderr());
}

/// Post v1 (slow), apply v2 while it runs, SIGKILL its conductor: the job resumes
/// elsewhere and still runs v1. `NAME@1` runs v1 after v2 is current.
fn a_job_runs_the_version_it_was_pinned_to(kind: BoardKind) {
    let board = TestBoard::new(kind, "bf-pin").or_fail();
    let flows = flows_dir(&[("pinned.yaml", &pinned_flow("1", "4s"))]).or_fail();
    let mut first = ConductorProcess::start(&board.conductor("bf-pin-a", flows.path(), &[])).or_fail();
    let posted = ok(&first.endpoint(), &["post", "pinned", "--store", "who=ann"]);
    assert_eq!(posted["flow_version"].as_u64(), Some(1), "{posted}");
    let id = posted["id"].as_str().unwrap_or_default().to_owned();
    let running = |job: &Value| {
        job["tasks"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "wait" && t["state"] == "RUNNING"))
    };
    wait_job(&first.endpoint(), &id, PATIENCE, "the slow step to run", running).or_fail();

    let files = tempfile::tempdir().or_fail();
    let v2 = write(files.path(), "pinned.yaml", &pinned_flow("2", "1ms"));
    assert_eq!(apply(&first.endpoint(), &[&v2]), vec![("pinned".to_owned(), 2, true)]);
    first.kill().or_fail();

    // Another conductor (etcd: a second process; embedded: the board reopened) resumes it.
    let second = ConductorProcess::start(&board.conductor("bf-pin-b", flows.path(), &[])).or_fail();
    let done = finished(&second.endpoint(), &id);
    assert_eq!(done["outcome"].as_str(), Some("SUCCESS"), "{done}");
    assert!(done["claims"].as_u64() >= Some(2), "resumed after the kill: {done}");
    assert_eq!(done["flow_version"].as_u64(), Some(1), "{done}");
    assert_eq!(done["outputs"], serde_json::json!({"version": 1, "who": "ann"}), "ran v1: {done}");

    // The restarted conductor's --flows-dir (v1) did not move current back.
    assert_eq!(history_versions(&second.endpoint(), "pinned"), vec![(1, false), (2, true)]);
    let now = ok(&second.endpoint(), &["post", "pinned"]);
    let done = finished(&second.endpoint(), now["id"].as_str().unwrap_or_default());
    assert_eq!(done["outputs"], serde_json::json!({"version": 2, "who": "world"}), "current is v2: {done}");
    let older = ok(&second.endpoint(), &["post", "pinned@1", "--store", "who=bo"]);
    assert_eq!(older["flow_version"].as_u64(), Some(1), "{older}");
    let done = finished(&second.endpoint(), older["id"].as_str().unwrap_or_default());
    assert_eq!(done["outputs"]["version"].as_u64(), Some(1), "NAME@1 runs v1: {done}");
    let unknown = baton(&second.endpoint(), ["post", "pinned@9"]);
    assert!(!unknown.success() && unknown.stderr().contains("version 9"), "{}", unknown.stderr());
}

/// Start with dir A (v1), apply B (v2) with the CLI, restart with A: current stays B's.
fn flows_dir_never_moves_current_back(kind: BoardKind) {
    let board = TestBoard::new(kind, "bf-never-back").or_fail();
    let dir_a = flows_dir(&[("pinned.yaml", &pinned_flow("1", "1ms"))]).or_fail();
    let mut conductor = ConductorProcess::start(&board.conductor("bf-nb", dir_a.path(), &[])).or_fail();
    let files = tempfile::tempdir().or_fail();
    let b = write(files.path(), "pinned.yaml", &pinned_flow("2", "1ms"));
    assert_eq!(apply(&conductor.endpoint(), &[&b]), vec![("pinned".to_owned(), 2, true)]);
    conductor.terminate().or_fail();
    let restarted = ConductorProcess::start(&board.conductor("bf-nb", dir_a.path(), &[])).or_fail();
    assert_eq!(history_versions(&restarted.endpoint(), "pinned"), vec![(1, false), (2, true)]);
    let current = ok(&restarted.endpoint(), &["flows", "get", "pinned"]);
    assert_eq!(current["source"].as_str(), Some(pinned_flow("2", "1ms").as_str()));
    let log = restarted.log();
    assert!(log.contains("never moved back"), "the conductor says why: {log}");
}

/// A conductor with Rust flows (`demo_conductor`: `chain`, `provision-cluster`).
fn rust_conductor(board: &TestBoard, name: &str) -> ConductorConfig {
    let mut config = board.conductor(name, Path::new("unused"), &[]);
    config.binary = "demo_conductor";
    // No --flows-dir: only the binary's Rust flows.
    config.extra_args.clear();
    config
}

/// An apply of a file named like a live conductor's Rust flow is refused naming both; a
/// conductor whose Rust flow is named like a board file flow refuses the file flow.
fn a_flow_file_may_not_take_a_rust_flows_name(kind: BoardKind) {
    let board = TestBoard::new(kind, "bf-clash").or_fail();
    let files = tempfile::tempdir().or_fail();
    let chain = write(files.path(), "chain.yaml", "name: chain\nflow:\n  linear:\n    - task: a\n      kind: noop\n");
    let mut rusty = ConductorProcess::start(&rust_conductor(&board, "bf-rusty")).or_fail();
    let refused = baton(&rusty.endpoint(), ["flows", "apply", "-f", &chain]);
    assert!(!refused.success(), "{}", refused.stdout());
    for needle in ["chain", "Rust flow", "nothing applied"] {
        assert!(refused.stderr().contains(needle), "names {needle}: {}", refused.stderr());
    }
    assert!(!baton(&rusty.endpoint(), ["flows", "get", "chain"]).success(), "nothing was applied");
    if kind == BoardKind::Etcd {
        // A conductor started beside it with the file in --flows-dir does not apply it either.
        let dir =
            flows_dir(&[("chain.yaml", "name: chain\nflow:\n  linear:\n    - task: a\n      kind: noop\n")]).or_fail();
        let stock = ConductorProcess::start(&board.conductor("bf-beside", dir.path(), &[])).or_fail();
        let log = stock.log();
        let line = log.lines().find(|l| l.contains("flow file not applied")).unwrap_or_else(|| panic!("{log}"));
        assert!(line.contains("bf-rusty") && line.contains("chain"), "names both: {line}");
        assert!(!baton(&rusty.endpoint(), ["flows", "get", "chain"]).success(), "nothing was applied");
        // A post of the Rust flow through the conductor without it is accepted, saying who has it.
        let posted = baton(&stock.endpoint(), ["post", "chain", "--store", "steps=1", "--store", "step_ms=1"]);
        assert!(posted.success() && posted.stderr().contains("bf-rusty"), "{}", posted.stderr());
        let id = posted.json().or_fail()["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(finished(&stock.endpoint(), &id)["outcome"].as_str(), Some("SUCCESS"));
    }
    rusty.terminate().or_fail();

    // With no Rust conductor live, the file flow is accepted; a Rust conductor then refuses it.
    let empty = flows_dir(&[]).or_fail();
    let mut stock = ConductorProcess::start(&board.conductor("bf-stock", empty.path(), &[])).or_fail();
    assert_eq!(apply(&stock.endpoint(), &[&chain]), vec![("chain".to_owned(), 1, true)]);
    stock.terminate().or_fail();
    let rusty = ConductorProcess::start(&rust_conductor(&board, "bf-rusty")).or_fail();
    let log = rusty.log();
    let line = log.lines().find(|l| l.contains("file flow is refused here")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("chain"), "{line}");
    // Its own Rust flow still runs.
    let posted = ok(&rusty.endpoint(), &["post", "chain", "--store", "steps=1", "--store", "step_ms=1"]);
    assert_eq!(posted["flow_version"], Value::Null, "a Rust flow's job has no pin: {posted}");
    let done = finished(&rusty.endpoint(), posted["id"].as_str().unwrap_or_default());
    assert_eq!(done["outcome"].as_str(), Some("SUCCESS"), "{done}");
}

/// On etcd, a flow applied through one conductor reaches the others through the board's
/// watch: a conductor that never saw the file claims the new flow's job (its claimer is
/// woken by the new flow), while the conductor it was applied and posted through is drained.
#[test]
fn a_flow_applied_through_one_conductor_is_run_by_another() {
    let board = TestBoard::new(BoardKind::Etcd, "bf-watch").or_fail();
    let empty = flows_dir(&[]).or_fail();
    let front = ConductorProcess::start(&board.conductor("bf-front", empty.path(), &[])).or_fail();
    let back = ConductorProcess::start(&board.conductor("bf-back", empty.path(), &[])).or_fail();
    ok(&front.endpoint(), &["drain", "bf-front"]);
    let files = tempfile::tempdir().or_fail();
    let flow = write(files.path(), "pinned.yaml", &pinned_flow("7", "1ms"));
    apply(&front.endpoint(), &[&flow]);
    let posted = ok(&front.endpoint(), &["post", "pinned"]);
    let id = posted["id"].as_str().unwrap_or_default().to_owned();
    let done = finished(&front.endpoint(), &id);
    assert_eq!(done["outputs"]["version"].as_u64(), Some(7), "{done}");
    assert!(back.log().contains(&id), "bf-back ran it: {}", back.log());
}

/// A job pinned to a version this conductor cannot build is not lost: v1 uses `shell` (not
/// allowed here), so its job records that it requires `kind:shell` and waits; v2 drops it,
/// so the conductor now claims the flow, runs a v2 job posted later, and still leaves the
/// v1 job to a conductor that has `shell` (required features, issue 12).
fn a_job_needing_a_kind_it_lacks_waits_for_a_conductor_that_has_it(kind: BoardKind) {
    let board = TestBoard::new(kind, "bf-unbuildable").or_fail();
    let empty = flows_dir(&[]).or_fail();
    let conductor = ConductorProcess::start(&board.conductor("bf-unb", empty.path(), &[])).or_fail();
    let endpoint = conductor.endpoint();
    let files = tempfile::tempdir().or_fail();
    let v1 = write(files.path(), "shelly.yaml", SHELL_FLOW);
    apply(&endpoint, &[&v1]);
    let posted = baton(&endpoint, ["post", "shelly"]);
    assert!(posted.success() && posted.stderr().contains("warning:"), "{}", posted.stderr());
    let id = posted.json().or_fail()["id"].as_str().unwrap_or_default().to_owned();
    let v2 = write(
        files.path(),
        "shelly-v2.yaml",
        &SHELL_FLOW.replace("kind: shell\n      with: {run: [\"true\"]}", "kind: noop"),
    );
    assert_eq!(apply(&endpoint, &[&v2]), vec![("shelly".to_owned(), 2, true)]);
    let now = ok(&endpoint, &["post", "shelly"]);
    assert_eq!(finished(&endpoint, now["id"].as_str().unwrap_or_default())["outcome"].as_str(), Some("SUCCESS"));
    let waiting = ok(&endpoint, &["get", &id]);
    assert_eq!((waiting["state"].as_str(), waiting["claims"].as_u64()), (Some("UNCLAIMED"), Some(0)), "{waiting}");
    assert_eq!(waiting["requires"], serde_json::json!(["file-flow", "kind:shell"]), "{waiting}");
}
