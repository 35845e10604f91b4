//! `Pick`: a job chosen to be claimed, whose claim is folded into its first
//! logbook write (`JobBoard::pick_next`).
//!
//! A claim on its own is a transaction that writes only ownership; the
//! engine's first write (the flow and its first task RUNNING) follows at
//! once. A pick makes them one: the board chooses a job (reserved locally so
//! that sibling claim loops pass it by) and has its spec (etcd: from the
//! queue entry when the post put it there, else read), writing nothing;
//! the engine runs on [`Pick::storage`], whose first write *is* the claim: one
//! atomic step (etcd: one Txn; SQLite: one transaction) that claims the job if
//! it is unchanged since the pick (`lifecycle::fold`) and writes the batch.
//! From that step on, every write is fenced by the claim's token as ever
//! (the claim's consuming storage: the last write also consumes).
//!
//! The write-ahead rule holds: the engine starts no task before the write
//! that records it RUNNING returns, and that write is the claim. A job that
//! changed since the pick (claimed elsewhere, cancelled, suspended) is not
//! claimed and nothing of the batch lands: the write fails with `ClaimLost`,
//! so nothing ran, and the claimer moves on. A `Claim` stays the only way to
//! write a claimed job's logbook: [`Pick::claim`] hands it over for the rest
//! (consume, park, abandon), claiming now if no write did.

use std::sync::Arc;

use async_trait::async_trait;
use flows::{FlowChanges, FlowDetail, FlowEnd, LogBook, Storage, StorageError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::claim::{Claim, ClaimOps, FinalBatch};
use crate::error::Error;
use crate::job::{Job, JobId};
use crate::patient;

/// The backend's half of a pick: the claim step. Dropping it untaken gives up the pick.
#[async_trait]
pub(crate) trait Taking: Send + Sync + std::fmt::Debug {
    /// Claims the picked job if it is unchanged since the pick, writing `first`
    /// to its logbook in the same atomic step. Returns the claim, and whether
    /// `first` was written with it (a batch over one step's limits is not: the
    /// caller writes it through the claim). `ClaimLost` (token 0) if the job
    /// changed: nothing is written.
    async fn take(&self, first: Option<FinalBatch<'_>>) -> Result<(Claim, bool), Error>;
}

/// Called once with the claim when it lands.
type Hook = Box<dyn FnOnce(&Claim) + Send>;

enum Stage {
    /// Chosen, nothing written.
    Picked(Box<dyn Taking>),
    /// Claimed; `claim` until handed out by [`Pick::claim`].
    Claimed { claim: Option<Box<Claim>>, storage: Arc<dyn Storage> },
    /// The job changed since the pick (or the claim step failed): nothing was written.
    Refused,
}

struct State {
    stage: Stage,
    on_claimed: Vec<Hook>,
}

/// A job picked for claiming; see the module doc.
pub struct Pick {
    job: Job,
    ops: Arc<dyn ClaimOps>,
    lost: CancellationToken,
    cancelled: CancellationToken,
    /// Never claimed before: it has no logbook, so none is read.
    no_logbook: bool,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pick").field("job", &self.job.id).finish()
    }
}

impl Pick {
    /// `job` as it will be once claimed; `lost` and `cancelled` are the ones the claim gets.
    pub(crate) fn new(
        job: Job,
        ops: Arc<dyn ClaimOps>,
        (lost, cancelled): (CancellationToken, CancellationToken),
        no_logbook: bool,
        taking: Box<dyn Taking>,
    ) -> Pick {
        let state = State { stage: Stage::Picked(taking), on_claimed: Vec::new() };
        Pick { job, ops, lost, cancelled, no_logbook, state: Arc::new(Mutex::new(state)) }
    }

    /// A pick whose job is claimed already (a board that claims as it picks).
    pub fn claimed(claim: Claim) -> Pick {
        let storage = claim.consuming_storage();
        let (job, ops, lost, cancelled) = (claim.job().clone(), claim.ops(), claim.lost(), claim.cancelled());
        let state = State { stage: Stage::Claimed { claim: Some(Box::new(claim)), storage }, on_claimed: Vec::new() };
        Pick { job, ops, lost, cancelled, no_logbook: false, state: Arc::new(Mutex::new(state)) }
    }

    /// Calls `hook` with the claim when it lands (at once if it has). Call it
    /// before [`Pick::storage`] is used: a pick is not shared until then.
    pub fn when_claimed(self, hook: impl FnOnce(&Claim) + Send + 'static) -> Pick {
        let mut state = self.state.try_lock().expect("a pick is not shared before its storage is used");
        match &state.stage {
            Stage::Claimed { claim: Some(claim), .. } => hook(claim),
            _ => state.on_claimed.push(Box::new(hook)),
        }
        drop(state);
        self
    }

    /// The job as it will be once claimed (state CLAIMED, owner set, claims counted).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// Fires when the session is lost (before the claim) or the claim is.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// The claim's `cancelled` (see [`Claim::cancelled`]); a job cancelled before
    /// the claim is not claimed at all.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancelled.clone()
    }

    /// As [`Claim::deliveries`].
    pub fn deliveries(&self) -> crate::board::Wakeups {
        self.ops.deliveries(self.job.id)
    }

    /// As [`Claim::settled`]: completions the board holds for parked tasks.
    pub async fn settled(&self) -> Result<Vec<flows::Delivery>, Error> {
        let id = self.job.id;
        let lost = || Error::ClaimLost { job: id, token: 0 };
        let read = || self.ops.parked_tasks(id);
        let entries = patient::retry(&self.lost, "reading parked tasks", Error::is_retryable, lost, read).await?;
        Ok(entries.iter().filter_map(crate::parking::ParkEntry::delivery).collect())
    }

    /// The logbook storage to run the engine on: its first write claims the job
    /// with that batch; then it is the claim's consuming storage.
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(ClaimingStorage {
            job: self.job.id,
            state: self.state.clone(),
            reader: self.ops.storage(self.job.id, 0),
            no_logbook: self.no_logbook,
            lost: self.lost.clone(),
        })
    }

    /// The claim: the one a write made, or made now (nothing else written).
    /// Handed out once; `ClaimLost` if the job changed since the pick.
    pub async fn claim(&self) -> Result<Claim, Error> {
        let mut state = self.state.lock().await;
        match &mut state.stage {
            Stage::Claimed { claim, .. } => claim
                .take()
                .map(|claim| *claim)
                .ok_or_else(|| Error::InvalidInput(format!("the claim of job {} was handed out", self.job.id))),
            Stage::Refused => Err(Error::ClaimLost { job: self.job.id, token: 0 }),
            Stage::Picked(_) => {
                drop(state);
                take_detached(&self.state, self.job.id, &self.lost, None).await?;
                match &mut self.state.lock().await.stage {
                    Stage::Claimed { claim, .. } => claim
                        .take()
                        .map(|claim| *claim)
                        .ok_or_else(|| Error::InvalidInput(format!("the claim of job {} was handed out", self.job.id))),
                    _ => Err(Error::ClaimLost { job: self.job.id, token: 0 }),
                }
            }
        }
    }

    /// The claim a write made, if one did (handed out once); never claims.
    pub async fn made(&self) -> Option<Claim> {
        match &mut self.state.lock().await.stage {
            Stage::Claimed { claim, .. } => claim.take().map(|claim| *claim),
            _ => None,
        }
    }
}

