//! A task of a flow file: its kind and settings, what it provides and needs, its revert.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{extra, Cx};
use crate::condition::JsonPath;
use crate::kinds::Kind;
use crate::model::{At, Order, ProvidesDef, RevertDef, TaskDef};
use crate::problems::{did_you_mean, Sink};
use crate::reader::{self, Fields};
use crate::refs::{self, Ref};
use crate::secrets::valid_secret_name;
use crate::yaml::{self, Node, Yaml};

const TASK_KEYS: &[&str] =
    &["task", "kind", "with", "provides", "requires", "rebind", "timeout", "retry", "revert", "after"];
const REVERT_KEYS: &[&str] = &["kind", "with", "timeout"];
/// Names a revert's references may use besides the task's inputs.
const REVERT_NAMES: &[&str] = &["result", "failure"];

/// Reads a task.
pub(super) fn read(node: &Node, path: &str, parent: Order, cx: &mut Cx<'_>) -> Option<TaskDef> {
    let f = Fields::read(node, path, TASK_KEYS, &mut cx.sink)?;
    let name_node = f.get("task")?;
    let name = reader::name(name_node, &f.path_of("task"), &mut cx.sink);
    if let Some(n) = &name {
        if let Some(first) = cx.tasks.get(n) {
            let message = format!("duplicate task name {n:?} (first at line {}, column {})", first.line, first.column);
            cx.sink.at(name_node.pos, &f.path_of("task"), message);
        } else {
            cx.tasks.insert(n.clone(), name_node.pos);
        }
    }
    let kind = f.required("kind", &mut cx.sink).and_then(|n| kind(n, &f.path_of("kind"), cx));
    let mut refs = Vec::new();
    let with = match (&kind, f.get("with")) {
        (Some((_, k)), Some(n)) => settings(n, &f.path_of("with"), k.as_ref(), &mut refs, &mut cx.sink),
        (None, Some(n)) => Some(as_object(n, &f.path_of("with"), &mut cx.sink)),
        (Some((_, k)), None) => settings_absent(k.as_ref(), &f, &mut cx.sink),
        (None, None) => Some(Map::new()),
    };
    let provides = f.get("provides").and_then(|n| provides(n, &f.path_of("provides"), &mut cx.sink));
    let requires = f.get("requires").map(|n| names(n, &f.path_of("requires"), &mut cx.sink)).unwrap_or_default();
    let rebind = f.get("rebind").map(|n| rebind(n, &f.path_of("rebind"), &mut cx.sink)).unwrap_or_default();
    let timeout = f.get("timeout").and_then(|n| reader::duration(n, &f.path_of("timeout"), &mut cx.sink));
    let retry = f.get("retry").and_then(|n| extra::retry(n, &f.path_of("retry"), &mut cx.sink));
    let own: Vec<String> =
        provides.as_ref().map(|p| p.names().into_iter().map(str::to_owned).collect()).unwrap_or_default();
    let mut revert_refs = Vec::new();
    let revert = match f.get("revert") {
        Some(n) => revert(n, &f.path_of("revert"), &mut revert_refs, cx)?,
        None => None,
    };
    let no_revert = f.get("revert").is_some() && revert.is_none();
    let after = extra::after_of(&f, Some(parent), &mut cx.sink);
    let mut needs: Vec<String> = requires.clone();
    let revert_needs =
        revert_refs.iter().filter(|r| !REVERT_NAMES.contains(&r.root.as_str()) && !own.contains(&r.root));
    for r in refs.iter().chain(revert_needs).filter(|r| r.secret().is_none()) {
        if !needs.contains(&r.root) {
            needs.push(r.root.clone());
        }
    }
    Some(TaskDef {
        at: At { pos: node.pos, path: path.to_owned() },
        name: name?,
        kind: kind?.0,
        with: with?,
        provides: provides.unwrap_or(ProvidesDef::Nothing),
        requires,
        rebind,
        timeout,
        retry,
        revert,
        no_revert,
        after,
        needs,
        slot: 0,
    })
}

