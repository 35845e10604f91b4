//! YAML text to a tree of nodes that remember where they were written.
//!
//! Built on `saphyr-parser` (a maintained, pure-Rust YAML 1.2 parser; not the
//! deprecated `serde_yaml`/`unsafe-libyaml` pair of RUSTSEC-2024-0449) whose
//! events carry a line and column each. We keep the tree untyped on purpose:
//! a scalar keeps its text and whether it was quoted, and the reader decides
//! its type from what the field declares. So `on`, `no` and `yes` stay text
//! wherever text is expected (YAML 1.1 would have made them booleans), and
//! every problem of a file can be reported at once rather than the first one
//! a typed deserializer trips on. All YAML of this crate goes through here.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use crate::limits::{MAX_DEPTH, MAX_NODES};
use crate::problems::{Pos, Problems, Sink};

/// A YAML node and its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) value: Yaml,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum Yaml {
    /// A scalar's text; `plain` when it was written without quotes (or block style) and without `!!str`.
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written (duplicates are kept for the reader to report).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, if this is a scalar.
    pub(crate) fn text(&self) -> Option<&str> {
        match &self.value {
            Yaml::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short name of the node's shape for error messages.
    pub(crate) fn shape(&self) -> &'static str {
        match &self.value {
            Yaml::Scalar { .. } => "a scalar",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }
}

fn pos(span: &Span) -> Pos {
    Pos { line: span.start.line(), column: span.start.col() + 1 }
}

/// Parses one YAML document. A syntax error is returned with its position.
pub(crate) fn load(text: &str) -> Result<Node, (Pos, String)> {
    let (mut documents, last) = load_all(text)?;
    match documents.len() {
        0 => Err((last, "the file is empty".to_owned())),
        1 => Ok(documents.remove(0)),
        _ => Err((documents[1].pos, "a flow file holds one YAML document".to_owned())),
    }
}

/// A YAML (or JSON) text that is not a flow file, such as a job's store file, as JSON
/// (the YAML 1.2 core schema: `on`, `yes` stay text); `Ok(None)` when it holds no document.
/// `file` names the text in the problems (syntax, several documents, duplicate keys).
pub fn document_to_json(file: &str, text: &str) -> Result<Option<Value>, Problems> {
    let mut sink = Sink::default();
    let value = match load_all(text) {
        Err((pos, message)) => {
            sink.at(pos, "", message);
            None
        }
        Ok((documents, _)) => match documents.as_slice() {
            [] => None,
            [root] => Some(to_json(root, "", &mut sink)),
            [_, second, ..] => {
                sink.at(second.pos, "", "the file holds more than one YAML document");
                None
            }
        },
    };
    if sink.is_empty() {
        Ok(value)
    } else {
        Err(sink.into_problems(file))
    }
}

/// Every document of `text`, and the position of its last event.
fn load_all(text: &str) -> Result<(Vec<Node>, Pos), (Pos, String)> {
    let mut parser = Parser::new_from_str(text);
    // Anchored nodes, with how many nodes each holds (itself included).
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    // Open collections: (position, anchor, is a mapping, items (a mapping's keys and
    // values alternately), the node count when it opened).
    let mut stack: Vec<(Pos, usize, bool, Vec<Node>, usize)> = Vec::new();
    // Nodes made so far, an alias counting every node it copies: a few aliases of
    // aliases would otherwise copy billions ("billion laughs").
    let mut nodes = 0usize;
    let mut documents: Vec<Node> = Vec::new();
    let mut last = Pos { line: 1, column: 1 };
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            (Pos { line: e.marker().line(), column: e.marker().col() + 1 }, format!("YAML syntax: {}", e.info()))
        })?;
        last = pos(&span);
        if stack.len() > MAX_DEPTH {
            return Err((last, format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
        // (the node, its anchor or 0, how many nodes it holds, how many it adds to `nodes`)
        let finished = match event {
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => None,
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, size)) => Some((Node { pos: pos(&span), value: node.value.clone() }, 0, *size, *size)),
                None => return Err((pos(&span), "YAML alias to an unknown anchor".to_owned())),
            },
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_str;
                Some((Node { pos: pos(&span), value: Yaml::Scalar { text: text.into_owned(), plain } }, anchor, 1, 1))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((pos(&span), anchor, false, Vec::new(), nodes));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push((pos(&span), anchor, true, Vec::new(), nodes));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((at, anchor, is_map, items, opened)) = stack.pop() else {
                    return Err((pos(&span), "YAML structure ends before it starts".to_owned()));
                };
                let value = if is_map {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut items = items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    Yaml::Map(pairs)
                } else {
                    Yaml::Seq(items)
                };
                // Its items were counted as they came: it adds itself.
                Some((Node { pos: at, value }, anchor, nodes - opened + 1, 1))
            }
        };
        if let Some((node, anchor, size, adds)) = finished {
            nodes = nodes.saturating_add(adds);
            if nodes > MAX_NODES {
                return Err((
                    node.pos,
                    format!("YAML holds over {MAX_NODES} nodes (aliases count every node they copy)"),
                ));
            }
            if anchor != 0 {
                anchors.insert(anchor, (node.clone(), size));
            }
            match stack.last_mut() {
                Some((_, _, _, items, _)) => items.push(node),
                None => documents.push(node),
            }
        }
    }
    Ok((documents, last))
}

