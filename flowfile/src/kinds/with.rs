//! Reading a kind's `with` settings into typed values, collecting every problem as
//! "key: what is wrong".
//!
//! The same reader serves both moments a kind looks at its settings: `check`, before the
//! flow runs, where a value that is one whole reference (`"${name}"`) is not known yet and
//! may become any JSON type, and `run`, where references are resolved and every value must
//! have its final type.

use serde_json::{Map, Value};

/// When the settings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// Before running: whole references are accepted for any type.
    Check,
    /// At run time: references are resolved, so every value is final.
    Run,
}

/// One setting as the reader sees it.
enum Got<'a> {
    Absent,
    /// A whole reference, read at check time: its type is known only at run time.
    Later,
    Value(&'a Value),
}

/// Reads `with` and collects problems instead of stopping at the first.
pub(crate) struct Reader<'a> {
    with: &'a Map<String, Value>,
    moment: Moment,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(with: &'a Map<String, Value>, moment: Moment) -> Self {
        Reader { with, moment, problems: Vec::new() }
    }

    /// Records a problem about `key`.
    pub(crate) fn problem(&mut self, key: &str, what: impl AsRef<str>) {
        self.problems.push(format!("{key}: {}", what.as_ref()));
    }

    fn get(&self, key: &str) -> Got<'a> {
        match self.with.get(key) {
            None => Got::Absent,
            Some(value) if self.later(value) => Got::Later,
            Some(value) => Got::Value(value),
        }
    }

    /// Whether `value` is one whole reference whose type only run time knows.
    pub(crate) fn later(&self, value: &Value) -> bool {
        self.moment == Moment::Check && value.as_str().is_some_and(is_whole_reference)
    }

    /// Whether `text` holds a reference that run time fills in, so that its form (a URL,
    /// say) can only be checked then.
    pub(crate) fn templated(&self, text: &str) -> bool {
        self.moment == Moment::Check && text.contains("${")
    }

    /// Whether `key` is given (a reference counts as given).
    pub(crate) fn given(&self, key: &str) -> bool {
        self.with.contains_key(key)
    }

    /// The raw value of `key`, if present and known.
    pub(crate) fn value(&self, key: &str) -> Option<&'a Value> {
        match self.get(key) {
            Got::Value(value) => Some(value),
            Got::Absent | Got::Later => None,
        }
    }

    /// A string setting.
    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            Got::Value(Value::String(text)) => Some(text.clone()),
            Got::Value(other) => {
                self.problem(key, format!("must be a string, not {}", type_name(other)));
                None
            }
            Got::Absent | Got::Later => None,
        }
    }

    /// A mapping whose values become text: strings as they are, anything else as
    /// compact JSON (`555`, not `"555"`), as environment variables and headers need.
    pub(crate) fn text_map(&mut self, key: &str) -> Option<Vec<(String, String)>> {
        match self.get(key) {
            Got::Value(Value::Object(map)) => {
                Some(map.iter().map(|(name, value)| (name.clone(), text_of(value))).collect())
            }
            Got::Value(other) => {
                self.problem(key, format!("must be a mapping, not {}", type_name(other)));
                None
            }
            Got::Absent | Got::Later => None,
        }
    }

    /// Problems for keys not in `known` (at run time; at check time the caller of
    /// `check` reports them with "did you mean").
    pub(crate) fn unknown_keys(&mut self, known: &[&str]) {
        if self.moment == Moment::Run {
            for key in self.with.keys().filter(|k| !known.contains(&k.as_str())) {
                self.problems.push(format!("{key}: unknown setting (known: {})", known.join(", ")));
            }
        }
    }

    /// The problems found so far, if any.
    pub(crate) fn finish(self) -> Result<(), Vec<String>> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems)
        }
    }
}

/// Whether `text` is exactly one `${...}` reference (not `$${` escaped, nothing around it).
pub(crate) fn is_whole_reference(text: &str) -> bool {
    text.strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|inner| !inner.is_empty() && !inner.contains(['$', '{', '}']))
}

/// The text of a value: a string as it is, anything else as compact JSON.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A JSON type's name for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The last `limit` bytes of `bytes` as text (cut on a character boundary), for failure
/// details that must stay small.
pub(crate) fn tail_text(bytes: &[u8], limit: usize) -> String {
    let start = bytes.len().saturating_sub(limit);
    let text = String::from_utf8_lossy(&bytes[start..]);
    // A cut through a multi-byte character shows as a replacement character; drop it.
    text.trim_start_matches('\u{fffd}').to_owned()
}

/// Settings problems at run time as one failure.
pub(crate) fn invalid(kind: &str, problems: Vec<String>) -> flows::Failure {
    flows::Failure::task(format!("{kind}: invalid settings: {}", problems.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_references_are_told_apart_from_text_and_escapes() {
        assert!(is_whole_reference("${node}"));
        assert!(is_whole_reference("${server.id}"));
        assert!(!is_whole_reference("node-${node}"));
        assert!(!is_whole_reference("${a}${b}"));
        assert!(!is_whole_reference("$${node}"));
        assert!(!is_whole_reference("${}"));
    }

    #[test]
    fn a_reference_defers_type_checks_until_run_time() {
        let with = json!({"dir": "${where}", "env": "${vars}"});
        let with = with.as_object().expect("an object");
        let mut check = Reader::new(with, Moment::Check);
        assert_eq!(check.string("dir"), None);
        assert_eq!(check.text_map("env"), None);
        assert!(check.finish().is_ok());
        let mut run = Reader::new(with, Moment::Run);
        assert_eq!(run.string("dir").as_deref(), Some("${where}"));
        assert_eq!(run.text_map("env"), None);
        assert_eq!(run.finish(), Err(vec!["env: must be a mapping, not a string".to_owned()]));
    }

    #[test]
    fn values_that_are_not_strings_become_their_json_text() {
        assert_eq!(text_of(&json!(555)), "555");
        assert_eq!(text_of(&json!("555")), "555");
        assert_eq!(text_of(&json!({"a": [1, true]})), r#"{"a":[1,true]}"#);
    }

    #[test]
    fn a_tail_keeps_the_last_bytes_on_a_character_boundary() {
        assert_eq!(tail_text(b"hello world", 5), "world");
        assert_eq!(tail_text("aé".as_bytes(), 1), "");
        assert_eq!(tail_text(b"short", 100), "short");
    }
}
