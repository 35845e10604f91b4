//! The model to a `flows::Flow` for one job's store.
//!
//! `each` is expanded here, when the store is known: one copy of the pattern
//! per item, named `NAME[i]` (NAME: the pattern's `name`, else its `as`), with
//! the copy's tasks named `TASK[i]` and every name provided inside the copy
//! published as `NAME[i]` too and rebound for the copy's own consumers, so it
//! stays local. The item itself is injected into every task of the copy that
//! needs it. After the copies a fan-in task `NAME[*]` publishes each of those
//! names as the list of the copies' values in item order. Copies are siblings
//! in the enclosing pattern; in an unordered one, where siblings see nothing of
//! each other, copies and fan-in go into `linear NAME [unordered NAME[all], NAME[*]]`.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use flows::{task_fn, Failure, Flow, Node, TaskSpec};
use serde_json::{Map, Value};

use crate::inputs;
use crate::kinds::Kinds;
use crate::model::{At, Element, FlowDef, Order, PatternDef, ProvidesDef, RetryDef, TaskDef};
use crate::prepared::Prepared;
use crate::task::{FileTask, NotifyPlan, Plan, RevertPlan};

/// Names in force inside one copy of an `each` (empty at the top).
#[derive(Debug, Clone, Default)]
struct Scope {
    /// Appended to task and pattern names: `[i]`, `[i][j]` when nested.
    suffix: String,
    /// Names provided inside the copy, and what they are published as.
    locals: HashMap<String, String>,
    /// `each` items by their `as` name.
    items: HashMap<String, Value>,
}

/// What a name resolves to when the flow is built.
enum Resolved {
    /// A value known now: an `each` item or an input's default.
    Value(Value),
    /// A name looked up at run time (published as this name).
    Name(String),
}

/// Builds flows from one file for one store.
pub(crate) struct Builder<'a> {
    def: &'a FlowDef,
    store: &'a Map<String, Value>,
    kinds: &'a Kinds,
    /// Where each built task, retry wrapper and pattern came from, for the parse-time
    /// compile check's errors; `None` when building a job's flow, which needs none.
    origins: Option<HashMap<String, At>>,
    /// The tasks' engine objects built once per file version (a factory's), if any.
    prepared: Option<&'a Prepared>,
}

/// A built child and the names `after:` links reach it by.
struct Built {
    nodes: Vec<Node>,
    /// Built names of the children, and whether each is a task wrapped in a retry flow.
    names: Vec<(String, bool)>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(def: &'a FlowDef, store: &'a Map<String, Value>, kinds: &'a Kinds) -> Self {
        Builder { def, store, kinds, origins: None, prepared: None }
    }

    /// A builder of `prepared`'s file that reuses its tasks' engine objects.
    pub(crate) fn prepared(prepared: &'a Prepared, store: &'a Map<String, Value>, kinds: &'a Kinds) -> Self {
        Builder { def: prepared.def(), store, kinds, origins: None, prepared: Some(prepared) }
    }

    /// A builder that also records where each built name came from ([`Builder::origin`]).
    pub(crate) fn recording(def: &'a FlowDef, store: &'a Map<String, Value>, kinds: &'a Kinds) -> Self {
        Builder { def, store, kinds, origins: Some(HashMap::new()), prepared: None }
    }

    /// Where the built name `name` came from (only for a [`Builder::recording`] builder).
    pub(crate) fn origin(&self, name: &str) -> Option<&At> {
        self.origins.as_ref()?.get(name)
    }

    fn record(&mut self, name: &str, at: &At) {
        if let Some(origins) = &mut self.origins {
            origins.insert(name.to_owned(), at.clone());
        }
    }

    /// The job's flow.
    pub(crate) fn flow(&mut self) -> Result<Flow, String> {
        self.pattern(&self.def.flow, self.def.name.clone(), &Scope::default())
    }

