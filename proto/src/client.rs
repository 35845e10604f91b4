//! `Client`: the typed `baton.v1` client, one method per call.
//!
//! [`ClientOptions`] carries what a secured conductor asks of callers (a bearer
//! token, the CA that signed its certificate, a client certificate for mutual TLS):
//! the same options `baton` takes as `--token`, `--ca`, `--cert` and `--key`.

mod schedules;

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use crate::client_options::{Bearer, ClientOptions, OptionsError};
use crate::pb;
use crate::pb::baton_client::BatonClient;
use crate::pb::workers_client::WorkersClient;

/// Why a call through [`Client`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint {endpoint:?}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        #[source]
        source: tonic::transport::Error,
    },
    /// Nothing answered at the endpoint.
    #[error("cannot connect to {endpoint}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// TLS settings that cannot be used (an unreadable or invalid PEM file).
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The server answered with an error status. Not a `source`: its message
    /// is already in this error's, and error chains would print it twice.
    #[error("{} ({:?})", .0.message(), .0.code())]
    Rpc(tonic::Status),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Rpc(status)
    }
}

impl ClientError {
    /// The gRPC code: the server's, or UNAVAILABLE when nothing answered.
    pub fn code(&self) -> tonic::Code {
        match self {
            ClientError::Rpc(status) => status.code(),
            ClientError::Connect { .. } => tonic::Code::Unavailable,
            ClientError::InvalidEndpoint { .. } | ClientError::Options(_) => tonic::Code::InvalidArgument,
        }
    }

    /// Whether the call failed on the way rather than with an answer of the server's:
    /// nothing answered, or the connection broke (reset, closed, a keep-alive ping went
    /// unanswered). The server may or may not have seen the request.
    pub fn is_transport(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            ClientError::InvalidEndpoint { .. } | ClientError::Options(_) => false,
            // tonic makes UNKNOWN statuses with a source from local transport errors; a
            // status the server sent arrives in headers and has none.
            ClientError::Rpc(status) => {
                status.code() == tonic::Code::Unknown && std::error::Error::source(status).is_some()
            }
        }
    }
}

/// A connected `baton.v1.Baton` client. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: BatonClient<InterceptedService<Channel, Bearer>>,
    workers: WorkersClient<InterceptedService<Channel, Bearer>>,
    endpoint: String,
}

