//! `rust-conductor`: a conductor running flows written in Rust, built on the library.
//!
//! This is the library path for Rust users: write tasks and flow factories with
//! `flows`, put them in a `FlowRegistry`, and hand it to
//! `conductor::process::main` (the stock binary's whole process: flags,
//! `BATON_*` environment and YAML config, tracing, signals, exit codes), or to
//! the daemon's builder `conductor::daemon::Daemon::new(config).registry(..)`
//! to embed a conductor in a program of your own. The board, API, health and
//! `--flows-dir` files work as in the stock `conductor`. Run it like `conductor`:
//!
//! ```sh
//! cargo build --bins
//! target/debug/rust-conductor --data-dir /tmp/rc --listen 127.0.0.1:50061 &
//! target/debug/baton --endpoint http://127.0.0.1:50061 post word-count --store 'text=to be or not to be' --wait
//! ```

mod flows_here;

use std::process::ExitCode;

fn main() -> ExitCode {
    conductor::process::main("rust-conductor", flows_here::registry())
}
