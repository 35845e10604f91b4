//! `EmbeddedBoard`: the job board in one SQLite file, for a single machine.
//!
//! A real backend, not a test double: jobs, their logbooks and conductors
//! live in one local file (WAL mode, inspectable with `sqlite3`), durable
//! across restarts of the process. There is no lease: a claim lives as long
//! as the session that made it. When a session is closed its claims return
//! to UNCLAIMED at once; when the process dies they stay CLAIMED on disk until
//! the next [`EmbeddedBoard::open`], which returns every claimed job to
//! UNCLAIMED so it resumes from its logbook.
//!
//! One file is opened by one board value at a time (one process; a lock on
//! `<file>-lock` refuses a second open while the first is alive). Several
//! owners in that process (a conductor and a client, or racing claimers in a
//! test) share it through [`EmbeddedBoard::session`].
//!
//! ## Layout
//! - `schema`: the tables, one step per version; `migrate`: the `user_version` upgrade or refusal.
//! - `db`: the connections, used off the async runtime; group commit of writes.
//! - `jobs`, `logbook`, `conductors`: the SQL of each area, one transaction per operation.
//! - `storage`: `EmbeddedStorage` (fenced `flows::Storage`) and the claim operations.
//! - `notify`: in-process wake-ups.

mod backlog;
mod conductors;
mod db;
mod flow_defs;
mod jobs;
mod logbook;
mod migrate;
mod notify;
mod operate;
mod parks;
mod pick;
mod rows;
mod schedules;
mod schema;
mod storage;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use flows::logbook::now_millis;
use flows::LogBook;
use tokio_util::sync::CancellationToken;

use self::db::Db;
pub use self::db::WriteStats;
use self::notify::Notifier;
use self::storage::EmbeddedClaimOps;
pub use self::storage::EmbeddedStorage;
use crate::board::{JobBoard, Wakeups};
use crate::claim::{Claim, FenceToken};
use crate::error::Error;
use crate::flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
use crate::job::{BoardConfig, ConductorInfo, FlowFilter, Job, JobId, JobPage, JobState, ListQuery, NewJob};
use crate::lifecycle::operate::{Operation, FLEET};
use crate::parking::{Completed, ParkEntry, Presenter, TaskOutcome};

/// What every session of one board file shares.
#[derive(Debug)]
struct Shared {
    db: Db,
    notify: Notifier,
    /// A job claimed this many times without finishing is quarantined (0: never).
    quarantine_after: u32,
    /// The largest store, result or failure accepted, in serialized bytes.
    max_value_bytes: usize,
    /// How long finished jobs are kept.
    retention: std::time::Duration,
    /// Remote workers of this process's conductors, with the session that recorded each
    /// (an embedded board serves one machine, so the set lives in memory).
    workers: tokio::sync::watch::Sender<crate::workers::WorkerSet>,
    /// Bumped after every committed schedule change (`schedules`).
    schedule_changes: tokio::sync::watch::Sender<u64>,
    /// Jobs picked and not yet claimed or given up (`pick`).
    picks: pick::Picks,
}

/// One owner's session on the board.
#[derive(Debug)]
struct Session {
    owner: String,
    /// Cancelled when the session is closed; parent of its claims' `lost` tokens.
    lost: CancellationToken,
    /// Set (before any release) when the session is closed, and checked inside
    /// claim transactions so that no claim can outlive its session.
    closed: AtomicBool,
}

/// The embedded (SQLite) job board: one session of one owner on a board file.
///
/// Clones share the session (closing one closes all); [`EmbeddedBoard::session`]
/// makes a new one. Dropping a session without `close` is what a crash looks
/// like: its claims stay CLAIMED until the file is next opened.
#[derive(Debug, Clone)]
pub struct EmbeddedBoard {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

impl EmbeddedBoard {
    /// Opens (creating if needed) the board file, with a session for
    /// `config.owner`. Every job a previous run left CLAIMED returns to
    /// UNCLAIMED, and conductors of that run are forgotten. `Unavailable` if
    /// another board (in this process or another) has the file open.
    ///
    /// This blocks on file I/O briefly; call it at startup.
    pub fn open(path: &Path, config: BoardConfig) -> Result<EmbeddedBoard, Error> {
        if config.owner.trim().is_empty() {
            return Err(Error::InvalidInput("board owner name is empty".into()));
        }
        let (db, released) = Db::open(path, |tx| {
            conductors::remove_all(tx)?;
            jobs::release_all(tx, now_millis())
        })?;
        if released > 0 {
            tracing::info!(jobs = released, file = %path.display(), "returned jobs claimed by a previous run to the board");
        }
        let shared = Arc::new(Shared {
            db,
            notify: Notifier::new(),
            quarantine_after: config.quarantine_after,
            max_value_bytes: config.max_value_bytes,
            retention: config.retention,
            workers: tokio::sync::watch::channel(crate::workers::WorkerSet::default()).0,
            schedule_changes: tokio::sync::watch::channel(0).0,
            picks: pick::Picks::default(),
        });
        shared.notify.claimable();
        Ok(EmbeddedBoard { shared, session: Session::new(config.owner) })
    }

