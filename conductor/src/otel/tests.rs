//! Export to a tiny OTLP/HTTP collector on loopback: a real engine run inside a `job`
//! span reaches it as spans over `POST /v1/traces`, with the job's and the task's names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use flows::{task_fn, Engine, ExecuteContext, Flow};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

/// Accepts requests on a loopback port, answers 200 to each, and hands over (path, body).
fn collector() -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let (mut request_line, mut length) = (String::new(), 0usize);
            reader.read_line(&mut request_line).expect("request line");
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("header");
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("length");
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("answer");
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            if tx.send((path, body)).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_job_and_its_task_reach_an_otlp_http_collector() {
    let (url, received) = collector();
    // The only test in this binary that reads the OTEL_* variables.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &url);
    let (layer, guard) = super::layer::<tracing_subscriber::Registry>();
    assert!(layer.is_some() && guard.is_some(), "export is on with an endpoint set");
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let job = tracing::info_span!("job", job_id = "job-7f3a", flow = "traced");
        let _entered = job.enter();
        runtime.block_on(async {
            let flow = Flow::linear("traced")
                .add(task_fn("only-step", |_: ExecuteContext| async { Ok(json!(1)) }).kind("shell"));
            let mut engine = Engine::builder(flow).build().await.expect("engine");
            engine.run().await.expect("run");
        });
    });
    drop(guard);
    let (path, body) = received.recv_timeout(Duration::from_secs(20)).expect("no export reached the collector");
    assert_eq!(path, "/v1/traces");
    for wanted in ["job", "job-7f3a", "task", "only-step", "shell", "baton-conductor"] {
        assert!(contains(&body, wanted), "{wanted:?} is not in the exported spans");
    }
}
