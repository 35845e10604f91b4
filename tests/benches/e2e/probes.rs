//! What the benchmark reads from outside: etcd's `/metrics` and `/version`, and a
//! process's CPU time from `/proc`.

use std::time::Duration;

use tests::conductor::HarnessResult;

/// etcd's own counters, from its `/metrics` endpoint.
pub struct EtcdCounters {
    /// Txn requests served (gRPC `KV/Txn` calls): what "transactions" means in issue 4.
    pub txn_rpcs: f64,
    /// Every KV request served: Txn, Range, Put, DeleteRange.
    pub kv_rpcs: f64,
    /// etcd's internal MVCC transactions of more than one operation: a Txn request with
    /// compares counts twice (one read pass for the compares, one for the writes).
    pub mvcc_txns: f64,
    pub writes: f64,
    pub ranges: f64,
}

impl EtcdCounters {
    pub fn read(endpoint: &str) -> HarnessResult<Self> {
        let text = http_get(endpoint, "/metrics")?;
        let metric = |name: &str| -> f64 {
            text.lines()
                .filter(|line| line.split([' ', '{']).next() == Some(name))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        // `grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",...} 12`, one line per code.
        let rpcs = |methods: &[&str]| -> f64 {
            text.lines()
                .filter(|line| line.starts_with("grpc_server_handled_total{"))
                .filter(|line| line.contains("grpc_service=\"etcdserverpb.KV\""))
                .filter(|line| methods.iter().any(|m| line.contains(&format!("grpc_method=\"{m}\""))))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(Self {
            txn_rpcs: rpcs(&["Txn"]),
            kv_rpcs: rpcs(&["Txn", "Range", "Put", "DeleteRange"]),
            mvcc_txns: metric("etcd_mvcc_txn_total"),
            writes: metric("etcd_server_proposals_committed_total"),
            ranges: metric("etcd_mvcc_range_total"),
        })
    }
}

pub fn etcd_version(endpoint: &str) -> String {
    http_get(endpoint, "/version").map(|body| body.trim().to_string()).unwrap_or_else(|_| "(version unknown)".into())
}

/// A plain HTTP/1.0 GET on etcd's client port; returns the body.
fn http_get(endpoint: &str, path: &str) -> HarnessResult<String> {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body).ok_or("no HTTP body")?;
    Ok(body.to_string())
}

/// User + system CPU of a process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> HarnessResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it start past the ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

pub fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
