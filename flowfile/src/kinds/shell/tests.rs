//! The `shell` kind against real processes: argv and scripts, the clean environment,
//! stdin and output, failures, and stopping whole process groups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::*;

fn settings(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("settings are a JSON object")
}

fn call(timeout: Option<Duration>) -> Call {
    Call { timeout, ..Call::new("test-task", 1) }
}

async fn run(with: Value) -> Result<Value, Failure> {
    Shell::new().run(settings(with), &call(None)).await
}

fn details(failure: &Failure) -> &Value {
    failure.details.as_ref().expect("the failure has details")
}

/// Whether process `pid` exists and is not a zombie (a killed orphan waits for its new
/// parent to reap it, but it no longer runs).
fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Waits (generously: a deadline for waiting, not a timing assertion) until `pid` no
/// longer runs; true if it stopped.
async fn stops(pid: i32) -> bool {
    for _ in 0..500 {
        if !running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits for a task's process to write its pid into `file`.
async fn pid_in(file: &Path) -> i32 {
    for _ in 0..1000 {
        if let Some(pid) = std::fs::read_to_string(file).ok().and_then(|text| text.trim().parse().ok()) {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid was written to {}", file.display());
}

fn pidfile(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("pid")
}

/// A script whose grandchild ignores SIGTERM, writes its pid to $PIDFILE and sleeps.
const STUBBORN_GRANDCHILD: &str = r#"sh -c 'trap "" TERM; echo $$ > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; exec sleep 1000' &
wait"#;

#[tokio::test]
async fn runs_an_argv_list_without_a_shell() {
    let out = run(json!({"run": ["printf", "%s-%s|", "a b", "$HOME"]})).await.expect("printf runs");
    assert_eq!(out, json!("a b-$HOME|"));
    let numbers = run(json!({"run": ["expr", 2, "+", 3]})).await.expect("expr runs");
    assert_eq!(numbers, json!("5"));
}

#[tokio::test]
async fn runs_a_script_with_sh() {
    let out =
        run(json!({"script": "echo \"$GREETING, $WHO\" | tr a-z A-Z", "env": {"GREETING": "hello", "WHO": "world"}}))
            .await
            .expect("the script runs");
    assert_eq!(out, json!("HELLO, WORLD"));
}

#[tokio::test]
async fn the_environment_holds_only_path_and_what_env_passes() {
    let ours: Vec<String> = std::env::vars().map(|(name, _)| name).filter(|name| name != "PATH").collect();
    assert!(!ours.is_empty(), "the test process should have variables of its own to leak");
    let bare = run(json!({"run": ["env"]})).await.expect("env runs");
    assert_eq!(bare, json!(format!("PATH={DEFAULT_PATH}")));

    let given = run(json!({"run": ["env"], "env": {"NODE": "n1", "PATH": "/usr/bin:/bin"}})).await.expect("env runs");
    let mut lines: Vec<&str> = given.as_str().expect("text").lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["NODE=n1", "PATH=/usr/bin:/bin"]);
}

#[tokio::test]
async fn env_values_that_are_not_strings_get_their_json_text() {
    let out = run(json!({
        "script": r#"printf '%s|%s|%s|%s|%s' "$N" "$S" "$L" "$B" "$O""#,
        "env": {"N": 555, "S": "555", "L": [1, "a"], "B": true, "O": {"k": null}},
    }))
    .await
    .expect("the script runs");
    assert_eq!(out, json!(r#"555|555|[1,"a"]|true|{"k":null}"#));
}

#[tokio::test]
async fn stdin_takes_text_as_is_and_other_values_as_json() {
    let text = run(json!({"run": ["cat"], "stdin": "line one\nline two\n"})).await.expect("cat runs");
    assert_eq!(text, json!("line one\nline two"));
    let value = json!({"nodes": ["a", "b"], "count": 2});
    let echoed = run(json!({"run": ["cat"], "stdin": value, "output": "json"})).await.expect("cat runs");
    assert_eq!(echoed, value);
    let nothing = run(json!({"run": ["cat"]})).await.expect("cat runs");
    assert_eq!(nothing, json!(""), "without `stdin` the process reads an empty input");
}

#[tokio::test]
async fn output_text_strips_one_newline_and_json_parses() {
    assert_eq!(run(json!({"script": "printf 'a\\n\\n'"})).await.expect("runs"), json!("a\n"));
    assert_eq!(
        run(json!({"script": "printf 'no newline'", "output": "text"})).await.expect("runs"),
        json!("no newline")
    );
    let parsed = run(json!({"script": r#"echo '{"id": "srv-7", "ok": true}'"#, "output": "json"})).await.expect("runs");
    assert_eq!(parsed, json!({"id": "srv-7", "ok": true}));

    let invalid = run(json!({"script": "echo 'not json'", "output": "json"})).await.expect_err("invalid JSON fails");
    assert!(invalid.message.contains("invalid JSON"), "{invalid}");
    assert_eq!(details(&invalid)["stdout_tail"], json!("not json\n"));
}

#[tokio::test]
async fn a_non_zero_exit_carries_the_status_and_the_end_of_stderr() {
    let failure = run(json!({"script": "echo out; echo starting >&2; echo 'disk full' >&2; exit 3"}))
        .await
        .expect_err("exit 3 fails");
    assert_eq!(failure.kind, Failure::TASK_ERROR);
    assert!(failure.message.contains("exited with status 3: disk full"), "{failure}");
    assert_eq!(details(&failure)["exit_code"], json!(3));
    assert_eq!(details(&failure)["stderr_tail"], json!("starting\ndisk full\n"));

    let killed = run(json!({"script": "kill -9 $$"})).await.expect_err("a killed process fails");
    assert!(killed.message.contains("killed by signal 9"), "{killed}");
    assert_eq!(details(&killed)["signal"], json!(9));
    assert_eq!(details(&killed)["exit_code"], Value::Null);
}

#[tokio::test]
async fn captured_output_is_bounded() {
    let noisy = run(json!({"script": "head -c 100000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1"}))
        .await
        .expect_err("exit 1");
    let tail = details(&noisy)["stderr_tail"].as_str().expect("text");
    assert!(
        tail.len() <= STDERR_TAIL && tail.ends_with("xxEND\n"),
        "tail of {} bytes: ...{}",
        tail.len(),
        &tail[tail.len().saturating_sub(20)..]
    );

    let huge = run(json!({"script": format!("head -c {} /dev/zero", MAX_STDOUT + 1)}))
        .await
        .expect_err("too much stdout fails");
    assert!(huge.message.contains("more than 1048576 bytes"), "{huge}");
    let fits = run(json!({"script": format!("head -c {MAX_STDOUT} /dev/zero | tr '\\0' y")}))
        .await
        .expect("exactly the limit fits");
    assert_eq!(fits.as_str().map(str::len), Some(MAX_STDOUT));
}

#[tokio::test]
async fn dir_sets_the_working_directory_and_a_missing_one_fails_to_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let place = dir.path().canonicalize().expect("canonical path");
    let out = run(json!({"run": ["pwd", "-P"], "dir": place.display().to_string()})).await.expect("pwd runs");
    assert_eq!(out, json!(place.display().to_string()));

    let missing =
        run(json!({"run": ["pwd"], "dir": place.join("gone").display().to_string()})).await.expect_err("no such dir");
    assert!(missing.message.starts_with("cannot start `pwd` in "), "{missing}");
    let unknown = run(json!({"run": ["no-such-program-here"]})).await.expect_err("no such program");
    assert!(unknown.message.starts_with("cannot start `no-such-program-here`"), "{unknown}");
}

#[tokio::test]
async fn a_timeout_kills_a_grandchild_that_ignores_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = pidfile(&dir);
    let with = settings(json!({"script": STUBBORN_GRANDCHILD, "env": {"PIDFILE": file.display().to_string()}}));
    let failure = Shell::new().run(with, &call(Some(Duration::from_secs(3)))).await.expect_err("the task times out");
    assert_eq!(failure.kind, Failure::TIMEOUT);
    assert!(failure.message.contains("exceeded its timeout of 3000 ms"), "{failure}");
    let grandchild = pid_in(&file).await;
    assert!(stops(grandchild).await, "grandchild {grandchild}, which ignores SIGTERM, is still running");
}

#[tokio::test]
async fn cancelling_stops_the_group_with_sigterm_first() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (file, mark) = (pidfile(&dir), dir.path().join("cleaned"));
    let script = r#"trap 'echo cleaned > "$MARK"; exit 0' TERM
echo $$ > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"
while :; do sleep 0.1; done"#;
    let with = settings(
        json!({"script": script, "env": {"PIDFILE": file.display().to_string(), "MARK": mark.display().to_string()}}),
    );
    let call = call(None);
    let cancel = call.cancel.clone();
    let task = tokio::spawn(async move { Shell::new().run(with, &call).await });
    let pid = pid_in(&file).await;
    assert!(running(pid), "the task's process runs before the cancel");
    cancel.cancel();
    let failure = task.await.expect("the task does not panic").expect_err("a cancelled task fails");
    assert_eq!(failure.kind, flows::CANCELLED);
    assert!(stops(pid).await, "the task's process {pid} is still running");
    let cleaned = std::fs::read_to_string(&mark).expect("the TERM trap ran before any SIGKILL");
    assert_eq!(cleaned.trim(), "cleaned");
}

#[tokio::test]
async fn processes_left_behind_by_a_finished_task_are_stopped() {
    let out = run(json!({"script": "sleep 1000 & echo $!"})).await.expect("the script exits 0");
    let pid: i32 = out.as_str().and_then(|text| text.parse().ok()).expect("the background pid");
    assert!(stops(pid).await, "background process {pid} outlived its task");
}

#[tokio::test]
async fn dropping_a_running_task_kills_its_group() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = pidfile(&dir);
    let with = settings(json!({"script": STUBBORN_GRANDCHILD, "env": {"PIDFILE": file.display().to_string()}}));
    let call = call(None);
    let kind = Shell::new();
    // Boxed so that `drop` really drops the future (a stack pin would only drop a reference).
    let mut task = Box::pin(kind.run(with, &call));
    let grandchild = tokio::select! {
        done = &mut task => panic!("the task ended by itself: {done:?}"),
        pid = pid_in(&file) => pid,
    };
    assert!(running(grandchild));
    drop(task);
    assert!(stops(grandchild).await, "grandchild {grandchild} outlived the dropped task");
}

#[test]
fn check_reports_every_problem_by_key() {
    let shell = Shell::new();
    let check = |value: Value| shell.check(&settings(value));
    assert_eq!(check(json!({"run": ["true"]})), Vec::<String>::new());
    assert_eq!(check(json!({})), ["run: required: `run` (an argv list) or `script` (run by sh -c)"]);
    assert_eq!(check(json!({"run": ["a"], "script": "b"})), ["run: give either `run` or `script`, not both"]);
    assert_eq!(
        check(json!({"run": "ls -l"})),
        ["run: must be a list (argv), not a string; use `script` for a shell command line"]
    );
    assert_eq!(check(json!({"run": []})), ["run: must name a program: the list is empty"]);
    assert_eq!(check(json!({"run": ["ls", {"a": 1}]})), ["run[1]: must be a string, not a mapping"]);
    assert_eq!(
        check(json!({"script": 5, "env": ["A=1"], "dir": 3, "output": "yaml"})),
        [
            "script: must be a string, not a number",
            "env: must be a mapping, not a list",
            "dir: must be a string, not a number",
            "output: must be `text` or `json`, not \"yaml\""
        ]
    );
    assert_eq!(
        check(json!({"run": ["true"], "env": {"A=B": "x"}})),
        ["env.A=B: a variable name must be non-empty, without `=` or NUL"]
    );
    // Values that are whole references are known only at run time...
    assert_eq!(
        check(json!({"run": ["true"], "env": "${vars}", "dir": "${where}", "stdin": "${doc}", "output": "${how}"})),
        Vec::<String>::new()
    );
    // ...but nothing is ever substituted into what runs.
    assert_eq!(
        check(json!({"run": "${command}"})),
        ["run: must be a list (argv), not a reference; pass values through `env` or `stdin`"]
    );
    assert_eq!(
        check(json!({"script": "${command}"})),
        ["script: must be the script's text, not a reference; pass values through `env` or `stdin`"]
    );
    // Unknown keys are the caller's to report (with "did you mean"), from `settings()`.
    assert_eq!(check(json!({"run": ["true"], "evn": {}})), Vec::<String>::new());
    assert!(shell.settings().contains(&"env"));
}

#[tokio::test]
async fn run_refuses_settings_that_check_would_have_refused() {
    let failure = run(json!({"run": ["true"], "evn": {"A": "1"}, "output": 3})).await.expect_err("invalid settings");
    assert_eq!(failure.kind, Failure::TASK_ERROR);
    assert!(failure.message.starts_with("shell: invalid settings: evn: unknown setting"), "{failure}");
    assert!(failure.message.contains("output: must be `text` or `json`, not 3"), "{failure}");
}
