//! `rust-conductor`: a conductor running flows written in Rust, built on the library.
//!
//! This is the library path for Rust users: write tasks and flow factories with
//! `flows`, put them in a `FlowRegistry`, and hand it to the daemon's builder
//! (`conductor::daemon::Daemon::new(config).registry(..)`). Everything else is
//! the stock conductor's: the same flags, `BATON_*` environment and YAML
//! config, the same board, API and health service; `--flows-dir` files are
//! loaded beside these flows. Run it like `conductor`:
//!
//! ```sh
//! cargo build --bins
//! target/debug/rust-conductor --data-dir /tmp/rc --listen 127.0.0.1:50061 &
//! target/debug/baton --endpoint http://127.0.0.1:50061 post word-count --store 'text=to be or not to be' --wait
//! ```

mod flows_here;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use conductor::config::{Config, Flags};

fn main() -> ExitCode {
    let config = match Config::load(Flags::parse(), &|key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rust-conductor: {error}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rust-conductor: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let daemon = conductor::daemon::Daemon::new(config).registry(Arc::new(flows_here::registry()));
        daemon.run(listener, shutdown()).await?;
        anyhow::Ok(())
    })
}

/// SIGTERM or SIGINT: the daemon suspends running flows and hands them back.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
