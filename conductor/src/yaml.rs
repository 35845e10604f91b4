//! The one place YAML is parsed.
//!
//! `serde_yaml` is deprecated upstream; keeping every YAML read behind these
//! two functions means swapping it touches this file only.

use serde::de::DeserializeOwned;

/// A YAML document that could not be parsed; the message names where and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid YAML: {0}")]
pub struct YamlError(String);

/// Parses a YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|e| YamlError(e.to_string()))
}

/// Parses a YAML (or JSON, a subset of YAML) document into a JSON value.
pub fn to_json(text: &str) -> Result<serde_json::Value, YamlError> {
    from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_maps_become_json_objects() {
        let v = to_json("nodes: 3\nname: web\n").unwrap();
        assert_eq!(v, serde_json::json!({"nodes": 3, "name": "web"}));
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let err = to_json("a: [1, 2\n").unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }
}
