//! YAML tree to [`FlowDef`]: the file's keys, patterns and their children.
//!
//! Tasks live in `parse/task.rs`, retries, `each` and `after` links in
//! `parse/extra.rs`. Every problem goes to the sink; a part with a problem
//! is left out and reading goes on, so one pass reports everything.

mod extra;
mod task;

use std::collections::HashMap;

use crate::inputs::{self, Inputs};
use crate::kinds::Kinds;
use crate::limits::{shown, MAX_NAME_BYTES};
use crate::model::{At, Element, FlowDef, Order, PatternDef};
use crate::problems::{Pos, Sink};
use crate::reader::{self, Fields};
use crate::yaml::{Node, Yaml};

const TOP_KEYS: &[&str] = &["name", "description", "inputs", "deadline", "flow"];
const PATTERN_KEYS: &[&str] = &["linear", "unordered", "graph", "name", "retry", "each", "after"];
const ORDERS: [Order; 3] = [Order::Linear, Order::Unordered, Order::Graph];

/// What reading needs besides the node at hand.
pub(crate) struct Cx<'a> {
    pub(crate) sink: Sink,
    pub(crate) kinds: &'a Kinds,
    pub(crate) inputs: Inputs,
    /// Every task name seen so far, and where (task names are atom names: unique in the flow).
    pub(crate) tasks: HashMap<String, Pos>,
}

/// Reads a whole file's tree.
pub(crate) fn file(root: &Node, kinds: &Kinds) -> (Option<FlowDef>, Sink) {
    let mut cx = Cx { sink: Sink::default(), kinds, inputs: Inputs::new(), tasks: HashMap::new() };
    let Some(f) = Fields::read(root, "", TOP_KEYS, &mut cx.sink) else { return (None, cx.sink) };
    let name = f.required("name", &mut cx.sink).and_then(|n| flow_name(n, &mut cx.sink));
    let description =
        f.get("description").and_then(|n| reader::text(n, "description", &mut cx.sink)).unwrap_or_default();
    cx.inputs = f.get("inputs").map(|n| inputs::read(n, "inputs", &mut cx.sink)).unwrap_or_default();
    let deadline = f.get("deadline").and_then(|n| reader::duration(n, "deadline", &mut cx.sink));
    let flow = f.required("flow", &mut cx.sink).and_then(|n| pattern(n, "flow", None, &mut cx));
    if let Some(each) = flow.as_ref().and_then(|p| p.each.as_ref()) {
        cx.sink.at(
            each.at.pos,
            &each.at.path,
            "the top pattern has no siblings to copy into; put `each` on a pattern inside it",
        );
    }
    let def = match (name, flow) {
        (Some(name), Some(flow)) => {
            Some(FlowDef { name, description, inputs: std::mem::take(&mut cx.inputs), deadline, flow })
        }
        _ => None,
    };
    (def, cx.sink)
}

fn flow_name(node: &Node, sink: &mut Sink) -> Option<String> {
    let t = reader::text(node, "name", sink)?;
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if t.len() > MAX_NAME_BYTES {
        sink.at(node.pos, "name", format!("{} is longer than {MAX_NAME_BYTES} bytes", shown(&t)));
        None
    } else if ok {
        Some(t)
    } else {
        sink.at(node.pos, "name", format!("{} is not a valid flow name (use a-z, 0-9, '.', '_' and '-')", shown(&t)));
        None
    }
}

/// Reads a child of a pattern: a task (it has `task:`) or a pattern.
fn element(node: &Node, path: &str, parent: Order, cx: &mut Cx<'_>) -> Option<Element> {
    let Yaml::Map(pairs) = &node.value else {
        cx.sink.at(
            node.pos,
            path,
            format!("expected a task (task: NAME) or a pattern (linear, unordered or graph), found {}", node.shape()),
        );
        return None;
    };
    if pairs.iter().any(|(k, _)| k.text() == Some("task")) {
        task::read(node, path, parent, cx).map(Element::Task)
    } else if pairs.iter().any(|(k, _)| k.text() == Some("kind")) {
        cx.sink.at(node.pos, path, "a task needs a name: add `task: NAME`");
        None
    } else {
        pattern(node, path, Some(parent), cx).map(Element::Pattern)
    }
}

/// Reads a pattern node; `parent` is the enclosing pattern's order (none for `flow`).
fn pattern(node: &Node, path: &str, parent: Option<Order>, cx: &mut Cx<'_>) -> Option<PatternDef> {
    let f = Fields::read(node, path, PATTERN_KEYS, &mut cx.sink)?;
    let present: Vec<Order> = ORDERS.into_iter().filter(|o| f.has(o.key())).collect();
    let order = match present.as_slice() {
        [one] => *one,
        [] => {
            cx.sink.at(
                node.pos,
                path,
                "a pattern needs one of linear, unordered or graph (or, for a task, `task: NAME`)",
            );
            return None;
        }
        _ => {
            let extra = present[1].key();
            cx.sink.at(
                f.key_pos(extra).unwrap_or(node.pos),
                &f.path_of(extra),
                "a pattern has exactly one of linear, unordered or graph",
            );
            return None;
        }
    };
    let list_path = f.path_of(order.key());
    let list = f.get(order.key()).and_then(|n| reader::list(n, &list_path, &mut cx.sink)).unwrap_or_default();
    let mut children = Vec::new();
    for (i, child) in list.iter().enumerate() {
        if let Some(e) = element(child, &format!("{list_path}[{i}]"), order, cx) {
            children.push(e);
        }
    }
    let name = f.get("name").and_then(|n| reader::name(n, &f.path_of("name"), &mut cx.sink));
    let retry = f.get("retry").and_then(|n| extra::retry(n, &f.path_of("retry"), &mut cx.sink));
    let each = f.get("each").and_then(|n| extra::each(n, &f.path_of("each"), cx));
    let after = extra::after_of(&f, parent, &mut cx.sink);
    check_siblings(&children, order, &mut cx.sink);
    Some(PatternDef { at: At { pos: node.pos, path: path.to_owned() }, name, order, children, retry, each, after })
}

/// Sibling ids are unique; `after:` names a sibling other than itself.
fn check_siblings(children: &[Element], order: Order, sink: &mut Sink) {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for c in children {
        if let (Element::Pattern(_), Some(id)) = (c, c.id()) {
            if let Some(first) = seen.get(id) {
                sink.at(
                    c.at().pos,
                    &c.at().path,
                    format!("{id:?} is already the name of a sibling (line {}, column {})", first.line, first.column),
                );
            }
        }
        if let Some(id) = c.id() {
            seen.entry(id).or_insert(c.at().pos);
        }
    }
    if order != Order::Graph {
        return;
    }
    let ids: Vec<&str> = children.iter().filter_map(Element::id).collect();
    for c in children {
        for link in c.after() {
            if Some(link.id.as_str()) == c.id() {
                sink.at(link.at.pos, &link.at.path, "a task cannot run after itself");
            } else if !ids.contains(&link.id.as_str()) {
                let hint = crate::problems::did_you_mean(&link.id, ids.iter().copied());
                sink.at(
                    link.at.pos,
                    &link.at.path,
                    format!("{:?} is not a task or named pattern of this graph{hint}", link.id),
                );
            }
        }
    }
}