    fn pattern(&mut self, p: &PatternDef, name: String, scope: &Scope) -> Result<Flow, String> {
        self.record(&name, &p.at);
        let base = p.name.clone().unwrap_or_else(|| name.trim_end_matches(&scope.suffix).to_owned());
        let mut flow = match p.order {
            Order::Linear => Flow::linear(name),
            Order::Unordered => Flow::unordered(name),
            Order::Graph => Flow::graph(name),
        };
        // `after:` links reach a child by its built names; gathered only when there are links.
        let linked = p.children.iter().any(|c| !c.after().is_empty());
        let mut nodes = Vec::with_capacity(p.children.len());
        let mut reach: Vec<Vec<(String, bool)>> = Vec::with_capacity(if linked { p.children.len() } else { 0 });
        for (i, child) in p.children.iter().enumerate() {
            match child {
                Element::Task(t) => {
                    let (node, wrapped) = self.task(t, scope)?;
                    if linked {
                        reach.push(vec![(node.name().to_owned(), wrapped)]);
                    }
                    nodes.push(node);
                }
                Element::Pattern(c) if c.each.is_some() => {
                    let b = self.each(c, scope, p.order)?;
                    if linked {
                        reach.push(b.names);
                    }
                    nodes.extend(b.nodes);
                }
                Element::Pattern(c) => {
                    let child_name =
                        format!("{}{}", c.name.clone().unwrap_or_else(|| format!("{base}.{i}")), scope.suffix);
                    let f = self.pattern(c, child_name, scope)?;
                    if linked {
                        reach.push(vec![(f.name().to_owned(), false)]);
                    }
                    nodes.push(Node::Flow(f));
                }
            }
        }
        if let Some(r) = &p.retry {
            flow = flow.retry(self.retry(r, scope));
        }
        flow = flow.add_all(nodes);
        if !linked {
            return Ok(flow);
        }
        let ids: HashMap<&str, usize> =
            p.children.iter().enumerate().filter_map(|(i, c)| c.id().map(|id| (id, i))).collect();
        let mut links = Vec::new();
        for (i, child) in p.children.iter().enumerate() {
            for link in child.after() {
                let Some(&from) = ids.get(link.id.as_str()) else { continue };
                for (from_name, wrapped) in &reach[from] {
                    for (to_name, _) in &reach[i] {
                        links.push((from_name.clone(), *wrapped, to_name.clone(), link.when.clone()));
                    }
                }
            }
        }
        for (from, wrapped, to, when) in links {
            flow = match when {
                None => flow.link(from, to),
                Some(cond) => {
                    // A task under a retry is a subflow whose "result" is {task: result}.
                    let key = wrapped.then(|| from.clone());
                    flow.link_if(from, to, move |v: &Value| {
                        let v = key.as_ref().map_or(v, |k| v.get(k).unwrap_or(&Value::Null));
                        cond.holds(v)
                    })
                }
            };
        }
        Ok(flow)
    }

    /// One file task as an engine task (inside a retry flow of the same name if it has a retry).
    fn task(&mut self, t: &TaskDef, scope: &Scope) -> Result<(Node, bool), String> {
        if self.origins.is_some() {
            self.record(&atom_name(t, scope), &t.at);
        }
        let prepared = self.prepared.and_then(|p| p.task(t));
        let spec = match prepared.and_then(|p| p.spec.as_ref()).filter(|_| scope.suffix.is_empty()) {
            // Wired once per file version: nothing of it depends on the store.
            Some(spec) => spec.clone(),
            None => {
                // Only a task publishing fields inside an `each` copy differs from its prepared one.
                let reusable = scope.locals.is_empty() || !matches!(t.provides, ProvidesDef::Fields(_));
                let task: Arc<dyn flows::Task> = match prepared.filter(|_| reusable) {
                    Some(p) => p.task.clone(),
                    None => Arc::new(self.file_task(t, scope)?),
                };
                self.spec(t, scope, atom_name(t, scope), task)
            }
        };
        match &t.retry {
            None => Ok((Node::Task(spec), false)),
            // The retry wrapper takes the task's name too.
            Some(r) => {
                let wrapper = Flow::linear(spec.name().to_owned());
                Ok((Node::Flow(wrapper.add(spec).retry(self.retry(r, scope))), true))
            }
        }
    }

    /// The spec of a top-scope task that depends on no store value (it needs no name, so
    /// no default or `each` item is injected): what [`Prepared`] wires once per file version.
    pub(crate) fn top_spec(&self, t: &TaskDef, task: Arc<dyn flows::Task>) -> Option<TaskSpec> {
        t.needs.is_empty().then(|| self.spec(t, &Scope::default(), t.name.clone(), task))
    }

