//! [`ClientOptions`]: how a [`Client`](crate::Client) reaches a secured conductor.
//!
//! A conductor started with `--tls-cert`/`--tls-key` serves `https://`; with
//! `--tls-client-ca` it may ask for a client certificate; with `--auth-file` it
//! wants a bearer token (or that certificate) with every call. The options hold
//! PEM bytes and the token, never paths, so a program can build them from
//! anywhere; [`ClientOptions::from_files`] reads the files `baton` is given.

use std::path::Path;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::ClientError;

/// Why options could not be built from files or values.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which option (`--ca`, `--cert`, ...).
        what: &'static str,
        /// The path as given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate was given without its key, or a key without its certificate.
    #[error("--cert and --key go together: give both or neither")]
    HalfIdentity,
    /// The token holds characters a header cannot carry.
    #[error("the token holds characters an HTTP header cannot carry (only visible ASCII)")]
    BadToken,
    /// The token file held nothing.
    #[error("the token file {0} is empty")]
    EmptyToken(String),
}

/// Connection options; `Default` is plaintext, no token, tonic's timeouts.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Bound on opening the TCP connection.
    pub connect_timeout: Option<Duration>,
    /// HTTP/2 keep-alive ping interval (and how long a ping may go unanswered).
    pub keep_alive: Option<Duration>,
    /// Sent as `authorization: Bearer TOKEN` with every call.
    pub token: Option<String>,
    /// PEM of the CA(s) that signed the server's certificate; `None` with `https://`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and key of this client, for mutual TLS.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientOptions {
    /// Never prints the token or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity_pem", &self.identity_pem.is_some())
            .finish()
    }
}

impl ClientOptions {
    /// Options from what `baton` is given: a token (the value, else the first line of
    /// `token_file`), a CA file, and a client certificate and key file.
    pub fn from_files(
        token: Option<String>,
        token_file: Option<&Path>,
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<ClientOptions, OptionsError> {
        let token = match (token.filter(|t| !t.trim().is_empty()), token_file) {
            (Some(token), _) => Some(token.trim().to_owned()),
            (None, Some(path)) => {
                let text = read("--token-file", path)?;
                let line = String::from_utf8_lossy(&text).lines().next().unwrap_or_default().trim().to_owned();
                if line.is_empty() {
                    return Err(OptionsError::EmptyToken(path.display().to_string()));
                }
                Some(line)
            }
            (None, None) => None,
        };
        if let Some(token) = &token {
            check_token(token)?;
        }
        let ca_pem = ca.map(|path| read("--ca", path)).transpose()?;
        let identity_pem = match (cert, key) {
            (Some(cert), Some(key)) => Some((read("--cert", cert)?, read("--key", key)?)),
            (None, None) => None,
            _ => return Err(OptionsError::HalfIdentity),
        };
        Ok(ClientOptions { token, ca_pem, identity_pem, ..Default::default() })
    }

    /// The tonic endpoint for `url`, with the timeouts and, for `https://` (or whenever a CA
    /// or client certificate is given), TLS. Public for channels to services
    /// [`Client`](crate::Client) does not cover (the conductors' relay).
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, ClientError> {
        let invalid = |source| ClientError::InvalidEndpoint { endpoint: url.to_owned(), source };
        let mut target = Endpoint::from_shared(url.to_owned()).map_err(invalid)?;
        if let Some(limit) = self.connect_timeout {
            target = target.connect_timeout(limit);
        }
        if let Some(interval) = self.keep_alive {
            target = target.http2_keep_alive_interval(interval).keep_alive_timeout(interval);
        }
        let wants_tls = url.starts_with("https://") || self.ca_pem.is_some() || self.identity_pem.is_some();
        if wants_tls {
            let mut tls = ClientTlsConfig::new();
            tls = match &self.ca_pem {
                Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = &self.identity_pem {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            target = target.tls_config(tls).map_err(invalid)?;
        }
        Ok(target)
    }

    /// The interceptor that adds the token, if there is one.
    pub fn bearer(&self) -> Bearer {
        Bearer(self.token.as_deref().and_then(|t| format!("Bearer {t}").parse::<MetadataValue<Ascii>>().ok()))
    }
}

/// Adds `authorization: Bearer TOKEN` to every call (nothing without a token).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Bearer(<redacted>)" } else { "Bearer(none)" })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn check_token(token: &str) -> Result<(), OptionsError> {
    match token.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(()),
        false => Err(OptionsError::BadToken),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, OptionsError> {
    std::fs::read(path).map_err(|source| OptionsError::Read { what, path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_gives_its_first_line_and_a_half_identity_is_refused() {
        let dir = std::env::temp_dir().join(format!("baton-client-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("token");
        std::fs::write(&file, "s3cret\nignored\n").expect("write token");
        let options = ClientOptions::from_files(None, Some(&file), None, None, None).expect("options");
        assert_eq!(options.token.as_deref(), Some("s3cret"));
        assert!(!format!("{options:?}").contains("s3cret"), "Debug must not show the token");
        let flag = ClientOptions::from_files(Some("direct".into()), Some(&file), None, None, None).expect("options");
        assert_eq!(flag.token.as_deref(), Some("direct"), "the value wins over the file");
        let half = ClientOptions::from_files(None, None, None, Some(&file), None);
        assert!(matches!(half, Err(OptionsError::HalfIdentity)));
        std::fs::write(&file, "").expect("write empty");
        assert!(matches!(
            ClientOptions::from_files(None, Some(&file), None, None, None),
            Err(OptionsError::EmptyToken(_))
        ));
        assert!(matches!(
            ClientOptions::from_files(Some("a b".into()), None, None, None, None),
            Err(OptionsError::BadToken)
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
