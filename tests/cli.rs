//! The `baton` CLI as a user runs it: failover over `--endpoint` lists, the idempotency key
//! of every post, store files with `--store` pairs over them, the one-line error of an
//! unreachable fleet, `flows validate` with no server at all, and a `baton demo` that cannot
//! find its `conductor`.
//!
//! Real processes only (build first: `cargo build --workspace --bins`): the `baton` binary
//! against `conductor` processes on the embedded board.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::conductor::{baton, bin_path, free_local_addr, ConductorConfig, ConductorProcess, OrFail};

fn embedded_conductor(name: &str) -> (ConductorProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&ConductorConfig::embedded(dir.path(), name)).or_fail();
    (conductor, dir)
}

fn jobs(endpoint: &str) -> Vec<Value> {
    match baton(endpoint, ["list"]).ok_json().or_fail() {
        Value::Array(jobs) => jobs,
        other => panic!("`baton list` printed no list: {other}"),
    }
}

/// An endpoint where nothing listens (a port that was free a moment ago).
fn dead_endpoint() -> String {
    format!("http://{}", free_local_addr().or_fail())
}

#[test]
fn the_first_endpoint_that_answers_is_used_and_the_unreachable_are_named() {
    let (conductor, _dir) = embedded_conductor("cli-first-answer");
    let down = dead_endpoint();
    let both = format!("{down}, {}", conductor.endpoint());
    let posted = baton(&both, ["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).ok_json().or_fail();
    assert_eq!(posted["flow"], "chain", "{posted}");
    assert_eq!(jobs(&conductor.endpoint()).len(), 1, "posted through the second endpoint");

    let out = baton(&down, ["list"]);
    assert!(!out.success());
    assert_eq!(
        out.stderr().trim_end(),
        format!(
            "baton: cannot list jobs: no conductor answered ({down}: connection refused); check that a \
             conductor runs there, or point --endpoint (or BATON_ENDPOINT) at one that does"
        )
    );
    let out = baton(&format!("{down},{down}"), ["list"]);
    assert!(out.stderr().contains(&format!("({down}: connection refused; {down}: connection refused)")), "{out:?}");
    let out = baton(&format!("{},not a url", conductor.endpoint()), ["list"]);
    assert!(!out.success() && out.stderr().contains("invalid endpoint \"not a url\""), "{out:?}");
}

#[test]
fn a_post_without_a_key_gets_one_of_its_own() {
    let (conductor, _dir) = embedded_conductor("cli-own-key");
    let endpoint = conductor.endpoint();
    for _ in 0..2 {
        baton(&endpoint, ["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).ok_json().or_fail();
    }
    let keys: Vec<String> =
        jobs(&endpoint).iter().filter_map(|job| job["idempotency_key"].as_str().map(str::to_owned)).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|key| uuid::Uuid::parse_str(key).is_ok()), "{keys:?}");
    assert_ne!(keys[0], keys[1], "each invocation has a key of its own");
}

#[test]
fn store_file_and_pairs_reach_the_board_pairs_winning() {
    let (conductor, dir) = embedded_conductor("cli-store-file");
    let file = dir.path().join("store.yaml");
    std::fs::write(&file, "steps: 2\nstep_ms: 5\nlabel: web\nmode: on\n").or_fail();
    let file = file.display().to_string();
    let posted =
        baton(&conductor.endpoint(), ["post", "chain", "--store-file", &file, "-s", "steps=3"]).ok_json().or_fail();
    // `on` is YAML 1.1's boolean, text in YAML 1.2; the flow's declared inputs are typed.
    assert_eq!(posted["store"], json!({"steps": 3, "step_ms": 5, "label": "web", "mode": "on"}), "{posted}");
}

/// Runs `baton ARGS...` with no server and the given PATH, killed if it outlives a minute.
fn run_baton(program: &Path, args: &[&str], path_var: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path_var) = path_var {
        command.env("PATH", path_var);
    }
    let mut child = command.spawn().or_fail();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().or_fail().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().or_fail()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flows")
}

#[test]
fn flows_validate_checks_files_offline() {
    let baton = bin_path("baton");
    let chain = examples().join("chain.yaml");
    let cluster = examples().join("provision-cluster.yaml");
    let (chain, cluster) = (chain.to_str().expect("a UTF-8 path"), cluster.to_str().expect("a UTF-8 path"));
    // No conductor anywhere: --endpoint points at nothing and is never used.
    let out = run_baton(&baton, &["--endpoint", &dead_endpoint(), "flows", "validate", "-f", chain, cluster], None);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("{chain}: OK (flow chain)\n{cluster}: OK (flow provision-cluster)\n"));

    let dir = tempfile::tempdir().or_fail();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "name: broken\nflow:\n  linear:\n    - task: a\n      kind: sleeep\n    - tsk: b\n")
        .or_fail();
    let broken = broken.to_str().expect("a UTF-8 path");
    let out = run_baton(&baton, &["flows", "validate", "-f", chain, "-f", broken], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("{chain}: OK (flow chain)"));
    let problems = &lines[1..];
    assert!(problems.len() >= 2, "every problem, not the first: {stdout}");
    assert!(problems.iter().any(|l| l.starts_with(&format!("{broken}:5:")) && l.contains("sleeep")), "{stdout}");
    assert!(problems.iter().any(|l| l.starts_with(&format!("{broken}:6:")) && l.contains("tsk")), "{stdout}");

    let out = run_baton(&baton, &["--output", "json", "flows", "validate", "-f", broken], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).or_fail();
    assert_eq!(shown[0]["file"], broken, "{shown}");
    assert!(shown[0]["problems"][0]["line"].as_u64().is_some(), "{shown}");
}

#[test]
fn demo_without_a_conductor_names_both_places_it_looked() {
    let alone = tempfile::tempdir().or_fail();
    let program = alone.path().join("baton");
    if std::fs::hard_link(bin_path("baton"), &program).is_err() {
        std::fs::copy(bin_path("baton"), &program).or_fail();
    }
    let empty_path = tempfile::tempdir().or_fail();
    let out = run_baton(&program, &["demo"], Some(empty_path.path()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let beside = alone.path().join("conductor").display().to_string();
    assert!(stderr.contains(&beside) && stderr.contains("PATH"), "{stderr}");
    assert!(stderr.contains("cargo build --release --bins"), "no hint: {stderr}");
}
