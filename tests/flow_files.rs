//! Flow files end to end: real `conductor` processes started with `--flows-dir`,
//! `--task-kinds` and `--secrets-dir`, driven by the real `baton` CLI, on the embedded
//! board and on etcd (each scenario runs on both: `scenario::embedded`, `scenario::etcd`).
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{
    baton, bin_path, free_local_addr, get_job, is_complete, post_job, task_executions, wait_job, ConductorProcess,
    OrFail,
};
use tests::flow_files::{flows_dir, BoardKind, RecordingServer, TestBoard};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// Every kind but `sleep`: what most scenarios run with.
const WITH_SHELL: &[&str] = &["--task-kinds", "noop,fail,shell,http"];

tests::on_both_boards!(
    a_late_failure_reverts_files_in_reverse_order,
    a_retry_succeeds_on_the_third_try,
    an_http_500_reverts_with_a_delete,
    each_runs_one_copy_per_node_and_fans_in_in_order,
    a_for_each_from_retry_in_a_copy_tries_the_copys_item,
    a_conductor_runs_only_the_kinds_it_allows,
    a_secret_reaches_the_task_and_nothing_else,
    a_bad_flow_file_stops_the_start_with_positioned_problems,
);

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Waits for the job to end and returns its `baton get` snapshot.
fn finished(endpoint: &str, id: &str) -> Value {
    wait_job(endpoint, id, PATIENCE, "completion", is_complete).or_fail()
}

fn assert_outcome(job: &Value, outcome: &str) {
    assert_eq!(job["outcome"].as_str(), Some(outcome), "{job}");
}

