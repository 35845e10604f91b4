//! Typed reads of YAML nodes that report, rather than stop at, what is wrong.
//!
//! Each reader takes the node, the field's path for messages and the sink; it
//! returns `None` after recording a problem. Text fields accept any scalar as
//! written, so a YAML 1.1 boolean such as `on` stays the text `on`.

use std::time::Duration;

use crate::limits::{shown, MAX_NAME_BYTES};
use crate::problems::{did_you_mean, Pos, Sink};
use crate::yaml::{join, Node, Yaml};

/// A mapping's entries, checked for unknown and duplicate keys.
pub(crate) struct Fields<'a> {
    pub(crate) pos: Pos,
    pub(crate) path: String,
    entries: Vec<(&'a str, &'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping whose keys must be among `allowed`.
    pub(crate) fn read(node: &'a Node, path: &str, allowed: &[&str], sink: &mut Sink) -> Option<Self> {
        let Yaml::Map(pairs) = &node.value else {
            sink.at(node.pos, path, format!("expected a mapping, found {}", node.shape()));
            return None;
        };
        let mut entries: Vec<(&'a str, &'a Node, &'a Node)> = Vec::new();
        for (k, v) in pairs {
            let Some(key) = k.text() else {
                sink.at(k.pos, path, format!("a key must be text, not {}", k.shape()));
                continue;
            };
            let child = join(path, key);
            if entries.iter().any(|(seen, _, _)| *seen == key) {
                sink.at(k.pos, &child, "duplicate key");
                continue;
            }
            if !allowed.contains(&key) {
                sink.at(k.pos, &child, format!("unknown key {key:?}{}", did_you_mean(key, allowed.iter().copied())));
                continue;
            }
            entries.push((key, k, v));
        }
        Some(Fields { pos: node.pos, path: path.to_owned(), entries })
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }

    /// The position of `key` itself, if present.
    pub(crate) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, k, _)| k.pos)
    }

    /// True if `key` is present.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The path of `key` under this mapping.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of a required `key`; a problem at the mapping if it is missing.
    pub(crate) fn required(&self, key: &str, sink: &mut Sink) -> Option<&'a Node> {
        let found = self.get(key);
        if found.is_none() {
            sink.at(self.pos, &self.path, format!("missing required key {key:?}"));
        }
        found
    }
}

/// Any scalar, as written.
pub(crate) fn text(node: &Node, path: &str, sink: &mut Sink) -> Option<String> {
    match node.text() {
        Some(t) => Some(t.to_owned()),
        None => {
            sink.at(node.pos, path, format!("expected text, found {}", node.shape()));
            None
        }
    }
}

/// A name of something in the flow: letters, digits, `_`, `-`, `.` (no `[`, `]`, `$`, `{`).
pub(crate) fn name(node: &Node, path: &str, sink: &mut Sink) -> Option<String> {
    let t = text(node, path, sink)?;
    if t.len() > MAX_NAME_BYTES {
        sink.at(node.pos, path, format!("{} is longer than {MAX_NAME_BYTES} bytes", shown(&t)));
        None
    } else if valid_name(&t) {
        Some(t)
    } else {
        sink.at(node.pos, path, format!("{} is not a valid name (use letters, digits, '_', '-' and '.')", shown(&t)));
        None
    }
}

/// True for a non-empty name of letters, digits, `_`, `-` and `.`.
pub(crate) fn valid_name(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A whole number (plain scalar only, so `"3"` quoted is refused).
pub(crate) fn whole(node: &Node, path: &str, sink: &mut Sink) -> Option<u64> {
    match &node.value {
        Yaml::Scalar { text, plain: true } if text.parse::<u64>().is_ok() => text.parse().ok(),
        _ => {
            sink.at(node.pos, path, format!("expected a whole number, found {}", describe(node)));
            None
        }
    }
}

/// A number.
pub(crate) fn number(node: &Node, path: &str, sink: &mut Sink) -> Option<f64> {
    match &node.value {
        Yaml::Scalar { text, plain: true } if text.parse::<f64>().is_ok_and(f64::is_finite) => text.parse().ok(),
        _ => {
            sink.at(node.pos, path, format!("expected a number, found {}", describe(node)));
            None
        }
    }
}

/// `true` or `false` only: `yes`, `on` and friends are refused, not guessed at.
pub(crate) fn boolean(node: &Node, path: &str, sink: &mut Sink) -> Option<bool> {
    match &node.value {
        Yaml::Scalar { text, plain: true } if text == "true" => Some(true),
        Yaml::Scalar { text, plain: true } if text == "false" => Some(false),
        _ => {
            sink.at(node.pos, path, format!("expected true or false, found {}", describe(node)));
            None
        }
    }
}

/// A duration such as `500ms`, `2s`, `1m 30s` (humantime's syntax).
pub(crate) fn duration(node: &Node, path: &str, sink: &mut Sink) -> Option<Duration> {
    let t = text(node, path, sink)?;
    match crate::duration::parse_duration(&t) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.at(node.pos, path, format!("{t:?} is not a duration such as 500ms, 2s or 1m ({})", e.reason));
            None
        }
    }
}

/// A list, or one item standing for a list of one.
pub(crate) fn one_or_many(node: &Node) -> Vec<(usize, &Node)> {
    match &node.value {
        Yaml::Seq(items) => items.iter().enumerate().collect(),
        _ => vec![(0, node)],
    }
}

/// The items of a list.
pub(crate) fn list<'a>(node: &'a Node, path: &str, sink: &mut Sink) -> Option<&'a [Node]> {
    match &node.value {
        Yaml::Seq(items) => Some(items),
        _ => {
            sink.at(node.pos, path, format!("expected a list, found {}", node.shape()));
            None
        }
    }
}

/// A node described for messages: a scalar by its text, else by its shape.
pub(crate) fn describe(node: &Node) -> String {
    match node.text() {
        Some(t) => format!("{t:?}"),
        None => node.shape().to_owned(),
    }
}
