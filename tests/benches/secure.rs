//! What production settings cost (issue 12; not a test). Prints:
//! - post-to-complete p50 of a 1-step no-op `chain`, one job at a time, plaintext vs
//!   TLS + bearer token (target: within 10%);
//! - the auth check alone, per call, in-process (an auth file of 10 identities);
//! - jobs/s with `--http-listen` (metrics recorded and scraped every 100 ms) vs without,
//!   alternated, best of two each (target: within 5%).
//!
//! One `demo_conductor` per run on the embedded board. Run:
//! `cargo build --release --bins && cargo bench -p tests --bench secure`
//! (`BENCH_JOBS`, default 300, shrinks or grows the throughput runs).

use std::time::{Duration, Instant};

use conductor::auth::file::token_line_credential;
use conductor::auth::{Authenticator, Role};
use futures::StreamExt;
use proto::{pb, Client, ClientOptions};
use tests::conductor::{free_local_addr, ConductorConfig, ConductorProcess, HarnessResult};
use tests::pki::Pki;

const LATENCY_JOBS: usize = 100;
const IN_FLIGHT: usize = 32;

fn main() -> HarnessResult<()> {
    let jobs: usize = std::env::var("BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let pki = Pki::new("bench");
    let server = pki.server("server");
    let auth = pki.path("auth");
    let lines: Vec<String> =
        (0..10).map(|i| format!("id{i} read,post {}", token_line_credential(&format!("token-{i}")))).collect();
    std::fs::write(&auth, lines.join("\n"))?;

    let plain_dir = tempfile::tempdir()?;
    let plain = ConductorProcess::start(&ConductorConfig::embedded(plain_dir.path(), "bench-plain"))?;
    let plain_client = rt.block_on(Client::connect(plain.endpoint()))?;
    let p50_plain = rt.block_on(p50(&plain_client))?;
    drop(plain);

    let tls_dir = tempfile::tempdir()?;
    let mut config = ConductorConfig::embedded(tls_dir.path(), "bench-tls");
    config.extra_args = vec![
        "--tls-cert".into(),
        server.cert.display().to_string(),
        "--tls-key".into(),
        server.key.display().to_string(),
        "--auth-file".into(),
        auth.display().to_string(),
    ];
    let secured = ConductorProcess::spawn(&config)?;
    let options = ClientOptions::from_files(Some("token-9".into()), None, Some(pki.ca()), None, None)?;
    let endpoint = secured.endpoint().replace("http://", "https://");
    let tls_client = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let client = Client::connect_with_options(endpoint.clone(), &options).await?;
            if client.list_jobs(pb::ListJobsRequest::default()).await.is_ok() || Instant::now() > deadline {
                return Ok::<_, proto::ClientError>(client);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })?;
    let p50_tls = rt.block_on(p50(&tls_client))?;
    drop(secured);

    let authenticator = Authenticator::open(&auth)?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer token-9"));
    let rounds = 200_000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(authenticator.authorize(&headers, None, Role::Post, "PostJob").is_ok());
    }
    let auth_ns = start.elapsed().as_nanos() as f64 / f64::from(rounds);

    // Alternated and the best of two each, so neither setting gets the cold start.
    let mut off: f64 = 0.0;
    let mut on: f64 = 0.0;
    for _ in 0..2 {
        off = off.max(throughput(&rt, None, jobs)?);
        on = on.max(throughput(&rt, Some(free_local_addr()?), jobs)?);
    }

    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| post-to-complete p50, plaintext | {:.2} ms | |", ms(p50_plain));
    println!(
        "| post-to-complete p50, TLS + token | {:.2} ms ({:+.1}%) | within 10% |",
        ms(p50_tls),
        (ms(p50_tls) / ms(p50_plain) - 1.0) * 100.0
    );
    println!("| auth check per call (10 identities) | {auth_ns:.0} ns | |");
    println!("| jobs/s, metrics off | {off:.0} | |");
    println!("| jobs/s, metrics on (--http-listen) | {on:.0} ({:+.1}%) | within 5% |", (on / off - 1.0) * 100.0);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn chain() -> pb::PostJobRequest {
    pb::PostJobRequest {
        flow: "chain".into(),
        store_json: r#"{"steps": 1, "step_ms": 0}"#.into(),
        ..Default::default()
    }
}

/// Posts one job and follows it to its outcome.
async fn run_one(client: &Client) -> HarnessResult<()> {
    let job = client.post_job(chain()).await?;
    let mut stream = client.watch_job(job.id).await?;
    while let Some(snapshot) = stream.next().await {
        if snapshot?.outcome != pb::Outcome::Unspecified as i32 {
            return Ok(());
        }
    }
    Err("the watch ended before the job".into())
}

async fn p50(client: &Client) -> HarnessResult<Duration> {
    for _ in 0..10 {
        run_one(client).await?;
    }
    let mut times = Vec::with_capacity(LATENCY_JOBS);
    for _ in 0..LATENCY_JOBS {
        let start = Instant::now();
        run_one(client).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Jobs/s of `jobs` jobs, `IN_FLIGHT` at a time, on a fresh conductor (with `--http-listen`
/// when `http` is given, scraped every 100 ms meanwhile).
fn throughput(rt: &tokio::runtime::Runtime, http: Option<std::net::SocketAddr>, jobs: usize) -> HarnessResult<f64> {
    let dir = tempfile::tempdir()?;
    let mut config = ConductorConfig::embedded(dir.path(), "bench-rate");
    if let Some(addr) = http {
        config.extra_args = vec!["--http-listen".into(), addr.to_string()];
    }
    let conductor = ConductorProcess::start(&config)?;
    let client = rt.block_on(Client::connect(conductor.endpoint()))?;
    let scraping = http.map(|addr| {
        rt.spawn(async move {
            loop {
                if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").await;
                    let mut sink = Vec::new();
                    let _ = stream.read_to_end(&mut sink).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let results: Vec<HarnessResult<()>> = futures::stream::iter(0..jobs)
            .map(|_| {
                let client = client.clone();
                async move { run_one(&client).await }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect::<HarnessResult<Vec<()>>>().map(|_| start.elapsed())
    })?;
    if let Some(task) = scraping {
        task.abort();
    }
    Ok(jobs as f64 / elapsed.as_secs_f64())
}
