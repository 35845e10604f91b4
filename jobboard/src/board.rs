//! `JobBoard`: the one trait every backend implements.
//!
//! A board value is one *session* of one owner (a conductor, or a client that
//! only posts and reads). Claims made through it live on the session: when
//! the session ends (its etcd lease expires, or the process exits) the claims
//! go with it, and [`JobBoard::session_lost`] fires.
//!
//! This trait must not mention any dependency's type (etcd-client, rusqlite):
//! backends keep those private.

use async_trait::async_trait;
use flows::{LogBook, Millis};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backlog::Backlog;
use crate::claim::Claim;
use crate::error::Error;
use crate::flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
use crate::job::{ConductorInfo, FlowFilter, Job, JobId, JobPage, JobState, ListQuery, NewJob};
use crate::lifecycle::operate::Operation;
use crate::parking::{Completed, ParkEntry, Presenter, TaskOutcome};
use crate::pick::Pick;
use crate::workers::{WorkerRecord, WorkerSet};

/// A job board backend.
#[async_trait]
pub trait JobBoard: Send + Sync + std::fmt::Debug {
    /// Posts a job. With an idempotency key already used, returns that job and writes nothing.
    /// Refuses an empty flow name, a store over the size limit, and the like, with
    /// `InvalidInput` / `TooLarge`, writing nothing.
    async fn post(&self, job: NewJob) -> Result<Job, Error>;

    /// Reads one job, in whatever state.
    async fn get(&self, id: JobId) -> Result<Job, Error>;

    /// Lists jobs, oldest first, filtered and paged.
    async fn list(&self, query: &ListQuery) -> Result<JobPage, Error>;

    /// Claims the best claimable job this session can run: highest priority
    /// first, then oldest. `Ok(None)` when there is none.
    async fn claim_next(&self, flows: &FlowFilter) -> Result<Option<Claim>, Error>;

    /// Picks the best claimable job this session can run, as [`JobBoard::claim_next`]
    /// chooses, writing nothing: the claim is folded into the first write of
    /// [`Pick::storage`] (see [`crate::pick`]). `Ok(None)` when there is none.
    /// A board that cannot fold claims as it picks (this default).
    async fn pick_next(&self, flows: &FlowFilter) -> Result<Option<Pick>, Error> {
        Ok(self.claim_next(flows).await?.map(Pick::claimed))
    }

    /// Claims one given job. `AlreadyClaimed` if another owner holds it,
    /// `NotClaimable` if it is complete or trashed.
    async fn claim(&self, id: JobId) -> Result<Claim, Error>;

    /// Requests cancellation. An unclaimed job becomes COMPLETE/CANCELLED at
    /// once; the owner of a claimed one is told (its `Claim::cancelled` fires).
    /// A finished job is returned unchanged. (An [`Operation::Cancel`] by nobody named.)
    async fn request_cancel(&self, id: JobId) -> Result<Job, Error> {
        self.operate(id, Operation::Cancel, "anonymous").await
    }

    /// An operator's request on a job, recorded on it with `by` (the caller's
    /// identity) and the time; the lifecycle table decides (`lifecycle`). A
    /// refusal is `IllegalTransition` naming the state, except that a cancel of a
    /// finished job returns it unchanged. The owner of a claimed job is told of a
    /// cancel or suspend request by its `Claim::cancelled` (read the job to see which).
    async fn operate(&self, id: JobId, op: Operation, by: &str) -> Result<Job, Error>;

    /// Cancels job `id` because its deadline (`deadline`, ms since the epoch) passed:
    /// as a cancel, recorded as the fleet's, and the job ends with a
    /// `DEADLINE_EXCEEDED` failure. A finished job is returned unchanged.
    async fn expire(&self, id: JobId, deadline: Millis) -> Result<Job, Error>;

    /// Cancels (as [`JobBoard::expire`]) up to `limit` unfinished jobs whose
    /// deadline passed, earliest first; returns how many. Reads only what is due.
    async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error>;

    /// Fires (the value changes) whenever a job may have become claimable:
    /// posted, abandoned, or released by a lost lease. Subscribe before
    /// looking for work so that no wake-up is missed.
    fn claimable(&self) -> Wakeups;

    /// Fires whenever a stored flow definition may have changed (a version applied,
    /// a flow deleted), in this process or, on etcd, anywhere in the fleet; also
    /// once after a lost watch is re-established. Subscribers re-read what they
    /// keep (`current_flows`); subscribe before that read so no change is missed.
    fn flow_changes(&self) -> Wakeups;

    /// Fires whenever the job or its logbook changes. `NotFound` for an unknown id.
    async fn watch_job(&self, id: JobId) -> Result<Wakeups, Error>;

    /// Reads a job's logbook (read-only; writes go through a `Claim`).
    async fn logbook(&self, id: JobId) -> Result<Option<LogBook>, Error>;

    /// Registers (or re-registers) a conductor on this session; it vanishes with it.
    async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error>;

    /// Lists live conductors, with the number of jobs each holds.
    async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error>;

    /// Records a remote worker attached to this session's conductor, under this session
    /// (etcd: its lease). Re-putting replaces it.
    async fn put_worker(&self, worker: &WorkerRecord) -> Result<(), Error>;

    /// Removes this session's record of worker `id` (its stream ended).
    async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error>;

