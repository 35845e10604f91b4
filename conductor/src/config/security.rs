//! The security settings: TLS and the auth file of the API, TLS and a user towards etcd,
//! and the rule that a conductor never serves beyond loopback unprotected by accident.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::tls::TlsFiles;

/// How the gRPC API and the HTTP listener are protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// Server TLS; `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// `--auth-file`; `None`: callers are not authenticated.
    pub auth_file: Option<PathBuf>,
    /// `--insecure`: serve beyond loopback without TLS or an auth file.
    pub insecure: bool,
}

impl Security {
    /// Refuses to listen on `addr` beyond loopback with neither TLS nor an auth file,
    /// unless `--insecure` was given: naming the flags that would make it safe.
    pub fn check_exposure(&self, addr: SocketAddr, flag: &str) -> Result<(), Error> {
        if addr.ip().is_loopback() || self.tls.is_some() || self.auth_file.is_some() || self.insecure {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{flag} {addr} is reachable beyond this host, but there is no TLS and no auth file: anyone who \
             reaches it could post, cancel and drain. Give --tls-cert and --tls-key (and --tls-client-ca for \
             client certificates) and/or --auth-file, or pass --insecure to serve it unprotected anyway"
        )))
    }
}

/// A value never printed (a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// TLS and user towards etcd, as configured (files are read when a session opens,
/// so a renewed client certificate is used by the next session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdSecuritySettings {
    /// `--etcd-ca`.
    pub ca: Option<PathBuf>,
    /// `--etcd-cert` and `--etcd-key`.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// `--etcd-user` and its password.
    pub user: Option<(String, Secret)>,
}

impl EtcdSecuritySettings {
    /// From the settings and the `BATON_ETCD_PASSWORD` variable; the password file is read now.
    pub fn resolve(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        user: Option<String>,
        password_file: Option<PathBuf>,
        password_env: Option<String>,
    ) -> Result<EtcdSecuritySettings, Error> {
        let bad = |msg: &str| Err(Error::Config(msg.to_owned()));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return bad("--etcd-cert and --etcd-key go together: give both or neither"),
        };
        let password = match (&password_file, password_env) {
            (Some(path), _) => Some(read_password(path)?),
            (None, Some(value)) => Some(Secret(value)),
            (None, None) => None,
        };
        let user = match (user, password) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            (Some(_), None) => {
                return bad("--etcd-user needs a password: --etcd-password-file FILE or BATON_ETCD_PASSWORD")
            }
            (None, Some(_)) => {
                return bad("an etcd password was given (file or BATON_ETCD_PASSWORD) without --etcd-user")
            }
        };
        let settings = EtcdSecuritySettings { ca, identity, user };
        for (flag, path) in settings.files() {
            if !path.is_file() {
                return Err(Error::Config(format!("{flag} {}: no such file", path.display())));
            }
        }
        Ok(settings)
    }

    /// Whether TLS towards etcd is configured.
    pub fn uses_tls(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }

    /// With TLS, every endpoint must be `https://` (etcd-client refuses TLS on `http://`).
    pub fn check_endpoints(&self, endpoints: &[String]) -> Result<(), Error> {
        if let Some(plain) = endpoints.iter().find(|e| e.starts_with("http://")).filter(|_| self.uses_tls()) {
            return Err(Error::Config(format!(
                "--etcd endpoint {plain} is http://, but --etcd-ca/--etcd-cert ask for TLS: use https://"
            )));
        }
        Ok(())
    }

    /// Reads the PEM files into what the board takes.
    pub fn load(&self) -> Result<jobboard::etcd::EtcdSecurity, Error> {
        let read = |flag: &str, path: &Path| {
            std::fs::read(path)
                .map_err(|source| Error::Io { what: format!("reading {flag} {}", path.display()), source })
        };
        Ok(jobboard::etcd::EtcdSecurity {
            ca_pem: self.ca.as_deref().map(|p| read("--etcd-ca", p)).transpose()?,
            identity_pem: match &self.identity {
                Some((cert, key)) => Some((read("--etcd-cert", cert)?, read("--etcd-key", key)?)),
                None => None,
            },
            user: self.user.as_ref().map(|(name, password)| (name.clone(), password.expose().to_owned())),
        })
    }

    fn files(&self) -> Vec<(&'static str, &Path)> {
        let mut files = Vec::new();
        files.extend(self.ca.as_deref().map(|p| ("--etcd-ca", p)));
        if let Some((cert, key)) = &self.identity {
            files.push(("--etcd-cert", cert.as_path()));
            files.push(("--etcd-key", key.as_path()));
        }
        files
    }
}

fn read_password(path: &Path) -> Result<Secret, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read --etcd-password-file {}: {e}", path.display())))?;
    let line = text.lines().next().unwrap_or_default().trim_end_matches('\r').to_owned();
    if line.is_empty() {
        return Err(Error::Config(format!("--etcd-password-file {} is empty", path.display())));
    }
    Ok(Secret(line))
}

/// How this conductor reaches other conductors' APIs (the worker relay): the same
/// credentials a client gives, read from their files each time a link opens so a
/// renewed token or certificate is used by the next link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSettings {
    /// `--peer-token-file`.
    pub token_file: Option<PathBuf>,
    /// `--peer-cert` and `--peer-key`.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// `--peer-ca`, else `--tls-client-ca`.
    pub ca: Option<PathBuf>,
    /// Whether the API (every conductor's, in a fleet) serves TLS: links are then `https://`.
    pub tls: bool,
}

impl PeerSettings {
    /// From the flags; refuses a certificate without its key and files that are not there.
    pub fn resolve(
        token_file: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
        tls: bool,
    ) -> Result<PeerSettings, Error> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(Error::Config("--peer-cert and --peer-key go together: give both or neither".into())),
        };
        let settings = PeerSettings { token_file, identity, ca, tls };
        let mut files = vec![("--peer-token-file", settings.token_file.as_deref())];
        if let Some((cert, key)) = &settings.identity {
            files.extend([("--peer-cert", Some(cert.as_path())), ("--peer-key", Some(key.as_path()))]);
        }
        for (flag, path) in files.into_iter().filter_map(|(flag, path)| Some((flag, path?))) {
            if !path.is_file() {
                return Err(Error::Config(format!("{flag} {}: no such file", path.display())));
            }
        }
        Ok(settings)
    }

    /// Whether a credential is configured.
    pub fn has_credential(&self) -> bool {
        self.token_file.is_some() || self.identity.is_some()
    }

    /// The URL of a conductor recorded at `address` (`host:port`, or a URL as it is).
    pub fn url(&self, address: &str) -> String {
        match (address.contains("://"), self.tls) {
            (true, _) => address.to_owned(),
            (false, true) => format!("https://{address}"),
            (false, false) => format!("http://{address}"),
        }
    }

    /// The client options, the files read now.
    pub fn client_options(&self) -> Result<proto::ClientOptions, proto::OptionsError> {
        let (cert, key) = match &self.identity {
            Some((cert, key)) => (Some(cert.as_path()), Some(key.as_path())),
            None => (None, None),
        };
        // The CA only matters over TLS; without TLS it would turn TLS on towards a plaintext peer.
        let ca = self.ca.as_deref().filter(|_| self.tls);
        proto::ClientOptions::from_files(None, self.token_file.as_deref(), ca, cert, key)
    }
}
