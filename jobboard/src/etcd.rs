//! `EtcdBoard`: the job board on etcd v3, for a fleet of conductors.
//!
//! One board value is one session: one lease, renewed by our own keep-alive
//! loop (`session`); claims are owner keys put with that lease, so a dead
//! conductor's jobs come back when its lease expires. Key layout: `keys`.
//! Claims (`claim`) and every owner write (`owner`) are single fenced
//! transactions; the logbook is [`storage::EtcdStorage`]. One watch per board (`watch`)
//! wakes claimers, re-queues jobs released by lease expiry and tells owners of
//! cancel requests. No etcd-client type appears in a public signature.

mod backlog;
mod batch;
mod capacity;
mod claim;
mod codec;
mod conductors;
mod defs_watch;
mod epoch;
mod floor;
mod flow_defs;
mod format;
pub(crate) mod keys;
mod list;
mod list_live;
mod live_index;
mod local;
mod operate;
mod ops;
mod owner;
mod parks;
mod queue_view;
mod queue_window;
mod schedules;
mod security;
mod session;
pub mod storage;
mod take;
mod watch;
mod windows;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, GetOptions, GetResponse, KvClient, Txn, TxnResponse};
use flows::LogBook;
use tokio::sync::watch as tokio_watch;
use tokio_util::sync::CancellationToken;

use self::codec::{etcd_error, StateRecord};
use self::keys::Keys;
pub use self::security::EtcdSecurity;
use self::session::Session;
pub use self::watch::LISTING as QUEUE_LISTING_TARGET;
use crate::board::{JobBoard, Wakeups};
use crate::claim::Claim;
use crate::error::Error;
use crate::flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
use crate::job::{BoardConfig, ConductorInfo, FlowFilter, Job, JobId, JobPage, ListQuery, NewJob};
use crate::lifecycle::operate::{Operation, FLEET};

/// How long one etcd request may take before it counts as `Unavailable`: a
/// partition that swallows packets must not hang a caller forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a request that could not even connect is sent again at once.
/// With several endpoints, etcd-client's balancer keeps picking a dead member
/// for a while after it died; nothing was sent, so repeating is safe for any
/// request (a txn included), and the next pick is most likely a live member.
const CONNECT_RETRIES: u32 = 4;

/// Runs one etcd request under [`REQUEST_TIMEOUT`], mapping its error. A
/// request that failed to connect (see [`CONNECT_RETRIES`]) is repeated within the same bound.
pub(crate) async fn bounded<T, Fut>(mut request: impl FnMut() -> Fut, doing: &str) -> Result<T, Error>
where
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    let mut retries = 0;
    loop {
        match tokio::time::timeout_at(deadline, request()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if retries < CONNECT_RETRIES && codec::never_sent(&e) => {
                retries += 1;
                tracing::debug!(error = %e, "etcd request could not connect; sending it again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => return Err(etcd_error(e, doing)),
            Err(_) => {
                return Err(Error::Unavailable {
                    message: format!("etcd did not answer within {REQUEST_TIMEOUT:?} while {doing}"),
                    source: None,
                })
            }
        }
    }
}

/// One txn through [`bounded`].
pub(crate) async fn send_txn(kv: &KvClient, txn: &Txn, doing: &str) -> Result<TxnResponse, Error> {
    bounded(
        || {
            let (mut kv, txn) = (kv.clone(), txn.clone());
            async move { kv.txn(txn).await }
        },
        doing,
    )
    .await
}

/// One range read through [`bounded`].
pub(crate) async fn send_get(
    kv: &KvClient,
    key: &[u8],
    options: Option<&GetOptions>,
    doing: &str,
) -> Result<GetResponse, Error> {
    bounded(
        || {
            let (mut kv, key, options) = (kv.clone(), key.to_vec(), options.cloned());
            async move { kv.get(key, options).await }
        },
        doing,
    )
    .await
}

/// Responses bigger than gRPC's default 4 MiB (a large logbook, a long listing) must still decode.
const MAX_DECODE_BYTES: usize = 256 * 1024 * 1024;

/// How to reach etcd, and the session's settings.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Every key of this board starts with it (default `/baton/`).
    pub prefix: String,
    /// The session lease's TTL (default 10 s; etcd's minimum is 2 s).
    pub lease_ttl: Duration,
    /// Settings every backend shares.
    pub board: BoardConfig,
    /// TLS and user towards etcd (default: plaintext, no user).
    pub security: EtcdSecurity,
    /// Where the session counts its lease renewals; share one across sessions to keep totals.
    pub stats: Arc<crate::backlog::SessionStats>,
}