    /// The fleet's workers, kept current by a watch: read it, never poll the board.
    async fn worker_set(&self) -> Result<watch::Receiver<WorkerSet>, Error>;

    /// Marks a conductor as draining (or not). `InvalidInput` if no such conductor is live.
    async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error>;

    /// Removes complete and trashed jobs (and their logbooks) older than the
    /// retention. Returns how many were removed.
    async fn purge_expired(&self) -> Result<usize, Error>;

    /// Stores a flow definition: unchanged content is a no-op; otherwise a new
    /// immutable version becomes current, in one conditional write (concurrent
    /// applies each get their own version; none is lost). See [`flow_defs`](crate::flow_defs).
    async fn apply_flow(&self, def: NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error>;

    /// One version of a flow definition; `None` asks for the current one. `UnknownFlow` if absent.
    async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error>;

    /// Every version of a flow definition, oldest first. `UnknownFlow` if it has none.
    async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error>;

    /// The current version of every flow definition, by name.
    async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error>;

    /// Removes a flow definition with all its versions. `FlowInUse` while a job
    /// of that flow is unfinished (UNCLAIMED or CLAIMED); `UnknownFlow` if absent.
    async fn delete_flow(&self, name: &str) -> Result<(), Error>;

    /// Completes a parked task with its callback token: the token is the
    /// credential (any session may present it). One conditional write checks the
    /// park's state, attempt and hash and records the outcome; a PARKED job
    /// becomes claimable, a claimed one's owner is woken ([`Claim::deliveries`]).
    /// Answers: see [`crate::parking`]; a malformed token is `TokenNotFound` too.
    async fn complete_task(&self, token: &str, outcome: TaskOutcome) -> Result<Completed, Error> {
        let token = flows::CallbackToken::parse(token).map_err(|_| Error::TokenNotFound)?;
        let name = token.name().clone();
        self.complete(name.job, &name.atom, Presenter::Token(&token), outcome).await
    }

    /// Completes the current parked attempt of `atom` in job `job`, presented by
    /// a token or, for an operator's override, by a name (recorded in the entry).
    async fn complete(
        &self,
        job: JobId,
        atom: &str,
        who: Presenter<'_>,
        outcome: TaskOutcome,
    ) -> Result<Completed, Error>;

    /// Every park entry of a job (its parked tasks, settled or not), by atom name.
    async fn parked_tasks(&self, job: JobId) -> Result<Vec<ParkEntry>, Error>;

    /// Times out up to `limit` parked tasks whose deadline has passed, earliest
    /// first, each with the same conditional write as a completion (so exactly
    /// one of the two wins); returns how many. Reads only what is due.
    async fn time_out_due(&self, limit: usize) -> Result<usize, Error>;

    /// The board's schedules (see [`crate::schedules`]).
    fn schedules(&self) -> &dyn crate::schedules::ScheduleStore;

    /// How many jobs are queued and parked, and the oldest of each, read from the
    /// indexes (counts and first keys), never by scanning every job: cheap enough
    /// to ask every few seconds.
    async fn backlog(&self) -> Result<Backlog, Error>;

    /// How full the board is, measured now (see `capacity`); the queue's length
    /// only if `count_queued` (it may cost a walk of the queue).
    async fn capacity(&self, count_queued: bool) -> Result<crate::capacity::Capacity, Error>;

    /// Cancelled when this session is over: its lease was lost, or it was closed.
    /// Every claim made through it is lost at the same moment.
    fn session_lost(&self) -> CancellationToken;

    /// Whether the board answers now, as this session sees it, updated as it
    /// changes: an etcd session turns `Unavailable` (with the cause) as soon as
    /// a lease renewal fails, and `Available` again when one lands, so callers
    /// can refuse work at once instead of waiting for a request to time out.
    /// A board with no such notion (embedded) is always available.
    fn availability(&self) -> watch::Receiver<Availability> {
        watch::channel(Availability::Available).1
    }

    /// Ends the session: releases its lease (so its claims return to the board
    /// at once) and stops background work.
    async fn close(&self) -> Result<(), Error>;
}

/// An unfinished job of `flow`, if any: what keeps its definition from being deleted.
pub(crate) async fn unfinished_job_of(board: &dyn JobBoard, flow: &str) -> Result<Option<JobId>, Error> {
    for state in [JobState::Claimed, JobState::Unclaimed] {
        let query = ListQuery { state: Some(state), flow: Some(flow.to_owned()), limit: 1, ..ListQuery::default() };
        if let Some(job) = board.list(&query).await?.jobs.first() {
            return Ok(Some(job.id));
        }
    }
    Ok(None)
}

/// Whether a board session can reach its backend now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Requests go through.
    Available,
    /// Requests are failing now; the cause, in words (never a secret).
    Unavailable(String),
}

/// A wake-up subscription: `changed` returns each time its source fires.
#[derive(Debug, Clone)]
pub struct Wakeups(watch::Receiver<u64>);

impl Wakeups {
    /// Wraps a receiver; the sender bumps the value to wake subscribers.
    pub fn new(rx: watch::Receiver<u64>) -> Self {
        Wakeups(rx)
    }

    /// Waits for the next wake-up since the last one seen. `Err(Closed)` once
    /// the source is gone.
    pub async fn changed(&mut self) -> Result<(), Error> {
        self.0.changed().await.map_err(|_| Error::Closed)
    }
}
