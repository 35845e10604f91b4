//! Operators' requests on a job over the API: SuspendJob, ResumeJob, RetryJob
//! (and CancelJob's caller), recorded on the job with the caller's identity; and
//! what RerunJob posts. The rules live in `jobboard::lifecycle`; a refusal comes
//! back as FAILED_PRECONDITION naming the state, an unknown id as NOT_FOUND.

use jobboard::{JobId, Operation};
use proto::pb;
use tonic::{Request, Response, Status};

use super::service::{parse_store, BatonService};
use super::status::from_board;
use super::ApiState;
use crate::auth::Caller;

/// Who is asking: the authenticated identity's name, or `anonymous` without an auth file.
pub(crate) fn caller<T>(request: &Request<T>) -> String {
    request.extensions().get::<Caller>().map_or_else(|| Caller::anonymous().name, |caller| caller.name.clone())
}

/// Applies `op` to job `id` as `by`; answers with the job as it is now.
pub(crate) async fn operate(state: &ApiState, id: JobId, op: Operation, by: &str) -> Result<Response<pb::Job>, Status> {
    let job = state.board()?.operate(id, op, by).await.map_err(|e| from_board(&e))?;
    tracing::info!(job = %id, action = op.as_str(), %by, state = %job.state, "operator request");
    Ok(Response::new(BatonService::snapshot_of(state, job, &mut None).await?))
}

/// The post of a rerun of job `id`: its flow and pinned version, its store with
/// `req`'s values replacing, its priority, and `req`'s idempotency key.
pub(crate) async fn rerun_request(
    state: &ApiState,
    id: JobId,
    req: &pb::RerunJobRequest,
) -> Result<pb::PostJobRequest, Status> {
    let old = state.board()?.get(id).await.map_err(|e| from_board(&e))?;
    let mut store = old.store;
    store.extend(parse_store(&req.store_json)?);
    Ok(pb::PostJobRequest {
        flow: old.flow,
        store_json: serde_json::Value::Object(store).to_string(),
        priority: old.priority,
        idempotency_key: req.idempotency_key.clone(),
        version: old.pin.map(|pin| pin.version),
        deadline_in_ms: req.deadline_in_ms,
    })
}
