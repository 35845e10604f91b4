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
//! [`handle`] is a self-contained hyper handler so it can be mounted on any
//! HTTP listener (the production issue's `/metrics` listener shares
//! `--http-listen`); [`serve`] is a minimal listener for it. Its access log
//! names the job, task and attempt a token's readable prefix says, and never
//! the path, which holds the secret.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use jobboard::{Completed, JobBoard};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::complete::{self, Target};
use crate::api::BoardSlot;

/// The route's path prefix.
pub const PREFIX: &str = "/v1/callbacks/";

/// Bodies over this are refused (400) before they are read whole.
const MAX_BODY: usize = 1024 * 1024;

/// Answers one request to the webhook (any other path is 404).
pub async fn handle(slot: &BoardSlot, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(token) = request.uri().path().strip_prefix(PREFIX).map(str::to_owned) else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    };
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "use POST"}));
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return answer(StatusCode::BAD_REQUEST, json!({"error": format!("cannot read the body: {e}")})),
    };
    let outcome = match parse_body(&body) {
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
async fn complete_with(board: &dyn JobBoard, token: String, outcome: jobboard::TaskOutcome) -> Response<Full<Bytes>> {
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

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// Serves [`handle`] on `listener` until `stop` (HTTP/1.1).
pub async fn serve(listener: TcpListener, slot: BoardSlot, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "HTTP listener: accept failed");
                    continue;
                }
            },
        };
        let slot = slot.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let slot = slot.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&slot, request).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
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
