//! # conductor: the Baton daemon
//!
//! The daemon's side of gRPC status codes, command-line flags, environment variables
//! and YAML (the `baton` CLI is the `baton-cli` crate).
//!
//! ## Layout
//! - [`config`]: daemon settings; flags > `BATON_*` env > YAML file > defaults.
//! - [`catalog`]: every flow a conductor knows (Rust flows and the board's flow files), pinned versions by hash.
//! - [`features`]: what a job needs (computed at post) and what this conductor has (every claim passes it).
//! - [`daemon`]: `run(config, listener, shutdown)`: board sessions, registration, claim loop, job runner.
//! - [`api`]: the `baton.v1` gRPC service over a `JobBoard`; `api::status` maps errors to codes.
//! - [`drain`]: `DrainHandle`, a conductor's local drain switch.
//! - [`admission`]: posts refused with RESOURCE_EXHAUSTED before the board is full (queue length, etcd quota).
//! - [`local`]: `LocalStatus`, what this conductor knows of itself (sessions, running jobs).
//! - [`workers`]: remote workers: `WorkerHub` (the `Attach` streams, credits, heartbeats, dispatch) and its service.
//! - [`auth`]: who may call what: the auth file, roles, the tower layer and audit lines.
//! - [`tls`]: server TLS from PEM files, re-read when they change.
//! - [`metrics`]: counters and histograms in Prometheus text; [`http`]: the HTTP listener serving them.
//! - `otel` (cargo feature `otel`): OpenTelemetry trace export over OTLP/HTTP.
//! - [`notify`]: systemd's notify protocol: READY, STATUS, WATCHDOG, STOPPING.
//! - [`error`]: `Error`, why the daemon could not start or had to stop.
//! - [`process`]: a conductor process's `main`, for the stock binary and binaries built on the library.
//! - [`demo_flows`]: Rust demo flows (`provision-cluster`, `chain`) for tests and binaries built on
//!   the library; the stock binary carries none (its flows come from `--flows-dir`).

pub mod admission;
pub mod api;
pub mod auth;
pub mod callbacks;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod demo_flows;
pub mod drain;
pub mod error;
pub mod features;
pub mod http;
pub mod local;
pub mod metrics;
pub mod notify;
#[cfg(feature = "otel")]
pub mod otel;
pub mod process;
pub mod tls;
pub mod workers;

pub use error::Error;
