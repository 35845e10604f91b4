//! TLS on the conductor's listeners (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
//!
//! [`ServerTls`] holds a rustls server config built from the PEM files and rebuilds it
//! when any of them changes (checked at most once a second, on the next connection):
//! a renewed certificate is served to new connections without a restart, while open
//! connections keep the one they started with. A file that no longer loads keeps the
//! previous config, with an error in the log. With `--tls-client-ca`, client
//! certificates are verified against it: required when no auth file is given (the
//! certificate is then the whole of the authentication), optional with one (a caller
//! may use a token instead; the auth file decides who is known).
//!
//! [`incoming`] turns a TCP listener into a stream of TLS connections: each handshake
//! runs in its own task, bounded in time, so a slow or silent client holds up nobody.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::auth::source::Reloading;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The PEM files of the server's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA(s) that sign client certificates (mutual TLS); `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// The server's TLS config, rebuilt when its files change.
#[derive(Debug)]
pub struct ServerTls {
    config: Reloading<ServerConfig>,
}

impl ServerTls {
    /// Loads the files; a missing or invalid one is a start-up error naming it.
    /// `client_cert_optional`: a client may connect without a certificate (an auth file decides).
    pub fn open(files: &TlsFiles, client_cert_optional: bool) -> Result<Arc<ServerTls>, String> {
        let mut paths = vec![files.cert.clone(), files.key.clone()];
        paths.extend(files.client_ca.clone());
        let config = Reloading::open("TLS certificate", paths, move |paths| build(paths, client_cert_optional))?;
        Ok(Arc::new(ServerTls { config }))
    }

    /// An acceptor with the current config.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.current())
    }
}

/// `paths`: cert, key, then the client CA if any.
fn build(paths: &[PathBuf], client_cert_optional: bool) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&paths[0], "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&paths[1])
        .map_err(|e| format!("--tls-key {}: no usable private key: {e}", paths[1].display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match paths.get(2) {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca, "--tls-client-ca")? {
                roots.add(cert).map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_cert_optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert {} and --tls-key {}: {e}", paths[0].display(), paths[1].display()))?;
    // gRPC is HTTP/2; the HTTP listener (metrics, health) speaks HTTP/1.1 too.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &std::path::Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    match certs.is_empty() {
        true => Err(format!("{flag} {}: no certificate in the file", path.display())),
        false => Ok(certs),
    }
}

/// TLS connections accepted on `listener` until `stop`: handshakes run concurrently, and a
/// failed one is logged (debug) and dropped without ending the stream.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY, small stream messages (WatchJob) wait on Nagle's algorithm.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            let acceptor = tls.acceptor();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _closed = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