    /// A new session of another owner on the same file, sharing the
    /// connection and the wake-ups. Owner names must be unique among live
    /// sessions: closing a session releases every claim held in its name.
    pub fn session(&self, owner: impl Into<String>) -> EmbeddedBoard {
        EmbeddedBoard { shared: self.shared.clone(), session: Session::new(owner.into()) }
    }

    /// Writes run and SQLite transactions committed since the file was opened,
    /// across every session: with group commit, concurrent writers share commits.
    pub fn write_stats(&self) -> WriteStats {
        self.shared.db.stats()
    }

    /// This session's owner name.
    pub fn owner(&self) -> &str {
        &self.session.owner
    }

    fn check_open(&self) -> Result<(), Error> {
        self.session.check_open()
    }

    /// Wraps a freshly claimed job in a `Claim` and wakes watchers.
    fn claim_of(&self, job: Job, quarantined: &[JobId]) -> Claim {
        for id in quarantined {
            self.shared.notify.job_changed(*id);
        }
        let token = FenceToken::from(job.claims);
        let cancelled = self.shared.notify.claim_started(job.id, &self.session.owner, token, job.cancel_requested);
        self.shared.notify.job_changed(job.id);
        let ops = Arc::new(EmbeddedClaimOps { shared: self.shared.clone(), owner: self.session.owner.clone() });
        Claim::new(job, token, ops, self.session.lost.child_token(), cancelled)
    }

    /// Wakes whoever a settled park concerns.
    async fn operated(&self, id: JobId, op: Operation, by: String, expire: Option<u64>) -> Result<Job, Error> {
        self.check_open()?;
        let done = self.shared.db.write(move |tx| operate::operate(tx, id, op, &by, expire, now_millis())).await?;
        if done.changed {
            self.after_operation(&done.job);
        }
        Ok(done.job)
    }

    /// Wake-ups after an operator's request changed `job`: its owner (a cancel or
    /// suspend flag), claimers (claimable again), and its watchers.
    fn after_operation(&self, job: &Job) {
        if job.state == JobState::Claimed && (job.cancel_requested || job.suspend_requested) {
            self.shared.notify.cancel(job.id);
        }
        if job.state == JobState::Unclaimed {
            self.shared.notify.claimable();
        }
        self.shared.notify.job_changed(job.id);
    }

    fn woken(&self, job: JobId, woke: parks::Woke) {
        match woke {
            parks::Woke::Claimable => self.shared.notify.claimable(),
            parks::Woke::Owner => self.shared.notify.park_settled(job),
            parks::Woke::Nobody => return,
        }
        self.shared.notify.job_changed(job);
    }

    fn validate(&self, job: &NewJob) -> Result<String, Error> {
        job.check_names()?;
        let store = rows::to_json(&job.store)?;
        let limit = self.shared.max_value_bytes;
        if store.len() > limit {
            return Err(Error::TooLarge { what: "store".into(), size: store.len(), limit });
        }
        Ok(store)
    }
}

/// A presenter the board's writer thread can own.
enum OwnedPresenter {
    Token(flows::CallbackToken),
    Operator(String),
}

impl Session {
    fn new(owner: String) -> Arc<Session> {
        Arc::new(Session { owner, lost: CancellationToken::new(), closed: AtomicBool::new(false) })
    }

    /// Fails with `Closed` inside a transaction if the session ended meanwhile.
    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

#[async_trait]
impl JobBoard for EmbeddedBoard {
    async fn post(&self, job: NewJob) -> Result<Job, Error> {
        self.check_open()?;
        let store = self.validate(&job)?;
        let (posted, created) = self.shared.db.write(move |tx| jobs::post(tx, &job, &store, now_millis())).await?;
        if created {
            self.shared.notify.claimable();
        }
        Ok(posted)
    }