/// The kind named by `kind:`, if the set knows it.
fn kind(node: &Node, path: &str, cx: &mut Cx<'_>) -> Option<(String, Arc<dyn Kind>)> {
    let name = reader::text(node, path, &mut cx.sink)?;
    match cx.kinds.get(&name) {
        Some(k) => Some((name, k.clone())),
        None => {
            let hint = did_you_mean(&name, cx.kinds.names());
            let known = cx.kinds.names().join(", ");
            cx.sink.at(node.pos, path, format!("unknown kind {name:?}{hint}; known kinds: {known}"));
            None
        }
    }
}

fn as_object(node: &Node, path: &str, sink: &mut Sink) -> Map<String, Value> {
    match yaml::to_json(node, path, sink) {
        Value::Object(map) => map,
        _ => {
            sink.at(node.pos, path, format!("expected a mapping of settings, found {}", node.shape()));
            Map::new()
        }
    }
}

/// `with:` checked against the kind: known keys, the kind's own checks, reference syntax.
fn settings(
    node: &Node,
    path: &str,
    kind: &dyn Kind,
    refs: &mut Vec<Ref>,
    sink: &mut Sink,
) -> Option<Map<String, Value>> {
    let Yaml::Map(pairs) = &node.value else {
        sink.at(node.pos, path, format!("expected a mapping of settings, found {}", node.shape()));
        return None;
    };
    let key_pos = |key: &str| pairs.iter().find(|(k, _)| k.text() == Some(key)).map_or(node.pos, |(k, _)| k.pos);
    let with = as_object(node, path, sink);
    let open = kind.open_settings();
    for key in with.keys().filter(|k| !open && !kind.settings().contains(&k.as_str())) {
        let hint = did_you_mean(key, kind.settings().iter().copied());
        let known = kind.settings().join(", ");
        sink.at(
            key_pos(key),
            &yaml::join(path, key),
            format!("{} takes no setting {key:?}{hint}; it takes: {known}", kind.name()),
        );
    }
    kind_checks(kind, &with, path, &key_pos, sink);
    let (mut found, problems) = refs::in_settings(&with, kind.verbatim());
    for (key, problem) in problems {
        sink.at(key_pos(&key), &yaml::join(path, &key), problem);
    }
    callback_refs(&with, kind, &mut found, &key_pos, path, sink);
    check_secrets(&found, &key_pos(""), path, sink);
    refs.extend(found);
    Some(with)
}

