//! [`SecureEtcd`]: an etcd with TLS client-certificate authentication *and* users, as a
//! production etcd is run: a root user, and a `baton` user whose role may read and write
//! only under [`BOARD_PREFIX`]. For the board suite and conductors over TLS + auth.

use std::path::PathBuf;
use std::sync::OnceLock;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, Permission, TlsOptions};
use jobboard::etcd::EtcdSecurity;

use super::{EtcdProcess, EtcdTls};
use crate::pki::{CertFiles, Pki};

/// The only keys the `baton` user may touch.
pub const BOARD_PREFIX: &str = "/secure-board/";
/// The etcd user of the conductors.
pub const USER: &str = "baton";

/// A TLS + auth etcd, its CA and the client material of the `baton` user.
#[derive(Debug)]
pub struct SecureEtcd {
    /// The etcd.
    pub etcd: EtcdProcess,
    /// The CA of the server and client certificates.
    pub pki: Pki,
    /// The conductors' client certificate.
    pub client: CertFiles,
    /// A file holding the `baton` user's password.
    pub password_file: PathBuf,
    password: String,
}

impl SecureEtcd {
    /// One for the whole test binary, started (and its users made) on first use.
    pub fn shared() -> &'static SecureEtcd {
        static SHARED: OnceLock<SecureEtcd> = OnceLock::new();
        SHARED.get_or_init(SecureEtcd::start)
    }

    /// Starts etcd with TLS, makes the users and the role, and enables auth.
    pub fn start() -> SecureEtcd {
        let pki = Pki::new("etcd");
        let server = pki.server("etcd-server");
        let client = pki.client("baton-conductor");
        let etcd =
            EtcdProcess::start_tls(EtcdTls { cert: server.cert, key: server.key, client_ca: pki.ca().to_owned() });
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let password_file = pki.path("etcd-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap_or_else(|e| panic!("password file: {e}"));
        let secure = SecureEtcd { etcd, pki, client, password_file, password };
        let setup = secure.security_as(None);
        let endpoint = secure.etcd.endpoint();
        let password = secure.password.clone();
        // Its own runtime on its own thread: this may run inside a test's runtime.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(enable_auth(&endpoint, &setup, &password))
        })
        .join()
        .unwrap_or_else(|_| panic!("enabling etcd auth panicked"))
        .unwrap_or_else(|e| panic!("enabling etcd auth failed: {e}"));
        secure
    }

    /// The `https://` endpoint.
    pub fn endpoint(&self) -> String {
        self.etcd.endpoint()
    }

    /// TLS with the client certificate, as the `baton` user with its password.
    pub fn security(&self) -> EtcdSecurity {
        self.security_as(Some((USER.to_owned(), self.password.clone())))
    }

    fn security_as(&self, user: Option<(String, String)>) -> EtcdSecurity {
        let read = |path: &PathBuf| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        EtcdSecurity {
            ca_pem: Some(read(&self.pki.ca().to_owned())),
            identity_pem: Some((read(&self.client.cert), read(&self.client.key))),
            user,
        }
    }
}

/// root (role root) and baton (role baton: read/write under [`BOARD_PREFIX`]), then `auth enable`.
async fn enable_auth(endpoint: &str, tls: &EtcdSecurity, password: &str) -> Result<(), etcd_client::Error> {
    let mut options = TlsOptions::new();
    if let Some(ca) = &tls.ca_pem {
        options = options.ca_certificate(Certificate::from_pem(ca));
    }
    if let Some((cert, key)) = &tls.identity_pem {
        options = options.identity(Identity::from_pem(cert, key));
    }
    let mut client = Client::connect([endpoint], Some(ConnectOptions::new().with_tls(options))).await?;
    let root_password = format!("root-{}", uuid::Uuid::new_v4().simple());
    client.user_add("root", root_password, None).await?;
    client.role_add("root").await?;
    client.user_grant_role("root", "root").await?;
    client.role_add(USER).await?;
    client.role_grant_permission(USER, Permission::read_write(BOARD_PREFIX).with_prefix()).await?;
    client.user_add(USER, password, None).await?;
    client.user_grant_role(USER, USER).await?;
    client.auth_enable().await?;
    Ok(())
}