/// Runs the claim step of a picked job with `first`; returns whether `first` was written.
async fn take(
    state: &mut State,
    job: JobId,
    lost: &CancellationToken,
    first: Option<FinalBatch<'_>>,
) -> Result<bool, Error> {
    let Stage::Picked(taking) = std::mem::replace(&mut state.stage, Stage::Refused) else {
        return Err(Error::ClaimLost { job, token: 0 });
    };
    if lost.is_cancelled() {
        return Err(Error::ClaimLost { job, token: 0 });
    }
    let (claim, written) = taking.take(first).await?;
    drop(taking);
    for hook in state.on_claimed.drain(..) {
        hook(&claim);
    }
    let storage = claim.consuming_storage();
    state.stage = Stage::Claimed { claim: Some(Box::new(claim)), storage };
    Ok(written)
}

/// A first batch, owned, so that the claim step can outlive its caller.
struct OwnedBatch {
    book: Uuid,
    flow: Uuid,
    detail: Option<FlowDetail>,
    atoms: Vec<flows::AtomDetail>,
}

impl OwnedBatch {
    fn of(book: Uuid, flow: Uuid, changes: &FlowChanges<'_>) -> OwnedBatch {
        let atoms = changes.atoms.iter().map(|atom| (*atom).clone()).collect();
        OwnedBatch { book, flow, detail: changes.flow.cloned(), atoms }
    }
}

