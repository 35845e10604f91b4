//! The parsed model of a flow file: what the YAML says, checked and typed.
//!
//! It serialises (positions left out) to the file's canonical JSON form, whose
//! hash identifies a version: two files that mean the same hash the same.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::condition::{Condition, JsonPath};
use crate::inputs::Inputs;
use crate::problems::Pos;

fn millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

/// A whole flow file.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlowDef {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) inputs: Inputs,
    /// `deadline:`: a job of this flow posted without its own deadline is cancelled this long after its post.
    /// (Absent from the canonical form when unset, so files without one keep their hash.)
    #[serde(serialize_with = "millis", skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<Duration>,
    pub(crate) flow: PatternDef,
}

/// Where something was written, for messages (not part of the canonical form).
#[derive(Debug, Clone, Default)]
pub(crate) struct At {
    pub(crate) pos: Pos,
    pub(crate) path: String,
}

/// How a pattern orders its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    Linear,
    Unordered,
    Graph,
}

impl Order {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Order::Linear => "linear",
            Order::Unordered => "unordered",
            Order::Graph => "graph",
        }
    }
}

/// A child of a pattern.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Element {
    Task(TaskDef),
    Pattern(PatternDef),
}

impl Element {
    /// The id `after:` links use: the task's name, or the pattern's `name`.
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Element::Task(t) => Some(&t.name),
            Element::Pattern(p) => p.name.as_deref(),
        }
    }

    pub(crate) fn after(&self) -> &[AfterDef] {
        match self {
            Element::Task(t) => &t.after,
            Element::Pattern(p) => &p.after,
        }
    }

    pub(crate) fn at(&self) -> &At {
        match self {
            Element::Task(t) => &t.at,
            Element::Pattern(p) => &p.at,
        }
    }
}

/// A pattern node.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PatternDef {
    #[serde(skip)]
    pub(crate) at: At,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) order: Order,
    pub(crate) children: Vec<Element>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<RetryDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) each: Option<EachDef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) after: Vec<AfterDef>,
}

/// `each: {in: INPUT, as: NAME}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EachDef {
    #[serde(skip)]
    pub(crate) at: At,
    #[serde(rename = "in")]
    pub(crate) input: String,
    #[serde(rename = "as")]
    pub(crate) item: String,
}

/// One `after:` link in a graph.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AfterDef {
    #[serde(skip)]
    pub(crate) at: At,
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) when: Option<Condition>,
}

/// What a task publishes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProvidesDef {
    Nothing,
    /// The whole result under one name.
    Whole(String),
    /// Fields of the result, each under its own name (`provides: [a, b]` or `{a: $.x}`).
    Fields(Vec<(String, JsonPath)>),
}

impl ProvidesDef {
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            ProvidesDef::Nothing => Vec::new(),
            ProvidesDef::Whole(n) => vec![n],
            ProvidesDef::Fields(fs) => fs.iter().map(|(n, _)| n.as_str()).collect(),
        }
    }
}

/// A task.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskDef {
    #[serde(skip)]
    pub(crate) at: At,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) with: Map<String, Value>,
    pub(crate) provides: ProvidesDef,
    pub(crate) requires: Vec<String>,
    pub(crate) rebind: BTreeMap<String, String>,
    #[serde(serialize_with = "millis", skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<RetryDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revert: Option<RevertDef>,
    /// `revert: none` was written (a kind that reverts itself then does not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) no_revert: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) after: Vec<AfterDef>,
    /// Names the task needs: `requires` plus every reference in `with` and in its revert.
    #[serde(skip)]
    pub(crate) needs: Vec<String>,
    /// Its place among the file's tasks, in file order: numbered by [`Prepared`](crate::prepared::Prepared).
    #[serde(skip)]
    pub(crate) slot: usize,
}

/// A task's `revert:` (absent or `none`: nothing to undo).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RevertDef {
    pub(crate) kind: String,
    pub(crate) with: Map<String, Value>,
    #[serde(serialize_with = "millis", skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<Duration>,
}

/// What a retry controller does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Strategy {
    Times(u64),
    ForEach(Vec<Value>),
    ForEachFrom(String),
    AlwaysRevert,
    AlwaysRevertAll,
}

/// `retry:` on a task or a pattern.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RetryDef {
    pub(crate) strategy: Strategy,
    #[serde(serialize_with = "millis", skip_serializing_if = "Option::is_none")]
    pub(crate) delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backoff: Option<f64>,
    #[serde(serialize_with = "millis", skip_serializing_if = "Option::is_none")]
    pub(crate) max_delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jitter: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provides: Option<String>,
}

impl RetryDef {
    /// The engine's retry controller; `for_each_from` builds the controller of a
    /// `for_each_from` name, which the caller resolves in its scope.
    pub(crate) fn to_retry(&self, for_each_from: impl FnOnce(&str) -> flows::Retry) -> flows::Retry {
        let mut retry = match &self.strategy {
            Strategy::Times(n) => flows::Retry::times(usize::try_from(*n).unwrap_or(usize::MAX)),
            Strategy::ForEach(values) => flows::Retry::for_each(values.clone()),
            Strategy::ForEachFrom(key) => for_each_from(key),
            Strategy::AlwaysRevert => flows::Retry::always_revert(),
            Strategy::AlwaysRevertAll => flows::Retry::always_revert_all(),
        };
        if let Some(delay) = self.delay {
            let factor = self.backoff.unwrap_or(1.0);
            // Without max_delay a growing delay is capped at an hour, never unbounded.
            let cap = self.max_delay.unwrap_or(if factor > 1.0 { Duration::from_secs(3600) } else { delay });
            retry = retry.backoff(delay, factor, cap.max(delay), self.jitter.unwrap_or(0.0));
        }
        if let Some(name) = &self.provides {
            retry = retry.provides(name.clone());
        }
        retry
    }
}
