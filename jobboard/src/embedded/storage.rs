//! `EmbeddedStorage` (the fenced `flows::Storage` of one claim) and the
//! owner-side claim operations of the embedded board.
//!
//! Every write here runs `jobs::fence` and the write itself in one SQLite
//! transaction: if the claim is no longer current the transaction rolls back
//! and the caller gets `ClaimLost`, with nothing changed. A `save_changes`
//! batch of any size is one transaction, so it is all written or none of it.

use std::sync::Arc;

use async_trait::async_trait;
use flows::logbook::now_millis;
use flows::{AtomDetail, Failure, FlowChanges, FlowDetail, LogBook, Storage, StorageError};
use uuid::Uuid;

use super::{jobs, logbook, parks, Shared};
use crate::claim::{ClaimOps, FenceToken, FinalBatch};
use crate::error::Error;
use crate::job::{Job, JobId, Outcome};
use crate::lifecycle::Change;
use crate::parking::Parking;

/// The logbook storage of one claimed job; every write is fenced by the claim.
/// Get one with `Claim::storage`.
#[derive(Debug, Clone)]
pub struct EmbeddedStorage {
    shared: Arc<Shared>,
    job: JobId,
    owner: String,
    token: FenceToken,
}

impl EmbeddedStorage {
    /// Runs one fenced logbook write, then wakes the job's watchers.
    async fn fenced_write<F>(&self, write: F) -> Result<(), StorageError>
    where
        F: FnOnce(&rusqlite::Connection, JobId, u64) -> Result<(), StorageError> + Send + 'static,
    {
        let (job, owner, token) = (self.job, self.owner.clone(), self.token);
        self.shared
            .db
            .write(move |tx| {
                jobs::fence(tx, job, &owner, token)?;
                write(tx, job, now_millis())
            })
            .await?;
        self.shared.notify.job_changed(self.job);
        Ok(())
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        check_size(&self.shared, "logbook meta", &book.meta)?;
        let book = book.clone();
        self.fenced_write(move |tx, job, now| logbook::save_book(tx, job, &book, now)).await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        let job = self.job;
        Ok(self.shared.db.read(move |tx| logbook::load_book(tx, job, book)).await?)
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        let job = self.job;
        // Most flows are a handful of atoms (or none yet): read at once; a big one off the runtime.
        if let Some(small) = self.shared.db.read_now(|tx| logbook::load_small_flow(tx, job, book, flow))? {
            return Ok(small);
        }
        Ok(self.shared.db.read(move |tx| logbook::load_flow(tx, job, book, flow)).await?)
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        let batch = OwnedBatch::checked(&self.shared, flow, &changes)?;
        self.fenced_write(move |tx, job, now| batch.write(tx, job, book, flow, now)).await
    }
}

/// A `FlowChanges` checked against the size limit (so a bad batch writes
/// nothing) and copied for the writer thread: the flow's own fields (not its
/// atoms map) and the atoms.
pub(super) struct OwnedBatch {
    detail: Option<FlowDetail>,
    atoms: Vec<AtomDetail>,
}

impl OwnedBatch {
    pub(super) fn checked(shared: &Shared, flow: Uuid, changes: &FlowChanges<'_>) -> Result<Self, Error> {
        if let Some(detail) = changes.flow {
            check_size(shared, "flow meta", &detail.meta)?;
        }
        for atom in changes.atoms {
            check_size(shared, &format!("result of atom {}", atom.name), &atom.result)?;
            check_size(shared, &format!("atom {}", atom.name), atom)?;
        }
        let detail = changes.flow.map(|d| FlowDetail {
            id: flow,
            name: d.name.clone(),
            state: d.state,
            meta: d.meta.clone(),
            version: d.version,
            atoms: Default::default(),
        });
        Ok(OwnedBatch { detail, atoms: changes.atoms.iter().copied().cloned().collect() })
    }

    /// Writes the batch inside the caller's (fenced) transaction.
    pub(super) fn write(
        &self,
        tx: &rusqlite::Connection,
        job: JobId,
        book: Uuid,
        flow: Uuid,
        now: u64,
    ) -> Result<(), StorageError> {
        if let Some(detail) = &self.detail {
            logbook::save_flow(tx, job, book, detail, now)?;
        }
        if self.atoms.is_empty() {
            return Ok(());
        }
        logbook::save_atoms(tx, job, book, flow, &self.atoms)?;
        Ok(parks::record_atoms(tx, job, &self.atoms)?)
    }
}

/// Refuses a value over the board's size limit.
fn check_size(shared: &Shared, what: &str, value: &impl serde::Serialize) -> Result<(), Error> {
    let size = serde_json::to_vec(value).map_err(|e| Error::InvalidInput(format!("cannot store {what}: {e}")))?.len();
    let limit = shared.max_value_bytes;
    if size > limit {
        return Err(Error::TooLarge { what: what.to_owned(), size, limit });
    }
    Ok(())
}

