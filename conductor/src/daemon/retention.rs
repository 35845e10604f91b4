//! Retention: finished jobs and their logbooks are purged once older than `--retention`.
//!
//! Every conductor purges, once at start and then every `--purge-interval`
//! (default hourly); purging is idempotent, so several conductors doing it
//! costs only the reads.

use std::sync::Arc;
use std::time::Duration;

use jobboard::JobBoard;
use tokio_util::sync::CancellationToken;

/// Purges until `stop`.
pub(crate) async fn purge_loop(board: Arc<dyn JobBoard>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match board.purge_expired().await {
            Ok(0) => tracing::debug!("no expired jobs to purge"),
            Ok(removed) => tracing::info!(removed, "purged expired jobs"),
            Err(error) => tracing::warn!(%error, "purging expired jobs failed; will retry"),
        }
    }
}
