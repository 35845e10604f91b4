//! The flow-definitions watch: wakes `flow_changes` subscribers when a flow is applied or deleted.
//!
//! One watch per board over `P defs/current/` (every apply that creates a version
//! rewrites its flow's current key in the same txn, and a delete removes it). A
//! subscriber re-reads the definitions when woken, so the watch needs no revision
//! bookkeeping: each time it is (re)opened it wakes everyone once, which covers any
//! change made while it was down, since their re-read comes after the watch is open.

use std::sync::Weak;
use std::time::Duration;

use etcd_client::WatchOptions;
use tokio::time::sleep;

use super::{Inner, MAX_DECODE_BYTES};

/// Delay before re-opening a broken watch; etcd may be restarting.
const REOPEN_DELAY: Duration = Duration::from_millis(300);

/// Runs until the board is dropped or closed.
pub(super) async fn defs_watch(board: Weak<Inner>) {
    loop {
        let Some(inner) = board.upgrade() else { return };
        if inner.stop.is_cancelled() {
            return;
        }
        let opened = inner
            .client
            .watch_client()
            .max_decoding_message_size(MAX_DECODE_BYTES)
            .watch(inner.keys.flow_current_prefix(), Some(WatchOptions::new().with_prefix()))
            .await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open the flow definitions watch; retrying");
                drop(inner);
                sleep(REOPEN_DELAY).await;
                continue;
            }
        };
        inner.wake_flow_watchers();
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
                Ok(Some(resp)) if !resp.events().is_empty() => inner.wake_flow_watchers(),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "flow definitions watch broke; reopening");
                    break;
                }
            }
        }
        sleep(REOPEN_DELAY).await;
    }
}