impl EtcdConfig {
    /// Defaults: prefix `/baton/`, a 10 s lease.
    pub fn new(endpoints: Vec<String>, board: BoardConfig) -> Self {
        EtcdConfig {
            endpoints,
            prefix: "/baton/".into(),
            lease_ttl: Duration::from_secs(10),
            board,
            security: EtcdSecurity::default(),
            stats: Arc::default(),
        }
    }
}

/// The job board on etcd. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct EtcdBoard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBoard")
            .field("owner", &self.inner.config.owner)
            .field("keys", &self.inner.keys)
            .field("lease", &self.inner.session.lease)
            .finish()
    }
}

/// A claim this session holds, as the watch and the owner writes need it.
#[derive(Debug)]
pub(crate) struct Held {
    token: i64,
    /// The job's state record and its mod revision, as last seen.
    state: StateRecord,
    state_rev: i64,
    cancelled: CancellationToken,
    lost: CancellationToken,
    /// Whether the job's logbook is known to be empty: set on a job's first
    /// claim, cleared by the claim's first logbook write attempt; shared by
    /// every `EtcdStorage` of this claim (see [`storage`]).
    book_empty: storage::KnownEmpty,
}

/// Everything a board and its claims, storages and background tasks share.
pub(crate) struct Inner {
    client: Client,
    kv: KvClient,
    /// Sends the writes of running jobs, batching those that arrive together (`batch`).
    batcher: Arc<batch::Batcher>,
    keys: Keys,
    config: BoardConfig,
    session: Session,
    /// The board epoch this session started in; every claim and owner write compares it.
    epoch: epoch::BoardEpoch,
    held: Mutex<HashMap<JobId, Held>>,
    /// Cancel flags the watch saw on claimed jobs this board did not hold (yet),
    /// with their revisions: our claim txn may land just before a cancel request
    /// whose watch event then arrives before the claim is in `held`. Only
    /// touched with `held` locked. Bounded; see [`Inner::note_unheld_cancel`].
    unheld_cancels: Mutex<HashMap<JobId, i64>>,
    /// Per claimed job with parked tasks: bumped when the watch sees one settled (see `parks`).
    parks: Mutex<HashMap<JobId, tokio_watch::Sender<u64>>>,
    local: Mutex<local::LocalClaims>,
    queue_view: Mutex<queue_view::QueueView>,
    /// The held and owner keys the board watch has seen, for listings (`list_live`).
    live: live_index::LiveIndex,
    claimable: tokio_watch::Sender<u64>,
    /// Bumped when a flow definition may have changed (`defs_watch`).
    flow_changes: tokio_watch::Sender<u64>,
    /// Bumped when a schedule may have changed (`defs_watch::schedules_watch`).
    schedule_changes: tokio_watch::Sender<u64>,
    /// The worker set's watch, started on first use (`workers.rs`).
    worker_set: tokio::sync::OnceCell<tokio_watch::Receiver<crate::workers::WorkerSet>>,
    /// Stops the background tasks (close).
    stop: CancellationToken,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBoardSession")
            .field("owner", &self.config.owner)
            .field("lease", &self.session.lease)
            .finish()
    }
}

impl Drop for Inner {
    /// The board and all its claims are gone without `close`: what a crash looks
    /// like. Stop renewing the lease (etcd releases the claims one TTL later)
    /// and stop the background tasks, instead of keeping the jobs forever.
    fn drop(&mut self) {
        self.stop.cancel();
        self.session.suspend();
    }
}

