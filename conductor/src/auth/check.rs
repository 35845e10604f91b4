//! [`Authenticator`]: who a caller is (bearer token or client certificate) and
//! whether it holds the role a call needs. Shared by the gRPC layer and the HTTP listener.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;
use rustls_pki_types::CertificateDer;

use super::cert;
use super::file::Identities;
use super::roles::Role;
use super::source::Reloading;

/// Who made a call, as audit lines and handlers see it (a request extension of every call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity's name in the auth file; `anonymous` when no auth file is in force.
    pub name: String,
    /// How it proved it: `token`, `cert` or `none`.
    pub by: &'static str,
}

impl Caller {
    /// The caller of a conductor that authenticates nobody.
    pub fn anonymous() -> Caller {
        Caller { name: "anonymous".into(), by: "none" }
    }
}

/// Why a call is refused. Neither variant says which tokens or names exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or ones the auth file does not know.
    Unauthenticated,
    /// A known caller without the role.
    Forbidden {
        /// The caller.
        caller: String,
        /// The role it lacks.
        role: Role,
        /// What it tried (a method name, or `/metrics`).
        what: String,
    },
}

impl Denied {
    /// The gRPC status: UNAUTHENTICATED or PERMISSION_DENIED naming the role.
    pub fn status(&self) -> tonic::Status {
        match self {
            Denied::Unauthenticated => tonic::Status::unauthenticated(
                "missing or invalid credentials: send `authorization: Bearer TOKEN` (baton --token) \
                 or a client certificate named in the conductor's auth file",
            ),
            Denied::Forbidden { caller, role, what } => {
                tonic::Status::permission_denied(format!("{caller} may not call {what}: it needs the role `{role}`"))
            }
        }
    }
}

/// The identities of `--auth-file`, re-read when the file changes.
#[derive(Debug)]
pub struct Authenticator {
    identities: Reloading<Identities>,
}

impl Authenticator {
    /// Reads the auth file; an unreadable or invalid file is a start-up error naming it.
    pub fn open(path: &Path) -> Result<Arc<Authenticator>, String> {
        let identities = Reloading::open("auth file", vec![path.to_owned()], |paths| {
            let path = &paths[0];
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the auth file {}: {e}", path.display()))?;
            Identities::parse(&text).map_err(|problems| format!("auth file {}: {problems}", path.display()))
        })?;
        let count = identities.current().len();
        tracing::info!(file = %identities.path().display(), identities = count, "callers authenticated by the auth file");
        Ok(Arc::new(Authenticator { identities }))
    }

    /// The caller of a request with `headers` over a connection whose client presented
    /// `peer_certs` (verified by TLS), if it holds `needs` for `what`. A token, when sent,
    /// decides alone: a bad token is refused even over a known certificate.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        peer_certs: Option<&[CertificateDer<'static>]>,
        needs: Role,
        what: &str,
    ) -> Result<Caller, Denied> {
        let identities = self.identities.current();
        let (identity, by) = match bearer(headers) {
            Some(Ok(token)) => (identities.by_token(token), "token"),
            Some(Err(())) => (None, "token"),
            None => {
                let names =
                    peer_certs.and_then(|certs| certs.first()).map(|leaf| cert::names(leaf)).unwrap_or_default();
                (identities.by_cert(&names), "cert")
            }
        };
        let identity = identity.ok_or(Denied::Unauthenticated)?;
        if !has(&identity.roles, needs) {
            return Err(Denied::Forbidden { caller: identity.name.clone(), role: needs, what: what.to_owned() });
        }
        Ok(Caller { name: identity.name.clone(), by })
    }
}

fn has(roles: &BTreeSet<Role>, needs: Role) -> bool {
    roles.contains(&needs)
}

/// The token of an `authorization: Bearer TOKEN` header: `None` without the header,
/// `Err` for a header of another shape.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    let Ok(text) = value.to_str() else { return Some(Err(())) };
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    match scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        true => Some(Ok(token.trim())),
        false => Some(Err(())),
    }
}