    async fn get(&self, id: JobId) -> Result<Job, Error> {
        self.check_open()?;
        self.shared.db.read_now(|tx| jobs::get_existing(tx, id))
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, Error> {
        self.check_open()?;
        let query = query.clone();
        self.shared.db.read(move |tx| jobs::list(tx, &query)).await
    }

    async fn claim_next(&self, flows: &FlowFilter) -> Result<Option<Claim>, Error> {
        self.check_open()?;
        let (session, filter, quarantine_after) = (self.session.clone(), flows.clone(), self.shared.quarantine_after);
        let result = self
            .shared
            .db
            .write(move |tx| {
                session.check_open()?;
                jobs::claim_next(tx, &session.owner, &filter, quarantine_after, now_millis())
            })
            .await?;
        Ok(result.claimed.map(|job| self.claim_of(job, &result.quarantined)))
    }

    async fn pick_next(&self, flows: &FlowFilter) -> Result<Option<crate::pick::Pick>, Error> {
        self.pick(flows).await
    }

    async fn claim(&self, id: JobId) -> Result<Claim, Error> {
        self.check_open()?;
        let (session, quarantine_after) = (self.session.clone(), self.shared.quarantine_after);
        let result = self
            .shared
            .db
            .write(move |tx| {
                session.check_open()?;
                jobs::claim_one(tx, id, &session.owner, quarantine_after, now_millis())
            })
            .await?;
        match result.claimed {
            Some(job) => Ok(self.claim_of(job, &result.quarantined)),
            None => {
                for id in &result.quarantined {
                    self.shared.notify.job_changed(*id);
                }
                Err(Error::NotClaimable { job: id, state: JobState::Trashed })
            }
        }
    }

    async fn operate(&self, id: JobId, op: Operation, by: &str) -> Result<Job, Error> {
        self.operated(id, op, by.to_owned(), None).await
    }

    async fn expire(&self, id: JobId, deadline: flows::Millis) -> Result<Job, Error> {
        self.operated(id, Operation::Cancel, FLEET.to_owned(), Some(deadline)).await
    }

    async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error> {
        self.check_open()?;
        let jobs = self.shared.db.write(move |tx| operate::cancel_overdue(tx, limit, now_millis())).await?;
        for job in &jobs {
            self.after_operation(job);
        }
        Ok(jobs.len())
    }

    async fn complete(
        &self,
        job: JobId,
        atom: &str,
        who: Presenter<'_>,
        outcome: TaskOutcome,
    ) -> Result<Completed, Error> {
        self.check_open()?;
        // The presenter borrows: check the token here, owned data goes to the writer.
        let who = match who {
            Presenter::Token(token) => OwnedPresenter::Token(token.clone()),
            Presenter::Operator(name) => OwnedPresenter::Operator(name.to_owned()),
        };
        let atom = atom.to_owned();
        let (answer, woke) = self
            .shared
            .db
            .write(move |tx| {
                let who = match &who {
                    OwnedPresenter::Token(token) => Presenter::Token(token),
                    OwnedPresenter::Operator(name) => Presenter::Operator(name),
                };
                parks::complete(tx, job, &atom, &who, &outcome, now_millis())
            })
            .await?;
        self.woken(job, woke);
        answer
    }

    async fn parked_tasks(&self, job: JobId) -> Result<Vec<ParkEntry>, Error> {
        self.check_open()?;
        self.shared.db.read_now(|tx| parks::entries(tx, job))
    }

    async fn backlog(&self) -> Result<crate::backlog::Backlog, Error> {
        self.check_open()?;
        self.shared.db.read(backlog::read).await
    }

    async fn time_out_due(&self, limit: usize) -> Result<usize, Error> {
        self.check_open()?;
        let touched = self.shared.db.write(move |tx| parks::time_out_due(tx, limit, now_millis())).await?;
        for (job, woke) in &touched {
            self.woken(*job, *woke);
        }
        Ok(touched.len())
    }

    fn claimable(&self) -> Wakeups {
        self.shared.notify.subscribe_claimable()
    }

    fn flow_changes(&self) -> Wakeups {
        self.shared.notify.subscribe_flow_changes()
    }

    async fn watch_job(&self, id: JobId) -> Result<Wakeups, Error> {
        self.check_open()?;
        // Subscribe first: a change between the check and the subscription is not lost.
        let wakeups = self.shared.notify.subscribe_job(id);
        self.shared.db.read_now(|tx| jobs::get_existing(tx, id))?;
        Ok(wakeups)
    }

    async fn logbook(&self, id: JobId) -> Result<Option<LogBook>, Error> {
        self.check_open()?;
        self.shared
            .db
            .read(move |tx| {
                jobs::get_existing(tx, id)?;
                logbook::book_of_job(tx, id)
            })
            .await
    }

    async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error> {
        self.check_open()?;
        if info.name.trim().is_empty() {
            return Err(Error::InvalidInput("conductor name is empty".into()));
        }
        let (info, session) = (info.clone(), self.session.clone());
        self.shared
            .db
            .write(move |tx| {
                session.check_open()?;
                conductors::register(tx, &info, &session.owner)
            })
            .await
    }

    async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error> {
        self.check_open()?;
        self.shared.db.read(conductors::list).await
    }

    async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error> {
        self.check_open()?;
        let name = name.to_owned();
        self.shared.db.write(move |tx| conductors::set_draining(tx, &name, draining)).await
    }

    async fn capacity(&self, count_queued: bool) -> Result<crate::capacity::Capacity, Error> {
        self.check_open()?;
        if !count_queued {
            return Ok(crate::capacity::Capacity::default());
        }
        let queued = self.shared.db.read(jobs::count_unclaimed).await?;
        Ok(crate::capacity::Capacity { queued: Some(queued), storage: None })
    }

    async fn purge_expired(&self) -> Result<usize, Error> {
        self.check_open()?;
        let retention = u64::try_from(self.shared.retention.as_millis()).unwrap_or(u64::MAX);
        let before = now_millis().saturating_sub(retention);
        self.shared.db.write(move |tx| jobs::purge(tx, before)).await
    }

    async fn apply_flow(&self, def: NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error> {
        self.check_open()?;
        crate::flow_defs::check_name(&def.name)?;
        let now = now_millis();
        let applied = self.shared.db.write(move |tx| flow_defs::apply(tx, &def, rule, now)).await?;
        if applied.created {
            self.shared.notify.flow_changed();
        }
        Ok(applied)
    }

    async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
        self.check_open()?;
        let name = name.to_owned();
        self.shared.db.read(move |tx| flow_defs::version(tx, &name, version)).await
    }

    async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        self.check_open()?;
        let name = name.to_owned();
        self.shared.db.read(move |tx| flow_defs::history(tx, &name)).await
    }

