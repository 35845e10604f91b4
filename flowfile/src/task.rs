//! `FileTask`: the `flows::Task` that runs one file task through its kind.
//!
//! References in `with` are resolved from the task's inputs when it executes
//! (secrets too, so none is ever in a store or the logbook), the kind runs,
//! secrets read for the call are redacted from its result or failure, and
//! `provides` fields are picked out of the result. The revert is a task of
//! its own: it sees the inputs, the names the task provided, `${result}`
//! (null for the task that failed) and `${failure.kind}`/`${failure.message}`
//! (the task's own failure, or else the one that made the flow revert).

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::{ExecuteContext, Failure, ParkedContext, RevertContext, Task};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::condition::JsonPath;
use crate::kinds::{Call, Kind, QuickCall};
use crate::refs::{self, Ref};
use crate::secrets::{redact_failure, redact_value, Secrets};

/// What a task's result is published as: (name in the file, published name, where in the result).
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// The whole result (also for no `provides`).
    Whole,
    /// Picked fields, recorded as an object of published names.
    Fields(Vec<(String, String, JsonPath)>),
}

/// A revert's own kind and settings.
pub(crate) struct RevertPlan {
    pub(crate) kind: Arc<dyn Kind>,
    pub(crate) with: Map<String, Value>,
    pub(crate) timeout: Option<Duration>,
}

/// What a parked task runs once its park is recorded (`await`'s `notify`).
pub(crate) struct NotifyPlan {
    pub(crate) kind: Arc<dyn Kind>,
    pub(crate) with: Map<String, Value>,
    /// `--http-advertise`: the base of `${callback.url}`.
    pub(crate) callback_base: Option<Arc<str>>,
}

/// A flow-file task as the engine sees it.
pub(crate) struct FileTask {
    pub(crate) kind: Arc<dyn Kind>,
    pub(crate) with: Map<String, Value>,
    pub(crate) plan: Plan,
    /// The whole-result name the task publishes (for its revert's `${NAME}`), if any.
    pub(crate) whole: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) secrets: Arc<dyn Secrets>,
    pub(crate) revert: Option<RevertPlan>,
    /// The inputs a kind sees as arguments ([`Call::inputs`]): `requires` and rebinds,
    /// not names only referenced in `with` (those arrive resolved inside `with`).
    pub(crate) args: Vec<String>,
    pub(crate) notify: Option<NotifyPlan>,
    /// `with` settled once, when it holds no reference to resolve ([`fixed`]).
    pub(crate) fixed: Option<Map<String, Value>>,
}

