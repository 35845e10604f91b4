//! Riding out a board that is briefly unreachable, under a claim.
//!
//! A claim's writes (logbook batches, consume, abandon, trash) and reads that
//! fail for a reason that may pass (`Unavailable`: etcd restarting, a leader
//! election, a cut link) are retried with backoff until they land or the claim
//! is lost. Giving up instead would strand the job: the engine stops, the
//! abandon fails for the same reason, and the job stays CLAIMED by a session
//! that is still alive and renewing, but runs it no more.
//!
//! Retrying is safe: every attempt is fenced like the first, and repeating one
//! that landed but whose reply was lost changes nothing (a logbook write puts
//! the same values; an owner transition that landed released the claim, so
//! the retry gets `ClaimLost`). The wait is bounded by the session: when
//! renewals stop getting through, it fences itself (see `etcd::session`),
//! which fires the claim's `lost` and ends the retries with `ClaimLost`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::{FlowChanges, FlowDetail, LogBook, Storage, StorageError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// First pause after a transient failure.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest pause between attempts: a returning etcd is used within a second.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Runs `attempt` until it succeeds, fails for good, or `lost` fires (then
/// `on_lost()`). `transient` says which errors may pass by themselves.
pub(crate) async fn retry<T, E, Fut>(
    lost: &CancellationToken,
    doing: &str,
    transient: impl Fn(&E) -> bool,
    on_lost: impl FnOnce() -> E,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = BACKOFF_START;
    let mut failures = 0u32;
    loop {
        match attempt().await {
            Err(error) if transient(&error) => {
                if failures == 0 {
                    tracing::warn!(%error, "{doing}: board unavailable; retrying until it lands or the claim is lost");
                }
                failures += 1;
                tokio::select! {
                    _ = lost.cancelled() => {
                        tracing::warn!(failures, "{doing}: claim lost while the board was unavailable");
                        return Err(on_lost());
                    }
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_CAP);
            }
            other => {
                if failures > 0 {
                    tracing::info!(failures, ok = other.is_ok(), "{doing}: board answered again");
                }
                return other;
            }
        }
    }
}

/// A claim's logbook storage whose operations ride out transient failures.
#[derive(Debug)]
pub(crate) struct PatientStorage {
    inner: Arc<dyn Storage>,
    lost: CancellationToken,
    /// For `ClaimLost` messages: `job <id>, token <n>`.
    claim: String,
}

impl PatientStorage {
    pub(crate) fn new(inner: Arc<dyn Storage>, lost: CancellationToken, claim: String) -> Self {
        PatientStorage { inner, lost, claim }
    }

    async fn run<T, Fut>(&self, doing: &str, attempt: impl FnMut() -> Fut) -> Result<T, StorageError>
    where
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let claim = &self.claim;
        retry(&self.lost, doing, StorageError::is_retryable, || StorageError::ClaimLost(claim.clone()), attempt).await
    }
}

#[async_trait]
impl Storage for PatientStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.run("writing the logbook header", || self.inner.save_book(book)).await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.run("reading the logbook", || self.inner.load_book(book)).await
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.run("reading the flow detail", || self.inner.load_flow(book, flow)).await
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        self.run("writing logbook changes", || self.inner.save_changes(book, flow, changes)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::Error;

    fn unavailable() -> Error {
        Error::Unavailable { message: "etcd restarting".into(), source: None }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_attempt_lands() {
        let calls = AtomicU32::new(0);
        let lost = CancellationToken::new();
        let result = retry(
            &lost,
            "test",
            Error::is_retryable,
            || Error::Closed,
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=4 => Err(unavailable()),
                    _ => Ok(7),
                }
            },
        )
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_failure_ends_when_the_claim_is_lost() {
        let calls = AtomicU32::new(0);
        let lost = CancellationToken::new();
        let fire = lost.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            fire.cancel();
        });
        let result: Result<(), Error> = retry(
            &lost,
            "test",
            Error::is_retryable,
            || Error::ClaimLost { job: Uuid::nil(), token: 1 },
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(unavailable())
            },
        )
        .await;
        assert!(matches!(result, Err(Error::ClaimLost { .. })), "{result:?}");
        // Backoff capped at 1 s: about 30 attempts in 30 s, not thousands.
        let calls = calls.load(Ordering::SeqCst);
        assert!((20..=40).contains(&calls), "{calls} attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_error_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let lost = CancellationToken::new();
        let result: Result<(), Error> = retry(
            &lost,
            "test",
            Error::is_retryable,
            || Error::Closed,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::ClaimLost { job: Uuid::nil(), token: 1 })
            },
        )
        .await;
        assert!(matches!(result, Err(Error::ClaimLost { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