/// Runs one job of `flow` (the file `text`, shell allowed) with `input` and `dir`, a fresh
/// work directory, to its end: the finished job and that directory.
fn run_shell_flow(
    kind: BoardKind,
    name: &str,
    text: &str,
    flow: &str,
    input: (&str, &str),
) -> (Value, tempfile::TempDir) {
    let board = TestBoard::new(kind, name).or_fail();
    let flows = flows_dir(&[("flow.yaml", text)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&board.conductor(name, flows.path(), WITH_SHELL)).or_fail();
    let id = post_job(&conductor.endpoint(), flow, &[input, ("dir", &path_text(work.path()))]).or_fail();
    (finished(&conductor.endpoint(), &id), work)
}

const FILES_FLOW: &str = r#"
name: files-then-fail
description: three files made, then a late failure; the reverts delete them
inputs:
  dir: {type: string}
flow:
  linear:
    - task: make-a
      kind: shell
      with: {script: 'touch "$DIR/a" && echo a >> "$DIR/made.log"', env: {DIR: "${dir}"}}
      revert: {kind: shell, with: {script: 'rm "$DIR/a" && echo a >> "$DIR/undone.log"', env: {DIR: "${dir}"}}}
    - task: make-b
      kind: shell
      with: {script: 'touch "$DIR/b" && echo b >> "$DIR/made.log"', env: {DIR: "${dir}"}}
      revert: {kind: shell, with: {script: 'rm "$DIR/b" && echo b >> "$DIR/undone.log"', env: {DIR: "${dir}"}}}
    - task: make-c
      kind: shell
      with: {script: 'touch "$DIR/c" && echo c >> "$DIR/made.log"', env: {DIR: "${dir}"}}
      revert: {kind: shell, with: {script: 'rm "$DIR/c" && echo c >> "$DIR/undone.log"', env: {DIR: "${dir}"}}}
    - task: late-failure
      kind: fail
      with: {message: the last step fails}
"#;

fn a_late_failure_reverts_files_in_reverse_order(kind: BoardKind) {
    let board = TestBoard::new(kind, "ff-revert").or_fail();
    let flows = flows_dir(&[("files.yaml", FILES_FLOW)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&board.conductor("ff-revert", flows.path(), WITH_SHELL)).or_fail();
    let id = post_job(&conductor.endpoint(), "files-then-fail", &[("dir", &path_text(work.path()))]).or_fail();
    let job = finished(&conductor.endpoint(), &id);
    assert_outcome(&job, "REVERTED");
    assert!(job["failure"].to_string().contains("the last step fails"), "{job}");
    assert_eq!(read(&work.path().join("made.log")), "a\nb\nc\n", "the tasks ran in order");
    assert_eq!(read(&work.path().join("undone.log")), "c\nb\na\n", "the reverts ran in reverse order");
    for name in ["a", "b", "c"] {
        assert!(!work.path().join(name).exists(), "file {name} was not deleted by its revert");
    }
}

const RETRY_FLOW: &str = r#"
name: third-time-lucky
inputs:
  dir: {type: string}
flow:
  linear:
    - task: flaky
      kind: shell
      with:
        script: |
          n=$(( $(cat "$DIR/attempts" 2>/dev/null || echo 0) + 1 ))
          echo "$n" > "$DIR/attempts"
          if [ "$n" -lt 3 ]; then echo "attempt $n fails" >&2; exit 1; fi
          echo "succeeded on attempt $n"
        env: {DIR: "${dir}"}
      retry: {times: 5}
"#;

fn a_retry_succeeds_on_the_third_try(kind: BoardKind) {
    let board = TestBoard::new(kind, "ff-retry").or_fail();
    let flows = flows_dir(&[("retry.yml", RETRY_FLOW)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&board.conductor("ff-retry", flows.path(), WITH_SHELL)).or_fail();
    let id = post_job(&conductor.endpoint(), "third-time-lucky", &[("dir", &path_text(work.path()))]).or_fail();
    let job = finished(&conductor.endpoint(), &id);
    assert_outcome(&job, "SUCCESS");
    assert_eq!(read(&work.path().join("attempts")).trim(), "3", "two failures, then success: {job}");
    assert_eq!(task_executions(&job).get("flaky"), Some(&3), "{job}");
}

const HTTP_FLOW: &str = r#"
name: http-create-then-check
inputs:
  base: {type: string}
flow:
  linear:
    - task: create
      kind: http
      with: {method: POST, url: "${base}/things", json: {name: thing}, expect: [201]}
      revert: {kind: http, with: {method: DELETE, url: "${base}/things/${result.id}", expect: [204]}}
    - task: check
      kind: http
      with: {method: GET, url: "${base}/health"}
"#;

fn things_api(method: &str, path: &str) -> (u16, &'static str) {
    match (method, path) {
        ("POST", "/things") => (201, r#"{"id": "t-1"}"#),
        ("GET", "/health") => (500, r#"{"error": "down"}"#),
        ("DELETE", "/things/t-1") => (204, ""),
        _ => (404, r#"{"error": "no such thing"}"#),
    }
}

fn an_http_500_reverts_with_a_delete(kind: BoardKind) {
    let server = RecordingServer::start(things_api).or_fail();
    let board = TestBoard::new(kind, "ff-http").or_fail();
    let flows = flows_dir(&[("http.yaml", HTTP_FLOW)]).or_fail();
    let conductor = ConductorProcess::start(&board.conductor("ff-http", flows.path(), &[])).or_fail();
    let id = post_job(&conductor.endpoint(), "http-create-then-check", &[("base", &server.url())]).or_fail();
    let job = finished(&conductor.endpoint(), &id);
    assert_outcome(&job, "REVERTED");
    assert!(job["failure"].to_string().contains("500"), "the failure names the status: {job}");
    assert_eq!(server.requests(), ["POST /things", "GET /health", "DELETE /things/t-1"]);
}

const EACH_FLOW: &str = r#"
name: each-node
inputs:
  nodes: {type: array, items: {type: string}, min_items: 1}
  dir: {type: string}
flow:
  linear:
    - unordered:
        - each: {in: nodes, as: node}
          linear:
            - task: create
              kind: shell
              with:
                script: 'echo "$NODE" > "$DIR/server-$NODE"; echo "id-$NODE"'
                env: {NODE: "${node}", DIR: "${dir}"}
              provides: server
    - task: gather
      kind: shell
      with:
        script: 'printf "%s" "$SERVERS" > "$DIR/gathered"'
        env: {SERVERS: "${server}", DIR: "${dir}"}
"#;

fn each_runs_one_copy_per_node_and_fans_in_in_order(kind: BoardKind) {
    let (job, work) = run_shell_flow(kind, "ff-each", EACH_FLOW, "each-node", ("nodes", r#"["web","db","cache"]"#));
    assert_outcome(&job, "SUCCESS");
    for node in ["web", "db", "cache"] {
        assert_eq!(read(&work.path().join(format!("server-{node}"))).trim(), node);
    }
    let executions = task_executions(&job);
    for copy in ["create[0]", "create[1]", "create[2]"] {
        assert_eq!(executions.get(copy), Some(&1), "{copy} ran once: {executions:?}");
    }
    assert_eq!(executions.get("create[3]"), None, "one copy per node: {executions:?}");
    let gathered: Value = serde_json::from_str(&read(&work.path().join("gathered"))).or_fail();
    assert_eq!(gathered, serde_json::json!(["id-web", "id-db", "id-cache"]), "fan-in in item order");
}

const DIAL_FLOW: &str = r#"
name: dial-offices
inputs:
  offices: {type: array, items: {type: array}}
  numbers: {type: array, default: [from-the-store]}
  dir: {type: string}
flow:
  linear:
    - each: {in: offices, as: numbers}
      linear:
        - task: call
          kind: shell
          with:
            script: 'echo "$NUMBER" >> "$DIR/tried"; case "$NUMBER" in *-up) ;; *) exit 1 ;; esac'
            env: {NUMBER: "${number}", DIR: "${dir}"}
          requires: [number]
          retry: {for_each_from: numbers, provides: number}
"#;

fn a_for_each_from_retry_in_a_copy_tries_the_copys_item(kind: BoardKind) {
    let offices = ("offices", r#"[["a-down","a-up"],["b-up"]]"#);
    let (job, work) = run_shell_flow(kind, "ff-dial", DIAL_FLOW, "dial-offices", offices);
    assert_outcome(&job, "SUCCESS");
    // Each copy walks its own item's list, never the store's `numbers`.
    assert_eq!(read(&work.path().join("tried")).lines().collect::<Vec<_>>(), ["a-down", "a-up", "b-up"], "{job}");
}

const TOUCH_FLOW: &str = r#"
name: touch-file
inputs:
  dir: {type: string}
flow:
  linear:
    - task: hello
      kind: noop
      revert: {kind: shell, with: {run: ["true"]}}
    - task: touch
      kind: shell
      with: {script: 'touch "$DIR/touched"', env: {DIR: "${dir}"}}
"#;

const HELLO_FLOW: &str = "name: hello\nflow:\n  linear:\n    - task: hi\n      kind: noop\n";

fn a_conductor_runs_only_the_kinds_it_allows(kind: BoardKind) {
    let board = TestBoard::new(kind, "ff-kinds").or_fail();
    let flows = flows_dir(&[("touch.yaml", TOUCH_FLOW), ("hello.yaml", HELLO_FLOW)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let dir = path_text(work.path());
    let mut plain = ConductorProcess::start(&board.conductor("ff-no-shell", flows.path(), &[])).or_fail();
    let log = plain.log();
    let warning = log.lines().find(|l| l.contains("not claiming its jobs")).unwrap_or_else(|| panic!("{log}"));
    for needle in ["touch-file", "missing=shell"] {
        assert!(warning.contains(needle), "the warning names {needle}: {warning}");
    }
    // Accepted, with a warning on stderr: no live conductor allows every kind it uses.
    let waiting = baton(&plain.endpoint(), ["post", "touch-file", "--store", &format!("dir={dir}")]);
    assert!(waiting.success(), "a post no live conductor can run is accepted: {}", waiting.stderr());
    for needle in ["warning:", "touch-file", "shell"] {
        assert!(waiting.stderr().contains(needle), "the warning names {needle}: {}", waiting.stderr());
    }
    let posted = waiting.json().or_fail();
    assert_eq!(posted["flow_version"].as_u64(), Some(1), "a file flow's job is pinned: {posted}");
    let waiting_id = posted["id"].as_str().unwrap_or_else(|| panic!("no id: {posted}")).to_owned();
    // It claims: a flow of kinds it allows runs.
    let hello = post_job(&plain.endpoint(), "hello", &[]).or_fail();
    assert_outcome(&finished(&plain.endpoint(), &hello), "SUCCESS");

    let args = ["--task-kinds", "noop,shell"];
    let touch = match kind {
        // One process at a time opens the embedded board: the shell conductor follows the plain one.
        BoardKind::Embedded => {
            plain.terminate().or_fail();
            let shell = ConductorProcess::start(&board.conductor("ff-shell", flows.path(), &args)).or_fail();
            let touch = post_job(&shell.endpoint(), "touch-file", &[("dir", &dir)]).or_fail();
            // The job posted while no conductor could run it runs once one can.
            assert_outcome(&finished(&shell.endpoint(), &waiting_id), "SUCCESS");
            finished(&shell.endpoint(), &touch)
        }
        // On etcd both run: the plain one claims other jobs but never the shell flow's.
        BoardKind::Etcd => {
            let shell = ConductorProcess::start(&board.conductor("ff-shell", flows.path(), &args)).or_fail();
            baton(&shell.endpoint(), ["drain", "ff-shell"]).ok_json().or_fail();
            let touch = post_job(&shell.endpoint(), "touch-file", &[("dir", &dir)]).or_fail();
            let hello = post_job(&shell.endpoint(), "hello", &[]).or_fail();
            assert_outcome(&finished(&plain.endpoint(), &hello), "SUCCESS");
            let waiting = get_job(&plain.endpoint(), &touch).or_fail();
            assert_eq!(waiting["state"].as_str(), Some("UNCLAIMED"), "the plain conductor claimed it: {waiting}");
            assert_eq!(waiting["claims"].as_u64(), Some(0), "{waiting}");
            baton(&shell.endpoint(), ["drain", "ff-shell", "--undo"]).ok_json().or_fail();
            assert_outcome(&finished(&shell.endpoint(), &waiting_id), "SUCCESS");
            finished(&shell.endpoint(), &touch)
        }
    };
    assert_outcome(&touch, "SUCCESS");
    assert_eq!(touch["claims"].as_u64(), Some(1), "{touch}");
    assert!(work.path().join("touched").exists(), "the shell task ran");
}

const SECRET_FLOW: &str = r#"
name: uses-secret
inputs:
  dir: {type: string}
flow:
  linear:
    - task: show
      kind: shell
      with:
        script: 'printf "%s" "$TOKEN" > "$DIR/seen"; echo "marker-ok token=$TOKEN"'
        env: {TOKEN: "${secret.api_token}", DIR: "${dir}"}
      provides: shown
    - task: leak-and-fail
      kind: shell
      with:
        script: 'echo "marker-err token=$TOKEN" >&2; exit 3'
        env: {TOKEN: "${secret.api_token}"}
"#;

fn a_secret_reaches_the_task_and_nothing_else(kind: BoardKind) {
    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    let secrets = tempfile::tempdir().or_fail();
    std::fs::write(secrets.path().join("api_token"), format!("{secret}\n")).or_fail();
    let board = TestBoard::new(kind, "ff-secret").or_fail();
    let flows = flows_dir(&[("secret.yaml", SECRET_FLOW)]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let secrets_dir = path_text(secrets.path());
    let args = ["--task-kinds", "noop,shell", "--secrets-dir", secrets_dir.as_str()];
    let conductor = ConductorProcess::start(&board.conductor("ff-secret", flows.path(), &args)).or_fail();
    let endpoint = conductor.endpoint();
    let id = post_job(&endpoint, "uses-secret", &[("dir", &path_text(work.path()))]).or_fail();
    let job = finished(&endpoint, &id);
    assert_outcome(&job, "REVERTED");
    assert_eq!(read(&work.path().join("seen")), secret, "the task received the secret");

    let stored = board.dump().or_fail();
    // The result and the failure are on the board (so the grep below can find a leak)...
    assert!(stored.contains("marker-ok token=***"), "the result, redacted, is in the logbook");
    assert!(stored.contains("marker-err token=***"), "the failure, redacted, is recorded");
    // ...and the secret is nowhere in it.
    assert!(!stored.contains(&secret), "the secret is stored on the board");
    let shown = baton(&endpoint, ["get", &id]);
    assert!(shown.success() && shown.stdout().contains("marker-err token=***"), "{}", shown.stdout());
    for args in [vec!["get", id.as_str()], vec!["list"], vec!["watch", id.as_str()], vec!["flows"]] {
        let out = baton(&endpoint, &args);
        assert!(!out.stdout().contains(&secret) && !out.stderr().contains(&secret), "`baton {args:?}` shows it");
    }
    let log = conductor.log();
    assert!(log.contains("marker-err token=***"), "the failure is logged, redacted: {log}");
    assert!(!log.contains(&secret), "the conductor's log shows the secret");
}

fn a_bad_flow_file_stops_the_start_with_positioned_problems(kind: BoardKind) {
    let bad = "name: bad\nflow:\n  linear:\n    - task: a\n      kind: noop\n      retyr: {times: 2}\n    \
               - task: b\n      kind: shel\n";
    let clash = "name: chain\nflow:\n  linear:\n    - task: a\n      kind: noop\n";
    let flows = flows_dir(&[("bad.yaml", bad), ("clash.yml", clash), ("hello.yaml", HELLO_FLOW)]).or_fail();
    let board = TestBoard::new(kind, "ff-bad").or_fail();
    let config = board.conductor("ff-bad", flows.path(), &[]);
    // The demo flows' binary, so that a file taking a Rust flow's name (`chain`) is refused.
    let mut command = Command::new(bin_path("demo_conductor"));
    command.arg("--listen").arg(free_local_addr().or_fail().to_string()).args(&config.extra_args);
    match &config.board {
        tests::conductor::Board::Etcd { endpoint, prefix } => command.args(["--etcd", endpoint, "--prefix", prefix]),
        tests::conductor::Board::Embedded { data_dir } => command.arg("--data-dir").arg(data_dir),
    };
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().or_fail();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().or_fail() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a conductor with a bad flow file kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr is piped"), &mut stderr).or_fail();
    assert_eq!(status.code(), Some(2), "bad configuration exits 2: {stderr}");
    let bad_file = path_text(&flows.path().join("bad.yaml"));
    let expected = [
        format!("{bad_file}:6:7: flow.linear[0].retyr: unknown key \"retyr\"; did you mean \"retry\"?"),
        format!("{bad_file}:8:13: flow.linear[1].kind: unknown kind \"shel\"; did you mean \"shell\"?"),
        format!("{}: name: flow \"chain\" is already a Rust flow", path_text(&flows.path().join("clash.yml"))),
    ];
    for line in &expected {
        assert!(stderr.lines().any(|l| l.starts_with(line.as_str())), "stderr lacks {line:?}:\n{stderr}");
    }
    if let tests::conductor::Board::Embedded { data_dir } = &board.board {
        assert!(!data_dir.join("board.sqlite3").exists(), "nothing was opened before the check");
    }
}
