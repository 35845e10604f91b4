//! `Claim`: ownership of a job, and the only way to write to it.
//!
//! Fencing is a type: a conductor gets a `Claim` from `JobBoard::claim*`, and
//! only through it can it write the job's logbook ([`Claim::storage`]) or end
//! the job ([`Claim::consume`], [`Claim::abandon`], [`Claim::trash`], which take
//! `self`). Every such write is conditional on the claim's fencing token still
//! being current, in the same atomic step as the write; once the claim is lost
//! each write fails with `Error::ClaimLost` and changes nothing.
//!
//! While the claim lives, its writes ride out a board that is briefly
//! unreachable (see `patient`): a transient failure is retried, never turned
//! into a dropped job that stays CLAIMED.
//!
//! [`Claim::consuming_storage`] folds the consume into the run's last logbook
//! write (`Storage::save_final`): one fenced atomic step writes the last batch
//! and ends the job, and [`Claim::consume`] then answers with that job.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::{Failure, FlowChanges, Storage};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::consuming::ConsumingStorage;
use crate::error::Error;
use crate::job::{Job, JobId, Outcome};
use crate::parking::Parking;
use crate::patient::{self, PatientStorage};

/// A claim's fencing token: strictly greater for each new claim of a job.
pub type FenceToken = u64;

/// The last logbook batch of a run: flow `flow` of logbook `book`, as `Storage::save_changes` takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinalBatch<'a> {
    pub(crate) book: Uuid,
    pub(crate) flow: Uuid,
    pub(crate) changes: FlowChanges<'a>,
}

/// Owner-side operations a backend provides for its claims. Sealed: only this
/// crate's backends implement it.
#[async_trait]
pub(crate) trait ClaimOps: Send + Sync + std::fmt::Debug {
    /// A `Storage` for the job's logbook whose every write checks the token.
    fn storage(&self, job: JobId, token: FenceToken) -> Arc<dyn Storage>;
    /// Marks the job COMPLETE with the outcome, if the token is current.
    async fn consume(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
    ) -> Result<Job, Error>;
    /// Writes `batch` to the job's logbook and marks the job COMPLETE with the
    /// outcome, in one atomic step, if the token is current: with a lost claim
    /// neither is written. A batch over the backend's transaction limits is
    /// written as `save_changes` splits it, its last part with the consume.
    async fn consume_with(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
        batch: FinalBatch<'_>,
    ) -> Result<Job, Error>;
    /// Returns the job to UNCLAIMED, if the token is current.
    async fn abandon(&self, job: JobId, token: FenceToken) -> Result<(), Error>;
    /// Moves the job to TRASHED with a reason, if the token is current.
    async fn trash(&self, job: JobId, token: FenceToken, reason: String) -> Result<(), Error>;
    /// The park entries of `job`.
    async fn parked_tasks(&self, job: JobId) -> Result<Vec<crate::parking::ParkEntry>, Error>;
    /// Wakes when a parked task of `job` is completed or timed out while it is claimed.
    fn deliveries(&self, job: JobId) -> crate::board::Wakeups;
    /// Gives the job back SUSPENDED (or UNCLAIMED if a cancel came meanwhile), if the token is current.
    async fn halt(&self, job: JobId, token: FenceToken) -> Result<Job, Error>;
    /// Parks the job (fenced) unless completions or a cancel came meanwhile.
    async fn park(&self, job: JobId, token: FenceToken, waiting: &[(String, u32)]) -> Result<Parking, Error>;
}

/// Ownership of one claimed job.
#[derive(Debug)]
pub struct Claim {
    job: Job,
    token: FenceToken,
    ops: Arc<dyn ClaimOps>,
    /// Cancelled when the claim is known to be lost (lease gone, session closed).
    lost: CancellationToken,
    /// Cancelled when someone requested cancellation of the job.
    cancelled: CancellationToken,
    /// The job as ended by a consume folded into the last logbook write.
    consumed: Arc<Mutex<Option<Job>>>,
}

impl Claim {
    pub(crate) fn new(
        job: Job,
        token: FenceToken,
        ops: Arc<dyn ClaimOps>,
        lost: CancellationToken,
        cancelled: CancellationToken,
    ) -> Self {
        Claim { job, token, ops, lost, cancelled, consumed: Arc::default() }
    }

