//! Task kinds: what a flow file's `kind:` names, and the set a conductor allows.
//!
//! A [`Kind`] is the code behind a file task: it declares the `with` settings it
//! accepts (for unknown-key errors with "did you mean"), checks them statically,
//! and runs with the references already resolved. [`Kinds`] is the set a
//! conductor allows (`--task-kinds`), plus the secrets references resolve from.
//!
//! ## Where kinds plug in
//! Built-in kinds live in `kinds/<name>.rs` and are listed in [`builtin`]:
//! - `noop`, `sleep`, `fail`;
//! - `shell` (a process group with a clean environment, stopped with SIGTERM,
//!   a grace, then SIGKILL) and `http` (rustls, no redirects followed);
//!   `shell` is off in [`Kinds::default_allowed`] because it runs code on the
//!   conductor's host;
//! - `remote`: runs the task on a remote worker through a [`remote::Dispatch`] the
//!   conductor injects ([`Kinds::remote_dispatch`]), as it injects secrets; on by default;
//! - `await`: parks until a completion; its `notify` runs once the park is
//!   recorded (see `FileTask::parked`); on by default.
//!
//! `with.rs` reads a kind's settings, for both `check` and `run`.

pub mod await_kind;
mod fail;
pub mod http;
mod noop;
pub mod remote;
pub mod shell;
mod sleep;
mod with;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::Failure;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::secrets::{NoSecrets, Secrets};

pub use fail::Fail;
pub use noop::Noop;
pub use sleep::Sleep;

/// The code behind one `kind:` of flow-file task.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// The name files use in `kind:`.
    fn name(&self) -> &'static str;

    /// Every key `with` accepts (others are errors, with "did you mean").
    fn settings(&self) -> &'static [&'static str];

    /// Keys whose values are passed as written: references are neither substituted
    /// nor required there (a shell task's `run` and `script`, where `${X}` is the
    /// shell's own syntax and values may only come in through `env` or `stdin`).
    fn verbatim(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether `with` may hold keys beyond [`settings`](Kind::settings) (a remote task
    /// passes them on to its worker); the listed settings stay reserved.
    fn open_settings(&self) -> bool {
        false
    }

    /// Whether a task of this kind with no `revert:` of its own is reverted by the kind
    /// itself: `run` is called again with [`Call::reverting`] and [`Call::outcome`] set.
    fn reverts_itself(&self) -> bool {
        false
    }

    /// Keys resolved only once the task has parked (after its park is recorded),
    /// where `${callback.token}` and `${callback.url}` are known too; nowhere else.
    fn deferred(&self) -> &'static [&'static str] {
        &[]
    }

    /// Static problems with `with` (its values may still hold `${...}` references,
    /// which are text until run time). A message starting with `KEY: ` is reported
    /// at that key's position.
    fn check(&self, with: &Map<String, Value>) -> Vec<String>;

    /// Does the work with references resolved; the value is the task's result.
    async fn run(&self, with: Map<String, Value>, call: &Call) -> Result<Value, Failure>;

    /// The result of a call whose work needs no waiting (no I/O, no timer, nothing to
    /// cancel), given at once: a task's execute then makes no cancellation token and
    /// boxes no future for the call (per-task cost, issue 9). `Some` holds what
    /// [`run`](Kind::run) would give for the same call; `None` (the default) sends the
    /// call through `run`, and then `with` must be left as it came.
    fn run_at_once(&self, with: &mut Map<String, Value>, call: &QuickCall<'_>) -> Option<Result<Value, Failure>> {
        let _ = (with, call);
        None
    }

    /// Called once a park that `run` asked for is recorded (never before), with the
    /// settings resolved again and the token to hand out: a `remote` task sends it to its
    /// worker's parked handler. Not called for a task with a `notify` step (`await`).
    /// A failure fails the parked attempt.
    async fn parked(&self, with: Map<String, Value>, call: &Call, handoff: remote::Handoff) -> Result<(), Failure> {
        let _ = (with, call, handoff);
        Ok(())
    }
}

/// What a kind is told about the call it serves.
#[derive(Debug, Clone)]
pub struct Call {
    /// The atom's name in the running flow (copies of `each` included, as `task[0]`),
    /// shared with the engine's context rather than copied per call.
    pub atom: Arc<str>,
    /// Executions of this atom so far, this one included.
    pub attempt: u32,
    /// The task's `timeout`, if any (the engine enforces it by dropping the call;
    /// `cancel` fires then too, so a kind can clean up, e.g. kill its processes).
    pub timeout: Option<Duration>,
    /// Fires when the call is abandoned (timeout, cancel, the engine going away).
    pub cancel: CancellationToken,
    /// True when this call is a task's `revert`.
    pub reverting: bool,
    /// The job (the engine's logbook id); nil outside a conductor.
    pub job: Uuid,
    /// The task's inputs as the engine bound them (requires, rebinds).
    pub inputs: Map<String, Value>,
    /// For a revert: what the execute being undone produced.
    pub outcome: Option<Result<Value, Failure>>,
}

impl Call {
    /// A call for tests and adapters, with a fresh cancellation token.
    pub fn new(atom: impl Into<Arc<str>>, attempt: u32) -> Self {
        Call {
            atom: atom.into(),
            attempt,
            timeout: None,
            cancel: CancellationToken::new(),
            reverting: false,
            job: Uuid::nil(),
            inputs: Map::new(),
            outcome: None,
        }
    }
}

/// What [`Kind::run_at_once`] is told: the facts of a [`Call`] that work done at once
/// can use (no cancellation token, no timeout: nothing waits); never a revert.
#[derive(Debug, Clone, Copy)]
pub struct QuickCall<'a> {
    /// The atom's name in the running flow.
    pub atom: &'a str,
    /// Executions of this atom so far, this one included.
    pub attempt: u32,
    /// The job (the engine's logbook id); nil outside a conductor.
    pub job: Uuid,
}

