//! `chaos_conductor`: the stock conductor daemon running only the `chaos` flow, whose
//! steps record themselves in `$CHAOS_STEPS_DIR/steps.log` (see `tests::chaos::flow`).
//! Same flags, environment and exit codes as `conductor` (2: bad configuration or no
//! `CHAOS_STEPS_DIR`; 1: the daemon failed).

use std::path::PathBuf;
use std::process::ExitCode;

use tests::chaos::flow::{registry, STEPS_DIR_ENV};

fn main() -> ExitCode {
    let Some(steps_dir) = std::env::var_os(STEPS_DIR_ENV).map(PathBuf::from) else {
        eprintln!("chaos_conductor: set {STEPS_DIR_ENV} to the directory for the steps file");
        return ExitCode::from(2);
    };
    conductor::process::main("chaos_conductor", registry(&steps_dir))
}
