//! Issue 14's comparison: this build beside an older one (`BENCH_BASE_BIN`), in
//! one run on one etcd, so the machine's noise hits both alike. Prints jobs/s
//! with one conductor and etcd Txns per job for each, their ratio against the
//! issue's target (at least 1.3 times), and the raw-etcd reference before and after.

use std::path::Path;

use tests::conductor::HarnessResult;

use super::{raw_etcd_txns, row, throughput, Fleet, Throughput};

/// Runs the comparison and prints its table.
pub(crate) fn with_base(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    etcd_pid: u32,
    base: &'static Path,
    jobs: usize,
) -> HarnessResult<()> {
    tests::conductor::check_base_build(base)?;
    let new = Fleet { conductors: 1, max_jobs: None, worker_threads: None, bin_dir: None };
    let old = Fleet { bin_dir: Some(base), ..new };
    eprintln!("comparison with {}: raw transactions ...", base.display());
    let raw_before = raw_etcd_txns(rt, endpoint, etcd_pid)?;
    let mut runs: Vec<(bool, Throughput)> = Vec::new();
    // New, base, base, new: a drift over the run (etcd's database growing, a neighbour's
    // build) weighs on both builds alike.
    for is_new in [true, false, false, true] {
        eprintln!("throughput, 1 conductor, {} build ...", if is_new { "this" } else { "base" });
        runs.push((is_new, throughput(rt, endpoint, etcd_pid, if is_new { new } else { old }, jobs)?));
    }
    let raw_after = raw_etcd_txns(rt, endpoint, etcd_pid)?;
    let of = |want: bool| runs.iter().filter(move |(is_new, _)| *is_new == want).map(|(_, run)| run);
    let mean = |want: bool, f: fn(&Throughput) -> f64| of(want).map(f).sum::<f64>() / of(want).count() as f64;
    let each = |want: bool| of(want).map(|run| format!("{:.0}", run.jobs_per_s)).collect::<Vec<_>>().join(", ");
    let (new_rate, old_rate) = (mean(true, |r| r.jobs_per_s), mean(false, |r| r.jobs_per_s));
    let ratio = new_rate / old_rate.max(f64::MIN_POSITIVE);
    println!("\nIssue 14: this build against {} ({jobs} jobs of `chain` steps=3 step_ms=0 per run)", base.display());
    println!("| metric | Baton | base | target | met |");
    println!("|---|---|---|---|---|");
    let both = |metric: &str, f: fn(&Throughput) -> f64, digits: usize| {
        row(metric, format!("{:.*}", digits, mean(true, f)), &format!("{:.*}", digits, mean(false, f)), "-", true)
    };
    row(
        "jobs/s, 1 conductor (mean; runs)",
        format!("{new_rate:.0} ({})", each(true)),
        &format!("{old_rate:.0} ({})", each(false)),
        "-",
        true,
    );
    row("jobs/s ratio, this / base", format!("{ratio:.2}"), "1", ">= 1.3", ratio >= 1.3);
    both("etcd txns per job (Txn requests)", |r| r.txns_per_job, 1);
    row(
        "etcd txns per job, target",
        format!("{:.1}", mean(true, |r| r.txns_per_job)),
        "-",
        "<= 5",
        mean(true, |r| r.txns_per_job) <= 5.05,
    );
    both("etcd KV requests per job (Txn, Range, Put, DeleteRange)", |r| r.requests_per_job, 1);
    both("etcd writes per job (proposals committed)", |r| r.writes_per_job, 1);
    both("conductor CPU per job", |r| r.cpu_ms_per_job, 2);
    both("etcd CPU per job", |r| r.etcd_cpu_ms_per_job, 2);
    row(
        "raw etcd claim txn/s, 64 in flight, before / after",
        format!("{:.0} / {:.0}", raw_before.txns_per_s, raw_after.txns_per_s),
        "-",
        "-",
        true,
    );
    Ok(())
}