    /// A file task's wiring: its kind, the names it needs (injected or rebound in `scope`),
    /// what it publishes, its timeout.
    fn spec(&self, t: &TaskDef, scope: &Scope, atom: String, task: Arc<dyn flows::Task>) -> TaskSpec {
        // A built-in kind's name is static: a spec copied per job then copies no text for it.
        let kind = self.kinds.get(&t.kind).map_or_else(|| Cow::Owned(t.kind.clone()), |k| Cow::Borrowed(k.name()));
        let mut spec = TaskSpec::new(atom, task).kind(kind);
        if !t.needs.is_empty() {
            spec = spec.requires(t.needs.iter().cloned());
        }
        for arg in &t.needs {
            spec = match self.resolve(t.rebind.get(arg).unwrap_or(arg), scope) {
                Resolved::Value(v) => spec.inject(arg.clone(), v),
                Resolved::Name(name) if name != *arg => spec.rebind(arg.clone(), name),
                Resolved::Name(_) => spec,
            };
        }
        spec = match &t.provides {
            ProvidesDef::Nothing => spec,
            ProvidesDef::Whole(n) => spec.provides(published(scope, n)),
            ProvidesDef::Fields(fs) => spec.provides_fields(fs.iter().map(|(n, _)| published(scope, n))),
        };
        if let Some(limit) = t.timeout {
            spec = spec.timeout(limit);
        }
        spec
    }

    /// The engine object of a file task at the top scope (what [`Prepared`] keeps).
    pub(crate) fn top_task(&self, t: &TaskDef) -> Result<FileTask, String> {
        self.file_task(t, &Scope::default())
    }

    /// The engine object of a file task: its kind, settings, result plan, revert and notify.
    fn file_task(&self, t: &TaskDef, scope: &Scope) -> Result<FileTask, String> {
        let kind = self.kind(&t.kind)?;
        let revert = match &t.revert {
            Some(r) => Some(RevertPlan { kind: self.kind(&r.kind)?, with: r.with.clone(), timeout: r.timeout }),
            None if kind.reverts_itself() && !t.no_revert => {
                Some(RevertPlan { kind: kind.clone(), with: t.with.clone(), timeout: t.timeout })
            }
            None => None,
        };
        let plan = match &t.provides {
            ProvidesDef::Nothing | ProvidesDef::Whole(_) => Plan::Whole,
            ProvidesDef::Fields(fs) => {
                Plan::Fields(fs.iter().map(|(n, p)| (n.clone(), published(scope, n), p.clone())).collect())
            }
        };
        let whole = match &t.provides {
            ProvidesDef::Whole(n) => Some(n.clone()),
            _ => None,
        };
        let notify = match crate::kinds::await_kind::notify_of(&t.with) {
            Ok(Some((name, with))) if !kind.deferred().is_empty() => Some(NotifyPlan {
                kind: self.kind(&name)?,
                with,
                callback_base: self.kinds.callback_base_url().cloned(),
            }),
            _ => None,
        };
        Ok(FileTask {
            fixed: crate::task::fixed(kind.as_ref(), &t.with),
            kind,
            with: t.with.clone(),
            plan,
            whole,
            timeout: t.timeout,
            secrets: self.kinds.secret_store().clone(),
            revert,
            args: t.requires.iter().chain(t.rebind.keys()).cloned().collect(),
            notify,
        })
    }

    /// What a name read in `scope` stands for: inside an `each` copy the copy's
    /// item or a name provided in the copy, else the store, else the input's default.
    fn resolve(&self, name: &str, scope: &Scope) -> Resolved {
        if let Some(item) = scope.items.get(name) {
            Resolved::Value(item.clone())
        } else if let Some(local) = scope.locals.get(name) {
            Resolved::Name(local.clone())
        } else if let Some(default) = self.default_of(name) {
            Resolved::Value(default)
        } else {
            Resolved::Name(name.to_owned())
        }
    }

    /// The engine retry of `r`, its names (`for_each_from`, `provides`) read and published in `scope`.
    fn retry(&self, r: &RetryDef, scope: &Scope) -> flows::Retry {
        let mut retry = r.to_retry(|key| match self.resolve(key, scope) {
            // As `parameterized_for_each` does with its input, a value that is not a list is no values.
            Resolved::Value(v) => flows::Retry::for_each(v.as_array().cloned().unwrap_or_default()),
            Resolved::Name(name) => flows::Retry::parameterized_for_each(name),
        });
        if let Some(provided) = &r.provides {
            retry = retry.provides(published(scope, provided));
        }
        retry
    }

    /// A declared input's default, when the store lacks the input.
    fn default_of(&self, name: &str) -> Option<Value> {
        if self.store.contains_key(name) {
            return None;
        }
        self.def.inputs.get(name).and_then(|spec| spec.default.clone())
    }

