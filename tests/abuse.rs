//! Bad input against a real conductor (issue 12, "Bad input and abuse"): requests
//! over the API's size limits are refused as INVALID_ARGUMENT naming the field, the
//! limit and the size, with short messages (a huge echoed value once came back as
//! RESOURCE_EXHAUSTED "metadata size exceeds hard limit"); `--http-allow` keeps
//! `http` tasks to the listed hosts; `--post-rate` limits each caller's posts.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::time::Duration;

use proto::{pb, Client};
use tests::conductor::{
    bin_path, free_local_addr, is_complete, post_job, wait_job, ConductorConfig, ConductorProcess, OrFail,
};
use tests::flow_files::{flows_dir, BoardKind, RecordingServer, TestBoard};
use tonic::Code;

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the API answered: its code and message.
async fn answer<T>(call: impl std::future::Future<Output = Result<T, proto::ClientError>>) -> (Code, String) {
    match call.await {
        Ok(_) => (Code::Ok, String::new()),
        Err(proto::ClientError::Rpc(status)) => (status.code(), status.message().to_owned()),
        Err(other) => panic!("the call failed on the way: {other}"),
    }
}

/// Every answer to bad input: INVALID_ARGUMENT, short, with the expected text.
fn assert_refused((code, message): (Code, String), expected: &str) {
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains(expected), "{expected:?} missing from {message:?}");
    assert!(message.len() <= 8 * 1024, "a {} byte message", message.len());
}

