//! # worker: Baton's Rust worker SDK
//!
//! Task code that runs in its own process, driven by Baton's conductors over the
//! `baton.v1.Workers` protocol (`proto/baton/v1/worker.proto`). Register async
//! functions by task name, then run:
//!
//! ```no_run
//! # async fn demo() -> Result<(), worker::WorkerError> {
//! use serde_json::{json, Value};
//! let worker = worker::Worker::builder(["http://127.0.0.1:50051", "http://127.0.0.1:50052"])
//!     .slots(8)
//!     .task("billing.charge", |ctx: worker::Context, args: serde_json::Map<String, Value>| async move {
//!         ctx.heartbeat(None);
//!         Ok(json!({"charged": args.get("amount"), "key": ctx.idempotency_key()}))
//!     })
//!     .revert("billing.charge", |_ctx: worker::Context, _args, _undo: worker::Undo| async move { Ok(Value::Null) })
//!     .build()?;
//! worker.run(tokio::signal::ctrl_c()).await
//! # }
//! ```
//!
//! - The worker connects to the first endpoint that answers and, when that conductor
//!   goes, to the next (`run.rs`); on reconnect it says what it still runs.
//! - Task code sees a [`Context`]: the job, atom, attempt, idempotency key,
//!   `heartbeat` (progress for long tasks) and cancellation (`cancelled`, and the
//!   task's future is dropped if it has not ended 1 s after a cancel arrives).
//! - A task whose work finishes outside (an approval, another system's job) parks:
//!   its execute returns `Err(Park::after(timeout).into())`, and once the conductor has
//!   recorded the park the task's parked handler ([`Builder::parked`]) gets the
//!   [`Callback`] (token, webhook URL, deadline) to hand to whoever completes it
//!   (`baton complete TOKEN --result JSON`). A task that parks without a parked handler
//!   fails with kind `NoParkedHandler` instead.
//! - `run` ends when its shutdown future resolves: no new work is taken, running
//!   tasks get the grace period to finish, then are cancelled and handed back.
//!
//! - Secured conductors (TLS, an auth file): pass [`ClientOptions`] with
//!   [`Builder::options`] (a token whose identity has the `worker` role, a CA, a
//!   client certificate) and use `https://` endpoints. A conductor that refuses the
//!   credentials (UNAUTHENTICATED, PERMISSION_DENIED) ends `run` with
//!   [`WorkerError::Refused`] naming why.
//!
//! Layout: `builder.rs` (registration, settings), `context.rs` (what task code
//! sees), `park.rs` (parking), `run.rs` (the connection loop), `tasks.rs` (running one
//! assignment).

#![warn(missing_docs)]

mod builder;
mod context;
mod park;
mod run;
mod tasks;

pub use builder::{Builder, Worker};
pub use context::{Context, TaskError, Undo};
pub use park::{Callback, Park};
pub use proto::{ClientOptions, OptionsError};

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker was set up wrongly (no endpoints, no tasks, zero slots...).
    #[error("worker configuration: {0}")]
    Config(String),
    /// A conductor refused the worker's hello (the message says why).
    #[error("refused by {endpoint}: {message}")]
    Refused {
        /// The conductor's endpoint.
        endpoint: String,
        /// The conductor's reason.
        message: String,
    },
}

#[cfg(test)]
mod tests;
