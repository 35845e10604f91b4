//! The names a verified client certificate goes by: its subject, its common
//! name and its subject alternative names, as an auth file's `cert:` matches them.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The subject (`CN=ops, O=Example`), CN and SANs (DNS names, e-mail, URIs, IPs) of a
/// DER certificate; empty when it does not parse (rustls has verified it by then).
pub fn names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = vec![cert.subject().to_string()];
    for cn in cert.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            names.push(cn.to_owned());
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(value) | GeneralName::RFC822Name(value) | GeneralName::URI(value) => {
                    names.push((*value).to_owned())
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        names.push(std::net::Ipv4Addr::from(octets).to_string());
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_common_name_and_sans_are_all_names() {
        let mut params = rcgen::CertificateParams::new(vec!["ops.example.com".into()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "ops");
        params.subject_alt_names.push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let names = super::names(cert.der());
        for wanted in ["CN=ops", "ops", "ops.example.com", "127.0.0.1"] {
            assert!(names.iter().any(|n| n == wanted), "{wanted} not in {names:?}");
        }
        assert!(super::names(b"not a certificate").is_empty());
    }
}
