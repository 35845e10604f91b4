//! Test harness: a real etcd process, real conductor processes, shared suites.
//!
//! - `etcd`: `EtcdProcess`, a throwaway etcd on loopback with free ports and a temp dir.
//! - `board_suite`: the conformance suite every `JobBoard` backend must pass.
//! - `conductor`: `ConductorProcess`, a real `conductor` binary under test control.
//! - `cpu`: a process's CPU time from `/proc`, for the benchmarks.
//! - `stats`: `percentile`, for the benchmarks' tables.
//! - `flow_files`: a board of either kind per test, flows dirs, board dumps, a recording HTTP server.
//! - `workers`: `WorkerProcess`, a real `test_worker` (the Rust worker SDK) under test control.
//! - `pki`: a throwaway CA and certificates (rcgen) for the TLS tests.
//! - `upgrade`: boards written by a previous release (fixtures), made and loaded.
//! - `chaos`: the self-recording flow of the chaos suite and its `chaos_conductor` binary.

pub mod board_suite;
pub mod chaos;
pub mod conductor;
pub mod cpu;
pub mod etcd;
pub mod flow_files;
pub mod pki;
pub mod stats;
pub mod upgrade;
pub mod workers;
