//! [`Fleet`]: the conductors of `--endpoint`, tried in order, with timeouts and failover.
//!
//! A call goes to the endpoint that answered last (the first one at the start). When it
//! cannot connect, connects too slowly (`--connect-timeout`), gets no answer in time
//! (`--timeout`), gets UNAVAILABLE or loses its connection, the same request goes to the
//! next endpoint, each endpoint once per call. Any other answer is final: a NOT_FOUND from
//! one conductor is the fleet's answer, as every conductor reads the same board.
//!
//! Re-sending is safe for every call the CLI makes: reads are reads, cancel and drain set
//! a state twice to the same value, and `post` and `rerun` always carry an idempotency
//! key. (A suspend, resume or retry re-sent after the first landed is refused, naming the
//! state it already brought the job to.)

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use proto::{Client, ClientError, ClientOptions};

use crate::report::{chain_line, io_words};

/// How often an open call pings its connection, and how long a ping may go unanswered.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The timeouts of `--connect-timeout` and `--timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Bound on opening a connection to one endpoint.
    pub connect: Duration,
    /// Bound on one request to one endpoint (for a stream: on opening it).
    pub request: Duration,
}

/// Why one endpoint did not serve a call, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made; the cause in words ("connection refused").
    Connect(String),
    /// No connection within the connect timeout.
    ConnectTimeout(Duration),
    /// Connected, but no answer within the request timeout.
    Timeout(Duration),
    /// The conductor answered UNAVAILABLE (its board is away, or it is stopping).
    Unavailable(String),
    /// The connection broke during the call.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(cause) => write!(f, "{cause}"),
            Failure::ConnectTimeout(limit) => write!(f, "no connection within {}", show(*limit)),
            Failure::Timeout(limit) => write!(f, "no answer within {}", show(*limit)),
            Failure::Unavailable(message) => write!(f, "unavailable: {message}"),
            Failure::Broken(cause) => write!(f, "connection lost: {cause}"),
        }
    }
}

/// One endpoint tried and why it did not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The endpoint as given.
    pub endpoint: String,
    /// Why it did not serve.
    pub failure: Failure,
}

/// Why a call through the [`Fleet`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A conductor answered with an error: the answer of the fleet.
    #[error("{0}")]
    Answer(ClientError),
    /// No endpoint served the call.
    #[error("{}", unreachable_line(.0))]
    Unreachable(Vec<Attempt>),
}

/// `no conductor answered (E1: why; E2: why); <what to do>`.
fn unreachable_line(attempts: &[Attempt]) -> String {
    let tried: Vec<String> = attempts.iter().map(|a| format!("{}: {}", a.endpoint, a.failure)).collect();
    let all_unavailable = !attempts.is_empty() && attempts.iter().all(|a| matches!(a.failure, Failure::Unavailable(_)));
    let hint = if all_unavailable {
        "the conductors run but cannot serve now; see `baton status`, and retry once their board is back"
    } else {
        "check that a conductor runs there, or point --endpoint (or BATON_ENDPOINT) at one that does"
    };
    format!("no conductor answered ({}); {hint}", tried.join("; "))
}

/// A duration as the flags take it (`2s`, `500ms`).
fn show(duration: Duration) -> String {
    flowfile::duration::format_duration(duration)
}

/// The endpoints of `--endpoint`, with a connection kept to each one used.
#[derive(Debug)]
pub struct Fleet {
    endpoints: Vec<String>,
    timeouts: Timeouts,
    /// Open connections by endpoint index; a connection that failed a call is dropped.
    clients: Mutex<Vec<Option<Client>>>,
    /// The endpoint that answered last: calls start there.
    current: AtomicUsize,
    /// Token and TLS of every connection (`--token`, `--ca`, `--cert`, `--key`).
    options: ClientOptions,
}

/// `--endpoint` held no endpoint, or one that is not a URL.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Nothing but commas and spaces.
    #[error("no endpoint given; set --endpoint or BATON_ENDPOINT, e.g. http://127.0.0.1:50051")]
    Empty,
    /// Not a URL tonic can connect to.
    #[error("invalid endpoint {0:?}; expected a URL such as http://127.0.0.1:50051")]
    Invalid(String),
}

