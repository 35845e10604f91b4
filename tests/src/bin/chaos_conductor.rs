//! `chaos_conductor`: the stock conductor daemon running only the `chaos` flow, whose
//! steps record themselves in `$CHAOS_STEPS_DIR/steps.log` (see `tests::chaos::flow`).
//! Same flags, environment and exit codes as `conductor` (2: bad configuration or no
//! `CHAOS_STEPS_DIR`; 1: the daemon failed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use conductor::config::{Config, Flags};
use tests::chaos::flow::{registry, STEPS_DIR_ENV};

fn main() -> ExitCode {
    let config = match Config::load(Flags::parse(), &|key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chaos_conductor: {error:#}");
            return ExitCode::from(2);
        }
    };
    let Some(steps_dir) = std::env::var_os(STEPS_DIR_ENV).map(PathBuf::from) else {
        eprintln!("chaos_conductor: set {STEPS_DIR_ENV} to the directory for the steps file");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .init();
    match run(config, steps_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chaos_conductor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config, steps_dir: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let shutdown = tokio::signal::ctrl_c();
        let daemon = conductor::daemon::Daemon::new(config).registry(Arc::new(registry(&steps_dir)));
        daemon.run(listener, shutdown).await?;
        anyhow::Ok(())
    })
}