/// A logbook error met inside a consume's transaction, as a board error.
pub(super) fn logbook_error(error: StorageError) -> Error {
    match error {
        StorageError::Rejected { what, message } => Error::InvalidInput(format!("cannot store {what}: {message}")),
        other => Error::Backend { message: other.to_string(), source: Some(Box::new(other)) },
    }
}

/// The claim operations of one session (owner) of the embedded board.
#[derive(Debug)]
pub(crate) struct EmbeddedClaimOps {
    pub(crate) shared: Arc<Shared>,
    pub(crate) owner: String,
}

impl EmbeddedClaimOps {
    /// Refuses a flow failure over the board's size limit.
    fn check_failure(&self, failure: Option<&Failure>) -> Result<(), Error> {
        if let Some(failure) = failure {
            let size = super::rows::to_json(failure)?.len();
            let limit = self.shared.max_value_bytes;
            if size > limit {
                return Err(Error::TooLarge { what: "failure".into(), size, limit });
            }
        }
        Ok(())
    }

    async fn finish(&self, job: JobId, token: FenceToken, change: Change) -> Result<Job, Error> {
        let owner = self.owner.clone();
        let done = self.shared.db.write(move |tx| jobs::finish(tx, job, &owner, token, &change, now_millis())).await?;
        self.shared.notify.claim_ended(job, token);
        self.shared.notify.job_changed(job);
        Ok(done)
    }
}

#[async_trait]
impl ClaimOps for EmbeddedClaimOps {
    fn storage(&self, job: JobId, token: FenceToken) -> Arc<dyn Storage> {
        Arc::new(EmbeddedStorage { shared: self.shared.clone(), job, owner: self.owner.clone(), token })
    }

    async fn halt(&self, job: JobId, token: FenceToken) -> Result<Job, Error> {
        let done = self.finish(job, token, Change::Halt).await?;
        if done.state == crate::JobState::Unclaimed {
            self.shared.notify.claimable();
        }
        Ok(done)
    }

    async fn parked_tasks(&self, job: JobId) -> Result<Vec<crate::parking::ParkEntry>, Error> {
        self.shared.db.read_now(|tx| parks::entries(tx, job))
    }

    fn deliveries(&self, job: JobId) -> crate::board::Wakeups {
        self.shared.notify.subscribe_parks(job)
    }

    async fn park(&self, job: JobId, token: FenceToken, waiting: &[(String, u32)]) -> Result<Parking, Error> {
        let (owner, waiting) = (self.owner.clone(), waiting.to_vec());
        let parking =
            self.shared.db.write(move |tx| parks::park_job(tx, job, &owner, token, &waiting, now_millis())).await?;
        if parking == Parking::Parked {
            self.shared.notify.claim_ended(job, token);
            self.shared.notify.job_changed(job);
        }
        Ok(parking)
    }

    async fn consume(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
    ) -> Result<Job, Error> {
        self.check_failure(failure.as_ref())?;
        self.finish(job, token, Change::Consume(outcome, failure)).await
    }

    async fn consume_with(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
        batch: FinalBatch<'_>,
    ) -> Result<Job, Error> {
        self.check_failure(failure.as_ref())?;
        let FinalBatch { book, flow, changes } = batch;
        let owned = OwnedBatch::checked(&self.shared, flow, &changes)?;
        let owner = self.owner.clone();
        let change = Change::Consume(outcome, failure);
        // One transaction: the fence, the logbook batch, the consume; a lost claim rolls back all three.
        let done = self
            .shared
            .db
            .write(move |tx| {
                let now = now_millis();
                jobs::fence(tx, job, &owner, token)?;
                owned.write(tx, job, book, flow, now).map_err(logbook_error)?;
                jobs::finish(tx, job, &owner, token, &change, now)
            })
            .await?;
        self.shared.notify.claim_ended(job, token);
        self.shared.notify.job_changed(job);
        Ok(done)
    }

    async fn abandon(&self, job: JobId, token: FenceToken) -> Result<(), Error> {
        self.finish(job, token, Change::Abandon).await?;
        self.shared.notify.claimable();
        Ok(())
    }

    async fn trash(&self, job: JobId, token: FenceToken, reason: String) -> Result<(), Error> {
        let limit = self.shared.max_value_bytes;
        if reason.len() > limit {
            return Err(Error::TooLarge { what: "trash reason".into(), size: reason.len(), limit });
        }
        self.finish(job, token, Change::Trash(reason)).await.map(drop)
    }
}