impl Fleet {
    /// The comma-separated endpoints of `list`, each checked before any is tried.
    pub fn new(list: &str, timeouts: Timeouts) -> Result<Self, EndpointError> {
        let endpoints: Vec<String> =
            list.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
        if endpoints.is_empty() {
            return Err(EndpointError::Empty);
        }
        if let Some(bad) = endpoints.iter().find(|e| tonic::transport::Endpoint::from_shared(e.to_string()).is_err()) {
            return Err(EndpointError::Invalid(bad.clone()));
        }
        let clients = Mutex::new(vec![None; endpoints.len()]);
        Ok(Fleet { endpoints, timeouts, clients, current: AtomicUsize::new(0), options: ClientOptions::default() })
    }

    /// Connects with this token and TLS.
    #[must_use]
    pub fn with_options(mut self, options: ClientOptions) -> Fleet {
        self.options = options;
        self
    }

    /// The same endpoints and timeouts with no connection and no memory of who answered:
    /// for a side request that must not change where the next call starts.
    pub fn fresh(&self) -> Fleet {
        let clients = Mutex::new(vec![None; self.endpoints.len()]);
        Fleet {
            endpoints: self.endpoints.clone(),
            timeouts: self.timeouts,
            clients,
            current: AtomicUsize::new(0),
            options: self.options.clone(),
        }
    }

    /// The endpoints, in the order given.
    #[cfg(test)]
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Sends `request` to one endpoint after another until one serves it (see the module doc).
    /// `request` gets a connected client; each try is bounded by the request timeout.
    pub async fn call<T, F, Fut>(&self, request: F) -> Result<T, CallError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let count = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut attempts = Vec::new();
        for index in (start..start + count).map(|i| i % count) {
            let endpoint = &self.endpoints[index];
            let failure = match self.client(index).await {
                Err(failure) => failure,
                Ok(client) => match tokio::time::timeout(self.timeouts.request, request(client)).await {
                    Ok(Ok(value)) => {
                        self.current.store(index, Ordering::Relaxed);
                        return Ok(value);
                    }
                    Ok(Err(error)) => match passing_failure(&error) {
                        Some(failure) => {
                            tracing::debug!(endpoint, error = %detail(&error), "call failed; trying the next endpoint");
                            failure
                        }
                        None => return Err(CallError::Answer(error)),
                    },
                    Err(_) => Failure::Timeout(self.timeouts.request),
                },
            };
            tracing::debug!(endpoint, %failure, "endpoint did not serve the call");
            self.forget(index);
            attempts.push(Attempt { endpoint: endpoint.clone(), failure });
        }
        Err(CallError::Unreachable(attempts))
    }

    /// Drops the connection to the endpoint that answered last and makes the next one
    /// current: a stream that broke there is re-opened elsewhere first.
    pub fn move_on(&self) {
        let index = self.current.load(Ordering::Relaxed);
        self.forget(index);
        self.current.store((index + 1) % self.endpoints.len(), Ordering::Relaxed);
    }

    /// The open connection to endpoint `index`, or a new one.
    async fn client(&self, index: usize) -> Result<Client, Failure> {
        if let Some(client) = self.lock()[index].clone() {
            return Ok(client);
        }
        let endpoint = self.endpoints[index].clone();
        let limit = self.timeouts.connect;
        // tonic's own connect timeout covers the TCP connect; this one covers all of it.
        let options =
            ClientOptions { connect_timeout: Some(limit), keep_alive: Some(KEEP_ALIVE), ..self.options.clone() };
        let connected = tokio::time::timeout(limit, Client::connect_with_options(endpoint.clone(), &options)).await;
        match connected {
            Err(_) => Err(Failure::ConnectTimeout(limit)),
            Ok(Err(error)) => {
                tracing::debug!(endpoint, error = %detail(&error), "cannot connect");
                Err(connect_failure(&error, limit))
            }
            Ok(Ok(client)) => {
                self.lock()[index] = Some(client.clone());
                Ok(client)
            }
        }
    }

    fn forget(&self, index: usize) {
        self.lock()[index] = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Client>>> {
        // The vector holds no invariant a panic could break: take it even if poisoned.
        self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The failure of an error that another endpoint may not have: `None` for a final answer.
pub fn passing_failure(error: &ClientError) -> Option<Failure> {
    match error {
        ClientError::Connect { .. } => Some(Failure::Connect(root_words(error))),
        ClientError::Rpc(status) if status.code() == tonic::Code::Unavailable => {
            Some(Failure::Unavailable(status.message().to_owned()))
        }
        _ if error.is_transport() => Some(Failure::Broken(root_words(error))),
        _ => None,
    }
}

fn connect_failure(error: &ClientError, limit: Duration) -> Failure {
    if root_io(error).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
        Failure::ConnectTimeout(limit)
    } else {
        Failure::Connect(root_words(error))
    }
}

/// The error and its causes, for `--verbose` logs: the status's own source chain included.
pub fn detail(error: &ClientError) -> String {
    let mut messages = vec![error.to_string()];
    let mut source: Option<&(dyn std::error::Error + 'static)> = match error {
        ClientError::Rpc(status) => std::error::Error::source(status),
        other => std::error::Error::source(other),
    };
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    chain_line(&messages)
}

fn causes(error: &ClientError) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let first: Option<&(dyn std::error::Error + 'static)> = match error {
        ClientError::Rpc(status) => std::error::Error::source(status),
        other => std::error::Error::source(other),
    };
    std::iter::successors(first, |cause| cause.source())
}