    async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error> {
        self.check_open()?;
        self.shared.db.read(flow_defs::current).await
    }

    async fn delete_flow(&self, name: &str) -> Result<(), Error> {
        self.check_open()?;
        let name = name.to_owned();
        self.shared.db.write(move |tx| flow_defs::delete(tx, &name)).await?;
        self.shared.notify.flow_changed();
        Ok(())
    }

    fn session_lost(&self) -> CancellationToken {
        self.session.lost.clone()
    }

    fn schedules(&self) -> &dyn crate::schedules::ScheduleStore {
        self
    }

    async fn put_worker(&self, worker: &crate::workers::WorkerRecord) -> Result<(), Error> {
        self.check_open()?;
        crate::workers::check(worker)?;
        if worker.conductor != self.session.owner {
            return Err(Error::InvalidInput(format!(
                "worker {} names conductor {:?}, not this session's {:?}",
                worker.id, worker.conductor, self.session.owner
            )));
        }
        let record = worker.clone();
        self.shared.workers.send_modify(|set| {
            std::sync::Arc::make_mut(set).insert(record.key(), record);
        });
        Ok(())
    }

    async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error> {
        let key = (conductor.to_owned(), id.to_owned());
        self.shared.workers.send_if_modified(|set| std::sync::Arc::make_mut(set).remove(&key).is_some());
        Ok(())
    }

    async fn worker_set(&self) -> Result<tokio::sync::watch::Receiver<crate::workers::WorkerSet>, Error> {
        Ok(self.shared.workers.subscribe())
    }

    async fn close(&self) -> Result<(), Error> {
        if self.session.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let owner = self.session.owner.clone();
        self.shared.workers.send_if_modified(|set| {
            let before = set.len();
            std::sync::Arc::make_mut(set).retain(|(conductor, _), _| conductor != &owner);
            set.len() != before
        });
        let released = self
            .shared
            .db
            .write(move |tx| {
                conductors::remove_owner(tx, &owner)?;
                jobs::release_owner(tx, &owner, now_millis())
            })
            .await;
        // The session is over whether or not the release was written: its
        // claims are lost either way (and a failed release is undone on reopen).
        self.session.lost.cancel();
        self.shared.notify.owner_released(&self.session.owner);
        let released = released?;
        for id in &released {
            self.shared.notify.job_changed(*id);
        }
        self.shared.notify.claimable();
        Ok(())
    }
}
