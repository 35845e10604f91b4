//! `ConsumingStorage`: a claim's logbook storage whose last write of a run
//! also consumes the job (`Claim::consuming_storage`).
//!
//! The engine writes the batch that records how a run ends through
//! `Storage::save_final`, and returns only once it is stored. Here that batch
//! and the consume go in one fenced atomic step (`ClaimOps::consume_with`: one
//! etcd Txn, one SQLite transaction), so a job's last step and its outcome
//! cost one write and the write-ahead rule holds: the engine never reports an
//! end the board does not hold, and a lost claim writes neither. Every other
//! call goes to the claim's ordinary (patient, fenced) storage.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::{FlowChanges, FlowDetail, FlowEnd, LogBook, Storage, StorageError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::claim::{ClaimOps, FenceToken, FinalBatch};
use crate::error::Error;
use crate::job::{Job, JobId, Outcome};
use crate::patient;

/// See the module doc; built by `Claim::consuming_storage`.
#[derive(Debug)]
pub(crate) struct ConsumingStorage {
    /// The claim's patient, fenced storage.
    pub(crate) inner: Arc<dyn Storage>,
    pub(crate) ops: Arc<dyn ClaimOps>,
    pub(crate) job: JobId,
    pub(crate) token: FenceToken,
    pub(crate) lost: CancellationToken,
    /// A cancel was requested: a REVERTED run ends the job CANCELLED.
    pub(crate) cancelled: CancellationToken,
    /// Shared with the claim: the job as this storage consumed it.
    pub(crate) consumed: Arc<Mutex<Option<Job>>>,
}

#[async_trait]
impl Storage for ConsumingStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.inner.save_book(book).await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.inner.load_book(book).await
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.inner.load_flow(book, flow).await
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        self.inner.save_changes(book, flow, changes).await
    }

    async fn save_final(
        &self,
        book: Uuid,
        flow: Uuid,
        changes: FlowChanges<'_>,
        end: FlowEnd<'_>,
    ) -> Result<(), StorageError> {
        let Some(outcome) = Outcome::of_flow(end.state, end.failure, self.cancelled.is_cancelled()) else {
            // SUSPENDED or PARKED: the job runner hands the job back after this write.
            return self.inner.save_changes(book, flow, changes).await;
        };
        let (job, token) = (self.job, self.token);
        let failure = end.failure.cloned();
        let batch = FinalBatch { book, flow, changes };
        let lost = || Error::ClaimLost { job, token };
        let attempt = || self.ops.consume_with(job, token, outcome, failure.clone(), batch);
        let doing = "writing the last logbook batch with the outcome";
        let consumed = patient::retry(&self.lost, doing, Error::is_retryable, lost, attempt).await?;
        *self.consumed.lock().unwrap_or_else(|e| e.into_inner()) = Some(consumed);
        Ok(())
    }
}
