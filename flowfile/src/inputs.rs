//! A flow file's `inputs:`: typed declarations, read with positions.
//!
//! `flows::inputs` defines the schema a job's store is checked against at post
//! (for Rust and file flows alike); [`schema`] maps a file's declarations onto
//! it, here and nowhere else. This crate itself uses them for what building a
//! flow needs: which names exist, their defaults, and the whole number or list
//! an `each` iterates over (coerced from text, as `--store nodes=3` gives it).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::problems::Sink;
use crate::reader::{self, Fields};
use crate::yaml::{self, Node, Yaml};

/// The JSON type an input declares: `flows`'s own, so a file's inputs are checked like a Rust flow's.
pub use flows::InputType;

/// The types a file may declare (`any` is for Rust factories that declare only a name).
const TYPES: &[&str] = &["string", "integer", "number", "boolean", "object", "array"];
const KEYS: &[&str] =
    &["type", "description", "default", "enum", "minimum", "maximum", "min_items", "items", "pattern"];

/// One declared input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Used when a job does not give it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The only values allowed.
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// Smallest number allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Largest number allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Fewest list items allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// The type of a list's items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<InputSpec>>,
    /// A regular expression text must match (checked at post by `flows::inputs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// Every declared input, by name.
pub type Inputs = BTreeMap<String, InputSpec>;

/// Reads `inputs:` (a mapping of name to declaration).
pub(crate) fn read(node: &Node, path: &str, sink: &mut Sink) -> Inputs {
    let mut out = Inputs::new();
    let Yaml::Map(pairs) = &node.value else {
        sink.at(node.pos, path, format!("expected a mapping of input names to declarations, found {}", node.shape()));
        return out;
    };
    for (k, v) in pairs {
        let Some(name) = reader::name(k, path, sink) else { continue };
        let child = yaml::join(path, &name);
        if out.contains_key(&name) {
            sink.at(k.pos, &child, "duplicate input");
            continue;
        }
        if let Some(spec) = spec(v, &child, sink) {
            out.insert(name, spec);
        }
    }
    out
}

fn spec(node: &Node, path: &str, sink: &mut Sink) -> Option<InputSpec> {
    let f = Fields::read(node, path, KEYS, sink)?;
    let type_node = f.required("type", sink)?;
    let kind = match type_node.text().filter(|t| TYPES.contains(t)).and_then(InputType::from_name) {
        Some(kind) => kind,
        None => {
            let t = type_node.text().unwrap_or_default();
            let hint = crate::problems::did_you_mean(t, TYPES.iter().copied());
            sink.at(
                type_node.pos,
                &f.path_of("type"),
                format!("unknown type {t:?}{hint}; one of {}", TYPES.join(", ")),
            );
            return None;
        }
    };
    let items = match f.get("items") {
        Some(n) if kind == InputType::Array => spec(n, &f.path_of("items"), sink).map(Box::new),
        Some(n) => {
            sink.at(n.pos, &f.path_of("items"), "only an array input has items");
            None
        }
        None => None,
    };
    let mut spec = InputSpec {
        kind,
        description: f.get("description").and_then(|n| reader::text(n, &f.path_of("description"), sink)),
        default: None,
        one_of: None,
        minimum: f.get("minimum").and_then(|n| reader::number(n, &f.path_of("minimum"), sink)),
        maximum: f.get("maximum").and_then(|n| reader::number(n, &f.path_of("maximum"), sink)),
        min_items: f.get("min_items").and_then(|n| reader::whole(n, &f.path_of("min_items"), sink)),
        items,
        pattern: f.get("pattern").and_then(|n| {
            let text = reader::text(n, &f.path_of("pattern"), sink)?;
            match flows::Pattern::new(&text) {
                Ok(_) => Some(text),
                Err(error) => {
                    sink.at(n.pos, &f.path_of("pattern"), format!("not a regular expression: {}", error.message));
                    None
                }
            }
        }),
    };
    if let Some(n) = f.get("enum") {
        if let Some(list) = reader::list(n, &f.path_of("enum"), sink) {
            let values: Vec<Value> = list
                .iter()
                .enumerate()
                .filter_map(|(i, item)| typed(item, &spec, &format!("{}[{i}]", f.path_of("enum")), sink))
                .collect();
            spec.one_of = Some(values);
        }
    }
    if let Some(n) = f.get("default") {
        spec.default = typed(n, &spec, &f.path_of("default"), sink);
    }
    Some(spec)
}

/// The declarations as `flows` checks a job's store against them.
pub fn schema(inputs: &Inputs) -> flows::Schema {
    let mut schema = flows::Schema::new();
    for (name, spec) in inputs {
        schema.insert(name.clone(), to_flows(spec));
    }
    schema
}

fn to_flows(spec: &InputSpec) -> flows::InputSpec {
    flows::InputSpec {
        ty: spec.kind,
        default: spec.default.clone(),
        enum_values: spec.one_of.clone().unwrap_or_default(),
        minimum: spec.minimum,
        maximum: spec.maximum,
        min_items: spec.min_items.and_then(|n| usize::try_from(n).ok()),
        items: spec.items.as_deref().map(|items| Box::new(to_flows(items))),
        // Checked when the file was read: a pattern that does not compile is a problem there.
        pattern: spec.pattern.as_deref().and_then(|text| flows::Pattern::new(text).ok()),
        description: spec.description.clone().unwrap_or_default(),
    }
}

/// A value written in the file for an input of this spec (a default, an enum
/// item), typed by the declaration: a string input keeps `on` and `1.10` as text.
fn typed(node: &Node, spec: &InputSpec, path: &str, sink: &mut Sink) -> Option<Value> {
    match spec.kind {
        InputType::String => reader::text(node, path, sink).map(Value::String),
        InputType::Integer => match &node.value {
            Yaml::Scalar { text, plain: true } if text.parse::<i64>().is_ok() => {
                text.parse::<i64>().ok().map(Value::from)
            }
            _ => {
                sink.at(node.pos, path, format!("expected a whole number, found {}", reader::describe(node)));
                None
            }
        },
        InputType::Number => reader::number(node, path, sink).and_then(serde_json::Number::from_f64).map(Value::Number),
        InputType::Boolean => reader::boolean(node, path, sink).map(Value::Bool),
        // Not declarable in a file (see `TYPES`); it would take any value.
        InputType::Any => Some(yaml::to_json(node, path, sink)),
        InputType::Object | InputType::Array => {
            let value = yaml::to_json(node, path, sink);
            let ok = if spec.kind == InputType::Object { value.is_object() } else { value.is_array() };
            if ok {
                Some(value)
            } else {
                let expected = if spec.kind == InputType::Object { "a mapping" } else { "a list" };
                sink.at(node.pos, path, format!("expected {expected}, found {}", node.shape()));
                None
            }
        }
    }
}

/// What `each: {in: NAME}` iterates over, from the store (or the default):
/// the list's items, or `0..N` for a whole number N (also given as text).
pub(crate) fn items_of(name: &str, value: Option<&Value>) -> Result<Vec<Value>, String> {
    match value {
        None => Err(format!("input {name:?} is not in the store and has no default")),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok((0..n.as_u64().unwrap_or(0)).map(Value::from).collect()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
            Ok((0..s.trim().parse::<u64>().unwrap_or(0)).map(Value::from).collect())
        }
        Some(other) => Err(format!("input {name:?} must be a list or a whole number to iterate over, got {other}")),
    }
}
