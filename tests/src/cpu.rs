//! CPU time of a process, from `/proc`: what the benchmarks charge per job or per Txn.

use crate::conductor::HarnessResult;

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

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that cannot be read).
pub fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `ticks` of CPU as milliseconds, shared out over `count` units of work.
pub fn ms_per(ticks: u64, count: usize) -> f64 {
    ticks as f64 * 1000.0 / clock_ticks_per_s() / count.max(1) as f64
}
