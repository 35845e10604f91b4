//! The conductor's HTTP listener (`--http-listen ADDR`, off by default).
//!
//! One listener for everything that is not gRPC: [`standard::routes`] serves `/metrics`
//! (Prometheus text) and `/healthz` (200 while the board answers, 503 otherwise). The
//! routes are a table ([`Routes`]): a later feature adds its own (the parked-task webhook,
//! `POST /v1/callbacks/TOKEN`) with [`Routes::route`] and a [`PathMatch::Prefix`], and gets
//! the method, path, headers, body (up to [`MAX_BODY`]) and the client's verified
//! certificates, so it can authorise as it needs. TLS is the API's (`--tls-cert`...), served
//! over HTTP/1.1.

pub mod standard;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::tls::ServerTls;

/// Largest request body a handler is given; a larger one is refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest a TLS handshake on this listener may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// What a handler is given.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// GET, POST, ...
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The request headers (`authorization` among them).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The client's certificate chain, verified by TLS, if it sent one.
    pub peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// What a handler answers.
pub type HttpResponse = http::Response<Full<Bytes>>;

/// A route's handler.
pub type Handler = Arc<dyn Fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> + Send + Sync>;

/// How a route matches the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(&'static str),
    /// This path and everything under it (`/v1/callbacks/` for `/v1/callbacks/TOKEN`).
    Prefix(&'static str),
}

impl PathMatch {
    fn matches(self, path: &str) -> bool {
        match self {
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => path.starts_with(prefix),
        }
    }
}

/// The routes of the listener, tried in the order added.
#[derive(Clone, Default)]
pub struct Routes {
    routes: Vec<(Method, PathMatch, Handler)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.routes.iter().map(|(m, p, _)| (m, p))).finish()
    }
}

impl Routes {
    /// Adds a route.
    #[must_use]
    pub fn route(mut self, method: Method, path: PathMatch, handler: Handler) -> Routes {
        self.routes.push((method, path, handler));
        self
    }

    async fn answer(&self, request: HttpRequest) -> HttpResponse {
        let on_path: Vec<&(Method, PathMatch, Handler)> =
            self.routes.iter().filter(|(_, path, _)| path.matches(&request.path)).collect();
        match on_path.iter().find(|(method, _, _)| *method == request.method) {
            Some((_, _, handler)) => handler(request).await,
            None if on_path.is_empty() => text(StatusCode::NOT_FOUND, "not found\n"),
            None => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        }
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Serves `routes` on `listener` (with `tls` if given) until `stop`.
pub fn serve(listener: TcpListener, routes: Routes, tls: Option<Arc<ServerTls>>, stop: CancellationToken) {
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "http listener: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (routes, tls, stop) = (routes.clone(), tls.clone(), stop.clone());
            tokio::spawn(async move {
                match tls {
                    None => connection(tcp, None, routes, stop).await,
                    Some(tls) => match tokio::time::timeout(HANDSHAKE_LIMIT, tls.acceptor().accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let certs = stream.get_ref().1.peer_certificates().map(|c| Arc::new(c.to_vec()));
                            connection(stream, certs, routes, stop).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%remote, %error, "http listener: TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "http listener: TLS handshake timed out"),
                    },
                }
            });
        }
    });
}

async fn connection<IO>(
    io: IO,
    peer_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    routes: Arc<Routes>,
    stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let (routes, peer_certs) = (routes.clone(), peer_certs.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = match Limited::new(body, MAX_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok::<_, std::convert::Infallible>(text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"))
                }
            };
            let request = HttpRequest {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
                peer_certs,
            };
            Ok(routes.answer(request).await)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "http listener: connection ended with an error");
            }
        }
        () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
    }
}