impl EtcdBoard {
    /// Connects, grants the session lease and starts its keep-alive and the board watch.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdBoard, Error> {
        if config.endpoints.is_empty() {
            return Err(Error::InvalidInput("no etcd endpoints given".into()));
        }
        if config.board.owner.is_empty() {
            return Err(Error::InvalidInput("owner name is empty".into()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let options = config.security.apply(options);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| etcd_error(e, &format!("connecting to {}", config.endpoints.join(","))))?;
        let kv = client.kv_client().max_decoding_message_size(MAX_DECODE_BYTES);
        let keys = Keys::new(&config.prefix);
        // First: a board of a newer release is refused before anything is written to it.
        format::read_or_migrate(&kv, &keys).await?;
        let epoch = epoch::BoardEpoch::read_or_create(&kv, &keys).await?;
        floor::ensure(&kv, &keys).await?;
        let session =
            Session::start(&client, config.lease_ttl, kv.clone(), epoch.clone(), config.stats.clone()).await?;
        let inner = Arc::new(Inner {
            client,
            batcher: batch::Batcher::new(kv.clone()),
            kv,
            keys,
            config: config.board,
            session,
            epoch,
            held: Mutex::new(HashMap::new()),
            unheld_cancels: Mutex::default(),
            parks: Mutex::default(),
            local: Mutex::default(),
            queue_view: Mutex::default(),
            live: live_index::LiveIndex::default(),
            claimable: tokio_watch::channel(0).0,
            flow_changes: tokio_watch::channel(0).0,
            schedule_changes: tokio_watch::channel(0).0,
            worker_set: tokio::sync::OnceCell::new(),
            stop: CancellationToken::new(),
        });
        if let Err(e) = watch::start_board_watch(&inner).await {
            // Do not leave behind a lease that our keep-alive renews for nobody.
            if let Err(close_error) = inner.session.close(&inner.client).await {
                tracing::debug!(error = %close_error, "cannot revoke the lease of a board that failed to start");
            }
            return Err(e);
        }
        tokio::spawn(defs_watch::defs_watch(Arc::downgrade(&inner)));
        tokio::spawn(defs_watch::schedules_watch(Arc::downgrade(&inner)));
        Ok(EtcdBoard { inner })
    }

    /// Stops renewing the session lease without revoking it: what a frozen or
    /// partitioned process looks like to etcd. Its claims are released when the
    /// lease expires, and every later write through them fails with `ClaimLost`.
    /// For failover tests and drills.
    pub fn suspend_keep_alive(&self) {
        self.inner.session.suspend();
    }

    /// The session's lease id (for diagnostics and tests).
    pub fn lease_id(&self) -> i64 {
        self.inner.session.lease
    }
}

impl Inner {
    fn kv(&self) -> KvClient {
        self.kv.clone()
    }

    async fn txn(&self, txn: Txn, doing: &str) -> Result<TxnResponse, Error> {
        let resp = send_txn(&self.kv, &txn, doing).await?;
        self.session.revisions.note(resp.header().map_or(0, |h| h.revision()));
        Ok(resp)
    }

    /// One of the writes a running job makes, through the board's [`batch::Batcher`].
    async fn batched(&self, member: batch::Member, doing: &str) -> Result<batch::Committed, Error> {
        let committed = self.batcher.send(member, doing).await?;
        self.session.revisions.note(committed.revision);
        Ok(committed)
    }

    async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        options: Option<GetOptions>,
        doing: &str,
    ) -> Result<GetResponse, Error> {
        let resp = send_get(&self.kv, &key.into(), options.as_ref(), doing).await?;
        self.session.revisions.note(resp.header().map_or(0, |h| h.revision()));
        Ok(resp)
    }

