//! Wake-up watches: the flow-definitions watch wakes `flow_changes` subscribers when a
//! flow is applied or deleted; the schedules watch wakes `schedule_changes` subscribers.
//!
//! One watch per board over `P defs/current/` (every apply that creates a version
//! rewrites its flow's current key in the same txn, and a delete removes it), and one
//! over `P sched/`. A subscriber re-reads what it keeps when woken, so a watch needs no
//! revision bookkeeping: each time it is (re)opened it wakes everyone once, which covers
//! any change made while it was down, since their re-read comes after the watch is open.

use std::sync::Weak;
use std::time::Duration;

use etcd_client::WatchOptions;
use tokio::time::sleep;

use super::{Inner, MAX_DECODE_BYTES};

/// Delay before re-opening a broken watch; etcd may be restarting.
const REOPEN_DELAY: Duration = Duration::from_millis(300);

/// Runs until the board is dropped or closed.
pub(super) async fn defs_watch(board: Weak<Inner>) {
    wake_on_changes(board, |inner| inner.keys.flow_current_prefix(), Inner::wake_flow_watchers, "flow definitions")
        .await;
}

/// Runs until the board is dropped or closed.
pub(super) async fn schedules_watch(board: Weak<Inner>) {
    wake_on_changes(board, |inner| inner.keys.schedules_prefix(), Inner::wake_schedule_watchers, "schedules").await;
}

/// Calls `wake` whenever a key under `prefix` changes, and each time the watch is (re)opened.
async fn wake_on_changes(board: Weak<Inner>, prefix: fn(&Inner) -> String, wake: fn(&Inner), what: &str) {
    loop {
        let Some(inner) = board.upgrade() else { return };
        if inner.stop.is_cancelled() {
            return;
        }
        let opened = inner
            .client
            .watch_client()
            .max_decoding_message_size(MAX_DECODE_BYTES)
            .watch(prefix(&inner), Some(WatchOptions::new().with_prefix()))
            .await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open the {what} watch; retrying");
                drop(inner);
                sleep(REOPEN_DELAY).await;
                continue;
            }
        };
        wake(&inner);
        let stop = inner.stop.clone();
        drop(inner);
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                message = stream.message() => message,
            };
            let Some(inner) = board.upgrade() else { return };
            match message {
                Ok(Some(resp)) if resp.canceled() => break,
                Ok(Some(resp)) if !resp.events().is_empty() => wake(&inner),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "{what} watch broke; reopening");
                    break;
                }
            }
        }
        sleep(REOPEN_DELAY).await;
    }
}
