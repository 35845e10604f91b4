//! `baton`: the command-line client (see `baton --help`).

use std::process::ExitCode;

use clap::Parser;
use conductor::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Quiet by default: only the demo's in-process conductor logs, only warnings, and
    // not the engine's task failures, which the progress display already shows.
    // `--verbose` adds the CLI's own debug lines (each endpoint tried, and why it failed).
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if cli.verbose => EnvFilter::new("warn,flows=error,conductor::cli=debug"),
        Err(_) => EnvFilter::new("warn,flows=error"),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let verbose = cli.verbose || tracing::enabled!(target: "conductor::cli", tracing::Level::DEBUG);
    match cli::run(cli).await {
        Ok(code) => code,
        // A closed stdout (`baton list | head`) is not a failure (ripgrep does the same).
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", cli::report::render(&error, verbose));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}
