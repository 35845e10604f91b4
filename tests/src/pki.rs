//! [`Pki`]: a throwaway certificate authority for the TLS tests (rcgen).
//!
//! Certificates are written as PEM files into a temp dir the `Pki` owns: a CA, server
//! certificates for `127.0.0.1`/`localhost`, and client certificates with a common name.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// A CA and the files it issued.
pub struct Pki {
    dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_path: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir.path()).finish()
    }
}

impl Pki {
    /// A new CA named `name`, its certificate written to `ca.pem`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::Builder::new().prefix("baton-pki-").tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("CA params: {e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
        let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("CA certificate: {e}"));
        let ca_path = dir.path().join(format!("{name}-ca.pem"));
        write(&ca_path, &ca.pem());
        Pki { dir, ca, ca_path }
    }

    /// The CA certificate file.
    pub fn ca(&self) -> &Path {
        &self.ca_path
    }

    /// A server certificate for `127.0.0.1` and `localhost`, as `FILE_STEM.pem` / `FILE_STEM.key`.
    pub fn server(&self, file_stem: &str) -> CertFiles {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap_or_else(|e| panic!("params: {e}"));
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, file_stem)
    }

    /// A client certificate with common name `cn` (no SAN), as `cn.pem` / `cn.key`.
    pub fn client(&self, cn: &str) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("params: {e}"));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, cn)
    }

    fn issue(&self, params: CertificateParams, file_stem: &str) -> CertFiles {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let cert = params.signed_by(&key, &self.ca).unwrap_or_else(|e| panic!("certificate: {e}"));
        let files = CertFiles {
            cert: self.dir.path().join(format!("{file_stem}.pem")),
            key: self.dir.path().join(format!("{file_stem}.key")),
        };
        write(&files.cert, &cert.pem());
        write(&files.key, &key.serialize_pem());
        files
    }

    /// A path in the PKI's directory (for other files of a test: auth files, tokens).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
