//! `baton`: Baton's command-line client (see `baton --help`).
//!
//! It talks to conductors over gRPC only (the `proto` crate) and checks flow files
//! offline with the `flowfile` crate; it never opens a board itself. `baton demo`
//! runs the `conductor` binary as a child process.
//!
//! - [`args`]: the command line; [`commands`]: one function per subcommand.
//! - [`fleet`]: the endpoints of `--endpoint`, timeouts and failover.
//! - [`store`]: `--store KEY=VALUE` (read as the flow's declared types, see [`inputs`])
//!   and `--store-file`.
//! - [`output`]: JSON shapes and tables; [`status`]: those of `baton status`;
//!   [`time`]: instants as people read them (durations: `flowfile::duration`).
//! - [`follow`]: `--wait` / `watch` progress.
//! - [`report`]: errors as one line for people.
//! - [`validate`]: `baton flows validate`; [`definitions`]: `baton flows apply|get|history|delete|graph`;
//!   [`demo`]: `baton demo`; [`schedules`]: `baton schedules`.

mod args;
mod commands;
mod complete;
mod definitions;
mod demo;
mod fleet;
mod follow;
mod inputs;
mod operate;
mod output;
mod report;
mod schedules;
mod status;
mod store;
mod time;
mod validate;
mod workers;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use args::{Cli, Command};
use fleet::Fleet;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Quiet by default: only warnings. `--verbose` adds the CLI's own debug lines
    // (each endpoint tried, and why it failed).
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if cli.verbose => EnvFilter::new("warn,baton=debug"),
        Err(_) => EnvFilter::new("warn"),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let verbose = cli.verbose || tracing::enabled!(target: "baton", tracing::Level::DEBUG);
    match run(cli).await {
        Ok(code) => code,
        // A closed stdout (`baton list | head`) is not a failure (ripgrep does the same).
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", report::render(&error, verbose));
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command line.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (out, timeouts) = (cli.output, cli.timeouts());
    let options = cli.client_options()?;
    match cli.command {
        Command::Demo(args) => demo::run(args, out, timeouts).await,
        Command::Flows(args::FlowsArgs { command: Some(args::FlowsCommand::Validate { files }) }) => {
            validate::run(&files, out)
        }
        command => commands::dispatch(&Fleet::new(&cli.endpoint, timeouts)?.with_options(options), command, out).await,
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}