impl Client {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:50051`), failing at once if nothing answers.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, ClientError> {
        Self::connect_with_options(endpoint, &ClientOptions::default()).await
    }

    /// Connects to `endpoint`, giving up on the TCP connection after `connect_timeout`.
    /// While a call is open the connection is pinged every `keep_alive`, and dropped when
    /// a ping goes unanswered that long: a stopped server then breaks a long-lived stream
    /// (`WatchJob`) with UNAVAILABLE instead of leaving it silent forever.
    pub async fn connect_with(
        endpoint: impl Into<String>,
        connect_timeout: Duration,
        keep_alive: Duration,
    ) -> Result<Self, ClientError> {
        let options = ClientOptions {
            connect_timeout: Some(connect_timeout),
            keep_alive: Some(keep_alive),
            ..Default::default()
        };
        Self::connect_with_options(endpoint, &options).await
    }

    /// Connects to `endpoint` (`http://` or `https://`) with `options`: timeouts,
    /// TLS (a CA, a client certificate) and a bearer token sent with every call.
    pub async fn connect_with_options(
        endpoint: impl Into<String>,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let endpoint = endpoint.into();
        let target = options.endpoint(&endpoint)?;
        let channel =
            target.connect().await.map_err(|source| ClientError::Connect { endpoint: endpoint.clone(), source })?;
        let inner = BatonClient::with_interceptor(channel.clone(), options.bearer());
        let workers = WorkersClient::with_interceptor(channel, options.bearer());
        Ok(Client { inner, workers, endpoint })
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Posts a job.
    pub async fn post_job(&self, request: pb::PostJobRequest) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().post_job(request).await?.into_inner())
    }

    /// Reads a job with its tasks.
    pub async fn get_job(&self, id: impl Into<String>) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().get_job(pb::GetJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Lists one page of jobs.
    pub async fn list_jobs(&self, request: pb::ListJobsRequest) -> Result<pb::ListJobsResponse, ClientError> {
        Ok(self.inner.clone().list_jobs(request).await?.into_inner())
    }

    /// Lists every job that matches, following the pages to the end.
    pub async fn list_all_jobs(&self, mut request: pb::ListJobsRequest) -> Result<Vec<pb::Job>, ClientError> {
        let mut jobs = Vec::new();
        loop {
            let page = self.list_jobs(request.clone()).await?;
            jobs.extend(page.jobs);
            if page.next_page_token.is_empty() {
                return Ok(jobs);
            }
            request.page_token = page.next_page_token;
        }
    }

    /// Streams snapshots of a job until it ends.
    pub async fn watch_job(&self, id: impl Into<String>) -> Result<tonic::Streaming<pb::Job>, ClientError> {
        Ok(self.inner.clone().watch_job(pb::WatchJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Requests cancellation of a job.
    pub async fn cancel_job(&self, id: impl Into<String>) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().cancel_job(pb::CancelJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Suspends a job (see `SuspendJob`).
    pub async fn suspend_job(&self, id: impl Into<String>) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().suspend_job(pb::SuspendJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Makes a suspended job claimable again (see `ResumeJob`).
    pub async fn resume_job(&self, id: impl Into<String>) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().resume_job(pb::ResumeJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Retries a job that ended FAILURE, or a trashed one (see `RetryJob`).
    pub async fn retry_job(&self, id: impl Into<String>) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().retry_job(pb::RetryJobRequest { id: id.into() }).await?.into_inner())
    }

    /// Posts a rerun of a job: same flow version and store, `store_json`'s values replacing.
    pub async fn rerun_job(&self, request: pb::RerunJobRequest) -> Result<pb::Job, ClientError> {
        Ok(self.inner.clone().rerun_job(request).await?.into_inner())
    }

    /// Completes a parked task (by token, or an operator's override by job and task).
    /// `Ok(true)` if this call completed it, `Ok(false)` if the same completion was already recorded.
    pub async fn complete_task(&self, request: pb::CompleteTaskRequest) -> Result<bool, ClientError> {
        Ok(self.inner.clone().complete_task(request).await?.into_inner().completed_now)
    }

    /// The flows the server can run.
    pub async fn list_flows(&self) -> Result<Vec<pb::Flow>, ClientError> {
        Ok(self.inner.clone().list_flows(pb::ListFlowsRequest {}).await?.into_inner().flows)
    }

    /// The live conductors.
    pub async fn list_conductors(&self) -> Result<Vec<pb::Conductor>, ClientError> {
        Ok(self.inner.clone().list_conductors(pb::ListConductorsRequest {}).await?.into_inner().conductors)
    }

    /// Drains a conductor (or undoes it with `draining = false`).
    pub async fn drain(&self, name: impl Into<String>, draining: bool) -> Result<pb::Conductor, ClientError> {
        Ok(self.inner.clone().drain(pb::DrainRequest { name: name.into(), draining }).await?.into_inner())
    }

    /// Applies flow files to the board.
    pub async fn apply_flows(&self, files: Vec<pb::FlowFileText>) -> Result<Vec<pb::AppliedFlow>, ClientError> {
        Ok(self.inner.clone().apply_flows(pb::ApplyFlowsRequest { files }).await?.into_inner().flows)
    }

    /// One stored version of a flow file (the current one without `version`).
    pub async fn get_flow(
        &self,
        name: impl Into<String>,
        version: Option<u32>,
    ) -> Result<pb::FlowDefinition, ClientError> {
        Ok(self.inner.clone().get_flow(pb::GetFlowRequest { name: name.into(), version }).await?.into_inner())
    }

    /// Every stored version of a flow file, oldest first.
    pub async fn flow_history(&self, name: impl Into<String>) -> Result<Vec<pb::FlowDefinition>, ClientError> {
        Ok(self.inner.clone().flow_history(pb::FlowHistoryRequest { name: name.into() }).await?.into_inner().versions)
    }

    /// Removes a flow file with every version.
    pub async fn delete_flow(&self, name: impl Into<String>) -> Result<(), ClientError> {
        self.inner.clone().delete_flow(pb::DeleteFlowRequest { name: name.into() }).await?;
        Ok(())
    }

    /// A flow's execution graph as text.
    pub async fn flow_graph(&self, request: pb::FlowGraphRequest) -> Result<String, ClientError> {
        Ok(self.inner.clone().flow_graph(request).await?.into_inner().text)
    }

    /// This conductor's own status: its board, its sessions, the jobs it runs now.
    pub async fn get_status(&self) -> Result<pb::ConductorStatus, ClientError> {
        Ok(self.inner.clone().get_status(pb::GetStatusRequest {}).await?.into_inner())
    }

    /// The workers connected to the fleet (`local_only`: those of this conductor only).
    pub async fn list_workers(&self, local_only: bool) -> Result<Vec<pb::WorkerInfo>, ClientError> {
        let request = pb::ListWorkersRequest { local_only };
        Ok(self.workers.clone().list_workers(request).await?.into_inner().workers)
    }

    /// The `baton.v1.Workers` client on the same connection (a worker's `Attach` stream).
    pub fn workers(&self) -> WorkersClient<InterceptedService<Channel, Bearer>> {
        self.workers.clone()
    }
}
