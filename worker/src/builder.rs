//! Registering task functions and settings: [`Builder`], then [`Worker`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use proto::ClientOptions;

use crate::context::{Context, TaskError, Undo};
use crate::park::Callback;
use crate::WorkerError;

/// An execute function.
pub(crate) type ExecFn =
    dyn Fn(Context, Map<String, Value>) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync;
/// A revert function.
pub(crate) type RevertFn =
    dyn Fn(Context, Map<String, Value>, Undo) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync;

/// A parked handler.
pub(crate) type ParkedFn =
    dyn Fn(Context, Map<String, Value>, Callback) -> BoxFuture<'static, Result<(), TaskError>> + Send + Sync;

/// What runs one task name.
pub(crate) struct Handler {
    pub(crate) execute: Arc<ExecFn>,
    pub(crate) revert: Option<Arc<RevertFn>>,
    pub(crate) parked: Option<Arc<ParkedFn>>,
    pub(crate) default_timeout: Option<Duration>,
}

/// Settings and task functions of a worker.
pub struct Builder {
    endpoints: Vec<String>,
    slots: u32,
    worker_id: Option<String>,
    labels: HashMap<String, String>,
    grace: Duration,
    handlers: BTreeMap<String, Handler>,
    options: ClientOptions,
    problems: Vec<String>,
}

/// A worker ready to run: see [`Worker::run`].
pub struct Worker {
    pub(crate) endpoints: Vec<String>,
    pub(crate) slots: u32,
    pub(crate) worker_id: String,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) grace: Duration,
    pub(crate) handlers: Arc<BTreeMap<String, Handler>>,
    /// Credentials and TLS for every endpoint (timeouts are the worker's own).
    pub(crate) options: ClientOptions,
}

impl Worker {
    /// Starts a worker for these conductor endpoints (`http://host:port`), tried in order.
    pub fn builder<I, S>(endpoints: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Builder {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            slots: 8,
            worker_id: None,
            labels: HashMap::new(),
            grace: Duration::from_secs(30),
            handlers: BTreeMap::new(),
            options: ClientOptions::default(),
            problems: Vec::new(),
        }
    }

    /// This worker's id (unique per process).
    pub fn id(&self) -> &str {
        &self.worker_id
    }
}

impl Builder {
    /// How many tasks run at once (default 8).
    #[must_use]
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots;
        self
    }

    /// The worker id (default: `<HOSTNAME or worker>-<pid>-<random>`).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// A label shown by `baton workers`.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// How long running tasks may finish after shutdown is asked (default 30 s).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How to reach secured conductors: a bearer token (the identity needs the
    /// `worker` role), the CA that signed their certificates, a client certificate
    /// for mutual TLS. `https://` endpoints use TLS. The same options `baton` takes
    /// (see [`ClientOptions::from_files`]); their timeouts are replaced by the worker's.
    #[must_use]
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Registers the execute function of task `name`: it gets the context and the
    /// task's inputs (keyword arguments); its value is the task's result.
    #[must_use]
    pub fn task<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Context, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        let name = name.into();
        let execute: Arc<ExecFn> = Arc::new(move |ctx, args| Box::pin(f(ctx, args)));
        if self
            .handlers
            .insert(name.clone(), Handler { execute, revert: None, parked: None, default_timeout: None })
            .is_some()
        {
            self.problems.push(format!("task {name:?} registered twice"));
        }
        self
    }

    /// Registers the revert function of task `name` (registered with [`task`](Self::task)
    /// first): it gets the same inputs and what execute produced.
    #[must_use]
    pub fn revert<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Context, Map<String, Value>, Undo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        match self.handlers.get_mut(name) {
            Some(handler) => handler.revert = Some(Arc::new(move |ctx, args, undo| Box::pin(f(ctx, args, undo)))),
            None => self.problems.push(format!("revert for {name:?} registered before its task")),
        }
        self
    }

    /// Registers the parked handler of task `name` (registered with [`task`](Self::task)
    /// first): when its execute returns [`Park`](crate::Park) and the conductor has
    /// recorded the park, this gets the same inputs and the [`Callback`] to hand to
    /// whoever completes the task. It may run on another worker offering the task, and
    /// again with a new token if a conductor died before handing the first one out; a
    /// failure fails the parked attempt.
    #[must_use]
    pub fn parked<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Context, Map<String, Value>, Callback) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        match self.handlers.get_mut(name) {
            Some(handler) => handler.parked = Some(Arc::new(move |ctx, args, cb| Box::pin(f(ctx, args, cb)))),
            None => self.problems.push(format!("parked handler for {name:?} registered before its task")),
        }
        self
    }

    /// The default execution timeout of task `name` (a flow's `timeout` overrides it).
    #[must_use]
    pub fn timeout(mut self, name: &str, timeout: Duration) -> Self {
        match self.handlers.get_mut(name) {
            Some(handler) => handler.default_timeout = Some(timeout),
            None => self.problems.push(format!("timeout for {name:?} set before its task")),
        }
        self
    }

    /// The worker, or what is wrong with its settings.
    pub fn build(self) -> Result<Worker, WorkerError> {
        let mut problems = self.problems;
        if self.endpoints.is_empty() {
            problems.push("no endpoints".to_owned());
        }
        if self.handlers.is_empty() {
            problems.push("no tasks".to_owned());
        }
        if self.slots == 0 {
            problems.push("slots must be at least 1".to_owned());
        }
        if !problems.is_empty() {
            return Err(WorkerError::Config(problems.join("; ")));
        }
        let worker_id = self.worker_id.unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
            format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
        });
        Ok(Worker {
            endpoints: self.endpoints,
            slots: self.slots,
            worker_id,
            labels: self.labels,
            grace: self.grace,
            handlers: Arc::new(self.handlers),
            options: self.options,
        })
    }
}
