//! Why a TLS etcd cannot be reached, when the reason is a certificate.
//!
//! etcd-client reports a refused client certificate, or a server certificate that
//! `--etcd-ca` does not vouch for, as a failed connection: the same as an etcd that is
//! down, for which a conductor waits. At start, before waiting, the conductor makes one
//! TLS connection of its own to the first endpoint with the same files: a handshake
//! (or the first read after it, where TLS 1.3 delivers a rejection of the client
//! certificate) failing on a certificate is bad configuration, named as such.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::EtcdSecuritySettings;

/// Bound on each step of the probe.
const STEP: Duration = Duration::from_secs(3);
/// The HTTP/2 client preface and an empty SETTINGS frame: what gRPC sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A sentence naming the certificate problem with `endpoint`, or `None` when the
/// certificates are not the problem (etcd is down, or everything is fine).
pub(crate) async fn certificate_problem(endpoint: &str, security: &EtcdSecuritySettings) -> Option<String> {
    let authority = endpoint.strip_prefix("https://")?.split('/').next()?.to_owned();
    let host = match authority.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => authority.clone(),
    };
    let config = client_config(security).ok()?;
    let server_name = ServerName::try_from(host).ok()?;
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(&authority)).await.ok()?.ok()?;
    let connector = TlsConnector::from(Arc::new(config));
    let mut stream = match tokio::time::timeout(STEP, connector.connect(server_name, tcp)).await.ok()? {
        Ok(stream) => stream,
        Err(error) => return certificate_words(&error, endpoint),
    };
    stream.write_all(PREFACE).await.ok()?;
    let mut first = [0u8; 16];
    match tokio::time::timeout(STEP, stream.read(&mut first)).await.ok()? {
        Ok(_) => None,
        Err(error) => certificate_words(&error, endpoint),
    }
}

/// The error in words if it is about a certificate.
fn certificate_words(error: &std::io::Error, endpoint: &str) -> Option<String> {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") {
        Some(format!("etcd at {endpoint} presented a certificate --etcd-ca does not vouch for: {text}"))
    } else if lower.contains("alert") && (lower.contains("certificate") || lower.contains("unknownca")) {
        Some(format!("etcd at {endpoint} refused the client certificate (--etcd-cert): {text}"))
    } else {
        None
    }
}

fn client_config(security: &EtcdSecuritySettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &security.ca {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
                roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _unusable = roots.add(cert);
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match &security.identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
            builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
