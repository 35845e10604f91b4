//! What an etcd transaction costs by its shape (not a test): the numbers behind the job
//! board's key layout (ARCHITECTURE.md, "etcd key layout" and "Testing").
//!
//! Prints one table: for each shape of Txn, the rate etcd serves it at with a given number
//! in flight, and etcd's CPU per Txn, on a fresh etcd (tmpfs when `/dev/shm` is there).
//!
//! Run: `cargo bench -p tests --bench etcd_txns`. `BENCH_TXNS` (default 10000) sets the
//! number of Txns per shape.

use std::time::Instant;

use etcd_client::{Compare, CompareOp, KvClient, PutOptions, Txn, TxnOp};
use futures::StreamExt;
use tests::conductor::HarnessResult;
use tests::etcd::{unique_prefix, EtcdProcess};

use tests::cpu::{cpu_ticks, ms_per};

/// What one Txn does, built for key number `i` under `prefix`.
struct Shape {
    name: &'static str,
    in_flight: usize,
    /// A client watches every key the Txns write, as every board watches `P m/`.
    watched: bool,
    build: fn(&str, usize, i64) -> Txn,
}

fn main() -> HarnessResult<()> {
    let txns = std::env::var("BENCH_TXNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let etcd = EtcdProcess::start();
    let pid = etcd.pid().ok_or("etcd is not running")?;
    let shapes = [
        Shape { name: "claim: 1 compare, 1 put on a lease", in_flight: 64, watched: false, build: claim },
        Shape { name: "claim, 32 in flight", in_flight: 32, watched: false, build: claim },
        Shape { name: "claim, 8 in flight", in_flight: 8, watched: false, build: claim },
        Shape { name: "1 put, no compare", in_flight: 64, watched: false, build: one_put },
        Shape { name: "1 compare, 1 put of 2 KiB", in_flight: 64, watched: false, build: big_put },
        Shape { name: "1 compare, 5 puts", in_flight: 64, watched: false, build: five_puts },
        Shape {
            name: "3 compares, 2 puts of 400 B (a logbook step)",
            in_flight: 64,
            watched: false,
            build: logbook_step,
        },
        Shape { name: "1 compare, 2 puts of 400 B", in_flight: 64, watched: false, build: logbook_step_one_compare },
        Shape {
            name: "2 compares, 3 puts, 2 deletes, 1 get (a job claim)",
            in_flight: 64,
            watched: false,
            build: job_claim,
        },
        Shape { name: "a job claim, watched", in_flight: 64, watched: true, build: job_claim },
        Shape { name: "claim, watched", in_flight: 64, watched: true, build: claim },
    ];
    let mut rows = Vec::new();
    for shape in &shapes {
        eprintln!("{} ...", shape.name);
        rows.push((shape, rt.block_on(run(&etcd.endpoint(), pid, shape, txns))?));
    }
    println!("\netcd Txn cost by shape: {txns} Txns each, one fresh etcd");
    println!("| shape | in flight | Txn/s | etcd CPU per Txn |");
    println!("|---|---|---|---|");
    for (shape, (rate, cpu_ms)) in rows {
        println!("| {} | {} | {rate:.0} | {cpu_ms:.3} ms |", shape.name, shape.in_flight);
    }
    Ok(())
}

/// Txns of one shape, `shape.in_flight` at once: (Txn/s, etcd CPU ms per Txn).
async fn run(endpoint: &str, etcd_pid: u32, shape: &Shape, txns: usize) -> HarnessResult<(f64, f64)> {
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    let lease = client.lease_grant(600, None).await?.id();
    let prefix = unique_prefix("bench-shape");
    // Keys the compares look at, as a claim's owner key: present, on the lease (one per 20
    // Txns, and one past the end, which `logbook_step` also compares).
    let fences: Vec<usize> = (0..=txns + 20).step_by(20).collect();
    for chunk in fences.chunks(50) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|j| TxnOp::put(format!("{prefix}fence/{j}"), "o", Some(PutOptions::new().with_lease(lease))))
            .collect();
        client.txn(Txn::new().and_then(ops)).await?;
    }
    let watcher = if shape.watched {
        let mut events = client.watch(prefix.as_str(), Some(etcd_client::WatchOptions::new().with_prefix())).await?;
        Some(tokio::spawn(async move { while let Ok(Some(_)) = events.message().await {} }))
    } else {
        None
    };
    let etcd_before = cpu_ticks(etcd_pid)?;
    let started = Instant::now();
    let results = futures::stream::iter(0..txns)
        .map(|i| {
            let mut kv: KvClient = client.kv_client();
            let txn = (shape.build)(&prefix, i, lease);
            async move { kv.txn(txn).await }
        })
        .buffer_unordered(shape.in_flight)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed();
    let etcd_ticks = cpu_ticks(etcd_pid)? - etcd_before;
    for result in results {
        result?;
    }
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    client.lease_revoke(lease).await?;
    let revision = client.get("bench-revision-probe", None).await?.header().map(|h| h.revision()).unwrap_or(0);
    client.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await?;
    let cpu_ms = ms_per(etcd_ticks, txns);
    Ok((txns as f64 / elapsed.as_secs_f64(), cpu_ms))
}

