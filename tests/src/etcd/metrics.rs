//! etcd's own request counters, read from its `/metrics` endpoint, so a test
//! can check how many requests an operation sends. Only meaningful on an etcd
//! that nothing else talks to meanwhile (start one with `EtcdProcess::start`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The KV requests of `method` (`Range`, `Txn`, `Put`, `DeleteRange`) etcd has served so far, all codes.
///
/// `grpc_server_handled_total` counts a call before its reply is sent, so a
/// request whose reply the caller has is always counted.
pub fn kv_requests(endpoint: &str, method: &str) -> u64 {
    let text = http_get(endpoint, "/metrics");
    let wanted = format!("grpc_method=\"{method}\"");
    text.lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{"))
        .filter(|line| line.contains("grpc_service=\"etcdserverpb.KV\"") && line.contains(&wanted))
        .map(|line| {
            let value = line.rsplit(' ').next().unwrap_or_default();
            value.parse::<f64>().unwrap_or_else(|e| panic!("bad metric value in {line:?}: {e}")) as u64
        })
        .sum()
}

/// A plain HTTP/1.0 GET on etcd's client port; returns the body.
fn http_get(endpoint: &str, path: &str) -> String {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("cannot reach etcd at {address}: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("cannot ask etcd for {path}: {e}"));
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap_or_else(|e| panic!("cannot read etcd's {path}: {e}"));
    match response.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => panic!("etcd's {path} answer has no HTTP body"),
    }
}
