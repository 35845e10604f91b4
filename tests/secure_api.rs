//! The API behind TLS, mutual TLS and the auth file, with real conductor and `baton`
//! processes and certificates made here (issue 12): each role allowed and denied once per
//! call family, UNAUTHENTICATED for missing or bad credentials, health open, rotation of
//! the auth file and of the server certificate without a restart, audit lines, and the
//! refusal to serve beyond loopback unprotected.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conductor::auth::file::token_line_credential;
use proto::{pb, Client, ClientOptions};
use serde_json::Value;
use tests::conductor::{baton_with_env, BatonOutput};
use tests::conductor::{bin_path, ConductorConfig, ConductorProcess, OrFail};
use tests::pki::{CertFiles, Pki};
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(20);

fn auth_file(pki: &Pki, lines: &[String]) -> std::path::PathBuf {
    let path = pki.path("auth.txt");
    std::fs::write(&path, lines.join("\n") + "\n").or_fail();
    path
}

fn secured(pki: &Pki, dir: &Path, server: &CertFiles, auth: Option<&Path>) -> ConductorProcess {
    let mut config = ConductorConfig::embedded(dir, "secure");
    config.extra_args = vec![
        "--tls-cert".into(),
        server.cert.display().to_string(),
        "--tls-key".into(),
        server.key.display().to_string(),
        "--tls-client-ca".into(),
        pki.ca().display().to_string(),
    ];
    if let Some(auth) = auth {
        config.extra_args.extend(["--auth-file".into(), auth.display().to_string()]);
    }
    ConductorProcess::spawn(&config).or_fail()
}

/// Waits until the open health service says the Baton service is SERVING (the board is there).
async fn wait_ready(endpoint: &str, ca: &Path) {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(ca).or_fail()));
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .or_fail()
        .tls_config(tls)
        .or_fail()
        // Lazy: the conductor may not listen yet; each check below connects (again) if needed.
        .connect_lazy();
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    eventually("the Baton service SERVING", || {
        let mut health = health.clone();
        async move {
            let request = tonic_health::pb::HealthCheckRequest { service: proto::SERVICE_NAME.into() };
            health.check(request).await.is_ok_and(|answer| answer.into_inner().status == serving)
        }
    })
    .await;
}

fn https(conductor: &ConductorProcess) -> String {
    conductor.endpoint().replace("http://", "https://")
}

fn options(ca: &Path, token: Option<&str>, cert: Option<&CertFiles>) -> ClientOptions {
    ClientOptions::from_files(
        token.map(str::to_owned),
        None,
        Some(ca),
        cert.map(|c| c.cert.as_path()),
        cert.map(|c| c.key.as_path()),
    )
    .or_fail()
}

async fn client(endpoint: &str, options: &ClientOptions) -> Client {
    let options = ClientOptions { connect_timeout: Some(Duration::from_secs(5)), ..options.clone() };
    Client::connect_with_options(endpoint, &options).await.or_fail()
}

async fn code_of<T>(call: impl std::future::Future<Output = Result<T, proto::ClientError>>) -> (Code, String) {
    match call.await {
        Ok(_) => (Code::Ok, String::new()),
        Err(error) => (error.code(), error.to_string()),
    }
}

