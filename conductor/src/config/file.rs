//! The YAML config file (`--config`, `BATON_CONFIG`): one layer of [`Settings`].

use std::path::Path;

use super::Settings;
use crate::error::Error;

/// The settings of the file at `path`; an error names the file and the key.
pub(super) fn settings_from_file(path: &Path) -> Result<Settings, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    let bad = |what: String| Error::Config(format!("config file {}: {what}", path.display()));
    if text.trim().is_empty() {
        return Ok(Settings::default());
    }
    // The one YAML reader of the project (flow files, store files, this file): YAML 1.2, positioned errors.
    let parsed = flowfile::document_to_json(&path.display().to_string(), &text)
        .map_err(|problems| Error::Config(format!("invalid YAML in the config file:\n{problems}")))?;
    let map = match parsed {
        Some(serde_json::Value::Object(map)) => map,
        None | Some(serde_json::Value::Null) => return Ok(Settings::default()),
        Some(other) => return Err(bad(format!("expected a map of settings, found {other}"))),
    };
    // Key by key first, so that an error names the key (serde alone names only the value).
    for (key, value) in &map {
        let single = serde_json::Map::from_iter([(key.clone(), value.clone())]);
        serde_json::from_value::<Settings>(serde_json::Value::Object(single)).map_err(|e| match e.is_data() {
            true if e.to_string().starts_with("unknown field") => bad(e.to_string()),
            _ => bad(format!("{key}: {e}")),
        })?;
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| bad(e.to_string()))
}
