//! [`AuthLayer`]: the tower layer in front of every gRPC service of the conductor.
//!
//! For each call it looks up the access the method needs ([`access_for`]), and with an
//! auth file in force authenticates the caller and checks the role, answering
//! UNAUTHENTICATED or PERMISSION_DENIED itself. The [`Caller`] is put in the request's
//! extensions for the handlers, and every state-changing call gets an audit line
//! (target `baton::audit`) with the caller, the method and the outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::check::{Authenticator, Caller};
use super::roles::{access_for, Access};

/// What the layer found of a call whose access the handler decides ([`Access::ByRequest`]):
/// the caller if it holds the role, or why not. Absent when no auth file is in force.
#[derive(Debug, Clone)]
pub struct OverrideCheck(pub Result<Caller, super::check::Denied>);

/// Checks callers against the auth file, or lets everyone through (still auditing) without one.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    auth: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    /// Callers must prove who they are to `auth`; `None`: nobody is asked (loopback, `--insecure`).
    pub fn new(auth: Option<Arc<Authenticator>>) -> AuthLayer {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, auth: self.auth.clone() }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Option<Arc<Authenticator>>,
}

type Response = http::Response<tonic::body::Body>;

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let access = access_for(&path);
        let tls = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let remote = tls
            .and_then(|t| t.get_ref().remote_addr())
            .or_else(|| request.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr));
        let certs = tls.and_then(|t| t.peer_certs());
        let decided = match (&self.auth, access) {
            (_, Access::Open) | (None, _) => Ok(Caller::anonymous()),
            (Some(auth), Access::Needs(role)) => {
                auth.authorize(request.headers(), certs.as_deref().map(Vec::as_slice), role, &method)
            }
            (Some(auth), Access::ByRequest(role)) => {
                let check = auth.authorize(request.headers(), certs.as_deref().map(Vec::as_slice), role, &method);
                let caller = check.as_ref().map_or_else(|_| Caller::anonymous(), Clone::clone);
                request.extensions_mut().insert(OverrideCheck(check));
                Ok(caller)
            }
        };
        let audited = matches!(access, Access::Needs(role) | Access::ByRequest(role) if role.changes_state());
        let caller = match decided {
            Ok(caller) => caller,
            Err(denied) => {
                let status = denied.status();
                tracing::warn!(target: "baton::audit", rpc = %path, remote = ?remote, code = ?status.code(), "call refused");
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        };
        request.extensions_mut().insert(caller.clone());
        // The clone that was made ready is the one to call (tower's documented pattern).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let response = inner.call(request).await?;
            if audited {
                // An error answer carries grpc-status in its headers; a success sends it in the trailers.
                let outcome = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0");
                let outcome = tonic::Code::from_bytes(outcome.as_bytes());
                tracing::info!(
                    target: "baton::audit", caller = %caller.name, by = caller.by, rpc = %path, remote = ?remote,
                    outcome = ?outcome, "state-changing call"
                );
            }
            Ok(response)
        })
    }
}
