//! Compilation: a nested [`Flow`] becomes one execution graph.
//!
//! Each flow contributes an entry node (its retry, or a no-op join) and an
//! exit join, so linking two big unordered flows costs O(n) edges, not
//! O(n*m). Nodes are numbered depth-first, so every flow (and the scope of
//! every retry) is a contiguous index range. Every argument of every atom is
//! resolved here to one source (see [`crate::scope`]), so the engine never
//! searches at run time. All problems are collected, not just the first.

mod links;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use serde_json::Value;

use crate::atom::{Provides, TaskSpec};
use crate::logbook::AtomKind;
use crate::pattern::{Decider, Flow, FlowKind, Node};
use crate::retry::Retry;

/// One reason a flow does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileProblem {
    /// These atoms (or subflows) depend on each other in a circle.
    #[error("cycle between {}", .0.join(", "))]
    Cycle(Vec<String>),
    /// Nothing provides a required input and the initial store lacks it.
    #[error("input {input:?} required by {atom:?} is neither provided by a predecessor nor in the store")]
    MissingInput {
        /// The input name (after rebind).
        input: String,
        /// The atom that needs it.
        atom: String,
    },
    /// Several atoms provide a name and the consumer cannot tell which one it gets.
    #[error("{atom:?} cannot tell which of {} provides {name:?}", .providers.join(", "))]
    Ambiguous {
        /// The name.
        name: String,
        /// The consumer.
        atom: String,
        /// The candidates.
        providers: Vec<String>,
    },
    /// Two atoms share a name.
    #[error("duplicate atom name {0:?}")]
    DuplicateName(String),
    /// A link names something that is not a child of its flow.
    #[error("link in flow {flow:?} names {name:?}, which is not a child of it")]
    UnknownLink {
        /// The flow holding the link.
        flow: String,
        /// The unknown name.
        name: String,
    },
    /// Links were added to a linear or unordered flow.
    #[error("flow {0:?} is not a graph flow and cannot take links")]
    LinkOutsideGraph(String),
}

/// Why a flow does not compile: every culprit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// All problems, in the order found.
    pub problems: Vec<CompileProblem>,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flow does not compile: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

/// Where an argument's value comes from at run time.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The atom's own injected value.
    Inject(Value),
    /// The flow's store, under this key.
    Store(String),
    /// A predecessor's result, published under `name`.
    Atom { node: usize, name: String },
    /// Nothing provides it; the optional argument's default.
    Default(Value),
}

/// One argument binding.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) arg: String,
    pub(crate) source: Source,
    /// For optional arguments: used if the source has nothing (e.g. its provider was ignored).
    pub(crate) default: Option<Value>,
}

/// What a graph node is.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Task(TaskSpec),
    /// A retry controller; `scope` is the node range it governs.
    Retry {
        retry: Retry,
        scope: RangeInclusive<usize>,
    },
    /// A flow's entry or exit: no work, not persisted.
    Join,
}

/// One node of the execution graph.
#[derive(Clone)]
pub(crate) struct CNode {
    pub(crate) name: String,
    /// The same name, shared with every `ExecuteContext` (no allocation per call).
    pub(crate) shared_name: Arc<str>,
    pub(crate) kind: NodeKind,
    /// The nearest enclosing retry node.
    pub(crate) retry: Option<usize>,
    pub(crate) preds: Vec<usize>,
    pub(crate) succs: Vec<usize>,
    /// Deciders on incoming edges: (predecessor node, decider).
    pub(crate) deciders: Vec<(usize, Decider)>,
    pub(crate) bindings: Vec<Binding>,
    pub(crate) provides: Provides,
}

impl fmt::Debug for CNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CNode")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("retry", &self.retry)
            .field("preds", &self.preds)
            .field("succs", &self.succs)
            .field("deciders", &self.deciders.iter().map(|(p, _)| *p).collect::<Vec<_>>())
            .field("bindings", &self.bindings)
            .field("provides", &self.provides)
            .finish()
    }
}

impl CNode {
    pub(crate) fn is_join(&self) -> bool {
        matches!(self.kind, NodeKind::Join)
    }
}

/// A checked flow, ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub(crate) name: String,
    pub(crate) nodes: Vec<CNode>,
    /// Node index by atom name (joins excluded).
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) atom_count: usize,
}

