//! The API over a real embedded board, through the real client, on a loopback port.
//!
//! No conductor claims here, so posted jobs stay UNCLAIMED unless a test
//! claims them through the board itself.

use std::sync::Arc;
use std::time::Duration;

use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, JobBoard, ListQuery, Outcome};
use proto::{pb, Client, ClientError};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::{router, ApiState};

mod fuzz;
mod inputs;
mod requests;

/// An API server on a loopback port over a fresh embedded board; stops when dropped.
pub(crate) struct Server {
    pub(crate) client: Client,
    pub(crate) board: Arc<dyn JobBoard>,
    pub(crate) endpoint: String,
    stop: CancellationToken,
    drain: crate::drain::DrainHandle,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a [`Server`] with the demo flows registered.
pub(crate) async fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let board: Arc<dyn JobBoard> =
        Arc::new(EmbeddedBoard::open(&dir.path().join("board.sqlite3"), BoardConfig::new("api-test")).unwrap());
    let stop = CancellationToken::new();
    let drain = crate::drain::DrainHandle::new();
    let state = ApiState::new(board.clone(), Arc::new(crate::demo_flows::registry()))
        .with_shutdown(stop.clone())
        .with_local(crate::local::LocalStatus::new("api-test", drain.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (router, _health) = router(state).await;
    tokio::spawn(router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.clone().cancelled_owned()));
    let client = Client::connect(endpoint.clone()).await.unwrap();
    Server { client, board, endpoint, stop, drain, _dir: dir }
}

pub(crate) fn code(err: ClientError) -> (Code, String) {
    match err {
        ClientError::Rpc(status) => (status.code(), status.message().to_owned()),
        other => panic!("expected a status, got {other}"),
    }
}

pub(crate) fn post(flow: &str, store: &str) -> pb::PostJobRequest {
    pb::PostJobRequest {
        flow: flow.into(),
        store_json: store.into(),
        priority: 0,
        idempotency_key: None,
        version: None,
        deadline_in_ms: None,
    }
}

pub(crate) async fn job_count(board: &Arc<dyn JobBoard>) -> usize {
    board.list(&ListQuery::default()).await.unwrap().jobs.len()
}

#[tokio::test]
async fn bad_posts_are_invalid_argument_and_write_nothing() {
    let server = serve().await;
    let (c, message) = code(server.client.post_job(post("nope", "{}")).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("nope"), "{message}");
    let (c, message) = code(server.client.post_job(post("chain", r#"{"steps": 2}"#)).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("step_ms"), "{message}");
    let (c, message) = code(server.client.post_job(post("chain", "[1, 2]")).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("JSON object"), "{message}");
    let (c, _) = code(server.client.post_job(post("chain", "{not json")).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert_eq!(job_count(&server.board).await, 0);
}

#[tokio::test]
async fn post_get_list_and_idempotency() {
    let server = serve().await;
    let mut request = post("chain", r#"{"steps": 2, "step_ms": 5}"#);
    request.idempotency_key = Some("once".into());
    let job = server.client.post_job(request.clone()).await.unwrap();
    assert_eq!(job.state(), pb::JobState::Unclaimed);
    assert_eq!(server.client.post_job(request).await.unwrap().id, job.id, "same key, same job");

    let got = server.client.get_job(&job.id).await.unwrap();
    assert_eq!(got.flow, "chain");
    let names: Vec<&str> = got.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 2, "outline of a 2-step chain: {names:?}");
    assert!(got.tasks.iter().all(|t| t.state == "PENDING" && t.executions == 0));

    server.client.post_job(post("provision-cluster", r#"{"nodes": 1, "step_ms": 5}"#)).await.unwrap();
    let all = server.client.list_all_jobs(pb::ListJobsRequest::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|j| j.tasks.is_empty()), "lists carry no tasks");
    let chains =
        server.client.list_all_jobs(pb::ListJobsRequest { flow: "chain".into(), ..Default::default() }).await.unwrap();
    assert_eq!(chains.len(), 1);
    let paged = server.client.list_jobs(pb::ListJobsRequest { page_size: 1, ..Default::default() }).await.unwrap();
    assert_eq!(paged.jobs.len(), 1);
    assert!(!paged.next_page_token.is_empty());
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let server = serve().await;
    let (c, _) = code(server.client.get_job(uuid::Uuid::new_v4().to_string()).await.unwrap_err());
    assert_eq!(c, Code::NotFound);
    let (c, message) = code(server.client.get_job("not-a-uuid").await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("not-a-uuid"), "{message}");
    let (c, _) = code(server.client.watch_job(uuid::Uuid::new_v4().to_string()).await.unwrap_err());
    assert_eq!(c, Code::NotFound);
    let (c, _) = code(server.client.cancel_job(uuid::Uuid::new_v4().to_string()).await.unwrap_err());
    assert_eq!(c, Code::NotFound);
}

#[tokio::test]
async fn cancel_of_an_unclaimed_job_ends_it_and_the_watch() {
    let server = serve().await;
    let job = server.client.post_job(post("chain", r#"{"steps": 1, "step_ms": 5}"#)).await.unwrap();
    let mut stream = server.client.watch_job(&job.id).await.unwrap();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.state(), pb::JobState::Unclaimed);
    let cancelled = server.client.cancel_job(&job.id).await.unwrap();
    assert_eq!(cancelled.state(), pb::JobState::Complete);
    assert_eq!(cancelled.outcome(), pb::Outcome::Cancelled);
    let last = tokio::time::timeout(Duration::from_secs(10), async {
        let mut last = first;
        while let Some(job) = stream.message().await.unwrap() {
            last = job;
        }
        last
    })
    .await
    .unwrap();
    assert_eq!(last.outcome(), pb::Outcome::Cancelled);
}

#[tokio::test]
async fn watch_follows_a_claimed_job_to_its_end() {
    let server = serve().await;
    let job = server.client.post_job(post("chain", r#"{"steps": 1, "step_ms": 5}"#)).await.unwrap();
    let mut stream = server.client.watch_job(&job.id).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().state(), pb::JobState::Unclaimed);
    let claim = server.board.claim(job.id.parse().unwrap()).await.unwrap();
    let claimed = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(claimed.state(), pb::JobState::Claimed);
    assert_eq!(claimed.owner.as_deref(), Some("api-test"));
    claim.consume(Outcome::Success, None).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((done.state(), done.outcome()), (pb::JobState::Complete, pb::Outcome::Success));
    assert!(tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().is_none());
}

#[tokio::test]
async fn flows_conductors_and_drain() {
    let server = serve().await;
    let flows = server.client.list_flows().await.unwrap();
    let chain = flows.iter().find(|f| f.name == "chain").unwrap();
    assert_eq!(chain.required_inputs, ["steps", "step_ms"]);
    let cluster = flows.iter().find(|f| f.name == "provision-cluster").unwrap();
    assert_eq!(cluster.optional_inputs, ["step_ms", "flaky"]);

    server
        .board
        .register_conductor(&jobboard::ConductorInfo {
            name: "api-test".into(),
            address: "127.0.0.1:1".into(),
            since: 7,
            draining: false,
            jobs: 0,
            task_kinds: vec!["noop".into()],
            rust_flows: vec!["chain".into()],
            features: vec!["file-flow".into()],
        })
        .await
        .unwrap();
    let conductors = server.client.list_conductors().await.unwrap();
    assert_eq!(conductors.len(), 1);
    assert!(!conductors[0].draining);
    assert_eq!(
        (&conductors[0].task_kinds, &conductors[0].rust_flows),
        (&vec!["noop".to_owned()], &vec!["chain".to_owned()])
    );
    assert!(server.client.drain("api-test", true).await.unwrap().draining);
    assert!(server.client.list_conductors().await.unwrap()[0].draining);
    assert!(server.drain.is_draining(), "this process's claimer is told at once");
    assert!(!server.client.drain("api-test", false).await.unwrap().draining);
    assert!(!server.drain.is_draining());
    // An unknown conductor is a missing resource, like an unknown job id.
    let (c, message) = code(server.client.drain("no-such-conductor", true).await.unwrap_err());
    assert_eq!(c, Code::NotFound, "{message}");
    assert!(message.contains("no-such-conductor"), "{message}");
    let (c, _) = code(server.client.drain("", true).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let server = serve().await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = |service: &str| tonic_health::pb::HealthCheckRequest { service: service.into() };
    let overall = health.check(check("")).await.unwrap().into_inner();
    assert_eq!(overall.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
    let baton = health.check(check(proto::SERVICE_NAME)).await.unwrap().into_inner();
    assert_eq!(baton.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = serve().await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}")
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&proto::SERVICE_NAME), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn watch_streams_end_when_the_server_stops() {
    let server = serve().await;
    let job = server.client.post_job(post("chain", r#"{"steps": 1, "step_ms": 5}"#)).await.unwrap();
    let mut stream = server.client.watch_job(&job.id).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().state(), pb::JobState::Unclaimed);
    server.stop.cancel();
    // The open stream must not hold the graceful shutdown open: it ends, with UNAVAILABLE.
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap();
    match ended {
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status}"),
        Ok(next) => assert!(next.is_none(), "a snapshot after shutdown: {next:?}"),
    }
}

#[tokio::test]
async fn oversize_store_names_the_limit_and_writes_nothing() {
    let server = serve().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let store = serde_json::json!({"steps": 1, "step_ms": 1, "padding": big}).to_string();
    let (c, message) = code(server.client.post_job(post("chain", &store)).await.unwrap_err());
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("1048576"), "{message}");
    assert_eq!(job_count(&server.board).await, 0);
}

#[tokio::test]
async fn without_a_board_calls_are_unavailable_at_once_naming_the_cause_and_status_still_answers() {
    let stop = CancellationToken::new();
    let drain = crate::drain::DrainHandle::new();
    let local = crate::local::LocalStatus::new("lonely", drain);
    let slot = super::BoardSlot::empty("cannot reach etcd at http://127.0.0.1:9: connection refused");
    let state = ApiState::over(
        slot.clone(),
        Arc::new(crate::catalog::Catalog::new(
            Arc::new(crate::demo_flows::registry()),
            Arc::new(flowfile::Kinds::default_allowed()),
        )),
    )
    .with_shutdown(stop.clone())
    .with_local(local.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (router, _health) = router(state).await;
    tokio::spawn(router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.clone().cancelled_owned()));
    let client = Client::connect(endpoint).await.unwrap();

    let answered =
        tokio::time::timeout(Duration::from_secs(5), client.post_job(post("chain", r#"{"steps": 1, "step_ms": 0}"#)));
    let (c, message) = code(answered.await.expect("answered at once, not after a request timeout").unwrap_err());
    assert_eq!(c, Code::Unavailable);
    assert!(message.contains("connection refused") && message.contains("127.0.0.1:9"), "{message}");
    let (c, _) = code(client.list_jobs(pb::ListJobsRequest::default()).await.unwrap_err());
    assert_eq!(c, Code::Unavailable);

    local.session_started();
    local.session_lost();
    let status = client.get_status().await.unwrap();
    assert_eq!(status.name, "lonely");
    assert_eq!(status.board(), pb::BoardStatus::Unavailable);
    assert!(status.board_cause.contains("connection refused"), "{}", status.board_cause);
    assert_eq!((status.sessions_started, status.sessions_lost), (1, 1));
    assert!(status.running.is_empty());
    stop.cancel();
}

#[tokio::test]
async fn status_lists_what_this_conductor_runs() {
    let server = serve().await;
    let status = server.client.get_status().await.unwrap();
    assert_eq!(status.board(), pb::BoardStatus::Available);
    assert!(status.board_cause.is_empty());
    assert!(status.running.is_empty());
}
