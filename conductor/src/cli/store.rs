//! Building a job's store from `--store-file` and `--store KEY=VALUE` arguments.
//!
//! The file is read first and the `KEY=VALUE` pairs override it, so a file can
//! hold the defaults and the command line the exceptions.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// Parses one `KEY=VALUE`: the value is JSON when it parses as JSON (`3`,
/// `true`, `[1,2]`, `"quoted"`), else the text as a string (`web-1`).
pub fn parse_pair(arg: &str) -> Result<(String, Value), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| format!("{arg:?} is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{arg:?} has an empty key"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// Reads a store file (YAML, or JSON, which is YAML too); it must hold a map.
pub fn read_store_file(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read store file {}", path.display()))?;
    parse_store_text(&text).with_context(|| format!("store file {}", path.display()))
}

/// Parses a store document; it must be a map of input names to values.
pub fn parse_store_text(text: &str) -> anyhow::Result<Map<String, Value>> {
    match crate::yaml::to_json(text)? {
        Value::Object(map) => Ok(map),
        // An empty file is an empty store, not a mistake.
        Value::Null => Ok(Map::new()),
        other => bail!("must be a map of input names to values, not {}", kind(&other)),
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

/// The store from an optional file and the pairs, pairs winning.
pub fn build_store(file: Option<&Path>, pairs: &[(String, Value)]) -> anyhow::Result<Map<String, Value>> {
    let mut store = match file {
        Some(path) => read_store_file(path)?,
        None => Map::new(),
    };
    for (key, value) in pairs {
        store.insert(key.clone(), value.clone());
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_parse_as_json_when_they_can() {
        assert_eq!(parse_pair("nodes=3").unwrap(), ("nodes".into(), json!(3)));
        assert_eq!(parse_pair("flaky=0.5").unwrap(), ("flaky".into(), json!(0.5)));
        assert_eq!(parse_pair("on=true").unwrap(), ("on".into(), json!(true)));
        assert_eq!(parse_pair("list=[1,2]").unwrap(), ("list".into(), json!([1, 2])));
        assert_eq!(parse_pair("obj={\"a\":1}").unwrap(), ("obj".into(), json!({"a": 1})));
        assert_eq!(parse_pair("quoted=\"3\"").unwrap(), ("quoted".into(), json!("3")));
    }

    #[test]
    fn other_values_are_strings() {
        assert_eq!(parse_pair("name=web-1").unwrap(), ("name".into(), json!("web-1")));
        assert_eq!(parse_pair("empty=").unwrap(), ("empty".into(), json!("")));
        assert_eq!(parse_pair("eq=a=b").unwrap(), ("eq".into(), json!("a=b")));
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(parse_pair("novalue").unwrap_err().contains("novalue"));
        assert!(parse_pair("=3").unwrap_err().contains("empty key"));
    }

    #[test]
    fn store_text_must_be_a_map() {
        assert_eq!(
            parse_store_text("nodes: 3\nstep_ms: 10\n").unwrap(),
            json!({"nodes": 3, "step_ms": 10}).as_object().cloned().unwrap()
        );
        assert_eq!(parse_store_text("{\"steps\": 2}").unwrap()["steps"], json!(2));
        assert!(parse_store_text("").unwrap().is_empty());
        let err = format!("{:#}", parse_store_text("- 1\n- 2\n").unwrap_err());
        assert!(err.contains("not a list"), "{err}");
        let err = format!("{:#}", parse_store_text("a: [1, 2\n").unwrap_err());
        assert!(err.contains("invalid YAML"), "{err}");
    }

    #[test]
    fn pairs_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.yaml");
        std::fs::write(&path, "nodes: 3\nstep_ms: 10\n").unwrap();
        let store = build_store(Some(&path), &[("nodes".into(), json!(5))]).unwrap();
        assert_eq!(Value::Object(store), json!({"nodes": 5, "step_ms": 10}));
    }

    #[test]
    fn missing_file_names_it() {
        let err = format!("{:#}", build_store(Some(Path::new("/nonexistent/store.yaml")), &[]).unwrap_err());
        assert!(err.contains("/nonexistent/store.yaml"), "{err}");
    }
}
