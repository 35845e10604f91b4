//! A remote worker for the tests, on the `worker` SDK. Tasks:
//! `echo` (returns its arguments, the worker id, attempt and idempotency key),
//! `add` (`a + b`), `hold` (waits `ms`, reports the most tasks it saw running at once
//! in this process, heartbeats while it waits), `fail` (fails with `CardDeclined`),
//! `big` (returns a string of `bytes` bytes), `approve` (parks for `timeout_ms`, default
//! an hour; its parked handler writes the callback's token and URL to `DIR/token` and
//! `DIR/url`, `dir` from its arguments). Every task but `approve` can revert.
//! With `--log FILE`, appends `<worker> <event> <atom> <attempt>` lines (event: start,
//! end, cancelled, revert, handoff) so tests see what ran where.
//!
//! `test_worker --endpoints http://a,http://b --id w1 --slots 4 [--log FILE] [--grace 1s]`
//! and, for a secured conductor, `--token T` (or env `BATON_TOKEN`) or `--token-file F`,
//! `--ca CA.pem`, `--cert C.pem --key C.key`, with `https://` endpoints.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Map, Value};
use worker::{Callback, Context, Park, TaskError, Undo, Worker};

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    #[arg(long)]
    id: String,
    #[arg(long, default_value_t = 4)]
    slots: u32,
    #[arg(long)]
    log: Option<PathBuf>,
    #[arg(long, default_value = "1s", value_parser = humantime_secs)]
    grace: Duration,
    /// Bearer token (an identity with the `worker` role).
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File whose first line is the token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// CA certificate that signed the conductors' certificates.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (with --key).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long)]
    key: Option<PathBuf>,
}

fn humantime_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim_end_matches('s').parse().map_err(|e| format!("{text}: {e}"))?;
    Ok(Duration::from_secs_f64(secs))
}

/// Appends one line per event to the log file, if any.
#[derive(Clone)]
struct Log {
    path: Option<PathBuf>,
    worker: String,
}

impl Log {
    fn write(&self, event: &str, ctx: &Context) {
        let Some(path) = &self.path else { return };
        let line = format!("{} {event} {} {}\n", self.worker, ctx.atom(), ctx.attempt());
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

fn int(args: &Map<String, Value>, key: &str) -> i64 {
    args.get(key).and_then(Value::as_i64).unwrap_or(0)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let options = match worker::ClientOptions::from_files(
        args.token.clone(),
        args.token_file.as_deref(),
        args.ca.as_deref(),
        args.cert.as_deref(),
        args.key.as_deref(),
    ) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("test_worker: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let log = Log { path: args.log.clone(), worker: args.id.clone() };
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let id = args.id.clone();
    let hold_id = args.id.clone();
    let (l1, l2, l3, l4, l5) = (log.clone(), log.clone(), log.clone(), log.clone(), log.clone());
    let (l6, l7) = (log.clone(), log.clone());
    let revert = move |name: &'static str| {
        let log = log.clone();
        move |ctx: Context, _args: Map<String, Value>, undo: Undo| {
            let log = log.clone();
            async move {
                log.write("revert", &ctx);
                Ok(json!({"reverted": name, "undo_was_failure": matches!(undo, Undo::Failure(_))}))
            }
        }
    };
    let built = Worker::builder(args.endpoints.clone())
        .id(args.id.clone())
        .slots(args.slots)
        .grace(args.grace)
        .options(options)
        .label("kind", "test")
        .task("echo", move |ctx: Context, args: Map<String, Value>| {
            let (log, id) = (l1.clone(), id.clone());
            async move {
                log.write("start", &ctx);
                log.write("end", &ctx);
                Ok(json!({"args": args, "worker": id, "attempt": ctx.attempt(), "key": ctx.idempotency_key()}))
            }
        })
        .revert("echo", revert("echo"))
        .task("add", move |ctx: Context, args: Map<String, Value>| {
            let log = l2.clone();
            async move {
                log.write("start", &ctx);
                Ok(json!(int(&args, "a") + int(&args, "b")))
            }
        })
        .revert("add", revert("add"))
        .task("hold", move |ctx: Context, args: Map<String, Value>| {
            let (log, running, peak, id) = (l3.clone(), running.clone(), peak.clone(), hold_id.clone());
            async move {
                log.write("start", &ctx);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let wait = Duration::from_millis(u64::try_from(int(&args, "ms")).unwrap_or(0));
                let end = tokio::time::Instant::now() + wait;
                let outcome = loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(end) => break Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(200)) => ctx.heartbeat(None),
                        () = ctx.cancelled() => break Err(()),
                    }
                };
                running.fetch_sub(1, Ordering::SeqCst);
                match outcome {
                    Ok(()) => {
                        log.write("end", &ctx);
                        Ok(json!({"peak": peak.load(Ordering::SeqCst), "worker": id}))
                    }
                    Err(()) => {
                        log.write("cancelled", &ctx);
                        Err(TaskError::new("Cancelled", "hold was cancelled"))
                    }
                }
            }
        })
        .revert("hold", revert("hold"))
        .task("fail", move |ctx: Context, _args: Map<String, Value>| {
            let log = l4.clone();
            async move {
                log.write("start", &ctx);
                Err(TaskError::new("CardDeclined", "the card was declined")
                    .caused_by(TaskError::new("BankSaidNo", "insufficient funds")))
            }
        })
        .revert("fail", revert("fail"))
        .task("big", move |ctx: Context, args: Map<String, Value>| {
            let log = l5.clone();
            async move {
                log.write("start", &ctx);
                Ok(json!("x".repeat(usize::try_from(int(&args, "bytes")).unwrap_or(0))))
            }
        })
        .revert("big", revert("big"))
        .task("approve", move |ctx: Context, args: Map<String, Value>| {
            let log = l6.clone();
            async move {
                log.write("start", &ctx);
                let ms = u64::try_from(int(&args, "timeout_ms")).ok().filter(|ms| *ms > 0).unwrap_or(3_600_000);
                Err(Park::after(Duration::from_millis(ms)).into())
            }
        })
        .parked("approve", move |ctx: Context, args: Map<String, Value>, callback: Callback| {
            let log = l7.clone();
            async move {
                let dir = PathBuf::from(args.get("dir").and_then(Value::as_str).unwrap_or("."));
                let write = |name: &str, text: &str| {
                    std::fs::write(dir.join(name), text).map_err(|e| TaskError::new("WriteFailed", e.to_string()))
                };
                write("url", callback.url())?;
                write("token.tmp", callback.token())?;
                std::fs::rename(dir.join("token.tmp"), dir.join("token"))
                    .map_err(|e| TaskError::new("WriteFailed", e.to_string()))?;
                log.write("handoff", &ctx);
                Ok(())
            }
        })
        .build();
    let worker = match built {
        Ok(worker) => worker,
        Err(error) => {
            eprintln!("test_worker: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    match worker.run(shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("test_worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