fn fence(prefix: &str, i: usize) -> String {
    format!("{prefix}fence/{}", i / 20 * 20)
}

fn claim(prefix: &str, i: usize, lease: i64) -> Txn {
    let key = format!("{prefix}claim/{i:08}");
    Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
        key,
        "owner",
        Some(PutOptions::new().with_lease(lease)),
    )])
}

fn one_put(prefix: &str, i: usize, _: i64) -> Txn {
    Txn::new().and_then([TxnOp::put(format!("{prefix}put/{i:08}"), "value", None)])
}

fn big_put(prefix: &str, i: usize, _: i64) -> Txn {
    let key = format!("{prefix}big/{i:08}");
    Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
        key,
        vec![b'x'; 2048],
        None,
    )])
}

fn five_puts(prefix: &str, i: usize, _: i64) -> Txn {
    let ops: Vec<TxnOp> = (0..5).map(|k| TxnOp::put(format!("{prefix}five/{i:08}/{k}"), "value", None)).collect();
    Txn::new().when([Compare::create_revision(fence(prefix, i), CompareOp::NotEqual, 0)]).and_then(ops)
}

fn logbook_step(prefix: &str, i: usize, lease: i64) -> Txn {
    let owner = fence(prefix, i);
    Txn::new()
        .when([
            Compare::create_revision(owner.clone(), CompareOp::NotEqual, 0),
            Compare::lease(owner, CompareOp::Equal, lease),
            Compare::create_revision(fence(prefix, i + 20), CompareOp::NotEqual, 0),
        ])
        .and_then([
            TxnOp::put(format!("{prefix}atom/{i:08}/a"), vec![b'x'; 400], None),
            TxnOp::put(format!("{prefix}atom/{i:08}/b"), vec![b'x'; 400], None),
        ])
}

fn logbook_step_one_compare(prefix: &str, i: usize, _: i64) -> Txn {
    Txn::new().when([Compare::create_revision(fence(prefix, i), CompareOp::NotEqual, 0)]).and_then([
        TxnOp::put(format!("{prefix}atom1/{i:08}/a"), vec![b'x'; 400], None),
        TxnOp::put(format!("{prefix}atom1/{i:08}/b"), vec![b'x'; 400], None),
    ])
}

fn job_claim(prefix: &str, i: usize, lease: i64) -> Txn {
    let owner = format!("{prefix}owner/{i:08}");
    Txn::new()
        .when([
            Compare::create_revision(owner.clone(), CompareOp::Equal, 0),
            Compare::create_revision(fence(prefix, i), CompareOp::NotEqual, 0),
        ])
        .and_then([
            TxnOp::put(owner, "conductor-1", Some(PutOptions::new().with_lease(lease))),
            TxnOp::put(format!("{prefix}state/{i:08}"), vec![b'x'; 120], None),
            TxnOp::put(format!("{prefix}held/{i:08}"), "", None),
            TxnOp::delete(format!("{prefix}queue/{i:08}"), None),
            TxnOp::delete(format!("{prefix}fqueue/{i:08}"), None),
            TxnOp::get(fence(prefix, i), None),
        ])
}
