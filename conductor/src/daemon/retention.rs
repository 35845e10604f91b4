//! Retention: finished jobs and their logbooks are purged once older than
//! `--retention`; parked tasks past their deadline are timed out, and jobs past
//! theirs cancelled.
//!
//! Every conductor purges, once at start and then every `--purge-interval`
//! (default hourly); purging is idempotent, so several conductors doing it
//! costs only the reads. Every conductor also scans the deadline index every
//! second: it reads only what is due, and each timeout is the same conditional
//! write as a completion, so conductors racing each other (or a completion)
//! time a task out once. Job deadlines are read the same way from their own
//! index (`JobBoard::cancel_overdue`); a cancel already requested is left alone.

use std::sync::Arc;
use std::time::Duration;

use jobboard::JobBoard;
use tokio_util::sync::CancellationToken;

/// Runs `round` at once and then every `every` (never two at a time) until `stop`.
async fn every<F: std::future::Future<Output = ()>>(
    every: Duration,
    stop: CancellationToken,
    mut round: impl FnMut() -> F,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => round().await,
        }
    }
}

/// Purges until `stop`.
pub(crate) async fn purge_loop(board: Arc<dyn JobBoard>, interval: Duration, stop: CancellationToken) {
    every(interval, stop, || purge(board.as_ref())).await;
}

async fn purge(board: &dyn JobBoard) {
    match board.purge_expired().await {
        Ok(0) => tracing::debug!("no expired jobs to purge"),
        Ok(removed) => tracing::info!(removed, "purged expired jobs"),
        Err(error) => tracing::warn!(%error, "purging expired jobs failed; will retry"),
    }
}

/// Parked tasks timed out per scan request; a scan goes on while it fills them.
const DUE_BATCH: usize = 256;

/// Times out parked tasks past their deadline, every `interval`, until `stop`.
pub(crate) async fn deadline_loop(board: Arc<dyn JobBoard>, interval: Duration, stop: CancellationToken) {
    every(interval, stop, || time_out_due(board.as_ref())).await;
}

async fn time_out_due(board: &dyn JobBoard) {
    cancel_overdue(board).await;
    loop {
        match board.time_out_due(DUE_BATCH).await {
            Ok(n) if n == DUE_BATCH => continue,
            Ok(0) => {}
            Ok(n) => tracing::info!(timed_out = n, "parked tasks past their deadline timed out"),
            Err(error) => tracing::warn!(%error, "scanning parked deadlines failed; will retry"),
        }
        break;
    }
}

/// Cancels jobs past their deadline (parked, suspended and queued ones: a running
/// job's owner also has a timer of its own), reading only what is due.
async fn cancel_overdue(board: &dyn JobBoard) {
    loop {
        match board.cancel_overdue(DUE_BATCH).await {
            Ok(n) if n == DUE_BATCH => continue,
            Ok(0) => {}
            Ok(n) => tracing::info!(cancelled = n, "jobs past their deadline cancelled"),
            Err(error) => tracing::warn!(%error, "scanning job deadlines failed; will retry"),
        }
        break;
    }
}