fn flow_file(name: &str) -> String {
    format!("name: {name}\nflow:\n  linear:\n    - task: a\n      kind: noop\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_limits_are_refused_naming_field_limit_and_size() {
    let dir = tempfile::tempdir().or_fail();
    let conductor = ConductorProcess::start(&ConductorConfig::embedded(dir.path(), "abuse-limits")).or_fail();
    let client = Client::connect(conductor.endpoint()).await.or_fail();
    let huge = "f".repeat(100_000);

    let post = pb::PostJobRequest { flow: huge.clone(), ..Default::default() };
    let refused = answer(client.post_job(post)).await;
    let expected = format!("flow: 100000 bytes, over the limit of 256 bytes (\"{}\"…(100000 bytes))", "f".repeat(64));
    assert_eq!(refused, (Code::InvalidArgument, expected));

    assert_refused(answer(client.get_job(huge.clone())).await, "id: 100000 bytes, over the limit of 64 bytes");
    assert_refused(answer(client.get_job("not-a-job")).await, "\"not-a-job\" is not a job id");
    assert_refused(answer(client.cancel_job(huge.clone())).await, "id: 100000 bytes");
    assert_refused(answer(client.drain(huge.clone(), true)).await, "name: 100000 bytes, over the limit of 256");
    assert_refused(answer(client.flow_history(huge.clone())).await, "name: 100000 bytes");
    let list = pb::ListJobsRequest { page_token: huge.clone(), ..Default::default() };
    assert_refused(answer(client.list_jobs(list)).await, "page_token: 100000 bytes, over the limit of 1024");

    let keys: serde_json::Map<String, serde_json::Value> =
        (0..2000).map(|i| (format!("k{i}"), serde_json::json!(i))).collect();
    let post = pb::PostJobRequest {
        flow: "chain".into(),
        store_json: serde_json::Value::Object(keys).to_string(),
        ..Default::default()
    };
    assert_refused(answer(client.post_job(post)).await, "store_json: 2000 keys, over the limit of 1024");
    let post = pb::PostJobRequest {
        flow: "chain".into(),
        store_json: format!("{{\"steps\": \"{}\"}}", "x".repeat(2 << 20)),
        ..Default::default()
    };
    assert_refused(answer(client.post_job(post)).await, "store_json: 2097165 bytes, over the limit of 1048576 bytes");

    // Flow files: too big, a name too long inside one, and many files full of problems.
    let big =
        pb::FlowFileText { file: "big.yaml".into(), text: format!("{}#{}", flow_file("big"), "x".repeat(300_000)) };
    assert_refused(answer(client.apply_flows(vec![big])).await, "files[0].text (\"big.yaml\"): 300");
    let long_name = pb::FlowFileText { file: "long.yaml".into(), text: flow_file(&"n".repeat(100_000)) };
    assert_refused(answer(client.apply_flows(vec![long_name])).await, "…(100000 bytes) is longer than 256 bytes");
    let bad: String = (0..200).map(|i| format!("unknown{i}: {}\n", "v".repeat(500))).collect();
    let files = (0..30).map(|i| pb::FlowFileText { file: format!("bad{i}.yaml"), text: bad.clone() }).collect();
    assert_refused(answer(client.apply_flows(files)).await, "nothing applied");

    // A page larger than the limit is served at the limit, not refused.
    let list = pb::ListJobsRequest { page_size: u32::MAX, ..Default::default() };
    assert_eq!(answer(client.list_jobs(list)).await.0, Code::Ok);

    // Over the message limit, tonic refuses the request before any handler.
    let post = pb::PostJobRequest { flow: "chain".into(), store_json: "x".repeat(5 << 20), ..Default::default() };
    let (code, message) = answer(client.post_job(post)).await;
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert!(message.contains("4194304"), "{message}");

    // The conductor still works.
    let store = r#"{"steps": 1, "step_ms": 0}"#.into();
    let post = pb::PostJobRequest { flow: "chain".into(), store_json: store, ..Default::default() };
    client.post_job(post).await.or_fail();
}

/// `GET ${url}` as a flow file.
const FETCH_FLOW: &str = r#"
name: fetch
inputs:
  url: {type: string}
flow:
  linear:
    - task: fetch
      kind: http
      with: {url: "${url}"}
"#;

fn ok_api(_: &str, _: &str) -> (u16, &'static str) {
    (200, r#"{"ok": true}"#)
}

/// Posts `fetch` of `url` and waits for the job to end.
fn fetch(endpoint: &str, url: &str) -> serde_json::Value {
    let id = post_job(endpoint, "fetch", &[("url", url)]).or_fail();
    wait_job(endpoint, &id, PATIENCE, "the fetch to end", is_complete).or_fail()
}

#[test]
fn http_allow_lets_listed_hosts_through_and_fails_the_rest_before_connecting() {
    let allowed = RecordingServer::start(ok_api).or_fail();
    let denied = RecordingServer::start(ok_api).or_fail();
    let board = TestBoard::new(BoardKind::Embedded, "abuse-http-allow").or_fail();
    let flows = flows_dir(&[("fetch.yaml", FETCH_FLOW)]).or_fail();
    let allowed_host = allowed.url().trim_start_matches("http://").to_owned();
    let args = ["--http-allow", &format!("{allowed_host},localhost,*.example.invalid")];
    let conductor = ConductorProcess::start(&board.conductor("abuse-http-allow", flows.path(), &args)).or_fail();
    let endpoint = conductor.endpoint();

    let job = fetch(&endpoint, &format!("{}/ok", allowed.url()));
    assert_eq!(job["outcome"], "SUCCESS", "{job}");
    assert_eq!(allowed.requests(), ["GET /ok"]);

    // Another port of the same address: not listed.
    let job = fetch(&endpoint, &format!("{}/secret?token=t", denied.url()));
    let denied_host = denied.url().trim_start_matches("http://").to_owned();
    let (host, port) = denied_host.split_once(':').expect("host:port");
    let expected = format!("GET http://{denied_host}/secret: host {host} port {port} is not allowed by --http-allow");
    assert!(job["failure"].to_string().contains(&expected), "{expected:?} missing from {job}");
    assert!(!job["failure"].to_string().contains("token=t"), "the query leaked: {job}");

    // A listed name that resolves to loopback: refused when resolved.
    let job = fetch(&endpoint, &format!("http://localhost:{port}/x"));
    assert!(
        job["failure"]
            .to_string()
            .contains("localhost resolves only to internal addresses that --http-allow does not list"),
        "{job}"
    );
    assert!(denied.requests().is_empty(), "a denied server was contacted: {:?}", denied.requests());
}

#[test]
fn a_malformed_http_allow_rule_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().or_fail();
    let listen = free_local_addr().or_fail().to_string();
    let mut child = std::process::Command::new(bin_path("conductor"))
        .args(["--listen", &listen, "--http-allow", "10.0.0.0/33", "--data-dir"])
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .or_fail();
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().or_fail() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a conductor with a bad --http-allow kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr).or_fail();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(r#"--http-allow "10.0.0.0/33": /33 is not a prefix length"#), "{stderr}");
}

/// Posts `n` jobs at once as `client`; the answers' codes and messages.
async fn flood(client: &Client, n: usize) -> Vec<(Code, String, Option<String>)> {
    let posts = (0..n).map(|_| async {
        let store = r#"{"steps": 1, "step_ms": 0}"#.to_owned();
        match client
            .post_job(pb::PostJobRequest { flow: "chain".into(), store_json: store, ..Default::default() })
            .await
        {
            Ok(_) => (Code::Ok, String::new(), None),
            Err(proto::ClientError::Rpc(status)) => {
                let retry = status.metadata().get("retry-after-ms").and_then(|v| v.to_str().ok()).map(str::to_owned);
                (status.code(), status.message().to_owned(), retry)
            }
            Err(other) => panic!("the post failed on the way: {other}"),
        }
    });
    futures::future::join_all(posts).await
}

fn auth_file(dir: &std::path::Path) -> std::path::PathBuf {
    use conductor::auth::file::token_line_credential;
    let path = dir.join("auth");
    let lines = [
        format!("alice read,post {}", token_line_credential("alice-token")),
        format!("bob read,post {}", token_line_credential("bob-token")),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").or_fail();
    path
}

async fn client_as(endpoint: &str, token: Option<&str>) -> Client {
    let options = proto::ClientOptions { token: token.map(str::to_owned), ..Default::default() };
    Client::connect_with_options(endpoint, &options).await.or_fail()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_rate_gives_each_identity_its_burst_and_refuses_the_flood() {
    let dir = tempfile::tempdir().or_fail();
    let auth = auth_file(dir.path()).display().to_string();
    let mut config = ConductorConfig::embedded(dir.path(), "abuse-post-rate");
    // One token per 1000 s: the burst is all a caller gets during the test, whatever its timing.
    config.extra_args = ["--post-rate", "0.001:3", "--auth-file", &auth].map(str::to_owned).to_vec();
    // The harness's readiness check lists conductors with no token: wait for the board here instead.
    let conductor = ConductorProcess::spawn(&config).or_fail();
    let alice = client_as(&conductor.endpoint(), Some("alice-token")).await;
    let bob = client_as(&conductor.endpoint(), Some("bob-token")).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    while alice.list_jobs(pb::ListJobsRequest::default()).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the board never answered: {}", conductor.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let answers = flood(&alice, 20).await;
    let accepted = answers.iter().filter(|(code, ..)| *code == Code::Ok).count();
    assert_eq!(accepted, 3, "{answers:?}");
    for (code, message, retry) in answers.iter().filter(|(code, ..)| *code != Code::Ok) {
        assert_eq!(*code, Code::ResourceExhausted, "{message}");
        let expected = "post rate limit of 0.001/s (burst 3) reached for identity alice; retry after ";
        assert!(message.starts_with(expected), "{message}");
        let ms: u64 = retry.as_deref().and_then(|r| r.parse().ok()).expect("retry-after-ms metadata");
        assert!(message.ends_with(&format!("{ms} ms")), "{message} vs {ms}");
    }
    assert_eq!(flood(&bob, 3).await.iter().filter(|(code, ..)| *code == Code::Ok).count(), 3, "bob has his own bucket");
    let jobs = alice.list_jobs(pb::ListJobsRequest::default()).await.or_fail();
    assert_eq!(jobs.jobs.len(), 6, "a refused post reached the board");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_auth_file_the_post_rate_is_per_address() {
    let dir = tempfile::tempdir().or_fail();
    let mut config = ConductorConfig::embedded(dir.path(), "abuse-post-rate-addr");
    config.extra_args = ["--post-rate", "0.001:2"].map(str::to_owned).to_vec();
    let conductor = ConductorProcess::start(&config).or_fail();
    let client = client_as(&conductor.endpoint(), None).await;
    let answers = flood(&client, 5).await;
    assert_eq!(answers.iter().filter(|(code, ..)| *code == Code::Ok).count(), 2, "{answers:?}");
    let refused = answers.iter().find(|(code, ..)| *code != Code::Ok).expect("a refusal");
    assert!(refused.1.contains("reached for address 127.0.0.1"), "{refused:?}");
}
