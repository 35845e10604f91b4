//! etcd's own counters, read from its `/metrics` endpoint, so a test can
//! check how many requests an operation sends and a benchmark what a job
//! costs etcd. Only meaningful on an etcd that nothing else talks to
//! meanwhile (start one with `EtcdProcess::start`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One reading of etcd's `/metrics`.
pub struct Metrics {
    text: String,
}

impl Metrics {
    /// Reads the metrics now; panics with the reason if etcd cannot be asked.
    pub fn read(endpoint: &str) -> Self {
        Metrics { text: http_get(endpoint, "/metrics") }
    }

    /// The sum of every series of counter `name` (all label sets).
    pub fn counter(&self, name: &str) -> f64 {
        self.sum(|line| line.split([' ', '{']).next() == Some(name))
    }

    /// The KV requests of `methods` (`Range`, `Txn`, `Put`, `DeleteRange`) served so far, all codes.
    ///
    /// `grpc_server_handled_total` counts a call before its reply is sent, so a
    /// request whose reply the caller has is always counted.
    pub fn kv_requests(&self, methods: &[&str]) -> f64 {
        self.sum(|line| {
            line.starts_with("grpc_server_handled_total{")
                && line.contains("grpc_service=\"etcdserverpb.KV\"")
                && methods.iter().any(|m| line.contains(&format!("grpc_method=\"{m}\"")))
        })
    }

    fn sum(&self, wanted: impl Fn(&str) -> bool) -> f64 {
        self.text
            .lines()
            .filter(|line| wanted(line))
            .map(|line| {
                let value = line.rsplit(' ').next().unwrap_or_default();
                value.parse::<f64>().unwrap_or_else(|e| panic!("bad metric value in {line:?}: {e}"))
            })
            .sum()
    }
}

/// The KV requests of `method` etcd has served so far, all codes (see [`Metrics::kv_requests`]).
pub fn kv_requests(endpoint: &str, method: &str) -> u64 {
    Metrics::read(endpoint).kv_requests(&[method]) as u64
}

/// The writes etcd has committed: its raft proposals. A write Txn is one, whatever its
/// compares decide; a read (a Range, a Txn of reads only) is none.
pub fn writes(endpoint: &str) -> u64 {
    Metrics::read(endpoint).counter("etcd_server_proposals_committed_total") as u64
}

/// etcd's `/version` answer, trimmed.
pub fn version(endpoint: &str) -> String {
    http_get(endpoint, "/version").trim().to_string()
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