impl Compiled {
    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Atom (task and retry) names, in depth-first order.
    pub fn atom_names(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| !n.is_join()).map(|n| n.name.as_str()).collect()
    }

    /// Atoms with their kind (task or retry controller), in depth-first order.
    pub fn atoms(&self) -> impl Iterator<Item = (&str, AtomKind)> + '_ {
        self.nodes.iter().filter_map(|n| match n.kind {
            NodeKind::Task(_) => Some((n.name.as_str(), AtomKind::Task)),
            NodeKind::Retry { .. } => Some((n.name.as_str(), AtomKind::Retry)),
            NodeKind::Join => None,
        })
    }

    /// How many atoms (tasks and retries) the flow has.
    pub fn len(&self) -> usize {
        self.atom_count
    }

    /// True if the flow has an atom (task or retry) named `name`.
    pub fn has_atom(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// True for a flow without atoms.
    pub fn is_empty(&self) -> bool {
        self.atom_count == 0
    }

    /// Every name the atoms provided, with its value (TaskFlow's `fetch_all`), given the
    /// result of each atom that succeeded (`result_of`; `None` for the others). Later
    /// atoms in depth-first order win, as in the engine.
    pub fn outputs<'v>(&self, result_of: impl Fn(&str) -> Option<&'v Value>) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for node in self.nodes.iter().filter(|n| !n.is_join()) {
            let Some(result) = result_of(&node.name) else { continue };
            for name in node.provides.names() {
                if let Some(value) = node.provides.extract(name, result) {
                    out.insert(name.to_owned(), value.clone());
                }
            }
        }
        out
    }
}

/// A child of a flow during compilation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Child {
    pub(crate) entry: usize,
    pub(crate) exit: usize,
    /// The subflow's index, if the child is a flow.
    pub(crate) flow: Option<usize>,
}

/// Per-flow facts kept during compilation (for name lookup).
#[derive(Debug, Default)]
pub(crate) struct FlowInfo {
    pub(crate) kind: Option<FlowKind>,
    pub(crate) children: Vec<Child>,
    pub(crate) retry: Option<usize>,
    /// Child positions (ascending) providing each name.
    pub(crate) provides: HashMap<String, Vec<usize>>,
    /// Names needed from outside the flow.
    pub(crate) requires: BTreeSet<String>,
    pub(crate) parent: Option<(usize, usize)>,
}

pub(crate) struct Builder<'a> {
    pub(crate) nodes: Vec<CNode>,
    pub(crate) flows: Vec<FlowInfo>,
    pub(crate) problems: Vec<CompileProblem>,
    pub(crate) store: &'a HashSet<String>,
    /// Where each atom's names are looked up from: (flow, child position).
    pub(crate) lookup_from: HashMap<usize, (usize, usize)>,
}

/// Checks `flow` and builds its execution graph; `store_keys` are the names the
/// initial store will hold.
pub fn compile<I, S>(flow: &Flow, store_keys: I) -> Result<Compiled, CompileError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let store: HashSet<String> = store_keys.into_iter().map(Into::into).collect();
    let mut b = Builder {
        nodes: Vec::with_capacity(node_count(flow)),
        flows: Vec::new(),
        problems: Vec::new(),
        store: &store,
        lookup_from: HashMap::new(),
    };
    b.build_flow(flow, None);
    b.check_duplicates();
    b.bind_all();
    // The same culprit can be found twice (by graph linking and by name lookup): report it once.
    let mut seen = HashSet::new();
    b.problems.retain(|p| seen.insert(p.to_string()));
    if !b.problems.is_empty() {
        return Err(CompileError { problems: b.problems });
    }
    let by_name: HashMap<String, usize> =
        b.nodes.iter().enumerate().filter(|(_, n)| !n.is_join()).map(|(i, n)| (n.name.clone(), i)).collect();
    let atom_count = by_name.len();
    Ok(Compiled { name: flow.name.clone(), nodes: b.nodes, by_name, atom_count })
}

/// How many graph nodes `flow` compiles to: its atoms plus an entry and an exit per flow.
fn node_count(flow: &Flow) -> usize {
    2 + flow.children.iter().map(|c| if let Node::Flow(sub) = c { node_count(sub) } else { 1 }).sum::<usize>()
}

fn atom_requires(spec: &TaskSpec) -> impl Iterator<Item = String> + '_ {
    spec.arguments().filter(|(arg, _)| !spec.inject.contains_key(*arg)).map(|(arg, _)| spec.source_name(arg).to_owned())
}

