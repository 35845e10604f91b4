//! Building a job's store from `--store-file` and `--store KEY=VALUE` arguments.
//!
//! The file is read first and the `KEY=VALUE` pairs override it, so a file can
//! hold the defaults and the command line the exceptions. A file is YAML (or JSON)
//! read by the flow-file crate's parser: YAML 1.2, so `on` and `yes` stay text.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

/// Splits one `KEY=VALUE`; the value stays text until the flow's input types are known
/// (see [`crate::inputs::coerce_pairs`]).
pub fn parse_pair(arg: &str) -> Result<(String, String), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{arg:?} has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Reads a store file (YAML, or JSON, which is YAML too); it must hold a map.
pub fn read_store_file(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read store file {}", path.display()))?;
    parse_store_text(&path.display().to_string(), &text).with_context(|| format!("store file {}", path.display()))
}

/// Parses a store document named `file`; it must be a map of input names to values.
pub fn parse_store_text(file: &str, text: &str) -> anyhow::Result<Map<String, Value>> {
    let value = flowfile::document_to_json(file, text).map_err(|problems| anyhow!("invalid YAML: {problems}"))?;
    match value {
        Some(Value::Object(map)) => Ok(map),
        // An empty file is an empty store, not a mistake.
        None | Some(Value::Null) => Ok(Map::new()),
        Some(other) => bail!("must be a map of input names to values, not {}", kind(&other)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The store of `--store-file`, empty without one; the pairs are added over it later.
pub fn read_optional(file: Option<&Path>) -> anyhow::Result<Map<String, Value>> {
    file.map_or_else(|| Ok(Map::new()), read_store_file)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("nodes=3").unwrap(), ("nodes".into(), "3".into()));
        assert_eq!(parse_pair(" name =web-1").unwrap(), ("name".into(), "web-1".into()));
        assert_eq!(parse_pair("empty=").unwrap(), ("empty".into(), "".into()));
        assert_eq!(parse_pair("eq=a=b").unwrap(), ("eq".into(), "a=b".into()));
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(parse_pair("novalue").unwrap_err().contains("novalue"));
        assert!(parse_pair("=3").unwrap_err().contains("empty key"));
    }

    #[test]
    fn store_text_must_be_a_map() {
        assert_eq!(
            parse_store_text("s", "nodes: 3\nstep_ms: 10\n").unwrap(),
            json!({"nodes": 3, "step_ms": 10}).as_object().cloned().unwrap()
        );
        assert_eq!(parse_store_text("s", "{\"steps\": 2}").unwrap()["steps"], json!(2));
        assert_eq!(parse_store_text("s", "mode: on\n").unwrap()["mode"], json!("on"), "YAML 1.2: on is text");
        assert!(parse_store_text("s", "").unwrap().is_empty());
        assert!(parse_store_text("s", "# only a comment\n").unwrap().is_empty());
        let err = format!("{:#}", parse_store_text("s", "- 1\n- 2\n").unwrap_err());
        assert!(err.contains("not a list"), "{err}");
        let err = format!("{:#}", parse_store_text("s.yaml", "a: [1, 2\n").unwrap_err());
        assert!(err.contains("invalid YAML") && err.contains("s.yaml:"), "{err}");
    }

    #[test]
    fn a_file_is_read_and_none_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.yaml");
        std::fs::write(&path, "nodes: 3\nstep_ms: 10\n").unwrap();
        assert_eq!(Value::Object(read_optional(Some(&path)).unwrap()), json!({"nodes": 3, "step_ms": 10}));
        assert!(read_optional(None).unwrap().is_empty());
    }

    #[test]
    fn missing_file_names_it() {
        let err = format!("{:#}", read_optional(Some(Path::new("/nonexistent/store.yaml"))).unwrap_err());
        assert!(err.contains("/nonexistent/store.yaml"), "{err}");
    }
}
