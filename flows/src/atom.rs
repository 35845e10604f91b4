//! `TaskSpec`: a task plus how it is wired into a flow (name, inputs, outputs).
//!
//! Built fluently with [`task`] or [`task_fn`]; the compiler turns the
//! declared names into concrete bindings before anything runs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::failure::Failure;
use crate::task::{boxed_exec, boxed_revert, ExecuteContext, FnTask, RevertContext, RevertFn, Task};

/// What a task's result is published as.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Provides {
    /// Nothing: the result is recorded but not visible to other tasks.
    #[default]
    Nothing,
    /// The whole result under one name.
    Whole(String),
    /// Fields of a JSON object result, each under its own name.
    Fields(Vec<String>),
}

impl Provides {
    /// The names this publishes.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Provides::Nothing => Vec::new(),
            Provides::Whole(name) => vec![name.as_str()],
            Provides::Fields(names) => names.iter().map(String::as_str).collect(),
        }
    }

    /// Extracts the value published as `name` from a result.
    pub fn extract<'a>(&self, name: &str, result: &'a Value) -> Option<&'a Value> {
        match self {
            Provides::Nothing => None,
            Provides::Whole(n) => (n == name).then_some(result),
            Provides::Fields(_) => result.get(name),
        }
    }
}

/// A task and its wiring: a node of a flow.
#[derive(Clone)]
pub struct TaskSpec {
    pub(crate) name: String,
    pub(crate) task: Arc<dyn Task>,
    pub(crate) revert_fn: Option<Arc<RevertFn>>,
    pub(crate) requires: Vec<String>,
    pub(crate) optional: BTreeMap<String, Value>,
    pub(crate) provides: Provides,
    pub(crate) rebind: BTreeMap<String, String>,
    pub(crate) inject: Map<String, Value>,
    pub(crate) timeout: Option<Duration>,
    /// What kind of task this is (`shell`, `http`, ...), for metrics and traces; `None`: undeclared.
    /// Borrowed when the name is static (a flow file's built-in kinds), so copies cost nothing.
    pub(crate) kind: Option<Cow<'static, str>>,
}

/// Wraps a [`Task`] implementation under a name.
pub fn task(name: impl Into<String>, task: impl Task) -> TaskSpec {
    TaskSpec::new(name, Arc::new(task))
}

/// A task from an async closure taking an owned [`ExecuteContext`].
pub fn task_fn<F, Fut>(name: impl Into<String>, f: F) -> TaskSpec
where
    F: Fn(ExecuteContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, Failure>> + Send + 'static,
{
    TaskSpec::new(name, Arc::new(FnTask { exec: boxed_exec(f) }))
}

impl TaskSpec {
    /// Wraps a shared task under a name.
    pub fn new(name: impl Into<String>, task: Arc<dyn Task>) -> Self {
        TaskSpec {
            name: name.into(),
            task,
            revert_fn: None,
            requires: Vec::new(),
            optional: BTreeMap::new(),
            provides: Provides::Nothing,
            rebind: BTreeMap::new(),
            inject: Map::new(),
            timeout: None,
            kind: None,
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Arguments the task needs; the flow refuses to compile if one has no source.
    #[must_use]
    pub fn requires<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for name in names {
            let name = name.into();
            if !self.requires.contains(&name) {
                self.requires.push(name);
            }
        }
        self
    }

    /// An argument that takes `default` when nothing provides it.
    #[must_use]
    pub fn optional(mut self, name: impl Into<String>, default: Value) -> Self {
        self.optional.insert(name.into(), default);
        self
    }

    /// Publishes the whole result under `name`.
    #[must_use]
    pub fn provides(mut self, name: impl Into<String>) -> Self {
        self.provides = Provides::Whole(name.into());
        self
    }

    /// Publishes fields of an object result, each under its own name.
    #[must_use]
    pub fn provides_fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.provides = Provides::Fields(names.into_iter().map(Into::into).collect());
        self
    }

    /// Reads argument `arg` from the store name (or provided name) `source`.
    #[must_use]
    pub fn rebind(mut self, arg: impl Into<String>, source: impl Into<String>) -> Self {
        self.rebind.insert(arg.into(), source.into());
        self
    }

    /// Gives the task its own fixed value for `name`; it wins over everything else.
    #[must_use]
    pub fn inject(mut self, name: impl Into<String>, value: Value) -> Self {
        self.inject.insert(name.into(), value);
        self
    }

    /// Fails the task with a `Timeout` failure if `execute` takes longer.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Declares the task's kind (a flow file's `kind:`), reported to listeners and in
    /// the task's tracing span.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<Cow<'static, str>>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The declared kind, if any.
    pub fn declared_kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// Replaces the task's `revert` with a closure.
    #[must_use]
    pub fn revert_fn<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(RevertContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        self.revert_fn = Some(boxed_revert(f));
        self
    }

    /// Every argument name the task takes: required first, then optional.
    pub(crate) fn arguments(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.requires.iter().map(|n| (n.as_str(), None)).chain(self.optional.iter().map(|(n, v)| (n.as_str(), Some(v))))
    }

    /// The name an argument is looked up as (after `rebind`).
    pub(crate) fn source_name<'a>(&'a self, arg: &'a str) -> &'a str {
        self.rebind.get(arg).map(String::as_str).unwrap_or(arg)
    }

    /// Runs the revert: the closure if one was given, else the task's own.
    pub(crate) async fn call_revert(&self, ctx: &RevertContext) -> Result<(), Failure> {
        match &self.revert_fn {
            Some(f) => f(ctx.clone()).await,
            None => self.task.revert(ctx).await,
        }
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("name", &self.name)
            .field("requires", &self.requires)
            .field("optional", &self.optional)
            .field("provides", &self.provides)
            .field("rebind", &self.rebind)
            .field("inject", &self.inject)
            .field("timeout", &self.timeout)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
