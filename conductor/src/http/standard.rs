//! The listener's own routes: `GET /metrics`, `GET /healthz` and `GET /livez`.
//!
//! `/healthz` is open (load balancers, readiness probes): 200 while the board answers,
//! 503 with the cause otherwise. `/livez` is open too (liveness probes): 200 while the
//! process serves, through any etcd outage, so an outage never restarts pods. `/metrics` follows the auth file when there is one: the caller needs the
//! `metrics` role (a bearer token or a client certificate, as on the gRPC API).

use std::sync::Arc;

use http::{Method, StatusCode};

use super::{text, Handler, HttpRequest, PathMatch, Routes};
use crate::api::BoardSlot;
use crate::auth::{Authenticator, Denied, Role};
use crate::local::LocalStatus;

/// `/metrics`, `/healthz` and `/livez`.
pub fn routes(local: Arc<LocalStatus>, slot: BoardSlot, auth: Option<Arc<Authenticator>>) -> Routes {
    let metrics: Handler = Arc::new(move |request: HttpRequest| {
        let (local, auth) = (local.clone(), auth.clone());
        Box::pin(async move {
            if let Some(auth) = &auth {
                let certs = request.peer_certs.as_deref().map(Vec::as_slice);
                match auth.authorize(&request.headers, certs, Role::Metrics, "/metrics") {
                    Ok(_) => {}
                    Err(Denied::Unauthenticated) => {
                        return text(StatusCode::UNAUTHORIZED, "missing or invalid credentials\n");
                    }
                    Err(denied) => return text(StatusCode::FORBIDDEN, format!("{}\n", denied.status().message())),
                }
            }
            let mut response = text(StatusCode::OK, local.metrics.render(&local));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        })
    });
    let healthz: Handler = Arc::new(move |_request: HttpRequest| {
        let slot = slot.clone();
        Box::pin(async move {
            match slot.get() {
                Ok(_) => text(StatusCode::OK, "ok\n"),
                Err(cause) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {cause}\n")),
            }
        })
    });
    let livez: Handler = Arc::new(|_request: HttpRequest| Box::pin(async { text(StatusCode::OK, "ok\n") }));
    Routes::default()
        .route(Method::GET, PathMatch::Exact("/metrics"), metrics)
        .route(Method::GET, PathMatch::Exact("/healthz"), healthz)
        .route(Method::GET, PathMatch::Exact("/livez"), livez)
}