    fn wake_claimers(&self) {
        self.claimable.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn wake_flow_watchers(&self) {
        self.flow_changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn wake_schedule_watchers(&self) {
        self.schedule_changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Refuses session-bound work once the session is over.
    fn check_live(&self) -> Result<(), Error> {
        if self.session.lost.is_cancelled() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn with_local<R>(&self, f: impl FnOnce(&mut local::LocalClaims) -> R) -> R {
        // No await while held; every update leaves it consistent.
        let mut guard = self.local.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn with_queue_view<R>(&self, f: impl FnOnce(&mut queue_view::QueueView) -> R) -> R {
        // No await while held; a set insert or remove leaves it consistent.
        let mut guard = self.queue_view.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Remembers a cancel flag seen at `rev` on a job not in `held`. Call with `held` locked.
    fn note_unheld_cancel(&self, id: JobId, rev: i64) {
        let mut early = self.unheld_cancels.lock().unwrap_or_else(|e| e.into_inner());
        // Only the last moments matter (a claim in flight): forgetting old ones is safe.
        if early.len() >= 1024 {
            early.clear();
        }
        early.insert(id, rev);
    }

    /// Whether a cancel flag was seen on `id` after our claim at `token`. Call with `held` locked.
    fn take_unheld_cancel(&self, id: JobId, token: i64) -> bool {
        let mut early = self.unheld_cancels.lock().unwrap_or_else(|e| e.into_inner());
        early.remove(&id).is_some_and(|rev| rev > token)
    }

    fn with_held<R>(&self, f: impl FnOnce(&mut HashMap<JobId, Held>) -> R) -> R {
        // No await while held; a poisoned map is still consistent (single inserts/removes).
        let mut guard = self.held.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl JobBoard for EtcdBoard {
    async fn post(&self, job: NewJob) -> Result<Job, Error> {
        self.inner.post(job).await
    }

    async fn get(&self, id: JobId) -> Result<Job, Error> {
        self.inner.get_job(id).await
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, Error> {
        self.inner.list(query).await
    }

    async fn claim_next(&self, flows: &FlowFilter) -> Result<Option<Claim>, Error> {
        Inner::claim_next(&self.inner, flows).await
    }

    async fn pick_next(&self, flows: &FlowFilter) -> Result<Option<crate::pick::Pick>, Error> {
        Inner::pick_next(&self.inner, flows).await
    }

    async fn claim(&self, id: JobId) -> Result<Claim, Error> {
        Inner::claim_one(&self.inner, id).await
    }

    async fn operate(&self, id: JobId, op: Operation, by: &str) -> Result<Job, Error> {
        self.inner.operate(id, op, by, None).await
    }

    async fn expire(&self, id: JobId, deadline: flows::Millis) -> Result<Job, Error> {
        self.inner.operate(id, Operation::Cancel, FLEET, Some(deadline)).await
    }

    async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error> {
        self.inner.cancel_overdue(limit).await
    }

    fn claimable(&self) -> Wakeups {
        Wakeups::new(self.inner.claimable.subscribe())
    }

    fn flow_changes(&self) -> Wakeups {
        Wakeups::new(self.inner.flow_changes.subscribe())
    }

    async fn complete(
        &self,
        job: JobId,
        atom: &str,
        who: crate::parking::Presenter<'_>,
        outcome: crate::parking::TaskOutcome,
    ) -> Result<crate::parking::Completed, Error> {
        self.inner.complete(job, atom, &who, &outcome).await
    }

    async fn parked_tasks(&self, job: JobId) -> Result<Vec<crate::parking::ParkEntry>, Error> {
        self.inner.parked_tasks(job).await
    }

    async fn time_out_due(&self, limit: usize) -> Result<usize, Error> {
        self.inner.time_out_due(limit).await
    }

    async fn backlog(&self) -> Result<crate::backlog::Backlog, Error> {
        self.inner.backlog().await
    }

    async fn capacity(&self, count_queued: bool) -> Result<crate::capacity::Capacity, Error> {
        self.inner.capacity(count_queued).await
    }

    async fn watch_job(&self, id: JobId) -> Result<Wakeups, Error> {
        watch::watch_job(&self.inner, id).await
    }

    async fn logbook(&self, id: JobId) -> Result<Option<LogBook>, Error> {
        storage::load_logbook(&self.inner, id).await
    }

    async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error> {
        self.inner.register_conductor(info).await
    }

    async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error> {
        self.inner.conductors().await
    }

    async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error> {
        self.inner.set_draining(name, draining).await
    }

    async fn put_worker(&self, worker: &crate::workers::WorkerRecord) -> Result<(), Error> {
        self.inner.put_worker(worker).await
    }

    async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error> {
        self.inner.remove_worker(conductor, id).await
    }

    async fn worker_set(&self) -> Result<tokio_watch::Receiver<crate::workers::WorkerSet>, Error> {
        let inner = &self.inner;
        inner.worker_set.get_or_try_init(|| workers::start(inner)).await.cloned()
    }

    async fn purge_expired(&self) -> Result<usize, Error> {
        self.inner.purge_expired().await
    }

    async fn apply_flow(&self, def: NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error> {
        self.inner.apply_flow(&def, rule).await
    }

    async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
        self.inner.flow_version(name, version).await
    }

    async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        self.inner.flow_history(name).await
    }

    async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error> {
        self.inner.current_flows().await
    }

    async fn delete_flow(&self, name: &str) -> Result<(), Error> {
        crate::flow_defs::check_name(name)?;
        if let Some(job) = crate::board::unfinished_job_of(self, name).await? {
            return Err(Error::FlowInUse { name: name.to_owned(), job });
        }
        self.inner.delete_flow_versions(name).await
    }

    fn schedules(&self) -> &dyn crate::schedules::ScheduleStore {
        self
    }

    fn session_lost(&self) -> CancellationToken {
        self.inner.session.lost.clone()
    }

    fn availability(&self) -> tokio_watch::Receiver<crate::board::Availability> {
        self.inner.session.availability()
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.stop.cancel();
        let held: Vec<JobId> = self.inner.with_held(|held| held.drain().map(|(id, _)| id).collect());
        self.inner.session.close(&self.inner.client).await?;
        // Our watch is stopped and no other board may be running: put our jobs back in the queue ourselves.
        for id in held {
            self.inner.requeue_orphan(id).await?;
        }
        Ok(())
    }
}
