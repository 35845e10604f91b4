//! `/metrics` and `/healthz` on a real conductor's `--http-listen` (issue 12): N jobs
//! raise the completed-jobs counter by exactly N and the job-duration histogram's count
//! by N; board requests are counted by operation; with an auth file `/metrics` wants the
//! `metrics` role while `/healthz` stays open.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use conductor::auth::file::token_line_credential;
use tests::conductor::{free_local_addr, post_job, wait_job, ConductorConfig, ConductorProcess, OrFail};

/// `GET path` over HTTP/1.1; returns (status, body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).or_fail();
    stream.set_read_timeout(Some(Duration::from_secs(10))).or_fail();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n").or_fail();
    let mut response = String::new();
    stream.read_to_string(&mut response).or_fail();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The value of the sample `name` (with its labels, exactly as written), 0 if absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn wait_http(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the HTTP listener never accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn completed_jobs_and_durations_count_exactly_the_jobs_run() {
    let dir = tempfile::tempdir().or_fail();
    let http = free_local_addr().or_fail();
    let mut config = ConductorConfig::embedded(dir.path(), "metered");
    config.extra_args = vec!["--http-listen".into(), http.to_string()];
    let conductor = ConductorProcess::start(&config).or_fail();
    wait_http(http);
    let (status, body) = get(http, "/healthz", None);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(http, "/livez", None).0, 200);
    assert_eq!(get(http, "/nothing", None).0, 404);

    let completed = "baton_jobs_completed_total{flow=\"chain\",outcome=\"SUCCESS\"}";
    let durations = "baton_job_duration_seconds_count{flow=\"chain\"}";
    let (_, before) = get(http, "/metrics", None);
    let build = format!("baton_build_info{{version=\"{}\",otel=\"false\"}} 1\n", env!("CARGO_PKG_VERSION"));
    assert!(before.contains(&build), "{before}");
    const N: usize = 4;
    let ids: Vec<String> = (0..N)
        .map(|_| post_job(&conductor.endpoint(), "chain", &[("steps", "2"), ("step_ms", "0")]).or_fail())
        .collect();
    for id in &ids {
        wait_job(&conductor.endpoint(), id, Duration::from_secs(30), "complete", |job| job["state"] == "COMPLETE")
            .or_fail();
    }
    // The counter is written right after the outcome; give the last one a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (_, after) = get(http, "/metrics", None);
        if sample(&after, completed) >= sample(&before, completed) + N as f64 || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sample(&after, completed) - sample(&before, completed), N as f64, "{after}");
    assert_eq!(sample(&after, durations) - sample(&before, durations), N as f64, "{after}");
    // Two steps per job: each a Rust task (kind `task`) that runs once and is timed once.
    let executions = "baton_task_executions_total{flow=\"chain\",kind=\"task\"}";
    let task_durations = "baton_task_duration_seconds_count{flow=\"chain\"}";
    assert_eq!(sample(&after, executions) - sample(&before, executions), 2.0 * N as f64, "{after}");
    assert_eq!(sample(&after, task_durations) - sample(&before, task_durations), 2.0 * N as f64, "{after}");
    assert_eq!(
        sample(&after, "baton_jobs_posted_total{flow=\"chain\"}")
            - sample(&before, "baton_jobs_posted_total{flow=\"chain\"}"),
        N as f64
    );
    // The claim loop picks (the claim lands with the job's first logbook write).
    assert!(sample(&after, "baton_board_requests_total{op=\"pick_next\"}") >= N as f64, "{after}");
    assert_eq!(
        sample(&after, "baton_claim_latency_seconds_count") - sample(&before, "baton_claim_latency_seconds_count"),
        N as f64,
        "{after}"
    );
    assert!(sample(&after, "baton_board_request_duration_seconds_count{op=\"get\"}") >= 1.0, "{after}");
    assert_eq!(sample(&after, "baton_board_sessions_started_total"), 1.0);
}

#[test]
fn metrics_want_the_metrics_role_when_an_auth_file_is_in_force() {
    let dir = tempfile::tempdir().or_fail();
    let auth = dir.path().join("auth");
    std::fs::write(
        &auth,
        format!(
            "prometheus metrics {}\nreader read {}\n",
            token_line_credential("scrape-token"),
            token_line_credential("read-token")
        ),
    )
    .or_fail();
    let http = free_local_addr().or_fail();
    let mut config = ConductorConfig::embedded(&dir.path().join("board"), "guarded");
    config.extra_args =
        vec!["--http-listen".into(), http.to_string(), "--auth-file".into(), auth.display().to_string()];
    let _conductor = ConductorProcess::spawn(&config).or_fail();
    wait_http(http);
    assert_eq!(get(http, "/metrics", None).0, 401);
    assert_eq!(get(http, "/metrics", Some("wrong")).0, 401);
    let (status, body) = get(http, "/metrics", Some("read-token"));
    assert_eq!(status, 403);
    assert!(body.contains("`metrics`"), "names the role: {body}");
    let (status, body) = get(http, "/metrics", Some("scrape-token"));
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE baton_jobs_completed_total counter"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(http, "/healthz", None).0 != 200 {
        assert!(Instant::now() < deadline, "/healthz never answered 200 without credentials");
        std::thread::sleep(Duration::from_millis(50));
    }
}
