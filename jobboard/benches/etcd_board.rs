//! Benchmark of the etcd job board against raw etcd (not a test; prints a table).
//!
//! Starts its own etcd (Debian's `etcd-server`) on free loopback ports with
//! its data on disk (`/tmp`; set `BATON_BENCH_SHM=1` for `/dev/shm`), then:
//! raw create-if-absent txns with a lease (64 in flight); board post + claim +
//! consume cycles (64 in flight); etcd requests per cycle (from etcd's own
//! `/metrics` counters); claim latency with 10 and with 10,000 jobs queued.
//! etcd is compacted between phases, as auto-compaction would in production,
//! so that one phase's deletes do not slow the next (etcd-notes §6).
//!
//! Run: `cargo bench -p jobboard --bench etcd_board`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, CompactionOptions, Compare, CompareOp, PutOptions, Txn, TxnOp};
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, FlowFilter, JobBoard, NewJob, Outcome};
use serde_json::Map;

/// `BATON_BENCH_<NAME>` from the environment, else the default (for quick experiments).
fn knob(name: &str, default: usize) -> usize {
    std::env::var(format!("BATON_BENCH_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn in_flight() -> usize {
    knob("IN_FLIGHT", 64)
}

fn raw_txns_count() -> usize {
    knob("RAW_TXNS", 20_000)
}

fn cycles_count() -> usize {
    knob("CYCLES", 4_000)
}

fn latency_samples() -> usize {
    knob("LATENCY_SAMPLES", 1_000)
}

/// A bench binary's error: what failed, as text (no anyhow in a library's dev tree).
type BenchResult<T> = Result<T, String>;

fn fail<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{doing}: {e}")
}

struct Etcd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> BenchResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(fail("binding a port"))?;
    listener.local_addr().map(|a| a.port()).map_err(fail("reading a port"))
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn start_etcd() -> BenchResult<Etcd> {
    let binary = if Path::new("/usr/bin/etcd").exists() { "/usr/bin/etcd" } else { "etcd" };
    let parent = if std::env::var_os("BATON_BENCH_SHM").is_some() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::Builder::new().prefix("baton-bench-etcd-").tempdir_in(parent).map_err(fail("data dir"))?;
    let (port, peer) = (free_port()?, free_port()?);
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer}");
    let child = Command::new(binary)
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path())
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .arg(format!("--initial-cluster=bench={peer}"))
        .args(["--auto-compaction-mode=revision", "--auto-compaction-retention=1000", "--log-level=error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(fail("etcd not found: install Debian's etcd-server (apt-get install etcd-server)"))?;
    let etcd = Etcd { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http_get(port, "/health").is_some_and(|b| b.contains("\"health\":\"true\"")) {
            println!("etcd data dir on {parent}");
            return Ok(etcd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("etcd did not become healthy".into())
}

/// Started gRPC calls of the KV methods, from etcd's Prometheus counters.
fn kv_calls(port: u16) -> u64 {
    let Some(body) = http_get(port, "/metrics") else { return 0 };
    body.lines()
        .filter(|l| l.starts_with("grpc_server_started_total") && l.contains("etcdserverpb.KV"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn raw_txns(endpoint: &str) -> BenchResult<f64> {
    let client = Client::connect([endpoint], None).await.map_err(fail("connect"))?;
    let lease = client.lease_client().grant(60, None).await.map_err(fail("lease"))?.id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..in_flight() {
        let mut kv = client.kv_client();
        tasks.push(tokio::spawn(async move {
            for i in (worker..raw_txns_count()).step_by(in_flight()) {
                let key = format!("/raw/{i}");
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), "owner", Some(PutOptions::new().with_lease(lease)))])
                    .or_else([TxnOp::get(key, None)]);
                kv.txn(txn).await.map_err(fail("raw txn"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(fail("join"))??;
    }
    let rate = raw_txns_count() as f64 / started.elapsed().as_secs_f64();
    client.lease_client().revoke(lease).await.map_err(fail("revoke"))?;
    compact(&client).await?;
    Ok(rate)
}

/// Compacts etcd to now: the revoke above deletes every raw key in one
/// revision, which slows etcd 3.4 until the next compaction (etcd-notes §6);
/// the board phases must not pay for the raw phase.
async fn compact(client: &Client) -> BenchResult<()> {
    let mut client = client.clone();
    let revision = client.get("/", None).await.map_err(fail("get"))?.header().map(|h| h.revision()).unwrap_or(0);
    client.compact(revision, Some(CompactionOptions::new().with_physical())).await.map_err(fail("compact"))?;
    Ok(())
}

async fn board(endpoint: &str, prefix: &str) -> BenchResult<EtcdBoard> {
    let mut config = EtcdConfig::new(vec![endpoint.to_string()], BoardConfig::new("bench"));
    config.prefix = prefix.to_string();
    config.board.quarantine_after = u32::MAX;
    EtcdBoard::connect(config).await.map_err(fail("connect board"))
}

async fn cycles(endpoint: &str, port: u16) -> BenchResult<(f64, f64)> {
    let board = Arc::new(board(endpoint, "/bench-cycles/").await?);
    let calls_before = kv_calls(port);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..in_flight() {
        let board = board.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            for _ in (worker..cycles_count()).step_by(in_flight()) {
                board.post(NewJob::new("bench", Map::new())).await.map_err(fail("post"))?;
                // Another worker may take "our" job; each worker still ends one job per cycle.
                if let Some(claim) = board.claim_next(&FlowFilter::any()).await.map_err(fail("claim"))? {
                    claim.consume(Outcome::Success, None).await.map_err(fail("consume"))?;
                    done += 1;
                }
            }
            Ok::<_, String>(done)
        }));
    }
    let mut finished = 0usize;
    for task in tasks {
        finished += task.await.map_err(fail("join"))??;
    }
    let rate = finished as f64 / started.elapsed().as_secs_f64();
    let per_cycle = (kv_calls(port) - calls_before) as f64 / finished.max(1) as f64;
    board.close().await.map_err(fail("close"))?;
    Ok((rate, per_cycle))
}

async fn claim_latency(endpoint: &str, queued: usize) -> BenchResult<(Duration, Duration)> {
    let admin = Client::connect([endpoint], None).await.map_err(fail("connect"))?;
    compact(&admin).await?;
    let board = Arc::new(board(endpoint, &format!("/bench-latency-{queued}/")).await?);
    let mut tasks = Vec::new();
    for worker in 0..in_flight() {
        let board = board.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (worker..queued).step_by(in_flight()) {
                board.post(NewJob::new("bench", Map::new())).await.map_err(fail("post"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(fail("join"))??;
    }
    let mut samples = Vec::with_capacity(latency_samples());
    for _ in 0..latency_samples() {
        let started = Instant::now();
        let claim = board.claim_next(&FlowFilter::any()).await.map_err(fail("claim"))?.ok_or("queue ran dry")?;
        samples.push(started.elapsed());
        // Keep the queue at its size: finish this one, post a replacement.
        claim.consume(Outcome::Success, None).await.map_err(fail("consume"))?;
        board.post(NewJob::new("bench", Map::new())).await.map_err(fail("post"))?;
    }
    samples.sort();
    board.close().await.map_err(fail("close"))?;
    Ok((percentile(&samples, 0.5), percentile(&samples, 0.99)))
}

fn main() -> BenchResult<()> {
    let etcd = start_etcd()?;
    let endpoint = format!("http://127.0.0.1:{}", etcd.port);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(fail("runtime"))?;
    runtime.block_on(async {
        let raw = raw_txns(&endpoint).await?;
        let (cycle_rate, per_cycle) = cycles(&endpoint, etcd.port).await?;
        let (p50_10, p99_10) = claim_latency(&endpoint, 10).await?;
        let (p50_10k, p99_10k) = claim_latency(&endpoint, 10_000).await?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("| measure | value |");
        println!("|---|---|");
        println!("| raw etcd txn/s (create-if-absent + lease, {} in flight) | {raw:.0} |", in_flight());
        println!("| board post+claim+consume cycles/s ({} in flight) | {cycle_rate:.0} |", in_flight());
        println!("| ratio cycles/s : raw txn/s | {:.3} |", cycle_rate / raw);
        println!("| etcd KV requests per job cycle (Range + Txn, from etcd metrics) | {per_cycle:.2} |");
        println!(
            "| target: cycles/s >= 50% of raw / requests per cycle | {:.0} (met: {}) |",
            0.5 * raw / per_cycle,
            cycle_rate >= 0.5 * raw / per_cycle
        );
        println!("| claim latency p50 / p99, 10 queued | {:.2} ms / {:.2} ms |", ms(p50_10), ms(p99_10));
        println!("| claim latency p50 / p99, 10,000 queued | {:.2} ms / {:.2} ms |", ms(p50_10k), ms(p99_10k));
        println!("| p99 ratio 10,000 : 10 (target <= 1.5) | {:.2} |", ms(p99_10k) / ms(p99_10));
        Ok::<_, String>(())
    })
}
