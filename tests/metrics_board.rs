//! The metrics that read the board and the fleet (issue 12), on a real conductor of each
//! board kind: queue depth and parked jobs with the oldest of each (from the board's
//! indexes, on a timer), task executions by flow and kind, connected workers and
//! dispatch latency, and the etcd session's lease renewals.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tests::conductor::{baton, free_local_addr, get_job, post_job, wait_job, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};
use tests::workers::WorkerProcess;

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(60);

tests::on_both_boards!(the_backlog_tasks_and_workers_are_measured);

const FLOWS: &[(&str, &str)] = &[
    ("one.yaml", "name: one\nflow:\n  linear:\n    - task: only\n      kind: shell\n      with: {script: 'true'}\n"),
    ("hold.yaml", "name: hold\nflow:\n  linear:\n    - task: wait\n      kind: await\n      with: {timeout: 1h}\n"),
    (
        "remote.yaml",
        "name: remote-add\ninputs:\n  a: {type: integer}\nflow:\n  linear:\n    - task: sum\n      kind: remote\n      requires: [a]\n      with: {task: add, b: 40}\n      provides: total\n",
    ),
];

/// `GET /metrics` over HTTP/1.1: the body.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).or_fail();
    stream.set_read_timeout(Some(Duration::from_secs(10))).or_fail();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").or_fail();
    let mut response = String::new();
    stream.read_to_string(&mut response).or_fail();
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// The value of the sample `name` (labels exactly as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

/// Scrapes until `ready` holds for the text; returns that text.
fn scrape_until(addr: SocketAddr, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = match TcpStream::connect(addr) {
            Ok(_) => scrape(addr),
            Err(_) => String::new(),
        };
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed in /metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn the_backlog_tasks_and_workers_are_measured(kind: BoardKind) {
    let board = TestBoard::new(kind, "metrics-board").or_fail();
    let flows = flows_dir(FLOWS).or_fail();
    let http = free_local_addr().or_fail();
    let http_text = http.to_string();
    let config =
        board.conductor("measured", flows.path(), &["--http-listen", &http_text, "--task-kinds", "shell,await,remote"]);
    let conductor = ConductorProcess::start(&config).or_fail();
    let endpoint = conductor.endpoint();

    // One PARKED job, then a drained conductor with three jobs nobody claims.
    let held = post_job(&endpoint, "hold", &[]).or_fail();
    wait_job(&endpoint, &held, PATIENCE, "parked", |job| job["state"] == "PARKED").or_fail();
    assert!(baton(&endpoint, ["drain", "measured"]).success());
    const QUEUED: usize = 3;
    let queued: Vec<String> = (0..QUEUED).map(|_| post_job(&endpoint, "one", &[]).or_fail()).collect();
    let text = scrape_until(http, "3 queued jobs and 1 parked", |t| {
        sample(t, "baton_jobs_queued") == Some(QUEUED as f64)
            && sample(t, "baton_jobs_parked") == Some(1.0)
            && sample(t, "baton_oldest_queued_job_age_seconds").is_some_and(|age| age > 0.0)
    });
    let parked_age = sample(&text, "baton_oldest_parked_job_age_seconds").unwrap_or(0.0);
    let queued_age = sample(&text, "baton_oldest_queued_job_age_seconds").unwrap_or(0.0);
    assert!(parked_age >= queued_age, "the parked job was posted first: {text}");
    for id in &queued {
        assert_eq!(get_job(&endpoint, id).or_fail()["state"], "UNCLAIMED", "a drained conductor claims nothing");
    }

    // Undrained: each job's single task runs exactly once, and the queue empties.
    assert!(baton(&endpoint, ["drain", "measured", "--undo"]).success());
    for id in &queued {
        wait_job(&endpoint, id, PATIENCE, "complete", |job| job["state"] == "COMPLETE").or_fail();
    }
    let text = scrape_until(http, "the three task executions and an empty queue", |t| {
        sample(t, "baton_task_duration_seconds_count{flow=\"one\"}") == Some(QUEUED as f64)
            && sample(t, "baton_jobs_queued") == Some(0.0)
    });
    assert_eq!(
        sample(&text, "baton_task_executions_total{flow=\"one\",kind=\"shell\"}"),
        Some(QUEUED as f64),
        "{text}"
    );
    assert_eq!(sample(&text, "baton_task_failures_total{flow=\"one\",kind=\"shell\"}"), None, "{text}");
    assert_eq!(sample(&text, "baton_task_retries_total{flow=\"one\",kind=\"shell\"}"), None, "{text}");
    assert_eq!(sample(&text, "baton_oldest_queued_job_age_seconds"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "baton_jobs_parked"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "baton_workers_connected"), Some(0.0), "{text}");

    // A remote worker: counted while connected; its call's wait for it is measured once.
    let log = tempfile::NamedTempFile::new().or_fail();
    let mut worker = WorkerProcess::start(std::slice::from_ref(&endpoint), "w1", 1, log.path()).or_fail();
    scrape_until(http, "one connected worker", |t| sample(t, "baton_workers_connected") == Some(1.0));
    let remote = post_job(&endpoint, "remote-add", &[("a", "2")]).or_fail();
    wait_job(&endpoint, &remote, PATIENCE, "complete", |job| job["state"] == "COMPLETE").or_fail();
    let text = scrape_until(http, "the remote task", |t| {
        sample(t, "baton_task_executions_total{flow=\"remote-add\",kind=\"remote\"}") == Some(1.0)
    });
    assert_eq!(sample(&text, "baton_dispatch_latency_seconds_count"), Some(1.0), "{text}");
    worker.kill().or_fail();
    scrape_until(http, "no connected worker", |t| sample(t, "baton_workers_connected") == Some(0.0));

    let renewals = sample(&scrape(http), "baton_lease_renewals_total").unwrap_or(-1.0);
    match kind {
        // The lease (3 s) is renewed every 300 ms; the test has run for longer than that.
        BoardKind::Etcd => assert!(renewals > 0.0, "lease renewals: {renewals}"),
        BoardKind::Embedded => assert_eq!(renewals, 0.0, "an embedded board has no lease"),
    }
}
