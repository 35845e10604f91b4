//! [`EtcdSecurity`]: TLS and user authentication towards etcd.
//!
//! etcd started with `--client-cert-auth --trusted-ca-file` wants a client
//! certificate; one with auth enabled wants a user and password (etcd-client
//! authenticates, and re-authenticates when the token expires). The PEM bytes and
//! the password are held here, never paths, and never printed.

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

/// How the board proves itself to etcd; `Default`: plaintext, no user.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EtcdSecurity {
    /// PEM of the CA that signed etcd's server certificate; with it, endpoints are `https://`.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and key (etcd's `--client-cert-auth`).
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// An etcd user and its password (etcd's `auth enable`).
    pub user: Option<(String, String)>,
}

impl std::fmt::Debug for EtcdSecurity {
    /// Never prints the key or the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSecurity")
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.identity_pem.is_some())
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .finish()
    }
}

impl EtcdSecurity {
    /// Whether TLS is asked for (a CA or a client certificate).
    pub fn uses_tls(&self) -> bool {
        self.ca_pem.is_some() || self.identity_pem.is_some()
    }

    /// `options` with this TLS and user.
    pub(crate) fn apply(&self, mut options: ConnectOptions) -> ConnectOptions {
        if self.uses_tls() {
            let mut tls = TlsOptions::new();
            tls = match &self.ca_pem {
                Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = &self.identity_pem {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let Some((name, password)) = &self.user {
            options = options.with_user(name.clone(), password.clone());
        }
        options
    }
}
