//! `baton status`: one conductor's own view (`GetStatus`), as JSON or for people.
//!
//! The JSON object (stable; times in milliseconds since the epoch):
//!
//! ```json
//! {
//!   "endpoint": "http://127.0.0.1:50051",
//!   "name": "c1",
//!   "board": "AVAILABLE",
//!   "board_cause": null,
//!   "sessions_started": 1,
//!   "sessions_lost": 0,
//!   "draining": false,
//!   "started_at": 1795000000123,
//!   "running": [
//!     {"id": "4b7c…", "flow": "chain", "claim_token": 812, "claimed_at": 1795000004567}
//!   ]
//! }
//! ```
//!
//! `endpoint` is the one that answered; `board` is `AVAILABLE`, `UNAVAILABLE` or
//! `UNKNOWN`; `board_cause` says in words why the board is unavailable, `null` otherwise.

use proto::pb;
use serde_json::{json, Value};

use crate::output::{format_time, table};

/// `AVAILABLE`, `UNAVAILABLE` or `UNKNOWN`.
fn board_name(status: &pb::ConductorStatus) -> &'static str {
    match status.board() {
        pb::BoardStatus::Available => "AVAILABLE",
        pb::BoardStatus::Unavailable => "UNAVAILABLE",
        pb::BoardStatus::Unspecified => "UNKNOWN",
    }
}

/// The JSON object of the module doc.
pub fn status_json(endpoint: &str, status: &pb::ConductorStatus) -> Value {
    let running: Vec<Value> = status
        .running
        .iter()
        .map(
            |job| json!({"id": job.id, "flow": job.flow, "claim_token": job.claim_token, "claimed_at": job.claimed_ms}),
        )
        .collect();
    json!({
        "endpoint": endpoint,
        "name": status.name,
        "board": board_name(status),
        "board_cause": Some(&status.board_cause).filter(|cause| !cause.is_empty()),
        "sessions_started": status.sessions_started,
        "sessions_lost": status.sessions_lost,
        "draining": status.draining,
        "started_at": status.started_ms,
        "running": running,
    })
}

/// The status for people: fields, then the running jobs as a table.
pub fn status_detail(endpoint: &str, status: &pb::ConductorStatus) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{:<11}{value}\n", format!("{name}:")));
    field("conductor", &format!("{} at {endpoint}", status.name));
    let board = match status.board_cause.as_str() {
        "" => board_name(status).to_owned(),
        cause => format!("{} ({cause})", board_name(status)),
    };
    field("board", &board);
    field("sessions", &format!("{} started, {} lost", status.sessions_started, status.sessions_lost));
    field("draining", if status.draining { "yes: it claims no new jobs" } else { "no" });
    field("started", &format_time(status.started_ms));
    field("running", &format!("{} jobs", status.running.len()));
    if !status.running.is_empty() {
        let rows = status.running.iter().map(|job| {
            vec![format!("  {}", job.id), job.flow.clone(), job.claim_token.to_string(), format_time(job.claimed_ms)]
        });
        out.push_str(&table(&["  ID", "FLOW", "TOKEN", "CLAIMED"], rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> pb::ConductorStatus {
        pb::ConductorStatus {
            name: "c1".into(),
            board: pb::BoardStatus::Unavailable as i32,
            board_cause: "etcd unreachable: connection refused".into(),
            sessions_started: 2,
            sessions_lost: 1,
            draining: false,
            running: vec![pb::RunningJob { id: "4b7c".into(), flow: "chain".into(), claim_token: 812, claimed_ms: 0 }],
            started_ms: 951_782_400_000,
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        assert_eq!(
            status_json("http://127.0.0.1:1", &status()),
            json!({
                "endpoint": "http://127.0.0.1:1",
                "name": "c1",
                "board": "UNAVAILABLE",
                "board_cause": "etcd unreachable: connection refused",
                "sessions_started": 2,
                "sessions_lost": 1,
                "draining": false,
                "started_at": 951_782_400_000_u64,
                "running": [{"id": "4b7c", "flow": "chain", "claim_token": 812, "claimed_at": 0}],
            })
        );
        let available =
            pb::ConductorStatus { board: pb::BoardStatus::Available as i32, board_cause: String::new(), ..status() };
        let value = status_json("e", &available);
        assert_eq!((value["board"].as_str(), &value["board_cause"]), (Some("AVAILABLE"), &Value::Null));
    }

    #[test]
    fn detail_names_the_board_cause_and_the_running_jobs() {
        let text = status_detail("http://127.0.0.1:1", &status());
        assert!(text.contains("board:     UNAVAILABLE (etcd unreachable: connection refused)"), "{text}");
        assert!(text.contains("sessions:  2 started, 1 lost"), "{text}");
        assert!(text.contains("4b7c") && text.contains("812") && text.contains("1970-01-01 00:00:00Z"), "{text}");
    }
}