fn root_io(error: &ClientError) -> Option<&std::io::Error> {
    causes(error).filter_map(|cause| cause.downcast_ref::<std::io::Error>()).last()
}

/// The deepest cause in words: `connection refused` rather than `transport error`.
fn root_words(error: &ClientError) -> String {
    if let Some(io) = root_io(error) {
        return io_words(io);
    }
    causes(error).last().map_or_else(|| error.to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts { connect: Duration::from_millis(500), request: Duration::from_secs(1) }
    }

    #[test]
    fn endpoints_are_split_trimmed_and_checked() {
        let fleet = Fleet::new(" http://a:1, ,http://b:2 ", timeouts()).unwrap();
        assert_eq!(fleet.endpoints(), ["http://a:1", "http://b:2"]);
        assert!(matches!(Fleet::new(" , ", timeouts()), Err(EndpointError::Empty)));
        let err = Fleet::new("http://a:1,not a url", timeouts()).unwrap_err();
        assert_eq!(err.to_string(), "invalid endpoint \"not a url\"; expected a URL such as http://127.0.0.1:50051");
    }

    #[test]
    fn only_unavailable_and_transport_failures_pass_to_the_next_endpoint() {
        let unavailable = ClientError::Rpc(tonic::Status::unavailable("board unavailable: etcd down"));
        assert_eq!(passing_failure(&unavailable), Some(Failure::Unavailable("board unavailable: etcd down".into())));
        for final_code in
            [tonic::Status::not_found("no job"), tonic::Status::invalid_argument("bad"), tonic::Status::unknown("boom")]
        {
            assert_eq!(passing_failure(&ClientError::Rpc(final_code)), None);
        }
        let broken = tonic::Status::from_error(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        let broken = ClientError::Rpc(broken);
        assert!(matches!(passing_failure(&broken), Some(Failure::Unavailable(_) | Failure::Broken(_))), "{broken:?}");
    }

    #[test]
    fn unreachable_names_each_endpoint_and_what_to_do() {
        let attempts = vec![
            Attempt { endpoint: "http://a:1".into(), failure: Failure::Connect("connection refused".into()) },
            Attempt { endpoint: "http://b:2".into(), failure: Failure::Timeout(Duration::from_secs(1)) },
        ];
        let line = CallError::Unreachable(attempts).to_string();
        assert_eq!(
            line,
            "no conductor answered (http://a:1: connection refused; http://b:2: no answer within 1s); \
             check that a conductor runs there, or point --endpoint (or BATON_ENDPOINT) at one that does"
        );
        let attempts =
            vec![Attempt { endpoint: "http://a:1".into(), failure: Failure::Unavailable("board unavailable".into()) }];
        assert!(CallError::Unreachable(attempts).to_string().contains("baton status"));
    }
}
