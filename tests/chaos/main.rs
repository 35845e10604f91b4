//! The chaos suite (issue 13): three conductors on one etcd, each through its own TCP
//! proxy, jobs posted through the `baton` CLI in waves, and a seeded random schedule of
//! faults (kill -9 of a conductor, SIGSTOP of a job's owner for twice the lease TTL, kill -9
//! and restart of etcd, a cut of one conductor's link to etcd that closes connections, and
//! one that silently drops bytes). Then everything is healed, the fleet drains, and a
//! history checker judges what happened (`checks.rs`).
//!
//! Opt-in: `test = false` keeps it out of `cargo test`. Run it with
//! `cargo build --workspace --bins && cargo test -p tests --test chaos -- [--duration 100s]
//! [--seed N] [--ttl 3s] [--evidence DIR]`. The default is a short run of about two
//! minutes; the long run is `--duration 20m`. It prints one summary line with the seed and
//! exits 1 on any failed check, keeping the evidence (timeline, conductor logs, steps file,
//! job records, findings) in the directory it names.
//!
//! Layout: `options` (arguments), `rng` (the seeded schedule), `fleet` (conductors under a
//! supervisor), `cli` (`baton` with a deadline), `poster` (waves of jobs), `observer`
//! (snapshots of jobs as they become final), `faults` (injecting and healing),
//! `owners` (board owners against what each conductor says it runs), `checks` (the history
//! checker), `selfcheck` (the checker failing on broken histories), `report` (findings, timeline, summary, evidence), `run` (the whole run).

mod checks;
mod cli;
mod faults;
mod fleet;
mod observer;
mod options;
mod owners;
mod poster;
mod report;
mod rng;
mod run;
mod selfcheck;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match options::Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("chaos: {error}\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    if run::run(&options) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
