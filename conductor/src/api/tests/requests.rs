//! What a post costs in board requests: a flow file's job no more than a Rust flow's,
//! a pinned version read from the board at most once per hash per conductor, and a watch
//! that reads a logbook once per fold interval, not once per write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::LogBook;
use jobboard::embedded::EmbeddedBoard;
use jobboard::flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
use jobboard::{
    BoardConfig, Claim, Completed, ConductorInfo, Error, FlowFilter, Job, JobBoard, JobId, JobPage, ListQuery, NewJob,
    ParkEntry, Presenter, TaskOutcome, Wakeups, WorkerRecord, WorkerSet,
};
use proto::pb;
use proto::pb::baton_server::Baton;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiState, BatonService};
use crate::catalog::Catalog;

/// An embedded board that counts every request made through it, by method.
#[derive(Debug)]
struct Counting {
    inner: EmbeddedBoard,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn count(&self, what: &'static str) {
        *self.calls.lock().unwrap().entry(what).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    fn of(&self, what: &'static str) -> usize {
        self.calls.lock().unwrap().get(what).copied().unwrap_or_default()
    }
}

#[async_trait]
impl JobBoard for Counting {
    async fn post(&self, job: NewJob) -> Result<Job, Error> {
        self.count("post");
        self.inner.post(job).await
    }
    async fn get(&self, id: JobId) -> Result<Job, Error> {
        self.count("get");
        self.inner.get(id).await
    }
    async fn list(&self, query: &ListQuery) -> Result<JobPage, Error> {
        self.count("list");
        self.inner.list(query).await
    }
    async fn claim_next(&self, flows: &FlowFilter) -> Result<Option<Claim>, Error> {
        self.count("claim_next");
        self.inner.claim_next(flows).await
    }
    async fn pick_next(&self, flows: &FlowFilter) -> Result<Option<jobboard::Pick>, Error> {
        self.count("pick_next");
        self.inner.pick_next(flows).await
    }
    async fn claim(&self, id: JobId) -> Result<Claim, Error> {
        self.count("claim");
        self.inner.claim(id).await
    }
    async fn request_cancel(&self, id: JobId) -> Result<Job, Error> {
        self.count("request_cancel");
        self.inner.request_cancel(id).await
    }
    async fn operate(&self, id: JobId, op: jobboard::Operation, by: &str) -> Result<Job, Error> {
        self.count("operate");
        self.inner.operate(id, op, by).await
    }
    async fn expire(&self, id: JobId, deadline: flows::Millis) -> Result<Job, Error> {
        self.count("expire");
        self.inner.expire(id, deadline).await
    }
    async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error> {
        self.count("cancel_overdue");
        self.inner.cancel_overdue(limit).await
    }
    fn claimable(&self) -> Wakeups {
        self.inner.claimable()
    }
    fn flow_changes(&self) -> Wakeups {
        self.inner.flow_changes()
    }

