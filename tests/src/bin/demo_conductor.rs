//! `demo_conductor`: a conductor built on the library with the Rust demo flows
//! (`chain`, `provision-cluster`), which the integration tests and benchmarks run.
//! The stock `conductor` carries no flows; same flags, environment and exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    conductor::process::main("demo_conductor", conductor::demo_flows::registry())
}
