//! Parked tasks end to end: real `conductor` processes running an `await` flow
//! file, completed with the real `baton complete` and over the HTTP webhook, on
//! the embedded board and on etcd. The conductor that parked the job is killed
//! (SIGKILL) and the job resumes on another; the token's secret shows in no log
//! line (at trace level) and no API reply.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{
    baton, free_local_addr, get_job, is_complete, post_job, wait_job, BatonRun, ConductorProcess, OrFail,
};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

tests::on_both_boards!(
    a_parked_job_resumes_on_another_conductor_with_the_delivered_result,
    the_webhook_completes_and_answers_each_case,
    cancel_while_parked_reverts_and_kills_the_token,
    a_completion_while_another_branch_runs_continues_without_a_release,
    a_parked_task_past_its_deadline_times_out_and_reverts,
    a_thousand_parked_jobs_hold_no_slot,
    an_operators_override_is_recorded_in_the_logbook,
);

const APPROVAL: &str = r#"
name: approval
inputs:
  dir: {type: string}
flow:
  linear:
    - task: approve
      kind: await
      with:
        timeout: 1h
        notify:
          kind: shell
          with:
            script: 'printf %s "$TOKEN" > "$DIR/token.tmp" && printf %s "$URL" > "$DIR/url" && mv "$DIR/token.tmp" "$DIR/token"'
            env: {TOKEN: "${callback.token}", URL: "${callback.url}", DIR: "${dir}"}
      revert:
        kind: shell
        with: {script: 'echo reverted >> "$DIR/reverted"', env: {DIR: "${dir}"}}
      provides: approval
    - task: use
      kind: shell
      with: {script: 'printf %s "$A" > "$DIR/used"', env: {A: "${approval}", DIR: "${dir}"}}
"#;

/// A conductor of the approval flow with an HTTP listener; returns it and its HTTP address.
fn conductor(board: &TestBoard, name: &str, flows: &Path) -> (ConductorProcess, SocketAddr) {
    let http = free_local_addr().or_fail();
    let http_text = http.to_string();
    let args = ["--task-kinds", "await,shell", "--http-listen", http_text.as_str()];
    let mut config = board.conductor(name, flows, &args);
    config.env.push(("RUST_LOG".into(), "trace".into()));
    (ConductorProcess::start(&config).or_fail(), http)
}

/// One scenario's start: a board of `kind`, one flow file, a work directory, a conductor
/// running the file (with its HTTP address), and a job of `flow` posted with `dir` = the
/// work directory. The fields keep the temporary directories alive for the test.
struct Scene {
    board: TestBoard,
    flows: tempfile::TempDir,
    work: tempfile::TempDir,
    conductor: ConductorProcess,
    http: SocketAddr,
    id: String,
}

fn scene(kind: BoardKind, name: &str, file: (&str, &str), flow: &str) -> Scene {
    let board = TestBoard::new(kind, &format!("parked-{name}")).or_fail();
    let flows = flows_dir(&[file]).or_fail();
    let work = tempfile::tempdir().or_fail();
    let dir = work.path().display().to_string();
    let (conductor, http) = conductor(&board, name, flows.path());
    let id = post_job(&conductor.endpoint(), flow, &[("dir", &dir)]).or_fail();
    Scene { board, flows, work, conductor, http, id }
}

