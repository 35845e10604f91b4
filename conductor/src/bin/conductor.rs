//! `conductor`: the stock daemon binary. It carries no flows of its own: it runs
//! the flow files of `--flows-dir` (see `conductor --help`). A binary built on
//! the library passes its Rust flows to `conductor::process::main` instead.

use std::process::ExitCode;

fn main() -> ExitCode {
    conductor::process::main("conductor", flows::FlowRegistry::new())
}