    fn kind(&self, name: &str) -> Result<Arc<dyn crate::kinds::Kind>, String> {
        self.kinds.get(name).cloned().ok_or_else(|| {
            format!(
                "flow {:?} uses task kind {name:?}, which is not allowed here (allowed: {})",
                self.def.name,
                self.kinds.names().join(", ")
            )
        })
    }

    /// The copies of an `each` pattern and their fan-in, placed for the enclosing `order`.
    fn each(&mut self, p: &PatternDef, scope: &Scope, order: Order) -> Result<Built, String> {
        let each = p.each.as_ref().ok_or("each expected")?;
        let given = self
            .store
            .get(&each.input)
            .cloned()
            .or_else(|| self.def.inputs.get(&each.input).and_then(|s| s.default.clone()));
        let items = inputs::items_of(&each.input, given.as_ref())?;
        let base = p.name.clone().unwrap_or_else(|| each.item.clone());
        let mut provided = BTreeSet::new();
        provided_names(p, &mut provided);
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        let mut copies = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let suffix = format!("{}[{i}]", scope.suffix);
            let mut inner = scope.clone();
            inner.items.insert(each.item.clone(), item.clone());
            for name in &provided {
                inner.locals.insert(name.clone(), format!("{name}{suffix}"));
            }
            inner.suffix = suffix.clone();
            let copy = self.pattern(p, format!("{base}{suffix}"), &inner)?;
            copies.push((format!("{base}{suffix}"), suffix));
            names.push((copy.name().to_owned(), false));
            nodes.push(Node::Flow(copy));
        }
        if provided.is_empty() {
            return Ok(Built { nodes, names });
        }
        let fan_in_name = format!("{base}{}[*]", scope.suffix);
        self.record(&fan_in_name, &p.at);
        let fields: Vec<(String, Vec<String>)> = provided
            .iter()
            .map(|n| (published(scope, n), copies.iter().map(|(_, suffix)| format!("{n}{suffix}")).collect()))
            .collect();
        let fan_in = fan_in_task(&fan_in_name, fields);
        if order == Order::Unordered {
            let all = Flow::unordered(format!("{base}{}[all]", scope.suffix)).add_all(nodes);
            let wrapper_name = format!("{base}{}", scope.suffix);
            let wrapper = Flow::linear(wrapper_name.clone()).add(all).add(fan_in);
            return Ok(Built { nodes: vec![Node::Flow(wrapper)], names: vec![(wrapper_name, false)] });
        }
        nodes.push(Node::Task(fan_in));
        names.push((fan_in_name, false));
        Ok(Built { nodes, names })
    }
}

/// A task's atom name in `scope` (`TASK[i]` inside an `each` copy).
fn atom_name(t: &TaskDef, scope: &Scope) -> String {
    if scope.suffix.is_empty() {
        t.name.clone()
    } else {
        format!("{}{}", t.name, scope.suffix)
    }
}

/// What `name` is published as in `scope` (renamed inside an `each` copy).
fn published(scope: &Scope, name: &str) -> String {
    scope.locals.get(name).cloned().unwrap_or_else(|| name.to_owned())
}

/// Every name provided by tasks and retries inside `p`, at any depth.
fn provided_names(p: &PatternDef, out: &mut BTreeSet<String>) {
    out.extend(p.retry.iter().filter_map(|r| r.provides.clone()));
    for c in &p.children {
        match c {
            Element::Task(t) => {
                out.extend(t.provides.names().into_iter().map(str::to_owned));
                out.extend(t.retry.iter().filter_map(|r| r.provides.clone()));
            }
            Element::Pattern(inner) => provided_names(inner, out),
        }
    }
}

/// The fan-in task: each output name gets the list of its copies' values, in item order.
fn fan_in_task(name: &str, fields: Vec<(String, Vec<String>)>) -> TaskSpec {
    let needs: Vec<String> = fields.iter().flat_map(|(_, copies)| copies.clone()).collect();
    let outputs: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
    let fields = Arc::new(fields);
    task_fn(name, move |ctx| {
        let fields = fields.clone();
        async move {
            let mut out = Map::new();
            for (output, copies) in fields.iter() {
                let values = copies.iter().map(|c| ctx.require(c).cloned()).collect::<Result<Vec<Value>, Failure>>()?;
                out.insert(output.clone(), Value::Array(values));
            }
            Ok(Value::Object(out))
        }
    })
    .requires(needs)
    .provides_fields(outputs)
}
