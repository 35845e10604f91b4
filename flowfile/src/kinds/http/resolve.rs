//! The `http` kind's name resolver: the system's (getaddrinfo), then, with an
//! allow list, only the addresses it permits ([`AllowList::permits_resolved`]).
//! The connector connects to exactly what this returns, so the addresses checked
//! are the addresses used.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

use super::allow::AllowList;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// getaddrinfo, filtered by the allow list when there is one.
#[derive(Clone)]
pub(super) struct Checked {
    inner: GaiResolver,
    allow: Option<Arc<AllowList>>,
}

impl Checked {
    pub(super) fn new(allow: Option<Arc<AllowList>>) -> Self {
        Checked { inner: GaiResolver::new(), allow }
    }
}

impl Service<Name> for Checked {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolving = self.inner.call(name.clone());
        let allow = self.allow.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = resolving.await?.collect();
            let Some(allow) = allow else { return Ok(found.into_iter()) };
            let (kept, denied): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|addr| allow.permits_resolved(addr.ip()));
            if kept.is_empty() && !denied.is_empty() {
                let denied: Vec<String> = denied.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{} resolves only to internal addresses that --http-allow does not list ({})",
                    name.as_str(),
                    denied.join(", ")
                )
                .into());
            }
            if !denied.is_empty() {
                tracing::debug!(host = name.as_str(), denied = denied.len(), "http kind skipped internal addresses");
            }
            Ok(kept.into_iter())
        })
    }
}