/// Runs the claim step (with `first`, if any) on a task of its own, so that it finishes
/// and is recorded on the pick even if the caller stops waiting (a run dropped at its
/// deadline, say): a claim that landed unrecorded would leave the job claimed by a
/// conductor that believes it never claimed it. Returns whether `first` was written;
/// `Ok(false)` if an earlier step claimed already.
async fn take_detached(
    state: &Arc<Mutex<State>>,
    job: JobId,
    lost: &CancellationToken,
    first: Option<OwnedBatch>,
) -> Result<bool, Error> {
    let mut state = state.clone().lock_owned().await;
    let lost = lost.clone();
    let step = tokio::spawn(async move {
        match state.stage {
            Stage::Picked(_) => {}
            Stage::Claimed { .. } => return Ok(false),
            Stage::Refused => return Err(Error::ClaimLost { job, token: 0 }),
        }
        let atoms: Vec<&flows::AtomDetail> = first.as_ref().map(|b| b.atoms.iter().collect()).unwrap_or_default();
        let batch = first.as_ref().map(|b| FinalBatch {
            book: b.book,
            flow: b.flow,
            changes: FlowChanges { flow: b.detail.as_ref(), atoms: &atoms },
        });
        take(&mut state, job, &lost, batch).await
    });
    step.await
        .map_err(|e| Error::Backend { message: format!("the claim step of job {job} stopped: {e}"), source: None })?
}

/// A pick's logbook storage (see [`Pick::storage`]).
#[derive(Debug)]
struct ClaimingStorage {
    job: JobId,
    state: Arc<Mutex<State>>,
    /// Reads the logbook before the claim, as any reader may.
    reader: Arc<dyn Storage>,
    no_logbook: bool,
    lost: CancellationToken,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Picked(_) => "picked",
            Stage::Claimed { .. } => "claimed",
            Stage::Refused => "refused",
        };
        f.write_str(stage)
    }
}

impl ClaimingStorage {
    /// The claim's storage, if claimed; `Err` once refused.
    async fn claimed(&self) -> Result<Option<Arc<dyn Storage>>, StorageError> {
        match &self.state.lock().await.stage {
            Stage::Claimed { storage, .. } => Ok(Some(storage.clone())),
            Stage::Picked(_) => Ok(None),
            Stage::Refused => Err(Error::ClaimLost { job: self.job, token: 0 }.into()),
        }
    }

    /// Writes a batch: the first one claims the job with it.
    async fn write(
        &self,
        book: Uuid,
        flow: Uuid,
        changes: FlowChanges<'_>,
        end: Option<FlowEnd<'_>>,
    ) -> Result<(), StorageError> {
        let mut changes = changes;
        if matches!(self.state.lock().await.stage, Stage::Picked(_)) {
            let first = (!changes.is_empty()).then(|| OwnedBatch::of(book, flow, &changes));
            if take_detached(&self.state, self.job, &self.lost, first).await? {
                // Written with the claim: only the end (a consume) may be left to record.
                changes = FlowChanges { flow: None, atoms: &[] };
            }
        }
        let storage = match self.claimed().await? {
            Some(storage) => storage,
            None => return Err(Error::ClaimLost { job: self.job, token: 0 }.into()),
        };
        match end {
            Some(end) => storage.save_final(book, flow, changes, end).await,
            None => storage.save_changes(book, flow, changes).await,
        }
    }
}

#[async_trait]
impl Storage for ClaimingStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        if matches!(self.state.lock().await.stage, Stage::Picked(_)) {
            take_detached(&self.state, self.job, &self.lost, None).await?;
        }
        let storage = match self.claimed().await? {
            Some(storage) => storage,
            None => return Err(Error::ClaimLost { job: self.job, token: 0 }.into()),
        };
        storage.save_book(book).await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        match self.claimed().await? {
            Some(storage) => storage.load_book(book).await,
            None if self.no_logbook => Ok(None),
            None => self.reader.load_book(book).await,
        }
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        match self.claimed().await? {
            Some(storage) => storage.load_flow(book, flow).await,
            None if self.no_logbook => Ok(None),
            None => self.reader.load_flow(book, flow).await,
        }
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        self.write(book, flow, changes, None).await
    }

    async fn save_final(
        &self,
        book: Uuid,
        flow: Uuid,
        changes: FlowChanges<'_>,
        end: FlowEnd<'_>,
    ) -> Result<(), StorageError> {
        self.write(book, flow, changes, Some(end)).await
    }
}