fn post(flow: &str) -> pb::PostJobRequest {
    pb::PostJobRequest { flow: flow.into(), store_json: r#"{"steps": 1, "step_ms": 0}"#.into(), ..Default::default() }
}

/// Waits (bounded) until `check` holds; the wait is no part of what is asserted.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_tokens_and_certificates_decide_each_call_family() {
    let pki = Pki::new("api");
    let server = pki.server("server");
    let ops_cert = pki.client("ops-client");
    let stranger_cert = pki.client("stranger");
    let auth = auth_file(
        &pki,
        &[
            format!("reader read {}", token_line_credential("reader-token")),
            format!("poster read,post {}", token_line_credential("poster-token")),
            format!("operator read,operate {}", token_line_credential("operator-token")),
            "ops read,operate cert:ops-client".to_owned(),
        ],
    );
    let dir = tempfile::tempdir().or_fail();
    let conductor = secured(&pki, dir.path(), &server, Some(&auth));
    let endpoint = https(&conductor);
    let ca = pki.ca();

    // Health is open: no token, no certificate (and the board is ready once it says so).
    wait_ready(&endpoint, ca).await;
    let anonymous = client(&endpoint, &options(ca, None, None)).await;

    // Missing and bad credentials: UNAUTHENTICATED, saying nothing of which tokens exist.
    let (code, message) = code_of(anonymous.list_flows()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    let wrong = client(&endpoint, &options(ca, Some("nobody-knows-me"), None)).await;
    let (code, message) = code_of(wrong.list_flows()).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(!message.contains("reader") && !message.contains("poster"), "names an identity: {message}");
    let stranger = client(&endpoint, &options(ca, None, Some(&stranger_cert))).await;
    assert_eq!(code_of(stranger.list_flows()).await.0, Code::Unauthenticated, "an unknown certificate is nobody");

    // read
    let reader = client(&endpoint, &options(ca, Some("reader-token"), None)).await;
    assert_eq!(code_of(reader.list_flows()).await.0, Code::Ok);
    assert_eq!(code_of(reader.list_jobs(pb::ListJobsRequest::default())).await.0, Code::Ok);
    // post
    let (code, message) = code_of(reader.post_job(post("chain"))).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("`post`"), "the role is named: {message}");
    let poster = client(&endpoint, &options(ca, Some("poster-token"), None)).await;
    let job = poster.post_job(post("chain")).await.or_fail();
    // operate, by token and by certificate
    let (code, message) = code_of(poster.cancel_job(job.id.clone())).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("`operate`"), "the role is named: {message}");
    let operator = client(&endpoint, &options(ca, Some("operator-token"), None)).await;
    let (code, message) = code_of(operator.cancel_job(job.id.clone())).await;
    assert!(code == Code::Ok || code == Code::FailedPrecondition, "operate allowed, got {code:?}: {message}");
    let ops = client(&endpoint, &options(ca, None, Some(&ops_cert))).await;
    assert_eq!(code_of(ops.drain("secure", true)).await.0, Code::Ok, "the certificate identity may operate");
    assert_eq!(code_of(ops.post_job(post("chain"))).await.0, Code::PermissionDenied);

    // Operators' actions are recorded on the job under the caller's identity (token or
    // certificate). The conductor is drained, so the job stays queued meanwhile.
    let queued = poster.post_job(post("chain")).await.or_fail();
    let (code, message) = code_of(poster.suspend_job(queued.id.clone())).await;
    assert_eq!(code, Code::PermissionDenied, "suspend needs operate: {message}");
    operator.suspend_job(queued.id.clone()).await.or_fail();
    ops.resume_job(queued.id.clone()).await.or_fail();
    operator.cancel_job(queued.id.clone()).await.or_fail();
    let recorded = reader.get_job(queued.id.clone()).await.or_fail();
    let actions: Vec<(&str, &str)> = recorded.actions.iter().map(|a| (a.action.as_str(), a.by.as_str())).collect();
    assert_eq!(actions, [("suspend", "operator"), ("resume", "ops"), ("cancel", "operator")], "{recorded:?}");

    // A plaintext client gets no answer from a TLS port.
    let plain = Client::connect_with(conductor.endpoint(), Duration::from_secs(2), Duration::from_secs(2)).await;
    let refused = match plain {
        Err(_) => true,
        Ok(plain) => plain.list_flows().await.is_err(),
    };
    assert!(refused, "plaintext must not reach a TLS listener");

    // Audit lines name the caller of each state-changing call.
    let log = conductor.log();
    assert!(log.contains("state-changing call") && log.contains("poster"), "no audit line for the post:\n{log}");
    assert!(log.contains("operator") && log.contains("CancelJob"), "no audit line for the cancel:\n{log}");
    assert!(!log.contains("poster-token"), "a token reached the log");

    // Rotation of the auth file: the reader's token is replaced without a restart.
    std::fs::write(
        &auth,
        format!(
            "reader read {}\nposter read,post {}\n",
            token_line_credential("reader-token-2"),
            token_line_credential("poster-token")
        ),
    )
    .or_fail();
    eventually("the old token refused", || async { code_of(reader.list_flows()).await.0 == Code::Unauthenticated })
        .await;
    let rotated = client(&endpoint, &options(ca, Some("reader-token-2"), None)).await;
    assert_eq!(code_of(rotated.list_flows()).await.0, Code::Ok);

    // Rotation of the server certificate: one from a new CA is served to new connections.
    let next = Pki::new("next");
    let renewed = next.server("renewed");
    std::fs::copy(&renewed.cert, &server.cert).or_fail();
    std::fs::copy(&renewed.key, &server.key).or_fail();
    let next_ca = next.ca().to_owned();
    eventually("the renewed certificate served", || {
        let (endpoint, next_ca) = (endpoint.clone(), next_ca.clone());
        async move {
            let options = ClientOptions {
                connect_timeout: Some(Duration::from_secs(2)),
                ..options(&next_ca, Some("poster-token"), None)
            };
            match Client::connect_with_options(endpoint, &options).await {
                Ok(client) => client.list_flows().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_takes_tokens_and_certificates() {
    let pki = Pki::new("cli");
    let server = pki.server("server");
    let admin_cert = pki.client("cli-admin");
    let auth = auth_file(
        &pki,
        &[
            format!("cli read,post {}", token_line_credential("cli-token")),
            "certified read,post cert:cli-admin".to_owned(),
        ],
    );
    let token_file = pki.path("token");
    std::fs::write(&token_file, "cli-token\n").or_fail();
    let dir = tempfile::tempdir().or_fail();
    let conductor = secured(&pki, dir.path(), &server, Some(&auth));
    let endpoint = https(&conductor);
    wait_ready(&endpoint, pki.ca()).await;
    let ca = pki.ca().display().to_string();

    let listed = |out: &BatonOutput| out.json().ok().and_then(|v| v.as_array().cloned());
    let out = baton_with_env(&endpoint, &[], ["--ca", &ca, "--token", "cli-token", "flows"]);
    assert!(out.success() && listed(&out).is_some(), "--token: {}", out.stderr());
    let out = baton_with_env(&endpoint, &[("BATON_TOKEN", "cli-token")], ["--ca", &ca, "flows"]);
    assert!(out.success(), "BATON_TOKEN: {}", out.stderr());
    let file = token_file.display().to_string();
    let out = baton_with_env(
        &endpoint,
        &[],
        ["--ca", &ca, "--token-file", &file, "post", "chain", "--store", "steps=1", "--store", "step_ms=0"],
    );
    assert!(out.success(), "--token-file: {}", out.stderr());
    let (cert, key) = (admin_cert.cert.display().to_string(), admin_cert.key.display().to_string());
    let out = baton_with_env(&endpoint, &[], ["--ca", &ca, "--cert", &cert, "--key", &key, "list"]);
    assert!(out.success(), "--cert/--key: {}", out.stderr());
    let jobs: Vec<Value> = listed(&out).unwrap_or_default();
    assert_eq!(jobs.len(), 1, "the job posted with --token-file is listed: {}", out.stdout());

    let out = baton_with_env(&endpoint, &[], ["--ca", &ca, "flows"]);
    assert!(!out.success(), "no credentials must fail");
    assert!(out.stderr().to_lowercase().contains("credentials"), "says why: {}", out.stderr());
    let out = baton_with_env(&endpoint, &[], ["--ca", &ca, "--token", "wrong", "flows"]);
    assert!(!out.success() && out.stderr().contains("Unauthenticated"), "{}", out.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_without_an_auth_file_requires_a_client_certificate() {
    let pki = Pki::new("mtls");
    let server = pki.server("server");
    let client_cert = pki.client("any-client");
    let dir = tempfile::tempdir().or_fail();
    let conductor = secured(&pki, dir.path(), &server, None);
    let endpoint = https(&conductor);

    let with_cert = client(&endpoint, &options(pki.ca(), None, Some(&client_cert))).await;
    assert_eq!(code_of(with_cert.list_flows()).await.0, Code::Ok);
    let bare = ClientOptions { connect_timeout: Some(Duration::from_secs(2)), ..options(pki.ca(), None, None) };
    let refused = match Client::connect_with_options(endpoint.clone(), &bare).await {
        Err(_) => true,
        Ok(client) => client.list_flows().await.is_err(),
    };
    assert!(refused, "a client without a certificate must not get through");
}

#[test]
fn serving_beyond_loopback_unprotected_is_refused_naming_the_flags() {
    let dir = tempfile::tempdir().or_fail();
    let output = Command::new(bin_path("conductor"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("BATON_INSECURE")
        .output()
        .or_fail();
    assert_eq!(output.status.code(), Some(2), "bad configuration exits 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for flag in ["--insecure", "--tls-cert", "--tls-key", "--auth-file"] {
        assert!(stderr.contains(flag), "{flag} not named in: {stderr}");
    }
    let output = Command::new(bin_path("conductor"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .or_fail();
    assert_eq!(output.status.code(), Some(2), "--http-listen beyond loopback is refused too");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--http-listen"));
}

const AWAIT_FLOW: &str = r#"
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
            script: 'printf %s "$TOKEN" > "$DIR/token.tmp" && mv "$DIR/token.tmp" "$DIR/token"'
            env: {TOKEN: "${callback.token}", DIR: "${dir}"}
"#;

/// Waits for the notify step of the approval flow to have written its callback token.
async fn callback_token(dir: &Path) -> String {
    let path = dir.join("token");
    eventually("the notify step writing the token", || {
        let exists = path.exists();
        async move { exists }
    })
    .await;
    std::fs::read_to_string(&path).or_fail()
}

fn complete_request(target: pb::complete_task_request::Target, operator: &str) -> pb::CompleteTaskRequest {
    pb::CompleteTaskRequest {
        target: Some(target),
        outcome: Some(pb::complete_task_request::Outcome::ResultJson("\"yes\"".into())),
        operator: operator.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_token_needs_no_role_and_an_override_needs_operate_recorded_under_the_caller() {
    let pki = Pki::new("complete");
    let server = pki.server("server");
    let auth = auth_file(
        &pki,
        &[
            format!("poster read,post {}", token_line_credential("poster-token")),
            format!("ops read,operate {}", token_line_credential("ops-token")),
        ],
    );
    let dir = tempfile::tempdir().or_fail();
    let flows = tempfile::tempdir().or_fail();
    std::fs::write(flows.path().join("approval.yaml"), AWAIT_FLOW).or_fail();
    let mut config = ConductorConfig::embedded(dir.path(), "secure-complete");
    config.binary = "conductor";
    for arg in [
        "--tls-cert",
        &server.cert.display().to_string(),
        "--tls-key",
        &server.key.display().to_string(),
        "--auth-file",
        &auth.display().to_string(),
        "--flows-dir",
        &flows.path().display().to_string(),
        "--task-kinds",
        "await,shell",
    ] {
        config.extra_args.push(arg.to_owned());
    }
    let conductor = ConductorProcess::spawn(&config).or_fail();
    let endpoint = https(&conductor);
    let ca = pki.ca();
    wait_ready(&endpoint, ca).await;
    let poster = client(&endpoint, &options(ca, Some("poster-token"), None)).await;
    let ops = client(&endpoint, &options(ca, Some("ops-token"), None)).await;
    let anonymous = client(&endpoint, &options(ca, None, None)).await;
    let post = |work: &Path| pb::PostJobRequest {
        flow: "approval".into(),
        store_json: serde_json::json!({"dir": work.display().to_string()}).to_string(),
        ..Default::default()
    };

    // A token completes the task with no credentials at all: the token is the credential.
    let first = tempfile::tempdir().or_fail();
    let job = poster.post_job(post(first.path())).await.or_fail();
    let token = callback_token(first.path()).await;
    let target = pb::complete_task_request::Target::Token(token);
    assert!(anonymous.complete_task(complete_request(target, "")).await.or_fail());
    eventually("the token's job to finish", || {
        let (poster, id) = (poster.clone(), job.id.clone());
        async move { poster.get_job(id).await.is_ok_and(|j| j.state == pb::JobState::Complete as i32) }
    })
    .await;

    // An override by job and task needs `operate`, and records the caller, not the name it claims.
    let second = tempfile::tempdir().or_fail();
    let job = poster.post_job(post(second.path())).await.or_fail();
    callback_token(second.path()).await;
    let by_task =
        || pb::complete_task_request::Target::Task(pb::TaskRef { job_id: job.id.clone(), task: "approve".into() });
    let (code, message) = code_of(poster.complete_task(complete_request(by_task(), "mallory"))).await;
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("operate"), "names the role: {message}");
    let (code, message) = code_of(anonymous.complete_task(complete_request(by_task(), "mallory"))).await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(ops.complete_task(complete_request(by_task(), "mallory")).await.or_fail());
    eventually("the override's job to finish", || {
        let (poster, id) = (poster.clone(), job.id.clone());
        async move { poster.get_job(id).await.is_ok_and(|j| j.state == pb::JobState::Complete as i32) }
    })
    .await;
    let done = poster.get_job(job.id.clone()).await.or_fail();
    let approve = done.tasks.iter().find(|t| t.name == "approve").ok_or("no task approve").or_fail();
    assert_eq!(approve.completed_by.as_deref(), Some("ops"), "the override is recorded under the caller's identity");
}
