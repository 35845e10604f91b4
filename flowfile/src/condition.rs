//! Conditions on graph links (`after: [{id: a, when: ...}]`) and `$.path`s.
//!
//! The language is deliberately tiny; a condition is one of
//! - `{equals: {path: $.ok, value: true}}`: the field equals the value;
//! - `{not_equals: {path: $.status, value: "failed"}}`;
//! - `{one_of: {path: $.zone, values: [a, b]}}`;
//! - `{all: [COND, ...]}` / `{any: [COND, ...]}`.
//!
//! It is evaluated by the engine's decider on the predecessor's result; when
//! false, the linked task and everything after it end IGNORE. A missing field is
//! `null`. `$` is the whole result; `$.a.b`, `$.items[0]` or `$.items.0` go in.

use serde::Serialize;
use serde_json::Value;

use crate::problems::Sink;
use crate::reader::{self, Fields};
use crate::yaml::{self, Node};

/// A path into a JSON result: `$`, `$.field`, `$.list[2].name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub(crate) struct JsonPath(pub(crate) Vec<String>);

impl From<JsonPath> for String {
    fn from(p: JsonPath) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for part in &self.0 {
            write!(f, ".{part}")?;
        }
        Ok(())
    }
}

impl JsonPath {
    /// Parses `$`, `$.a.b`, `$.a[0]`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a path such as $.id or $.items[0].name");
        let rest = text.trim().strip_prefix('$').ok_or_else(bad)?;
        let mut parts = Vec::new();
        for raw in rest.split('.').skip(1) {
            let (name, mut tail) = raw.split_once('[').map_or((raw, ""), |(n, t)| (n, t));
            if !name.is_empty() {
                parts.push(name.to_owned());
            }
            while !tail.is_empty() {
                let (index, more) = tail.split_once(']').ok_or_else(bad)?;
                index.parse::<usize>().map_err(|_| bad())?;
                parts.push(index.to_owned());
                tail = more.strip_prefix('[').unwrap_or(more);
                if !more.is_empty() && !more.starts_with('[') {
                    return Err(bad());
                }
            }
            if name.is_empty() && !raw.contains('[') {
                return Err(bad());
            }
        }
        if !rest.is_empty() && !rest.starts_with('.') {
            return Err(bad());
        }
        Ok(JsonPath(parts))
    }

    /// The value at this path, if there is one.
    pub(crate) fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        crate::refs::field(value, &self.0)
    }
}

/// A condition on a predecessor's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Condition {
    Equals { path: JsonPath, value: Value },
    NotEquals { path: JsonPath, value: Value },
    OneOf { path: JsonPath, values: Vec<Value> },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

const FORMS: &[&str] = &["equals", "not_equals", "one_of", "all", "any"];

impl Condition {
    /// Evaluates against a result.
    pub(crate) fn holds(&self, result: &Value) -> bool {
        let at = |p: &JsonPath| p.get(result).cloned().unwrap_or(Value::Null);
        match self {
            Condition::Equals { path, value } => &at(path) == value,
            Condition::NotEquals { path, value } => &at(path) != value,
            Condition::OneOf { path, values } => values.contains(&at(path)),
            Condition::All(cs) => cs.iter().all(|c| c.holds(result)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(result)),
        }
    }

    /// Reads a condition.
    pub(crate) fn read(node: &Node, path: &str, sink: &mut Sink) -> Option<Condition> {
        let f = Fields::read(node, path, FORMS, sink)?;
        let present: Vec<&str> = FORMS.iter().copied().filter(|k| f.has(k)).collect();
        let [form] = present.as_slice() else {
            // With no known form at all, the unknown key was already reported.
            let unknown_only = present.is_empty() && matches!(&node.value, crate::yaml::Yaml::Map(p) if !p.is_empty());
            if !unknown_only {
                sink.at(node.pos, path, format!("a condition has exactly one of {}", FORMS.join(", ")));
            }
            return None;
        };
        let body = f.get(form)?;
        let body_path = f.path_of(form);
        match *form {
            "all" | "any" => {
                let items = reader::list(body, &body_path, sink)?;
                let cs: Vec<Condition> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| Condition::read(n, &format!("{body_path}[{i}]"), sink))
                    .collect();
                (cs.len() == items.len()).then(|| if *form == "all" { Condition::All(cs) } else { Condition::Any(cs) })
            }
            _ => {
                let value_key = if *form == "one_of" { "values" } else { "value" };
                let b = Fields::read(body, &body_path, &["path", value_key], sink)?;
                let path_node = b.required("path", sink)?;
                let text = reader::text(path_node, &b.path_of("path"), sink)?;
                let jp = match JsonPath::parse(&text) {
                    Ok(p) => p,
                    Err(e) => {
                        sink.at(path_node.pos, &b.path_of("path"), e);
                        return None;
                    }
                };
                let v = b.required(value_key, sink)?;
                let value = yaml::to_json(v, &b.path_of(value_key), sink);
                match *form {
                    "equals" => Some(Condition::Equals { path: jp, value }),
                    "not_equals" => Some(Condition::NotEquals { path: jp, value }),
                    _ => match value {
                        Value::Array(values) => Some(Condition::OneOf { path: jp, values }),
                        _ => {
                            sink.at(v.pos, &b.path_of(value_key), "expected a list of values");
                            None
                        }
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_and_find() {
        let v = json!({"a": {"b": [10, {"c": true}]}});
        assert_eq!(JsonPath::parse("$").map(|p| p.get(&v).cloned()), Ok(Some(v.clone())));
        assert_eq!(JsonPath::parse("$.a.b[1].c").map(|p| p.get(&v).cloned()), Ok(Some(json!(true))));
        assert_eq!(JsonPath::parse("$.a.b.0").map(|p| p.get(&v).cloned()), Ok(Some(json!(10))));
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$..b").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
    }

    #[test]
    fn conditions_evaluate() {
        let c = Condition::All(vec![
            Condition::Equals { path: JsonPath(vec!["ok".into()]), value: json!(true) },
            Condition::OneOf { path: JsonPath(vec!["zone".into()]), values: vec![json!("a"), json!("b")] },
        ]);
        assert!(c.holds(&json!({"ok": true, "zone": "b"})));
        assert!(!c.holds(&json!({"ok": true, "zone": "c"})));
        assert!(!c.holds(&json!(null)));
    }
}
