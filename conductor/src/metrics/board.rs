//! [`MeteredBoard`]: a `JobBoard` that times and counts every request of the board
//! under it, by operation (`baton_board_requests_total`, `..._errors_total`,
//! `..._request_duration_seconds`), and counts posts and claims.
//!
//! A method added to `JobBoard` gets one forwarding line here.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flows::LogBook;
use jobboard::{
    Applied, ApplyRule, Availability, Claim, Completed, ConductorInfo, Error, FlowFilter, FlowVersion, Job, JobBoard,
    JobId, JobPage, ListQuery, NewFlowVersion, NewJob, ParkEntry, Presenter, TaskOutcome, Wakeups, WorkerRecord,
    WorkerSet,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// The board `inner`, measured into `metrics`.
#[derive(Debug)]
pub struct MeteredBoard {
    inner: Arc<dyn JobBoard>,
    metrics: Arc<Metrics>,
}

impl MeteredBoard {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn JobBoard>, metrics: Arc<Metrics>) -> Arc<dyn JobBoard> {
        Arc::new(MeteredBoard { inner, metrics })
    }

    async fn timed<T>(
        &self,
        op: &str,
        request: impl Future<Output = Result<T, Error>>,
    ) -> (Result<T, Error>, Duration) {
        let start = Instant::now();
        let result = request.await;
        let took = start.elapsed();
        self.metrics.board_request(op, took, result.is_err());
        (result, took)
    }

    async fn measure<T>(&self, op: &str, request: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        self.timed(op, request).await.0
    }
}

#[async_trait]
impl JobBoard for MeteredBoard {
    async fn post(&self, job: NewJob) -> Result<Job, Error> {
        let posted = self.measure("post", self.inner.post(job)).await?;
        self.metrics.job_posted(&posted.flow);
        Ok(posted)
    }

    async fn get(&self, id: JobId) -> Result<Job, Error> {
        self.measure("get", self.inner.get(id)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, Error> {
        self.measure("list", self.inner.list(query)).await
    }

    async fn claim_next(&self, flows: &FlowFilter) -> Result<Option<Claim>, Error> {
        let (result, took) = self.timed("claim_next", self.inner.claim_next(flows)).await;
        if let Ok(Some(claim)) = &result {
            self.metrics.job_claimed(&claim.job().flow, took);
        }
        result
    }

    async fn pick_next(&self, flows: &FlowFilter) -> Result<Option<jobboard::Pick>, Error> {
        let start = Instant::now();
        let picked = self.measure("pick_next", self.inner.pick_next(flows)).await?;
        let metrics = self.metrics.clone();
        // A claim's latency: from the pick until the first logbook write claimed it.
        Ok(picked.map(|pick| pick.when_claimed(move |claim| metrics.job_claimed(&claim.job().flow, start.elapsed()))))
    }

    async fn claim(&self, id: JobId) -> Result<Claim, Error> {
        let (result, took) = self.timed("claim", self.inner.claim(id)).await;
        if let Ok(claim) = &result {
            self.metrics.job_claimed(&claim.job().flow, took);
        }
        result
    }

    async fn request_cancel(&self, id: JobId) -> Result<Job, Error> {
        self.measure("request_cancel", self.inner.request_cancel(id)).await
    }

    async fn operate(&self, id: JobId, op: jobboard::Operation, by: &str) -> Result<Job, Error> {
        self.measure("operate", self.inner.operate(id, op, by)).await
    }

    async fn expire(&self, id: JobId, deadline: flows::Millis) -> Result<Job, Error> {
        self.measure("expire", self.inner.expire(id, deadline)).await
    }

    async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error> {
        self.measure("cancel_overdue", self.inner.cancel_overdue(limit)).await
    }

    fn claimable(&self) -> Wakeups {
        self.inner.claimable()
    }

    async fn watch_job(&self, id: JobId) -> Result<Wakeups, Error> {
        self.measure("watch_job", self.inner.watch_job(id)).await
    }

    async fn logbook(&self, id: JobId) -> Result<Option<LogBook>, Error> {
        self.measure("logbook", self.inner.logbook(id)).await
    }

    async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error> {
        self.measure("register_conductor", self.inner.register_conductor(info)).await
    }

    async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error> {
        self.measure("conductors", self.inner.conductors()).await
    }

    async fn complete(
        &self,
        job: JobId,
        atom: &str,
        who: Presenter<'_>,
        outcome: TaskOutcome,
    ) -> Result<Completed, Error> {
        self.measure("complete", self.inner.complete(job, atom, who, outcome)).await
    }

    async fn parked_tasks(&self, job: JobId) -> Result<Vec<ParkEntry>, Error> {
        self.measure("parked_tasks", self.inner.parked_tasks(job)).await
    }

    async fn time_out_due(&self, limit: usize) -> Result<usize, Error> {
        self.measure("time_out_due", self.inner.time_out_due(limit)).await
    }

    async fn backlog(&self) -> Result<jobboard::Backlog, Error> {
        self.measure("backlog", self.inner.backlog()).await
    }

    fn flow_changes(&self) -> Wakeups {
        self.inner.flow_changes()
    }

    fn schedules(&self) -> &dyn jobboard::ScheduleStore {
        self.inner.schedules()
    }

    async fn put_worker(&self, worker: &WorkerRecord) -> Result<(), Error> {
        self.measure("put_worker", self.inner.put_worker(worker)).await
    }

    async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error> {
        self.measure("remove_worker", self.inner.remove_worker(conductor, id)).await
    }

    async fn worker_set(&self) -> Result<watch::Receiver<WorkerSet>, Error> {
        self.inner.worker_set().await
    }

    async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error> {
        self.measure("set_draining", self.inner.set_draining(name, draining)).await
    }

    async fn capacity(&self, count_queued: bool) -> Result<jobboard::Capacity, Error> {
        self.measure("capacity", self.inner.capacity(count_queued)).await
    }

    async fn purge_expired(&self) -> Result<usize, Error> {
        self.measure("purge_expired", self.inner.purge_expired()).await
    }

    async fn apply_flow(&self, def: NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error> {
        self.measure("apply_flow", self.inner.apply_flow(def, rule)).await
    }

    async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
        self.measure("flow_version", self.inner.flow_version(name, version)).await
    }

    async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        self.measure("flow_history", self.inner.flow_history(name)).await
    }

    async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error> {
        self.measure("current_flows", self.inner.current_flows()).await
    }

    async fn delete_flow(&self, name: &str) -> Result<(), Error> {
        self.measure("delete_flow", self.inner.delete_flow(name)).await
    }

    fn session_lost(&self) -> CancellationToken {
        self.inner.session_lost()
    }

    fn availability(&self) -> watch::Receiver<Availability> {
        self.inner.availability()
    }

    async fn close(&self) -> Result<(), Error> {
        self.measure("close", self.inner.close()).await
    }
}