    fn schedules(&self) -> &dyn jobboard::ScheduleStore {
        self.inner.schedules()
    }
    async fn watch_job(&self, id: JobId) -> Result<Wakeups, Error> {
        self.count("watch_job");
        self.inner.watch_job(id).await
    }
    async fn logbook(&self, id: JobId) -> Result<Option<LogBook>, Error> {
        self.count("logbook");
        self.inner.logbook(id).await
    }
    async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error> {
        self.count("register_conductor");
        self.inner.register_conductor(info).await
    }
    async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error> {
        self.count("conductors");
        self.inner.conductors().await
    }
    async fn complete(
        &self,
        job: JobId,
        atom: &str,
        who: Presenter<'_>,
        outcome: TaskOutcome,
    ) -> Result<Completed, Error> {
        self.count("complete");
        self.inner.complete(job, atom, who, outcome).await
    }
    async fn parked_tasks(&self, job: JobId) -> Result<Vec<ParkEntry>, Error> {
        self.count("parked_tasks");
        self.inner.parked_tasks(job).await
    }
    async fn time_out_due(&self, limit: usize) -> Result<usize, Error> {
        self.count("time_out_due");
        self.inner.time_out_due(limit).await
    }
    async fn backlog(&self) -> Result<jobboard::Backlog, Error> {
        self.count("backlog");
        self.inner.backlog().await
    }
    async fn put_worker(&self, worker: &WorkerRecord) -> Result<(), Error> {
        self.count("put_worker");
        self.inner.put_worker(worker).await
    }
    async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error> {
        self.count("remove_worker");
        self.inner.remove_worker(conductor, id).await
    }
    async fn worker_set(&self) -> Result<tokio::sync::watch::Receiver<WorkerSet>, Error> {
        self.count("worker_set");
        self.inner.worker_set().await
    }
    async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error> {
        self.count("set_draining");
        self.inner.set_draining(name, draining).await
    }
    async fn capacity(&self, count_queued: bool) -> Result<jobboard::Capacity, Error> {
        self.count("capacity");
        self.inner.capacity(count_queued).await
    }
    async fn purge_expired(&self) -> Result<usize, Error> {
        self.count("purge_expired");
        self.inner.purge_expired().await
    }
    async fn apply_flow(&self, def: NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error> {
        self.count("apply_flow");
        self.inner.apply_flow(def, rule).await
    }
    async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
        self.count("flow_version");
        self.inner.flow_version(name, version).await
    }
    async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        self.count("flow_history");
        self.inner.flow_history(name).await
    }
    async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error> {
        self.count("current_flows");
        self.inner.current_flows().await
    }
    async fn delete_flow(&self, name: &str) -> Result<(), Error> {
        self.count("delete_flow");
        self.inner.delete_flow(name).await
    }
    fn session_lost(&self) -> CancellationToken {
        self.inner.session_lost()
    }
    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

const HELLO: &str =
    "name: hello\ninputs:\n  who: {type: string, default: world}\nflow:\n  linear:\n    - task: hi\n      kind: noop\n";

fn post(flow: &str) -> tonic::Request<pb::PostJobRequest> {
    let store = if flow == "chain" { r#"{"steps": 1, "step_ms": 1}"# } else { "" };
    tonic::Request::new(pb::PostJobRequest {
        flow: flow.into(),
        store_json: store.into(),
        priority: 0,
        idempotency_key: None,
        version: None,
        deadline_in_ms: None,
    })
}

#[tokio::test]
async fn a_file_flow_post_costs_what_a_rust_flow_post_costs_and_versions_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedBoard::open(&dir.path().join("board.sqlite3"), BoardConfig::new("counting")).unwrap();
    let board = Arc::new(Counting { inner, calls: Mutex::default() });
    let file = flowfile::FlowFile::parse("hello.yaml", HELLO).unwrap();
    let def = NewFlowVersion { name: "hello".into(), hash: file.hash().into(), source: HELLO.into() };
    board.apply_flow(def, ApplyRule::NeverBack).await.unwrap();
    let kinds = Arc::new(flowfile::Kinds::default_allowed());
    let catalog = Arc::new(Catalog::new(Arc::new(crate::demo_flows::registry()), kinds));
    catalog.refresh(board.as_ref()).await.unwrap();
    let service = BatonService::new(ApiState::over(crate::api::BoardSlot::fixed(board.clone()), catalog.clone()));

    // The first post reads the conductor set (post warnings); later ones use the cache.
    service.post_job(post("chain")).await.unwrap();
    let before = board.total();
    service.post_job(post("chain")).await.unwrap();
    let rust = board.total() - before;
    let before = board.total();
    let job = service.post_job(post("hello")).await.unwrap().into_inner();
    let file_flow = board.total() - before;
    assert_eq!(job.flow_version, Some(1));
    assert_eq!((rust, file_flow), (1, 1), "one request each (the post): {:?}", board.calls.lock().unwrap());

    // A claim of a pinned version met for the first time reads it once; never again.
    let fresh = Catalog::new(catalog.rust().clone(), catalog.kinds().clone());
    let pin = jobboard::FlowPin { version: 1, hash: file.hash().into() };
    for _ in 0..3 {
        fresh.for_job(board.as_ref(), "hello", Some(&pin)).await.unwrap();
    }
    assert_eq!(board.of("flow_version"), 1, "{:?}", board.calls.lock().unwrap());
}

/// Logbook writes the watch folds; each one wakes it.
const WRITES: usize = 60;

#[tokio::test]
async fn a_watch_folds_logbook_changes_and_ends_with_the_full_final_snapshot() {
    use futures::StreamExt;
    use jobboard::Outcome;

    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedBoard::open(&dir.path().join("board.sqlite3"), BoardConfig::new("counting")).unwrap();
    let board = Arc::new(Counting { inner, calls: Mutex::default() });
    let kinds = Arc::new(flowfile::Kinds::default_allowed());
    let catalog = Arc::new(Catalog::new(Arc::new(crate::demo_flows::registry()), kinds));
    let state = ApiState::over(crate::api::BoardSlot::fixed(board.clone()), catalog);
    let service = BatonService::new(state.clone());
    let job = service.post_job(post("chain")).await.unwrap().into_inner();
    let id: JobId = job.id.parse().unwrap();
    let mut stream = Box::pin(crate::api::watch::watch_job(state.clone(), id).await.unwrap());
    assert_eq!(stream.next().await.unwrap().unwrap().state(), pb::JobState::Unclaimed);

    let claim = board.claim(id).await.unwrap();
    let storage = claim.storage();
    storage.save_book(&LogBook::new(id, "chain")).await.unwrap();
    let flow = flows::FlowDetail::new(uuid::Uuid::new_v4(), "chain");
    let flow_id = flow.id;
    storage.save_flow(id, &flow).await.unwrap();
    let reads_before = board.of("logbook");
    let started = std::time::Instant::now();
    for i in 0..WRITES {
        let mut atom = flows::AtomDetail::new(format!("extra-{i}"), flows::AtomKind::Task);
        atom.state = flows::AtomState::Success;
        storage.save_atom(id, flow_id, &atom).await.unwrap();
        // Lets the watch see each write's wake-up on its own.
        tokio::task::yield_now().await;
    }
    claim.consume(Outcome::Success, None).await.unwrap();
    let mut snapshots = Vec::new();
    while let Some(snapshot) = stream.next().await {
        snapshots.push(snapshot.unwrap());
    }
    let reads = board.of("logbook") - reads_before;
    let watching = started.elapsed();

    // The final state is the whole job, exactly what a fresh read shows.
    let last = snapshots.last().unwrap();
    assert_eq!((last.state(), last.outcome()), (pb::JobState::Complete, pb::Outcome::Success));
    let fresh = BatonService::snapshot(&state, id, &mut None).await.unwrap();
    assert_eq!(*last, fresh);
    // Folded reads are a fold interval apart; the claim and the consume are read at once.
    // Not one read per write: the bound follows from the code, whatever the machine's speed.
    let intervals = usize::try_from(watching.as_millis() / crate::api::watch::FOLD_EVERY.as_millis()).unwrap();
    assert!(reads <= intervals + 4, "{reads} logbook reads for {WRITES} writes in {watching:?}");
}
