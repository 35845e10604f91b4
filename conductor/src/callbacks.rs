//! The callback webhook: `POST /v1/callbacks/TOKEN` with `{"result": ...}` or
//! `{"failure": "why"}` completes a parked task, as `CompleteTask` does (the
//! same board call, `api::complete`). The token is the credential; any
//! conductor accepts any token.
//!
//! Answers: 200 (completed, or the same completion again), 409 (completed
//! with a different outcome), 410 (past its deadline, cancelled, or a retried
//! attempt), 404 (no such park, a wrong token, any other path), 400 (a
//! malformed body), 405 (not POST), 503 (no board now).
//!
//! [`route`] mounts it on the conductor's HTTP listener (`--http-listen`,
//! [`crate::http`], beside `/metrics`); it needs no role, since the token is the
//! credential. Its access log names the job, task and attempt a token's readable
//! prefix says, and never the path, which holds the secret.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use jobboard::{Completed, JobBoard};
use serde_json::{json, Value};

use crate::api::complete::{self, Target};
use crate::api::BoardSlot;
use crate::http::{Handler, HttpRequest, HttpResponse, PathMatch, Routes};

/// The route's path prefix.
pub const PREFIX: &str = "/v1/callbacks/";

/// Adds `POST /v1/callbacks/TOKEN` to the HTTP listener's `routes`.
pub fn route(routes: Routes, slot: BoardSlot) -> Routes {
    let handler: Handler = Arc::new(move |request: HttpRequest| {
        let slot = slot.clone();
        Box::pin(async move { handle(&slot, request).await })
    });
    routes.route(Method::POST, PathMatch::Prefix(PREFIX), handler)
}

/// Answers one `POST /v1/callbacks/TOKEN`.
async fn handle(slot: &BoardSlot, request: HttpRequest) -> HttpResponse {
    let Some(token) = request.path.strip_prefix(PREFIX).map(str::to_owned) else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    };
    let outcome = match parse_body(&request.body) {
        Ok(outcome) => outcome,
        Err(why) => return answer(StatusCode::BAD_REQUEST, json!({"error": why})),
    };
    let board = match slot.get() {
        Ok(board) => board,
        Err(cause) => {
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": format!("job board unavailable: {cause}")}))
        }
    };
    complete_with(board.as_ref(), token, outcome).await
}

/// Completes with the board and maps the answer to a status.
async fn complete_with(board: &dyn JobBoard, token: String, outcome: jobboard::TaskOutcome) -> HttpResponse {
    let named = flows::CallbackToken::parse(&token).ok().map(|t| t.name().to_string());
    let result = complete::complete(board, &Target::Token(token), outcome).await;
    let (status, body) = match result {
        Ok(done) => (StatusCode::OK, json!({"completed": done == Completed::Now})),
        Err(error) => {
            let status = match &error {
                jobboard::Error::TokenNotFound => StatusCode::NOT_FOUND,
                jobboard::Error::CompletionConflict { .. } => StatusCode::CONFLICT,
                jobboard::Error::ParkClosed { .. } => StatusCode::GONE,
                e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, json!({"error": error.to_string()}))
        }
    };
    // The access log: the token's readable prefix at most, never its secret.
    tracing::info!(status = status.as_u16(), token = named.as_deref().unwrap_or("(malformed)"), "callback answered");
    answer(status, body)
}

/// `{"result": ...}` or `{"failure": "why"}`.
fn parse_body(body: &[u8]) -> Result<jobboard::TaskOutcome, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(map) = value else { return Err("the body must be a JSON object".into()) };
    match (map.get("result"), map.get("failure")) {
        (Some(result), None) => Ok(jobboard::TaskOutcome::Result(result.clone())),
        (None, Some(Value::String(why))) => Ok(jobboard::TaskOutcome::Failure(flows::Failure::task(why.clone()))),
        (None, Some(_)) => Err("\"failure\" must be a string".into()),
        _ => Err("give exactly one of \"result\" and \"failure\"".into()),
    }
}

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_give_one_outcome() {
        assert_eq!(parse_body(br#"{"result": {"ok": 1}}"#), Ok(jobboard::TaskOutcome::Result(json!({"ok": 1}))));
        assert_eq!(parse_body(br#"{"failure": "no"}"#), Ok(jobboard::TaskOutcome::Failure(flows::Failure::task("no"))));
        for bad in [&b"{"[..], b"[]", br#"{"result": 1, "failure": "x"}"#, br#"{"failure": 3}"#, b"{}"] {
            assert!(parse_body(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
