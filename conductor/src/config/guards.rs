//! The settings against bad input and abuse: `--http-allow` (which hosts `http` tasks
//! may reach) and `--post-rate` (how fast one caller may post).

use serde::{Deserialize, Deserializer};

use crate::api::post_rate::PostRate;
use crate::error::Error;
use flowfile::kinds::http::allow::AllowList;

/// What the conductor holds against abuse; by default nothing is limited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guards {
    /// `--http-allow`; `None`: `http` tasks may reach any host.
    pub http_allow: Option<AllowList>,
    /// `--post-rate`; `None`: posts are not limited.
    pub post_rate: Option<PostRate>,
}

impl Guards {
    /// From the settings, refusing a malformed rule (naming it) or an empty list.
    pub fn resolve(http_allow: Option<Vec<String>>, post_rate: Option<PostRate>) -> Result<Guards, Error> {
        let http_allow = match http_allow {
            None => None,
            Some(entries) => {
                let list = AllowList::parse(&entries).map_err(|e| Error::Config(e.to_string()))?;
                if list.is_empty() {
                    return Err(Error::Config("--http-allow names no host (omit it to allow every host)".into()));
                }
                Some(list)
            }
        };
        Ok(Guards { http_allow, post_rate })
    }
}

/// A `--post-rate` clap value.
pub fn parse_post_rate(text: &str) -> Result<PostRate, String> {
    text.parse()
}

/// YAML `post_rate: 10` or `post_rate: "10:50"`.
pub fn post_rate<'de, D: Deserializer<'de>>(de: D) -> Result<Option<PostRate>, D::Error> {
    let Some(value) = Option::<serde_json::Value>::deserialize(de)? else { return Ok(None) };
    let text = match value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(serde::de::Error::custom(format!("expected PER_SEC[:BURST], found {other}"))),
    };
    text.parse().map(Some).map_err(serde::de::Error::custom)
}