/// Waits for the notify step to have written the token; returns it.
fn token(dir: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(token) = std::fs::read_to_string(dir.join("token")) {
            return token;
        }
        assert!(Instant::now() < deadline, "the notify step never wrote the token");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secret_of(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or_default()
}

fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn a_parked_job_resumes_on_another_conductor_with_the_delivered_result(kind: BoardKind) {
    let Scene { board, flows, work, conductor: mut first, http, id } =
        scene(kind, "park-a", ("approval.yaml", APPROVAL), "approval");
    let token = token(work.path());
    let url = std::fs::read_to_string(work.path().join("url")).or_fail();
    assert_eq!(url, format!("http://{http}/v1/callbacks/{token}"));
    let parked = wait_job(&first.endpoint(), &id, PATIENCE, "PARKED", |j| state(j) == "PARKED").or_fail();
    let approve = &parked["tasks"][0];
    assert_eq!((approve["name"].as_str(), approve["state"].as_str()), (Some("approve"), Some("PARKED")), "{parked}");
    assert!(approve["parked_deadline"].as_u64().is_some_and(|d| d > flows::now_millis()), "{parked}");
    let listed = baton(&first.endpoint(), ["list", "--state", "PARKED"]).ok_json().or_fail();
    assert!(listed.to_string().contains(&id), "baton list --state PARKED: {listed}");
    let shown = baton(&first.endpoint(), ["get", &id]).stdout();
    first.kill().or_fail();
    let first_log = first.log();

    // Another conductor (on the embedded board: a new one on the same file) takes the completion.
    let (second, _) = conductor(&board, "park-b", flows.path());
    let endpoint = second.endpoint();
    let done = baton(&endpoint, ["complete", &token, "--result", "\"yes\""]);
    assert!(done.success(), "{}", done.stderr());
    let job = wait_job(&endpoint, &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(std::fs::read_to_string(work.path().join("used")).or_fail(), "yes", "the result flowed on");

    let again = baton(&endpoint, ["complete", &token, "--result", "\"yes\""]);
    assert!(again.success(), "the same completion again is OK: {}", again.stderr());
    let other = baton(&endpoint, ["complete", &token, "--result", "\"no\""]);
    assert!(!other.success() && other.stderr().contains("different outcome"), "{}", other.stderr());
    let guessed = format!("{}.{}", token.rsplit_once('.').map_or("", |(p, _)| p), "0".repeat(64));
    let wrong = baton(&endpoint, ["complete", &guessed, "--fail", "x"]);
    assert!(!wrong.success() && wrong.stderr().contains("no parked task matches"), "{}", wrong.stderr());

    // The secret part is in no log line (trace level) and no reply.
    let secret = secret_of(&token);
    let replies = format!("{shown}{job}{}{}", get_job(&endpoint, &id).or_fail(), done.stdout());
    for (what, text) in [("first log", first_log), ("second log", second.log()), ("API replies", replies)] {
        assert!(!text.contains(secret), "the token's secret leaked into the {what}");
    }
}

/// One HTTP/1.1 POST; returns the status code and body.
fn post(http: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(10)).or_fail();
    stream.set_read_timeout(Some(Duration::from_secs(60))).or_fail();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).or_fail();
    let mut response = String::new();
    stream.read_to_string(&mut response).or_fail();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn the_webhook_completes_and_answers_each_case(kind: BoardKind) {
    let Scene { board: _board, flows: _flows, work, conductor, http, id } =
        scene(kind, "hook", ("approval.yaml", APPROVAL), "approval");
    let token = token(work.path());
    wait_job(&conductor.endpoint(), &id, PATIENCE, "PARKED", |j| state(j) == "PARKED").or_fail();
    // A watch stream shows the PARKED job and its resume.
    let watch = BatonRun::spawn(&conductor.endpoint(), &[], ["watch", id.as_str()]);
    watch.wait_for_stderr("PARKED").or_fail();
    let path = format!("/v1/callbacks/{token}");
    assert_eq!(post(http, &path, "{not json").0, 400);
    assert_eq!(post(http, &path, r#"{"result": 1, "failure": "x"}"#).0, 400);
    let wrong = format!("/v1/callbacks/{}", token.replace(secret_of(&token), &"a".repeat(64)));
    assert_eq!(post(http, &wrong, r#"{"result": "ok"}"#).0, 404);
    let (status, body) = post(http, &path, r#"{"result": "ok"}"#);
    assert_eq!((status, body.contains("true")), (200, true), "{body}");
    assert_eq!(post(http, &path, r#"{"result": "ok"}"#).0, 200, "the same again");
    assert_eq!(post(http, &path, r#"{"failure": "no"}"#).0, 409, "a different one");
    let job = wait_job(&conductor.endpoint(), &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert!(!conductor.log().contains(secret_of(&token)), "the access log shows no token");
    let watched = watch.finish();
    let progress = watched.stderr();
    let parked_at = progress.find("PARKED").unwrap_or_else(|| panic!("the watch never showed PARKED: {progress}"));
    assert!(progress[parked_at..].contains("COMPLETE"), "the watch showed the resume to the end: {progress}");
    assert!(watched.success(), "{progress}");
}

fn cancel_while_parked_reverts_and_kills_the_token(kind: BoardKind) {
    let Scene { board: _board, flows: _flows, work, conductor, http, id } =
        scene(kind, "cancel", ("approval.yaml", APPROVAL), "approval");
    let endpoint = conductor.endpoint();
    let token = token(work.path());
    wait_job(&endpoint, &id, PATIENCE, "PARKED", |j| state(j) == "PARKED").or_fail();
    assert!(baton(&endpoint, ["cancel", &id]).success());
    let job = wait_job(&endpoint, &id, PATIENCE, "the revert", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("CANCELLED"), "{job}");
    assert_eq!(std::fs::read_to_string(work.path().join("reverted")).or_fail(), "reverted\n");
    let late = baton(&endpoint, ["complete", &token, "--result", "1"]);
    let late_override = baton(&endpoint, ["complete", "--job", &id, "--task", "approve", "--result", "1"]);
    assert!(!late_override.success() && late_override.stderr().contains("cancelled"), "{}", late_override.stderr());
    assert!(!late.success() && late.stderr().contains("cancelled"), "{}", late.stderr());
    assert_eq!(post(http, &format!("/v1/callbacks/{token}"), r#"{"result": 1}"#).0, 410);
}

const BRANCHES: &str = r#"
name: branches
inputs:
  dir: {type: string}
flow:
  linear:
    - unordered:
        - task: approve
          kind: await
          with:
            timeout: 1h
            notify:
              kind: shell
              with: {script: 'printf %s "$T" > "$DIR/token.tmp" && mv "$DIR/token.tmp" "$DIR/token"', env: {T: "${callback.token}", DIR: "${dir}"}}
          provides: approval
        - task: busy
          kind: shell
          with: {script: 'while [ ! -f "$DIR/go" ]; do sleep 0.05; done', env: {DIR: "${dir}"}}
    - task: use
      kind: shell
      with: {script: 'printf %s "$A" > "$DIR/used"', env: {A: "${approval}", DIR: "${dir}"}}
"#;

fn a_completion_while_another_branch_runs_continues_without_a_release(kind: BoardKind) {
    let Scene { board: _board, flows: _flows, work, conductor, http: _, id } =
        scene(kind, "claimed", ("branches.yaml", BRANCHES), "branches");
    let endpoint = conductor.endpoint();
    let token = token(work.path());
    // `busy` still runs: the job is claimed, not parked.
    assert_eq!(state(&get_job(&endpoint, &id).or_fail()), "CLAIMED");
    assert!(baton(&endpoint, ["complete", &token, "--result", "\"go\""]).success());
    let approved = wait_job(&endpoint, &id, PATIENCE, "approve to succeed", |j| {
        j["tasks"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "approve" && t["state"] == "SUCCESS"))
    })
    .or_fail();
    assert_eq!(state(&approved), "CLAIMED", "the owner folded the completion in: {approved}");
    std::fs::write(work.path().join("go"), "").or_fail();
    let job = wait_job(&endpoint, &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    assert_eq!(job["claims"].as_u64(), Some(1), "never released: {job}");
    assert_eq!(std::fs::read_to_string(work.path().join("used")).or_fail(), "go");
    assert!(!conductor.log().contains("job parked"), "no release happened");
}

const SHORT: &str = r#"
name: short
inputs:
  dir: {type: string}
flow:
  linear:
    - task: approve
      kind: await
      with: {timeout: 1s}
      revert:
        kind: shell
        with: {script: 'echo reverted >> "$DIR/reverted"', env: {DIR: "${dir}"}}
"#;

fn a_parked_task_past_its_deadline_times_out_and_reverts(kind: BoardKind) {
    let Scene { board: _board, flows: _flows, work, conductor, http: _, id } =
        scene(kind, "deadline", ("short.yaml", SHORT), "short");
    let job = wait_job(&conductor.endpoint(), &id, PATIENCE, "the timeout", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("REVERTED"), "{job}");
    assert_eq!(job["failure"]["kind"].as_str(), Some("Timeout"), "{job}");
    assert_eq!(std::fs::read_to_string(work.path().join("reverted")).or_fail(), "reverted\n");
}

const WAITS: &str = r#"
name: waits
flow:
  linear:
    - {task: approve, kind: await, with: {timeout: 1h}}
"#;

const QUICK: &str = r#"
name: quick
flow:
  linear:
    - {task: one, kind: noop}
"#;

fn a_thousand_parked_jobs_hold_no_slot(kind: BoardKind) {
    let board = TestBoard::new(kind, "parked-slots").or_fail();
    let flows = flows_dir(&[("waits.yaml", WAITS), ("quick.yaml", QUICK)]).or_fail();
    let mut config = board.conductor("slots", flows.path(), &["--task-kinds", "await,noop"]).with_max_jobs(4);
    config.extra_args.extend(["--concurrency".to_owned(), "4".to_owned()]);
    let conductor = ConductorProcess::start(&config).or_fail();
    let endpoint = conductor.endpoint();
    let runtime = tokio::runtime::Runtime::new().or_fail();
    let ids: Vec<String> = runtime.block_on(async {
        let client = proto::Client::connect(endpoint.clone()).await.or_fail();
        let mut ids = Vec::new();
        for _ in 0..1000 {
            let request = proto::pb::PostJobRequest { flow: "waits".into(), ..Default::default() };
            ids.push(client.post_job(request).await.or_fail().id);
        }
        ids
    });
    let last = ids.last().cloned().unwrap_or_default();
    wait_job(&endpoint, &last, PATIENCE, "the last to park", |j| state(j) == "PARKED").or_fail();
    let quick = post_job(&endpoint, "quick", &[]).or_fail();
    let job = wait_job(&endpoint, &quick, PATIENCE, "a job to run beside 1,000 parked ones", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    let parked = baton(&endpoint, ["list", "--state", "PARKED"]).ok_json().or_fail();
    let count = parked.as_array().map_or(0, Vec::len);
    assert_eq!(count, 1000, "every waiting job is PARKED");
}

fn an_operators_override_is_recorded_in_the_logbook(kind: BoardKind) {
    let Scene { board: _board, flows: _flows, work, conductor, http: _, id } =
        scene(kind, "override", ("approval.yaml", APPROVAL), "approval");
    let endpoint = conductor.endpoint();
    token(work.path());
    let args = ["complete", "--job", &id, "--task", "approve", "--result", "\"by hand\"", "--operator", "alice"];
    let done = baton(&endpoint, args);
    assert!(done.success(), "{}", done.stderr());
    let job = wait_job(&endpoint, &id, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(job["outcome"].as_str(), Some("SUCCESS"), "{job}");
    let approve = &job["tasks"][0];
    assert_eq!(approve["completed_by"].as_str(), Some("alice"), "{job}");
    assert!(approve["completed_at"].as_u64().is_some_and(|at| at <= flows::now_millis()), "{job}");
    assert_eq!(std::fs::read_to_string(work.path().join("used")).or_fail(), "by hand");
}
