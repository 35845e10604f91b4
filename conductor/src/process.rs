//! A conductor process, from `main` to its exit code: for the stock `conductor`
//! binary and for binaries built on the library with flows of their own.
//!
//! Parses the configuration (flags > `BATON_*` env > YAML file > defaults),
//! installs the tracing subscriber (human or JSON, filtered by `RUST_LOG`; only
//! binaries call this, so only binaries install one), binds the gRPC listener
//! and runs the daemon until SIGTERM or SIGINT (a second signal exits at once).
//! An unreachable etcd is waited for, never a reason to exit; a bad flow file in
//! `--flows-dir` is bad configuration. Exit codes: 0 after a graceful stop, 1
//! when the daemon failed (a local resource, the gRPC server), 2 for bad
//! configuration, 130 when forced by a second signal.
//!
//! Errors are one line for people; the chain of causes is printed only with
//! `RUST_LOG=debug`.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use flows::FlowRegistry;

use crate::config::{Config, Flags, LogFormat};
use tracing_subscriber::EnvFilter;

/// The whole life of a conductor process running `registry` (and the files of
/// `--flows-dir`): for a binary's `main`. `program` names it in error lines.
pub fn main(program: &str, registry: FlowRegistry) -> ExitCode {
    match run(program, registry) {
        Ok(code) => code,
        Err(error) => {
            report(program, &error);
            match error.downcast_ref::<crate::Error>() {
                Some(error) if error.is_config() => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// One line on stderr; the causes below it only when debugging is on.
fn report(program: &str, error: &anyhow::Error) {
    eprintln!("{program}: {error}");
    if tracing::enabled!(tracing::Level::DEBUG) || std::env::var("RUST_LOG").is_ok_and(|v| v.contains("debug")) {
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
}

fn run(program: &str, registry: FlowRegistry) -> anyhow::Result<ExitCode> {
    let flags = Flags::parse();
    let config = match Config::load(flags, &|key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(error) => {
            report(program, &anyhow::Error::new(error));
            return Ok(ExitCode::from(2));
        }
    };
    // Dropped last, after the runtime: spans still queued are flushed on the way out.
    let _trace_export = init_tracing(config.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.worker_threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build().context("starting the runtime")?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        crate::daemon::Daemon::new(config).registry(Arc::new(registry)).run(listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // Everything that matters was awaited inside `run`; a straggling blocking
    // task (a board read) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

/// What keeps trace export going until the process exits (feature `otel`).
#[cfg(feature = "otel")]
type TraceGuard = Option<crate::otel::Guard>;
#[cfg(not(feature = "otel"))]
type TraceGuard = Option<std::convert::Infallible>;

/// Installs the subscriber: log lines on stderr and, with the `otel` feature and an
/// OTLP endpoint set, span export ([`crate::otel`]).
fn init_tracing(format: LogFormat) -> TraceGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    #[cfg(feature = "otel")]
    let (export, guard) = crate::otel::layer();
    #[cfg(not(feature = "otel"))]
    let (export, guard) = (None::<tracing_subscriber::layer::Identity>, None);
    let registry = tracing_subscriber::registry().with(filter).with(export);
    // Colours only for a person at a terminal, never into a log file or journal.
    let lines =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => registry.with(lines).init(),
        LogFormat::Json => registry.with(lines.json().with_current_span(true).with_span_list(false)).init(),
    }
    guard
}

/// Resolves on the first SIGTERM or SIGINT; a second one during the grace
/// period exits at once (exit 130), leaving held jobs to the lease. The
/// handlers are installed here, before the daemon starts, so a signal that
/// arrives while it starts up is not lost to the default action.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting now without waiting for running flows");
            std::process::exit(130);
        });
    })
}

/// Resolves on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupt received");
    })
}