/// `${callback.token}` and `${callback.url}` are names only in the kind's deferred
/// keys (`await`'s `notify`): there they are dropped from what the task needs;
/// anywhere else, or with another field, they are problems.
fn callback_refs(
    with: &Map<String, Value>,
    kind: &dyn Kind,
    found: &mut Vec<Ref>,
    key_pos: &dyn Fn(&str) -> crate::problems::Pos,
    path: &str,
    sink: &mut Sink,
) {
    let deferred: Map<String, Value> = with
        .iter()
        .filter(|(k, _)| kind.deferred().contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (inside, _) = refs::in_settings(&deferred, &[]);
    for r in inside.iter().filter(|r| r.root == refs::CALLBACK) {
        let known = matches!(r.fields.as_slice(), [f] if f == "token" || f == "url");
        if !known {
            let key = deferred.keys().next().map_or("", String::as_str);
            sink.at(
                key_pos(key),
                &yaml::join(path, key),
                format!("{}: a callback has only token and url", r.written()),
            );
        }
    }
    let outside = with.keys().filter(|k| !kind.deferred().contains(&k.as_str()));
    for key in outside {
        let (refs_here, _) = refs::in_settings(&Map::from_iter([(key.clone(), with[key].clone())]), kind.verbatim());
        for r in refs_here.iter().filter(|r| r.root == refs::CALLBACK) {
            let text = format!("{} is known only inside an await task's notify", r.written());
            sink.at(key_pos(key), &yaml::join(path, key), text);
        }
    }
    found.retain(|r| r.root != refs::CALLBACK);
}

/// A kind with no `with:` still gets its checks (e.g. a required setting).
fn settings_absent(kind: &dyn Kind, f: &Fields<'_>, sink: &mut Sink) -> Option<Map<String, Value>> {
    let with = Map::new();
    kind_checks(kind, &with, &f.path_of("with"), &|_| f.pos, sink);
    Some(with)
}

fn kind_checks(
    kind: &dyn Kind,
    with: &Map<String, Value>,
    path: &str,
    key_pos: &dyn Fn(&str) -> crate::problems::Pos,
    sink: &mut Sink,
) {
    for problem in kind.check(with) {
        match problem.split_once(": ").filter(|(k, _)| with.contains_key(*k)) {
            Some((key, rest)) => sink.at(key_pos(key), &yaml::join(path, key), rest),
            None => sink.at(key_pos(""), path, problem),
        }
    }
}

fn check_secrets(refs: &[Ref], pos: &crate::problems::Pos, path: &str, sink: &mut Sink) {
    for name in refs.iter().filter_map(Ref::secret).filter(|n| !valid_secret_name(n)) {
        sink.at(*pos, path, format!("{name:?} is not a valid secret name"));
    }
}

/// `provides: name`, `[a, b]` (fields of an object result) or `{a: $.path}`.
fn provides(node: &Node, path: &str, sink: &mut Sink) -> Option<ProvidesDef> {
    match &node.value {
        Yaml::Scalar { .. } => reader::name(node, path, sink).map(ProvidesDef::Whole),
        Yaml::Seq(items) => {
            let mut fields = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let name = reader::name(item, &format!("{path}[{i}]"), sink)?;
                fields.push((name.clone(), JsonPath(vec![name])));
            }
            Some(ProvidesDef::Fields(fields))
        }
        Yaml::Map(pairs) => {
            let mut fields = Vec::new();
            for (k, v) in pairs {
                let name = reader::name(k, path, sink)?;
                let child = yaml::join(path, &name);
                let text = reader::text(v, &child, sink)?;
                match JsonPath::parse(&text) {
                    Ok(p) => fields.push((name, p)),
                    Err(e) => sink.at(v.pos, &child, e),
                }
            }
            Some(ProvidesDef::Fields(fields))
        }
    }
}

/// One name or a list of names.
fn names(node: &Node, path: &str, sink: &mut Sink) -> Vec<String> {
    reader::one_or_many(node)
        .into_iter()
        .filter_map(|(i, n)| {
            let p = if matches!(node.value, Yaml::Seq(_)) { format!("{path}[{i}]") } else { path.to_owned() };
            reader::name(n, &p, sink)
        })
        .collect()
}

/// `rebind: {argument: source}`.
fn rebind(node: &Node, path: &str, sink: &mut Sink) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Yaml::Map(pairs) = &node.value else {
        sink.at(node.pos, path, format!("expected a mapping of argument to source name, found {}", node.shape()));
        return out;
    };
    for (k, v) in pairs {
        if let (Some(arg), Some(source)) =
            (reader::name(k, path, sink), reader::name(v, &yaml::join(path, k.text().unwrap_or_default()), sink))
        {
            out.insert(arg, source);
        }
    }
    out
}

/// `revert: none`, or a task of its own (`kind`, `with`, `timeout`). `Some(None)`: nothing to undo.
fn revert(node: &Node, path: &str, refs: &mut Vec<Ref>, cx: &mut Cx<'_>) -> Option<Option<RevertDef>> {
    if let Yaml::Scalar { text, .. } = &node.value {
        if text == "none" {
            return Some(None);
        }
        cx.sink.at(node.pos, path, format!("expected `none` or a mapping with kind and with, found {text:?}"));
        return None;
    }
    let f = Fields::read(node, path, REVERT_KEYS, &mut cx.sink)?;
    let (kind_name, kind) = f.required("kind", &mut cx.sink).and_then(|n| kind(n, &f.path_of("kind"), cx))?;
    let with = match f.get("with") {
        Some(n) => settings(n, &f.path_of("with"), kind.as_ref(), refs, &mut cx.sink)?,
        None => settings_absent(kind.as_ref(), &f, &mut cx.sink)?,
    };
    let timeout = f.get("timeout").and_then(|n| reader::duration(n, &f.path_of("timeout"), &mut cx.sink));
    Some(Some(RevertDef { kind: kind_name, with, timeout }))
}
