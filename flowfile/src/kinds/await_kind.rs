//! `await`: parks the task until its result (or failure) is delivered with
//! `baton complete`, the `CompleteTask` call or the conductor's webhook, or
//! until `timeout` passes (a failure: retries and reverts apply).
//!
//! ```yaml
//! - task: approve
//!   kind: await
//!   with:
//!     timeout: 72h                      # required
//!     notify:                           # optional: run once the park is recorded
//!       kind: http
//!       with: {method: POST, url: "https://chat.local/hooks", json: {token: "${callback.token}", url: "${callback.url}"}}
//!   provides: approval                  # the delivered result
//! ```
//!
//! `notify` is resolved only once the park is written (so nobody learns a
//! token that completes nothing), from the task's inputs plus
//! `${callback.token}` and `${callback.url}`, which exist only there. Each
//! attempt of a retried await gets a new token and runs `notify` again.

use std::time::Duration;

use async_trait::async_trait;
use flows::{Failure, Park};
use serde_json::{Map, Value};

use super::sleep::duration;
use super::{is_deferred, require_keys, Call, Kind, QuickCall};

/// The `await` kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Await;

/// The key of the notify step in `with`.
pub const NOTIFY: &str = "notify";

/// A notify step: its kind's name and its settings.
pub type Notify = (String, Map<String, Value>);

/// The notify step, if `with` has a well-formed one.
pub fn notify_of(with: &Map<String, Value>) -> Result<Option<Notify>, String> {
    let Some(notify) = with.get(NOTIFY) else { return Ok(None) };
    let Value::Object(notify) = notify else { return Err("notify: expected a mapping with kind and with".into()) };
    if let Some(other) = notify.keys().find(|k| *k != "kind" && *k != "with") {
        return Err(format!("notify: takes no setting {other:?}; it takes: kind, with"));
    }
    let kind = notify.get("kind").and_then(Value::as_str).ok_or("notify: needs a kind (e.g. kind: http)")?;
    let settings = match notify.get("with") {
        None => Map::new(),
        Some(Value::Object(settings)) => settings.clone(),
        Some(_) => return Err("notify: with: expected a mapping of settings".into()),
    };
    Ok(Some((kind.to_owned(), settings)))
}

fn timeout(with: &Map<String, Value>) -> Result<Duration, String> {
    duration(with.get("timeout").unwrap_or(&Value::Null))
}

#[async_trait]
impl Kind for Await {
    fn name(&self) -> &'static str {
        "await"
    }
    fn settings(&self) -> &'static [&'static str] {
        &["timeout", NOTIFY]
    }
    fn deferred(&self) -> &'static [&'static str] {
        &[NOTIFY]
    }
    fn check(&self, with: &Map<String, Value>) -> Vec<String> {
        let mut problems = require_keys(with, &["timeout"]);
        if let Some(v) = with.get("timeout").filter(|v| !is_deferred(v)) {
            match duration(v) {
                Ok(d) if d.is_zero() => problems.push("timeout: must be more than zero".into()),
                Ok(_) => {}
                Err(e) => problems.push(format!("timeout: {e}")),
            }
        }
        if let Err(e) = notify_of(with) {
            problems.push(e);
        }
        problems
    }
    async fn run(&self, with: Map<String, Value>, _call: &Call) -> Result<Value, Failure> {
        park(&with)
    }
    fn run_at_once(&self, with: &mut Map<String, Value>, _call: &QuickCall<'_>) -> Option<Result<Value, Failure>> {
        Some(park(with))
    }
}

/// The park `run` asks for: for the task's `timeout`.
fn park(with: &Map<String, Value>) -> Result<Value, Failure> {
    let limit = timeout(with).map_err(Failure::task)?;
    Err(Park::after(limit).into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn timeout_is_required_and_notify_is_checked() {
        assert_eq!(Await.check(&Map::new()), ["missing required setting \"timeout\""]);
        assert!(Await.check(&with(json!({"timeout": "72h"}))).is_empty());
        assert_eq!(Await.check(&with(json!({"timeout": "0s"}))), ["timeout: must be more than zero"]);
        let bad = Await.check(&with(json!({"timeout": "1h", "notify": {"kind": "http", "wiht": {}}})));
        assert_eq!(bad, ["notify: takes no setting \"wiht\"; it takes: kind, with"]);
        let good = with(json!({"timeout": "1h", "notify": {"kind": "http", "with": {"url": "${callback.url}"}}}));
        assert_eq!(notify_of(&good), Ok(Some(("http".to_owned(), with(json!({"url": "${callback.url}"}))))));
    }

    #[tokio::test]
    async fn it_parks_for_its_timeout() {
        let parked = Await.run(with(json!({"timeout": "2h"})), &Call::new("approve", 1)).await;
        let park = parked.err().as_ref().and_then(Park::from_failure).expect("a park");
        assert_eq!(park.timeout(), Duration::from_secs(7200));
    }
}