    /// The job as it was when claimed (state CLAIMED, owner set, claims counted).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The backend's owner operations (for a `Pick` made of this claim).
    pub(crate) fn ops(&self) -> Arc<dyn ClaimOps> {
        self.ops.clone()
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// The fencing token of this claim.
    pub fn token(&self) -> FenceToken {
        self.token
    }

    /// The job's logbook storage; every write is fenced by this claim, and
    /// retried through transient board failures until it lands or the claim is lost.
    pub fn storage(&self) -> Arc<dyn Storage> {
        let fenced = self.ops.storage(self.job.id, self.token);
        let claim = format!("job {}, token {}", self.job.id, self.token);
        Arc::new(PatientStorage::new(fenced, self.lost.clone(), claim))
    }

    /// The job's logbook storage, as [`Claim::storage`], whose last write of a
    /// run (`Storage::save_final`) also consumes the job when the run ends it
    /// (SUCCESS, REVERTED or FAILURE, by [`Outcome::of_flow`]; CANCELLED if a
    /// cancel was requested): one fenced atomic write for both, so a job's
    /// last step costs no extra transaction. After it, [`Claim::consume`]
    /// answers with the job so ended, writing nothing more.
    pub fn consuming_storage(&self) -> Arc<dyn Storage> {
        Arc::new(ConsumingStorage {
            inner: self.storage(),
            ops: self.ops.clone(),
            job: self.job.id,
            token: self.token,
            lost: self.lost.clone(),
            cancelled: self.cancelled.clone(),
            consumed: self.consumed.clone(),
        })
    }

    /// True once the last logbook write of a run has consumed the job (see
    /// [`Claim::consuming_storage`]): the claim is over.
    pub fn is_consumed(&self) -> bool {
        self.consumed.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Fires when the claim is lost; from then on every write fails with `ClaimLost`.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Fires when cancellation or suspension of the job is requested (read the
    /// job to tell which: `cancel_requested`, `suspend_requested`).
    pub fn cancelled(&self) -> CancellationToken {
        self.cancelled.clone()
    }

    /// Finishes the job with its outcome (and the flow's failure, if any). If
    /// the run's last logbook write already consumed it, returns that job (with
    /// the outcome recorded then) and writes nothing.
    pub async fn consume(self, outcome: Outcome, failure: Option<Failure>) -> Result<Job, Error> {
        if let Some(job) = self.consumed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ok(job);
        }
        let (id, token) = (self.job.id, self.token);
        self.patiently("recording the outcome", || self.ops.consume(id, token, outcome, failure.clone())).await
    }

    /// Gives the job back to the board so another claimer may resume it.
    pub async fn abandon(self) -> Result<(), Error> {
        let (id, token) = (self.job.id, self.token);
        self.patiently("abandoning the job", || self.ops.abandon(id, token)).await
    }

    /// Gives the job back SUSPENDED after its flow stopped as an operator asked
    /// (`baton suspend`): released, not claimable until resumed. If a cancel was
    /// requested meanwhile it is given back claimable instead, so a claimer reverts.
    pub async fn halt(self) -> Result<Job, Error> {
        let (id, token) = (self.job.id, self.token);
        self.patiently("suspending the job", || self.ops.halt(id, token)).await
    }

    /// Gives up on the job for good, with a reason; its logbook is kept.
    pub async fn trash(self, reason: impl Into<String>) -> Result<(), Error> {
        let (id, token, reason) = (self.job.id, self.token, reason.into());
        self.patiently("trashing the job", || self.ops.trash(id, token, reason.clone())).await
    }

    /// Runs an owner write until it lands, fails for good, or the claim is lost.
    /// Wakes whenever a parked task of this job is completed or timed out while
    /// the claim lives; read them with `JobBoard::parked_tasks` and hand the
    /// settled ones to the engine (it drops what it already has).
    pub fn deliveries(&self) -> crate::board::Wakeups {
        self.ops.deliveries(self.job.id)
    }

    /// What completions and timeouts the board holds for this job's parked
    /// tasks, for the engine (which drops what is stale or already folded in).
    pub async fn settled(&self) -> Result<Vec<flows::Delivery>, Error> {
        let id = self.job.id;
        let entries = self.patiently("reading parked tasks", || self.ops.parked_tasks(id)).await?;
        Ok(entries.iter().filter_map(crate::parking::ParkEntry::delivery).collect())
    }

    /// Gives the job back PARKED: every task the engine can run waits, on the
    /// given `(atom, attempt)`s. One fenced write, refused (the claim stands) if
    /// one of them was completed or timed out meanwhile ([`Parking::Delivered`]:
    /// fold those in and run on) or a cancel was requested ([`Parking::Cancelled`]).
    /// After [`Parking::Parked`] the claim is over: drop it.
    pub async fn park(&self, waiting: &[(String, u32)]) -> Result<Parking, Error> {
        let (id, token) = (self.job.id, self.token);
        self.patiently("parking the job", || self.ops.park(id, token, waiting)).await
    }

    async fn patiently<T, Fut>(&self, doing: &str, attempt: impl FnMut() -> Fut) -> Result<T, Error>
    where
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let lost = || Error::ClaimLost { job: self.job.id, token: self.token };
        patient::retry(&self.lost, doing, Error::is_retryable, lost, attempt).await
    }
}
