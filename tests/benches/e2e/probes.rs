//! What the benchmark reads from outside: etcd's counters (through `tests::etcd::metrics`) and a
//! process's CPU time from `/proc`.

use tests::conductor::HarnessResult;
use tests::etcd::metrics::Metrics;

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
    pub fn read(endpoint: &str) -> Self {
        let metrics = Metrics::read(endpoint);
        Self {
            txn_rpcs: metrics.kv_requests(&["Txn"]),
            kv_rpcs: metrics.kv_requests(&["Txn", "Range", "Put", "DeleteRange"]),
            mvcc_txns: metrics.counter("etcd_mvcc_txn_total"),
            writes: metrics.counter("etcd_server_proposals_committed_total"),
            ranges: metrics.counter("etcd_mvcc_range_total"),
        }
    }
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