impl Builder<'_> {
    fn push(&mut self, name: String, kind: NodeKind, provides: Provides) -> usize {
        self.nodes.push(CNode {
            shared_name: Arc::from(name.as_str()),
            name,
            kind,
            retry: None,
            preds: Vec::new(),
            succs: Vec::new(),
            deciders: Vec::new(),
            bindings: Vec::new(),
            provides,
        });
        self.nodes.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize) {
        self.nodes[from].succs.push(to);
        self.nodes[to].preds.push(from);
    }

    /// Builds `flow` and returns its index and its entry/exit nodes.
    fn build_flow(&mut self, flow: &Flow, parent: Option<(usize, usize)>) -> Child {
        let fid = self.flows.len();
        self.flows.push(FlowInfo { kind: Some(flow.kind), parent, ..FlowInfo::default() });
        let entry = match &flow.retry {
            Some(retry) => {
                let name = retry.name.clone().unwrap_or_else(|| format!("{}_retry", flow.name));
                let provides = retry.provides.clone().map(Provides::Whole).unwrap_or_default();
                let n = self.push(name, NodeKind::Retry { retry: retry.clone(), scope: 0..=0 }, provides);
                if let Some(p) = parent {
                    self.lookup_from.insert(n, p);
                }
                n
            }
            None => self.push(format!("{}[^]", flow.name), NodeKind::Join, Provides::Nothing),
        };
        let mut children = Vec::with_capacity(flow.children.len());
        let mut child_requires: Vec<Vec<String>> = Vec::with_capacity(flow.children.len());
        let mut child_provides: Vec<Vec<String>> = Vec::with_capacity(flow.children.len());
        for (pos, node) in flow.children.iter().enumerate() {
            match node {
                Node::Task(spec) => {
                    let n = self.push(spec.name.clone(), NodeKind::Task(spec.clone()), spec.provides.clone());
                    self.lookup_from.insert(n, (fid, pos));
                    children.push(Child { entry: n, exit: n, flow: None });
                    child_requires.push(atom_requires(spec).collect());
                    child_provides.push(spec.provides.names().into_iter().map(str::to_owned).collect());
                }
                Node::Flow(sub) => {
                    let child = self.build_flow(sub, Some((fid, pos)));
                    let sid = child.flow.expect("build_flow returns a flow child");
                    child_requires.push(self.flows[sid].requires.iter().cloned().collect());
                    let mut names: Vec<String> = self.flows[sid].provides.keys().cloned().collect();
                    if let Some(r) = self.flows[sid].retry {
                        names.extend(self.nodes[r].provides.names().into_iter().map(str::to_owned));
                    }
                    child_provides.push(names);
                    children.push(child);
                }
            }
        }
        let exit = self.push(format!("{}[$]", flow.name), NodeKind::Join, Provides::Nothing);

        let mut provides: HashMap<String, Vec<usize>> = HashMap::new();
        for (pos, names) in child_provides.iter().enumerate() {
            for name in names {
                let list = provides.entry(name.clone()).or_default();
                if list.last() != Some(&pos) {
                    list.push(pos);
                }
            }
        }
        let retry_provides: Option<String> = flow.retry.as_ref().and_then(|r| r.provides.clone());
        let mut requires = BTreeSet::new();
        match flow.kind {
            FlowKind::Linear => {
                for (pos, reqs) in child_requires.iter().enumerate() {
                    for name in reqs {
                        let earlier = provides.get(name).is_some_and(|p| p[0] < pos);
                        if !earlier {
                            requires.insert(name.clone());
                        }
                    }
                }
            }
            FlowKind::Unordered => requires.extend(child_requires.iter().flatten().cloned()),
            FlowKind::Graph => {
                for (pos, reqs) in child_requires.iter().enumerate() {
                    for name in reqs {
                        let other = provides.get(name).is_some_and(|p| p.iter().any(|&q| q != pos));
                        if !other {
                            requires.insert(name.clone());
                        }
                    }
                }
            }
        }
        if let Some(rp) = &retry_provides {
            requires.remove(rp);
        }
        if let Some(retry_node) = flow.retry.as_ref().map(|_| entry) {
            if let NodeKind::Retry { retry, .. } = &self.nodes[retry_node].kind {
                requires.extend(retry.controller.requires());
            }
        }

        match flow.kind {
            FlowKind::Linear | FlowKind::Unordered if !flow.links.is_empty() => {
                self.problems.push(CompileProblem::LinkOutsideGraph(flow.name.clone()));
            }
            _ => {}
        }
        match flow.kind {
            FlowKind::Linear => {
                let mut prev = entry;
                for c in &children {
                    self.edge(prev, c.entry);
                    prev = c.exit;
                }
                self.edge(prev, exit);
            }
            FlowKind::Unordered => {
                for c in &children {
                    self.edge(entry, c.entry);
                    self.edge(c.exit, exit);
                }
                if children.is_empty() {
                    self.edge(entry, exit);
                }
            }
            FlowKind::Graph => {
                self.graph_edges(flow, &children, &child_requires, &provides);
                for c in &children {
                    self.edge(entry, c.entry);
                    self.edge(c.exit, exit);
                }
                if children.is_empty() {
                    self.edge(entry, exit);
                }
            }
        }

        if flow.retry.is_some() {
            if let NodeKind::Retry { scope, .. } = &mut self.nodes[entry].kind {
                *scope = (entry + 1)..=exit;
            }
            for n in (entry + 1)..=exit {
                if self.nodes[n].retry.is_none() {
                    self.nodes[n].retry = Some(entry);
                }
            }
        }
        let info = &mut self.flows[fid];
        info.children = children;
        info.retry = flow.retry.as_ref().map(|_| entry);
        info.provides = provides;
        info.requires = requires;
        Child { entry, exit, flow: Some(fid) }
    }

    fn check_duplicates(&mut self) {
        let mut seen = HashSet::new();
        let mut reported = HashSet::new();
        for n in &self.nodes {
            if !n.is_join() && !seen.insert(n.name.as_str()) && reported.insert(n.name.as_str()) {
                self.problems.push(CompileProblem::DuplicateName(n.name.clone()));
            }
        }
    }
}
