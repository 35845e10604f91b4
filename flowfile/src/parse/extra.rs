//! `retry:`, `each:` and `after:`: what tasks and patterns may carry besides their work.

use serde_json::Value;

use super::Cx;
use crate::condition::Condition;
use crate::inputs::InputType;
use crate::model::{AfterDef, At, EachDef, Order, RetryDef, Strategy};
use crate::problems::{did_you_mean, Sink};
use crate::reader::{self, Fields};
use crate::yaml::{self, Node, Yaml};

const RETRY_KEYS: &[&str] = &[
    "times",
    "for_each",
    "for_each_from",
    "always_revert",
    "always_revert_all",
    "delay",
    "backoff",
    "max_delay",
    "jitter",
    "provides",
];
const STRATEGIES: &[&str] = &["times", "for_each", "for_each_from", "always_revert", "always_revert_all"];

/// Reads a retry controller.
pub(super) fn retry(node: &Node, path: &str, sink: &mut Sink) -> Option<RetryDef> {
    let f = Fields::read(node, path, RETRY_KEYS, sink)?;
    let present: Vec<&str> = STRATEGIES.iter().copied().filter(|k| f.has(k)).collect();
    let key = match present.as_slice() {
        [one] => *one,
        [] => {
            sink.at(node.pos, path, format!("a retry needs one of {}", STRATEGIES.join(", ")));
            return None;
        }
        [_, second, ..] => {
            sink.at(
                f.key_pos(second).unwrap_or(node.pos),
                &f.path_of(second),
                format!("a retry has only one of {}", STRATEGIES.join(", ")),
            );
            return None;
        }
    };
    let value = f.get(key)?;
    let at = f.path_of(key);
    let strategy = match key {
        "times" => match reader::whole(value, &at, sink)? {
            0 => {
                sink.at(value.pos, &at, "times counts attempts in all: at least 1");
                return None;
            }
            n => Strategy::Times(n),
        },
        "for_each" => match yaml::to_json(value, &at, sink) {
            Value::Array(values) if !values.is_empty() => Strategy::ForEach(values),
            _ => {
                sink.at(value.pos, &at, "expected a non-empty list of values to try");
                return None;
            }
        },
        "for_each_from" => Strategy::ForEachFrom(reader::name(value, &at, sink)?),
        "always_revert" | "always_revert_all" => {
            if !reader::boolean(value, &at, sink)? {
                sink.at(value.pos, &at, format!("write `{key}: true` (leave the key out for no controller)"));
                return None;
            }
            if key == "always_revert" {
                Strategy::AlwaysRevert
            } else {
                Strategy::AlwaysRevertAll
            }
        }
        _ => return None,
    };
    let delay = f.get("delay").and_then(|n| reader::duration(n, &f.path_of("delay"), sink));
    let backoff = f.get("backoff").and_then(|n| reader::number(n, &f.path_of("backoff"), sink));
    let max_delay = f.get("max_delay").and_then(|n| reader::duration(n, &f.path_of("max_delay"), sink));
    let jitter = f.get("jitter").and_then(|n| reader::number(n, &f.path_of("jitter"), sink));
    let provides = f.get("provides").and_then(|n| reader::name(n, &f.path_of("provides"), sink));
    for k in ["backoff", "max_delay", "jitter"] {
        if f.has(k) && !f.has("delay") {
            sink.at(f.key_pos(k).unwrap_or(node.pos), &f.path_of(k), "needs a `delay` to act on");
        }
    }
    if let (Some(b), Some(n)) = (backoff, f.get("backoff")) {
        if b < 1.0 {
            sink.at(n.pos, &f.path_of("backoff"), "the backoff factor is at least 1 (1 keeps the delay fixed)");
        }
    }
    if let (Some(j), Some(n)) = (jitter, f.get("jitter")) {
        if !(0.0..=1.0).contains(&j) {
            sink.at(n.pos, &f.path_of("jitter"), "jitter is a fraction of the delay, from 0 to 1");
        }
    }
    Some(RetryDef { strategy, delay, backoff, max_delay, jitter, provides })
}

/// Reads `each: {in: INPUT, as: NAME}`; INPUT must be a declared list or whole-number input.
pub(super) fn each(node: &Node, path: &str, cx: &mut Cx<'_>) -> Option<EachDef> {
    let f = Fields::read(node, path, &["in", "as"], &mut cx.sink)?;
    let in_node = f.required("in", &mut cx.sink)?;
    let input = reader::name(in_node, &f.path_of("in"), &mut cx.sink)?;
    let item = reader::name(f.required("as", &mut cx.sink)?, &f.path_of("as"), &mut cx.sink)?;
    match cx.inputs.get(&input) {
        None => {
            let hint = did_you_mean(&input, cx.inputs.keys().map(String::as_str));
            cx.sink.at(in_node.pos, &f.path_of("in"), format!("{input:?} is not a declared input{hint}"));
            return None;
        }
        Some(spec) if !matches!(spec.kind, InputType::Array | InputType::Integer) => {
            cx.sink.at(in_node.pos, &f.path_of("in"), format!("input {input:?} is not an array or an integer"));
            return None;
        }
        Some(_) => {}
    }
    Some(EachDef { at: At { pos: node.pos, path: path.to_owned() }, input, item })
}

/// Reads `after:` of a task or pattern (only children of a graph take it):
/// `after: a`, `after: [a, b]`, items may be `{id: a, when: CONDITION}`.
pub(super) fn after_of(f: &Fields<'_>, parent: Option<Order>, sink: &mut Sink) -> Vec<AfterDef> {
    let Some(node) = f.get("after") else { return Vec::new() };
    let path = f.path_of("after");
    if parent != Some(Order::Graph) {
        sink.at(
            f.key_pos("after").unwrap_or(node.pos),
            &path,
            "only tasks and patterns inside a graph take `after` links",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in reader::one_or_many(node) {
        let item_path = if matches!(node.value, Yaml::Seq(_)) { format!("{path}[{i}]") } else { path.clone() };
        let at = At { pos: item.pos, path: item_path.clone() };
        if let Yaml::Map(_) = item.value {
            let Some(link) = Fields::read(item, &item_path, &["id", "when"], sink) else { continue };
            let Some(id) = link.required("id", sink).and_then(|n| reader::name(n, &link.path_of("id"), sink)) else {
                continue;
            };
            let when = link.get("when").and_then(|n| Condition::read(n, &link.path_of("when"), sink));
            if link.has("when") && when.is_none() {
                continue;
            }
            out.push(AfterDef { at, id, when });
        } else if let Some(id) = reader::name(item, &item_path, sink) {
            out.push(AfterDef { at, id, when: None });
        }
    }
    out
}