/// The inputs named in `args`.
fn arguments(inputs: &Map<String, Value>, args: &[String]) -> Map<String, Value> {
    if args.is_empty() {
        return Map::new();
    }
    inputs.iter().filter(|(k, _)| args.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Resolves `with` from `names` (and secrets), noting every secret value read in `used`.
fn settle(
    kind: &dyn Kind,
    with: &Map<String, Value>,
    names: &Map<String, Value>,
    secrets: &dyn Secrets,
    used: &mut Vec<String>,
) -> Result<Map<String, Value>, Failure> {
    let lookup = |r: &Ref| -> Result<Value, Failure> {
        if let Some(name) = r.secret() {
            let value = secrets.get(name).map_err(|e| Failure::new("SecretError", e.to_string()))?;
            used.push(value.clone());
            return Ok(Value::String(value));
        }
        let root = names
            .get(&r.root)
            .ok_or_else(|| Failure::new(Failure::NOT_FOUND, format!("{}: {:?} has no value", r.written(), r.root)))?;
        refs::field(root, &r.fields).cloned().ok_or_else(|| {
            Failure::new(Failure::NOT_FOUND, format!("{}: the value of {:?} has no such field", r.written(), r.root))
        })
    };
    settle_by(kind, with, lookup)
}

/// `with` as [`settle`] gives it when it holds no reference outside the kind's verbatim
/// keys (escapes undone), made once per task so that its calls only copy it; `None`
/// if a call must resolve references.
pub(crate) fn fixed(kind: &dyn Kind, with: &Map<String, Value>) -> Option<Map<String, Value>> {
    settle_by(kind, with, |_| Err(())).ok()
}

/// Resolves `with` through `lookup`, leaving out the kind's deferred keys.
fn settle_by<E>(
    kind: &dyn Kind,
    with: &Map<String, Value>,
    mut lookup: impl FnMut(&Ref) -> Result<Value, E>,
) -> Result<Map<String, Value>, E> {
    let mut out = Map::new();
    for (key, value) in with {
        if kind.deferred().contains(&key.as_str()) {
            // Resolved once the task has parked (see `FileTask::parked`), not now.
            continue;
        }
        let settled =
            if kind.verbatim().contains(&key.as_str()) { value.clone() } else { refs::resolve(value, &mut lookup)? };
        out.insert(key.clone(), settled);
    }
    Ok(out)
}

/// Runs a kind, firing the call's cancellation token if this future is dropped
/// (the engine's timeout drops it), and redacts the secrets read for it.
async fn call_kind(kind: &dyn Kind, with: Map<String, Value>, call: Call, used: &[String]) -> Result<Value, Failure> {
    let _fires_on_drop = call.cancel.clone().drop_guard();
    redacted(kind.run(with, &call).await, used)
}

/// A kind's outcome with the secrets read for its call redacted.
fn redacted(outcome: Result<Value, Failure>, used: &[String]) -> Result<Value, Failure> {
    match outcome {
        Ok(v) => Ok(redact_value(v, used)),
        Err(f) => Err(redact_failure(f, used)),
    }
}

/// What [`FileTask`]'s `execute` returns: the future `#[async_trait]` would box.
type Executing<'a> = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send + 'a>>;

impl FileTask {
    /// Runs the kind's `run` with `with` settled (`used`: the secrets read for it), cancelled
    /// if the engine drops the call, and picks the `provides` fields out of its result.
    async fn call(&self, with: Map<String, Value>, ctx: &ExecuteContext, used: Vec<String>) -> Result<Value, Failure> {
        let call = Call {
            atom: ctx.atom_name_shared().clone(),
            attempt: ctx.attempt(),
            timeout: self.timeout,
            cancel: CancellationToken::new(),
            reverting: false,
            job: ctx.book(),
            inputs: arguments(ctx.inputs().as_map(), &self.args),
            outcome: None,
        };
        let result = call_kind(self.kind.as_ref(), with, call, &used).await?;
        self.project(result)
    }

    /// The call of a step that follows a recorded park (the kind's hand-off, the `notify` step).
    fn parked_call(&self, ctx: &ParkedContext) -> Call {
        Call {
            atom: ctx.atom_name().into(),
            attempt: ctx.attempt(),
            timeout: self.timeout,
            cancel: CancellationToken::new(),
            reverting: false,
            job: ctx.token().name().job,
            inputs: arguments(ctx.inputs().as_map(), &self.args),
            outcome: None,
        }
    }

    /// The kind's own hand-off of a recorded park (a `remote` task's worker gets the
    /// token), with `with` resolved from the inputs; the token is redacted from a failure.
    async fn kind_parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        let handoff = crate::kinds::remote::Handoff::of(ctx);
        let mut used = vec![handoff.token.clone()];
        let with = settle(self.kind.as_ref(), &self.with, ctx.inputs().as_map(), self.secrets.as_ref(), &mut used)
            .map_err(|f| redact_failure(f, &used))?;
        let call = self.parked_call(ctx);
        let _fires_on_drop = call.cancel.clone().drop_guard();
        self.kind.parked(with, &call, handoff).await.map_err(|f| redact_failure(f, &used))
    }

    fn project(&self, result: Value) -> Result<Value, Failure> {
        match &self.plan {
            Plan::Whole => Ok(result),
            Plan::Fields(fields) => {
                let mut out = Map::new();
                for (declared, published, path) in fields {
                    let value = path.get(&result).ok_or_else(|| {
                        Failure::task(format!("the result has nothing at {path} for provides {declared:?}"))
                    })?;
                    out.insert(published.clone(), value.clone());
                }
                Ok(Value::Object(out))
            }
        }
    }

    /// The names a revert sees beyond the task's inputs.
    fn revert_names(&self, ctx: &RevertContext) -> Map<String, Value> {
        let mut names = ctx.inputs().as_map().clone();
        let result = ctx.result();
        match &self.plan {
            Plan::Whole => {
                if let Some(name) = &self.whole {
                    names.insert(name.clone(), result.cloned().unwrap_or(Value::Null));
                }
                names.insert("result".to_owned(), result.cloned().unwrap_or(Value::Null));
            }
            Plan::Fields(fields) => {
                let mut shown = Map::new();
                for (declared, published, _) in fields {
                    let v = result.and_then(|r| r.get(published)).cloned().unwrap_or(Value::Null);
                    names.insert(declared.clone(), v.clone());
                    shown.insert(declared.clone(), v);
                }
                names.insert("result".to_owned(), if result.is_some() { Value::Object(shown) } else { Value::Null });
            }
        }
        let failure = ctx.failure().or_else(|| ctx.flow_failures().values().next());
        let failure =
            failure.map_or(json!({"kind": null, "message": null}), |f| json!({"kind": f.kind, "message": f.message}));
        names.insert("failure".to_owned(), failure);
        names
    }
}

#[async_trait]
impl Task for FileTask {
    /// Not an `async fn`: a call of a kind that finishes at once (noop, fail, await) is
    /// answered with a ready future, with no cancellation token made and no state machine
    /// of a waiting call boxed (per-task cost, issue 9).
    fn execute<'a, 'b, 'async_trait>(&'a self, ctx: &'b ExecuteContext) -> Executing<'async_trait>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        let mut used = Vec::new();
        let mut with = match &self.fixed {
            Some(with) => with.clone(),
            None => {
                match settle(self.kind.as_ref(), &self.with, ctx.inputs().as_map(), self.secrets.as_ref(), &mut used) {
                    Ok(with) => with,
                    Err(failure) => return Box::pin(ready(Err(failure))),
                }
            }
        };
        let quick = QuickCall { atom: ctx.atom_name(), attempt: ctx.attempt(), job: ctx.book() };
        match self.kind.run_at_once(&mut with, &quick) {
            Some(outcome) => Box::pin(ready(redacted(outcome, &used).and_then(|result| self.project(result)))),
            None => Box::pin(self.call(with, ctx, used)),
        }
    }

    /// `notify`, resolved from the inputs plus `${callback.token}` and
    /// `${callback.url}`; the token is redacted from whatever it returns or fails with.
    async fn parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        let Some(plan) = &self.notify else { return self.kind_parked(ctx).await };
        let token = ctx.token().expose();
        let mut callback = Map::new();
        callback.insert("token".into(), Value::String(token.clone()));
        if let Some(base) = &plan.callback_base {
            callback.insert("url".into(), Value::String(format!("{base}/v1/callbacks/{token}")));
        }
        let mut names = ctx.inputs().as_map().clone();
        names.insert(crate::refs::CALLBACK.to_owned(), Value::Object(callback));
        let mut used = vec![token];
        let with = settle(plan.kind.as_ref(), &plan.with, &names, self.secrets.as_ref(), &mut used)
            .map_err(|f| redact_failure(f, &used))?;
        let call = self.parked_call(ctx);
        call_kind(plan.kind.as_ref(), with, call, &used).await.map(|_| ())
    }

    async fn revert(&self, ctx: &RevertContext) -> Result<(), Failure> {
        let Some(plan) = &self.revert else { return Ok(()) };
        let mut used = Vec::new();
        let names = self.revert_names(ctx);
        let with = settle(plan.kind.as_ref(), &plan.with, &names, self.secrets.as_ref(), &mut used)?;
        let call = Call {
            atom: ctx.atom_name().into(),
            attempt: ctx.attempt().max(1),
            timeout: plan.timeout,
            cancel: CancellationToken::new(),
            reverting: true,
            job: ctx.book(),
            inputs: arguments(ctx.inputs().as_map(), &self.args),
            outcome: Some(ctx.outcome().cloned().map_err(Clone::clone)),
        };
        let run = call_kind(plan.kind.as_ref(), with, call, &used);
        let outcome = match plan.timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                Err(Failure::new(
                    Failure::TIMEOUT,
                    format!("revert of {} exceeded its timeout of {} ms", ctx.atom_name(), limit.as_millis()),
                ))
            }),
            None => run.await,
        };
        outcome.map(|_| ())
    }
}