/// A plain scalar typed by the YAML 1.2 core schema (`yes`/`on` stay strings).
pub(crate) fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::Number(u.into());
    }
    let radix = |prefix: &str, radix: u32| text.strip_prefix(prefix).and_then(|d| i64::from_str_radix(d, radix).ok());
    if let Some(i) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Value::Number(i.into());
    }
    let looks_numeric = text.chars().next().is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
        && text.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    if looks_numeric {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_owned())
}

/// The node as JSON (YAML 1.2 core schema); non-scalar or duplicate keys are reported.
pub(crate) fn to_json(node: &Node, path: &str, sink: &mut Sink) -> Value {
    match &node.value {
        Yaml::Scalar { text, plain: true } => plain_scalar(text),
        Yaml::Scalar { text, plain: false } => Value::String(text.clone()),
        Yaml::Seq(items) => {
            Value::Array(items.iter().enumerate().map(|(i, n)| to_json(n, &format!("{path}[{i}]"), sink)).collect())
        }
        Yaml::Map(pairs) => {
            let mut map = Map::new();
            for (k, v) in pairs {
                let Some(key) = k.text() else {
                    sink.at(k.pos, path, format!("a key must be text, not {}", k.shape()));
                    continue;
                };
                let child = join(path, key);
                if map.contains_key(key) {
                    sink.at(k.pos, &child, "duplicate key");
                    continue;
                }
                let value = to_json(v, &child, sink);
                map.insert(key.to_owned(), value);
            }
            Value::Object(map)
        }
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_read_as_json_or_name_the_problem() {
        let value = document_to_json("s.yaml", "version: 1.10\nname: on\nlist: [1, \"2\"]\n").unwrap();
        assert_eq!(value, Some(serde_json::json!({"version": 1.1, "name": "on", "list": [1, "2"]})));
        assert_eq!(document_to_json("s.yaml", "# nothing\n").unwrap(), None);
        let problems = document_to_json("s.yaml", "a: [1, 2\n").unwrap_err();
        assert!(problems.lines()[0].starts_with("s.yaml:"), "{problems}");
        let problems = document_to_json("s.yaml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!(problems.lines(), ["s.yaml:2:1: a: duplicate key"]);
        assert!(document_to_json("s.yaml", "a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn core_schema_keeps_yaml_1_1_booleans_as_text() {
        assert_eq!(plain_scalar("on"), Value::String("on".into()));
        assert_eq!(plain_scalar("yes"), Value::String("yes".into()));
        assert_eq!(plain_scalar("no"), Value::String("no".into()));
        assert_eq!(plain_scalar("true"), Value::Bool(true));
        assert_eq!(plain_scalar("555"), Value::from(555));
        assert_eq!(plain_scalar("1.5"), Value::from(1.5));
        assert_eq!(plain_scalar("1.2.3"), Value::String("1.2.3".into()));
        assert_eq!(plain_scalar("~"), Value::Null);
    }

    #[test]
    fn positions_are_one_based() {
        let node = load("a: 1\nb:\n  - x\n").expect("parses");
        let Yaml::Map(pairs) = &node.value else { panic!("a mapping") };
        assert_eq!(pairs[1].0.pos, Pos { line: 2, column: 1 });
        let Yaml::Seq(items) = &pairs[1].1.value else { panic!("a list") };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
    }

    #[test]
    fn quoted_and_tagged_scalars_are_not_plain() {
        let mut sink = Sink::default();
        let node = load("a: '1'\nb: !!str true\nc: 1\n").expect("parses");
        let json = to_json(&node, "", &mut sink);
        assert_eq!(json, serde_json::json!({"a": "1", "b": "true", "c": 1}));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (at, message) = load("a: [1, 2\nb: 3\n").expect_err("unclosed list");
        assert!(at.line >= 1 && message.starts_with("YAML syntax"), "{at:?} {message}");
    }
}
