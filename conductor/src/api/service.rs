//! `BatonService`: the `baton.v1.Baton` handlers over a `JobBoard` and a `FlowRegistry`.

use std::pin::Pin;

use futures::Stream;
use jobboard::{JobId, ListQuery, NewJob};
use proto::pb;
use proto::pb::baton_server::Baton;
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use super::convert::{conductor_to_pb, flow_to_pb, job_to_pb, local_status_to_pb, state_from_pb, tasks_to_pb};
use super::outline::{merge, Shape};
use super::status::{from_board, from_catalog, from_registry, invalid};
use super::{complete, definitions, limits, operate, schedules, watch, ApiState};

/// The gRPC service; cheap to clone (it holds `Arc`s).
#[derive(Debug, Clone)]
pub struct BatonService {
    state: ApiState,
}

impl BatonService {
    /// A service over `state`.
    pub fn new(state: ApiState) -> Self {
        BatonService { state }
    }
}

/// Parses a job id given on the wire.
pub(super) fn parse_id(id: &str) -> Result<JobId, Status> {
    JobId::parse_str(id.trim()).map_err(|e| invalid("id", format_args!("{} is not a job id ({e})", limits::shown(id))))
}

/// Parses a store given as JSON text: empty means `{}`, anything but an object is refused.
pub fn parse_store(text: &str) -> Result<Map<String, Value>, Status> {
    limits::store_text("store_json", text)?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => limits::store_keys("store_json", &map).map(|()| map),
        Ok(other) => Err(invalid("store_json", format_args!("must be a JSON object, got {}", json_kind(&other)))),
        Err(e) => Err(invalid("store_json", format_args!("not valid JSON ({e})"))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl BatonService {
    /// A job with its tasks and outputs, read now. `shape` is the job's flow as built
    /// for it (its Rust flow or pinned version), computed on first use and kept (a
    /// job's flow does not change).
    pub(super) async fn snapshot(
        state: &ApiState,
        id: JobId,
        shape: &mut Option<Option<Shape>>,
    ) -> Result<pb::Job, Status> {
        let job = state.board()?.get(id).await.map_err(|e| from_board(&e))?;
        Self::snapshot_of(state, job, shape).await
    }

    /// The snapshot of a job record just read: its logbook is read now, after it.
    pub(super) async fn snapshot_of(
        state: &ApiState,
        job: jobboard::Job,
        shape: &mut Option<Option<Shape>>,
    ) -> Result<pb::Job, Status> {
        let board = state.board()?;
        let logbook = board.logbook(job.id).await.map_err(|e| from_board(&e))?;
        if shape.is_none() {
            let built = match state.catalog.for_job(board.as_ref(), &job.flow, job.pin.as_ref()).await {
                Ok(resolving) => super::outline::outline(resolving.factory(), &job),
                // Shown without an outline (atoms as recorded); the runner says why it cannot build.
                Err(_) => None,
            };
            *shape = Some(built);
        }
        let shape = shape.as_ref().and_then(Option::as_ref);
        let atoms = merge(logbook.as_ref(), shape.map(|s| s.atoms.as_slice()));
        let mut reply = job_to_pb(&job, tasks_to_pb(&atoms));
        reply.outputs_json = serde_json::Value::Object(super::outline::outputs(shape, &atoms)).to_string();
        Ok(reply)
    }
}

impl BatonService {
    /// Posts a job (PostJob, and RerunJob with the job it reruns).
    pub(super) async fn post(
        &self,
        req: pb::PostJobRequest,
        rerun_of: Option<JobId>,
    ) -> Result<Response<pb::Job>, Status> {
        if req.flow.trim().is_empty() {
            return Err(invalid("flow", "must not be empty"));
        }
        let store = parse_store(&req.store_json)?;
        let board = self.state.board()?;
        // A Rust flow, or a flow file pinned to its current version (from memory) or the one asked for.
        let (store, pin, requires, warnings, deadline) = match self
            .state
            .catalog
            .for_post(board.as_ref(), &req.flow, req.version)
            .await
        {
            Ok(resolved) => {
                // Refuse before writing anything: the board never sees a job no conductor could build.
                // The job keeps the completed store (defaults filled in), so every run sees the same inputs.
                let store = resolved.factory.factory().complete(&store).map_err(|e| from_registry(&e))?;
                let warnings = self.state.fleet.warnings(board.as_ref(), &req.flow, &resolved.factory).await;
                let deadline = req.deadline_in_ms.or_else(|| resolved.factory.default_deadline());
                (store, resolved.pin, crate::features::required(&resolved.factory), warnings, deadline)
            }
            // Built into other live conductors only: accepted; they check its inputs when they build it.
            Err(unknown @ crate::catalog::CatalogError::UnknownFlow { .. }) if req.version.is_none() => {
                let owners = self.state.fleet.rust_owners(board.as_ref(), &req.flow).await;
                if owners.is_empty() {
                    return Err(from_catalog(&unknown));
                }
                let warning = format!(
                    "flow {:?} is built into conductor(s) {} but not into this one: its inputs are checked                      (and defaults filled) when it runs, not now",
                    req.flow,
                    owners.join(", ")
                );
                (store, None, Vec::new(), vec![warning], req.deadline_in_ms)
            }
            Err(other) => return Err(from_catalog(&other)),
        };
        // Last, so that a refused post costs no board read but the (cached) capacity.
        let store_bytes = req.store_json.len();
        self.state.admission.admit(board.as_ref(), store_bytes).await?;
        let job = NewJob {
            flow: req.flow,
            store,
            priority: req.priority,
            idempotency_key: req.idempotency_key.filter(|k| !k.is_empty()),
            pin,
            requires,
            deadline: deadline.map(|after| flows::now_millis().saturating_add(after)),
            rerun_of,
        };
        let job = board.post(job).await.map_err(|e| from_board(&e))?;
        self.state.admission.posted(store_bytes);
        tracing::debug!(job = %job.id, flow = %job.flow, version = ?job.pin.as_ref().map(|p| p.version), "job posted");
        let mut reply = job_to_pb(&job, Vec::new());
        reply.warnings = warnings;
        Ok(Response::new(reply))
    }
}

#[tonic::async_trait]
impl Baton for BatonService {
    async fn post_job(&self, request: Request<pb::PostJobRequest>) -> Result<Response<pb::Job>, Status> {
        if let Some(limiter) = &self.state.post_rate {
            limiter.admit(&request)?;
        }
        limits::check(request.get_ref())?;
        self.post(request.into_inner(), None).await
    }

    async fn get_job(&self, request: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        Ok(Response::new(Self::snapshot(&self.state, id, &mut None).await?))
    }

    async fn list_jobs(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        limits::check(request.get_ref())?;
        let req = request.into_inner();
        let state = pb::JobState::try_from(req.state)
            .map_err(|_| invalid("state", format_args!("{} is not a job state", req.state)))?;
        let query = ListQuery {
            state: state_from_pb(state),
            flow: Some(req.flow).filter(|f| !f.is_empty()),
            limit: limits::page_size(req.page_size),
            page_token: Some(req.page_token).filter(|t| !t.is_empty()),
        };
        let page = self.state.board()?.list(&query).await.map_err(|e| from_board(&e))?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: page.jobs.iter().map(|job| job_to_pb(job, Vec::new())).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    type WatchJobStream = Pin<Box<dyn Stream<Item = Result<pb::Job, Status>> + Send + 'static>>;

    async fn watch_job(&self, request: Request<pb::WatchJobRequest>) -> Result<Response<Self::WatchJobStream>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        let stream = watch::watch_job(self.state.clone(), id).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_job(&self, request: Request<pb::CancelJobRequest>) -> Result<Response<pb::Job>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        let by = operate::caller(&request);
        let job =
            self.state.board()?.operate(id, jobboard::Operation::Cancel, &by).await.map_err(|e| from_board(&e))?;
        tracing::info!(job = %id, state = %job.state, "cancellation requested");
        Ok(Response::new(Self::snapshot(&self.state, id, &mut None).await?))
    }

    async fn list_flows(&self, _: Request<pb::ListFlowsRequest>) -> Result<Response<pb::ListFlowsResponse>, Status> {
        let registry = self.state.catalog.rust();
        let mut flows: Vec<pb::Flow> =
            registry.names().into_iter().filter_map(|name| registry.get(name)).map(flow_to_pb).collect();
        flows.extend(definitions::file_flows(&self.state.catalog));
        flows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListFlowsResponse { flows }))
    }

    async fn list_conductors(
        &self,
        _: Request<pb::ListConductorsRequest>,
    ) -> Result<Response<pb::ListConductorsResponse>, Status> {
        let mut conductors = self.state.board()?.conductors().await.map_err(|e| from_board(&e))?;
        conductors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListConductorsResponse { conductors: conductors.iter().map(conductor_to_pb).collect() }))
    }

    async fn drain(&self, request: Request<pb::DrainRequest>) -> Result<Response<pb::Conductor>, Status> {
        limits::check(request.get_ref())?;
        let req = request.into_inner();
        if req.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if let Some(local) = self.state.local.as_ref().filter(|local| local.name == req.name) {
            // Our own claimer stops at once; the board write below makes `conductors` show it now.
            local.drain.set(req.draining);
        }
        self.state.board()?.set_draining(&req.name, req.draining).await.map_err(|e| match e {
            // The name is not empty, so the board refuses it only for naming no live conductor.
            jobboard::Error::InvalidInput(message) => Status::not_found(message),
            other => from_board(&other),
        })?;
        tracing::info!(conductor = %req.name, draining = req.draining, "drain set");
        let conductors = self.state.board()?.conductors().await.map_err(|e| from_board(&e))?;
        conductors
            .iter()
            .find(|c| c.name == req.name)
            .map(|c| Response::new(conductor_to_pb(c)))
            .ok_or_else(|| Status::not_found(format!("conductor {:?} is not live", req.name)))
    }

    async fn suspend_job(&self, request: Request<pb::SuspendJobRequest>) -> Result<Response<pb::Job>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        operate::operate(&self.state, id, jobboard::Operation::Suspend, &operate::caller(&request)).await
    }

    async fn resume_job(&self, request: Request<pb::ResumeJobRequest>) -> Result<Response<pb::Job>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        operate::operate(&self.state, id, jobboard::Operation::Resume, &operate::caller(&request)).await
    }

    async fn retry_job(&self, request: Request<pb::RetryJobRequest>) -> Result<Response<pb::Job>, Status> {
        limits::check(request.get_ref())?;
        let id = parse_id(&request.get_ref().id)?;
        operate::operate(&self.state, id, jobboard::Operation::Retry, &operate::caller(&request)).await
    }

    async fn rerun_job(&self, request: Request<pb::RerunJobRequest>) -> Result<Response<pb::Job>, Status> {
        if let Some(limiter) = &self.state.post_rate {
            limiter.admit(&request)?;
        }
        limits::check(request.get_ref())?;
        let req = request.into_inner();
        let id = parse_id(&req.id)?;
        let post = operate::rerun_request(&self.state, id, &req).await?;
        self.post(post, Some(id)).await
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        use pb::complete_task_request::{Outcome as O, Target as T};
        // With an auth file, an override by job and task needs `operate` and is recorded
        // under the caller's identity; a token needs no role (it is the credential).
        limits::check(request.get_ref())?;
        let checked = request.extensions().get::<crate::auth::OverrideCheck>().map(|check| check.0.clone());
        let req = request.into_inner();
        let target = match req.target {
            Some(T::Token(token)) => complete::Target::Token(token),
            Some(T::Task(task)) => complete::Target::Operator {
                job: parse_id(&task.job_id)?,
                task: task.task,
                operator: match checked {
                    Some(Ok(caller)) => caller.name,
                    Some(Err(denied)) => return Err(denied.status()),
                    None if req.operator.is_empty() => "operator".to_owned(),
                    None => req.operator,
                },
            },
            None => return Err(invalid("target", "give a token, or a job and task")),
        };
        let (result, failure) = match &req.outcome {
            Some(O::ResultJson(json)) => (Some(json.as_str()), None),
            Some(O::Failure(message)) => (None, Some(message.as_str())),
            None => (None, None),
        };
        let outcome = complete::outcome(result, failure).map_err(|e| invalid("outcome", e))?;
        let board = self.state.board()?;
        let done = complete::complete(board.as_ref(), &target, outcome).await.map_err(|e| from_board(&e))?;
        Ok(Response::new(pb::CompleteTaskResponse { completed_now: done == jobboard::Completed::Now }))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ConductorStatus>, Status> {
        let local = self.state.local.as_ref().ok_or_else(|| {
            Status::unimplemented("GetStatus is answered by conductors; this server runs no conductor")
        })?;
        Ok(Response::new(local_status_to_pb(local, self.state.board.get())))
    }

    async fn apply_flows(
        &self,
        request: Request<pb::ApplyFlowsRequest>,
    ) -> Result<Response<pb::ApplyFlowsResponse>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(definitions::apply(&self.state, request.into_inner()).await?))
    }

    async fn get_flow(&self, request: Request<pb::GetFlowRequest>) -> Result<Response<pb::FlowDefinition>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(definitions::get(&self.state, request.into_inner()).await?))
    }

    async fn flow_history(
        &self,
        request: Request<pb::FlowHistoryRequest>,
    ) -> Result<Response<pb::FlowHistoryResponse>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(definitions::history(&self.state, &request.into_inner().name).await?))
    }

    async fn delete_flow(
        &self,
        request: Request<pb::DeleteFlowRequest>,
    ) -> Result<Response<pb::DeleteFlowResponse>, Status> {
        limits::check(request.get_ref())?;
        definitions::delete(&self.state, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteFlowResponse {}))
    }

    async fn flow_graph(
        &self,
        request: Request<pb::FlowGraphRequest>,
    ) -> Result<Response<pb::FlowGraphResponse>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(definitions::graph(&self.state, request.into_inner()).await?))
    }

    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(schedules::create(&self.state, request.into_inner()).await?))
    }

    async fn list_schedules(
        &self,
        request: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(schedules::list(&self.state).await?))
    }

    async fn get_schedule(&self, request: Request<pb::GetScheduleRequest>) -> Result<Response<pb::Schedule>, Status> {
        limits::check(request.get_ref())?;
        Ok(Response::new(schedules::get(&self.state, schedules::name(&request.get_ref().name)?).await?))
    }

    async fn pause_schedule(
        &self,
        request: Request<pb::PauseScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        limits::check(request.get_ref())?;
        let name = schedules::name(&request.get_ref().name)?;
        Ok(Response::new(schedules::set_paused(&self.state, name, true).await?))
    }

    async fn resume_schedule(
        &self,
        request: Request<pb::ResumeScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        limits::check(request.get_ref())?;
        let name = schedules::name(&request.get_ref().name)?;
        Ok(Response::new(schedules::set_paused(&self.state, name, false).await?))
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        limits::check(request.get_ref())?;
        schedules::delete(&self.state, schedules::name(&request.get_ref().name)?).await?;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }
}
