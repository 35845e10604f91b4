//! Flow patterns: linear, unordered and graph flows, nested to any depth.
//!
//! A [`Flow`] is only a description; [`compile`](crate::compile()) checks it
//! and turns it into the execution graph the engine runs.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::atom::TaskSpec;
use crate::retry::Retry;

/// How a flow orders its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// One after the other, in the order added.
    Linear,
    /// No order; siblings may run in parallel and do not see each other's outputs.
    Unordered,
    /// Explicit links plus links inferred from provides/requires.
    Graph,
}

/// A function of a predecessor's result deciding whether a link's target runs.
pub type Decider = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// A child of a flow: a task or a nested flow.
#[derive(Debug, Clone)]
pub enum Node {
    /// A task.
    Task(TaskSpec),
    /// A subflow.
    Flow(Flow),
}

impl Node {
    /// The child's name.
    pub fn name(&self) -> &str {
        match self {
            Node::Task(t) => &t.name,
            Node::Flow(f) => &f.name,
        }
    }
}

impl From<TaskSpec> for Node {
    fn from(task: TaskSpec) -> Self {
        Node::Task(task)
    }
}

impl From<Flow> for Node {
    fn from(flow: Flow) -> Self {
        Node::Flow(flow)
    }
}

/// An explicit edge of a graph flow, between two children named `from` and `to`.
#[derive(Clone)]
pub struct Link {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) decider: Option<Decider>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("decider", &self.decider.is_some())
            .finish()
    }
}

/// A flow: a named pattern of tasks and subflows, optionally under a retry.
#[derive(Debug, Clone)]
pub struct Flow {
    pub(crate) name: String,
    pub(crate) kind: FlowKind,
    pub(crate) children: Vec<Node>,
    pub(crate) links: Vec<Link>,
    pub(crate) retry: Option<Retry>,
}

impl Flow {
    fn new(name: impl Into<String>, kind: FlowKind) -> Self {
        Flow { name: name.into(), kind, children: Vec::new(), links: Vec::new(), retry: None }
    }

    /// A flow whose children run one after the other.
    pub fn linear(name: impl Into<String>) -> Self {
        Self::new(name, FlowKind::Linear)
    }

    /// A flow whose children may run in any order, in parallel.
    pub fn unordered(name: impl Into<String>) -> Self {
        Self::new(name, FlowKind::Unordered)
    }

    /// A flow ordered by explicit links and by data: a child requiring a name runs after its provider.
    pub fn graph(name: impl Into<String>) -> Self {
        Self::new(name, FlowKind::Graph)
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern.
    pub fn kind(&self) -> FlowKind {
        self.kind
    }

    /// The children, in the order added.
    pub fn children(&self) -> &[Node] {
        &self.children
    }

    /// Adds a task or a subflow.
    // `add` is the pattern vocabulary (TaskFlow's `flow.add`); `Flow` is not an arithmetic type.
    #[allow(clippy::should_implement_trait)]
    #[must_use]
    pub fn add(mut self, node: impl Into<Node>) -> Self {
        self.children.push(node.into());
        self
    }

    /// Adds several children.
    #[must_use]
    pub fn add_all<I: IntoIterator<Item = N>, N: Into<Node>>(mut self, nodes: I) -> Self {
        self.children.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Graph flows: `to` runs after `from`, whatever their data needs.
    #[must_use]
    pub fn link(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.links.push(Link { from: from.into(), to: to.into(), decider: None });
        self
    }

    /// Graph flows: `to` runs after `from` only if `decider(result of from)` is true;
    /// otherwise `to` and everything after it end IGNORE.
    #[must_use]
    pub fn link_if<F>(mut self, from: impl Into<String>, to: impl Into<String>, decider: F) -> Self
    where
        F: Fn(&Value) -> bool + Send + Sync + 'static,
    {
        self.links.push(Link { from: from.into(), to: to.into(), decider: Some(Arc::new(decider)) });
        self
    }

    /// Puts the flow under a retry controller.
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }
}