impl<'a> QuickCall<'a> {
    /// The quick facts of a full call.
    pub fn of(call: &'a Call) -> Self {
        QuickCall { atom: &call.atom, attempt: call.attempt, job: call.job }
    }
}

/// Every kind this crate ships. Registration point for new built-in kinds.
pub fn builtin() -> Vec<Arc<dyn Kind>> {
    vec![
        Arc::new(Noop),
        Arc::new(Sleep),
        Arc::new(Fail),
        Arc::new(shell::Shell::new()),
        Arc::new(http::Http::new()),
        Arc::new(remote::Remote::unconnected()),
        Arc::new(await_kind::Await),
    ]
}

/// Built-in kinds that run code on the conductor's host: off unless named.
pub const OFF_BY_DEFAULT: &[&str] = &["shell"];

/// The kinds a conductor allows, and the secrets their references resolve from.
#[derive(Clone)]
pub struct Kinds {
    kinds: BTreeMap<&'static str, Arc<dyn Kind>>,
    secrets: Arc<dyn Secrets>,
    /// Where `${callback.url}` points: the conductor's advertised HTTP base.
    callback_base: Option<Arc<str>>,
}

/// `--task-kinds` named a kind nobody ships.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task kind {name:?}{hint}; known kinds: {}", .known.join(", "))]
pub struct UnknownKind {
    /// The name given.
    pub name: String,
    /// "; did you mean ..." or nothing.
    pub hint: String,
    /// Every built-in kind.
    pub known: Vec<String>,
}

impl Kinds {
    /// No kinds, no secrets.
    pub fn empty() -> Self {
        Kinds { kinds: BTreeMap::new(), secrets: Arc::new(NoSecrets), callback_base: None }
    }

    /// Every built-in kind (what files are checked against offline).
    pub fn all() -> Self {
        builtin().into_iter().fold(Self::empty(), Kinds::with_shared)
    }

    /// A conductor's default: every built-in kind except those in [`OFF_BY_DEFAULT`].
    pub fn default_allowed() -> Self {
        builtin().into_iter().filter(|k| !OFF_BY_DEFAULT.contains(&k.name())).fold(Self::empty(), Kinds::with_shared)
    }

    /// Exactly the named built-in kinds (`--task-kinds noop,shell`).
    pub fn allowing<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownKind> {
        let all = Self::all();
        let mut out = Self::empty();
        for name in names {
            let name = name.as_ref().trim();
            let kind = all.get(name).ok_or_else(|| UnknownKind {
                name: name.to_owned(),
                hint: crate::problems::did_you_mean(name, all.names()),
                known: all.names().into_iter().map(str::to_owned).collect(),
            })?;
            out = out.with_shared(kind.clone());
        }
        Ok(out)
    }

    /// Adds (or replaces) a kind.
    #[must_use]
    pub fn with(self, kind: impl Kind) -> Self {
        self.with_shared(Arc::new(kind))
    }

    /// Adds (or replaces) a shared kind.
    #[must_use]
    pub fn with_shared(mut self, kind: Arc<dyn Kind>) -> Self {
        self.kinds.insert(kind.name(), kind);
        self
    }

    /// Where `${secret.NAME}` resolves from (default: nowhere, every secret is missing).
    #[must_use]
    pub fn secrets(mut self, secrets: Arc<dyn Secrets>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Where `remote` tasks are sent (a conductor's worker hub). Without it they fail
    /// with "no worker hub". No effect if `remote` is not allowed.
    #[must_use]
    pub fn remote_dispatch(self, dispatch: Arc<dyn remote::Dispatch>) -> Self {
        if self.kinds.contains_key("remote") {
            self.with(remote::Remote::new(dispatch))
        } else {
            self
        }
    }

    /// Limits `http` tasks to the hosts `allow` allows (`--http-allow`). No effect if
    /// `http` is not allowed.
    #[must_use]
    pub fn http_allow(self, allow: http::allow::AllowList) -> Self {
        if self.kinds.contains_key("http") {
            self.with(http::Http::allowing(Some(allow)))
        } else {
            self
        }
    }

    /// The base of `${callback.url}` (`--http-advertise`, e.g. `https://baton.example:8080`):
    /// the URL is `<base>/v1/callbacks/<token>`. Without it `${callback.url}` has no value.
    #[must_use]
    pub fn callback_base(mut self, base: impl Into<String>) -> Self {
        self.callback_base = Some(Arc::from(base.into().trim_end_matches('/')));
        self
    }

    /// The base of `${callback.url}`, if set.
    pub fn callback_base_url(&self) -> Option<&Arc<str>> {
        self.callback_base.as_ref()
    }

    /// The secrets store.
    pub fn secret_store(&self) -> &Arc<dyn Secrets> {
        &self.secrets
    }

    /// The kind named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.get(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.kinds.keys().copied().collect()
    }

    /// The kinds among `used` this set lacks (empty: a conductor may claim the flow).
    pub fn missing<'a>(&self, used: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        used.into_iter().filter(|k| !self.kinds.contains_key(k)).map(str::to_owned).collect()
    }
}

impl fmt::Debug for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kinds").field("kinds", &self.names()).finish_non_exhaustive()
    }
}

/// Keys of `with` that are not among `settings`, as problems (used by the kinds' checks).
pub(crate) fn require_keys(with: &Map<String, Value>, required: &[&str]) -> Vec<String> {
    required.iter().filter(|k| !with.contains_key(**k)).map(|k| format!("missing required setting {k:?}")).collect()
}

/// True if a value is (or contains) a reference, so its type is known only at run time.
pub(crate) fn is_deferred(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.contains("${"))
}
