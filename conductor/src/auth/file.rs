//! The auth file (`--auth-file`): one identity per line.
//!
//! ```text
//! # NAME  ROLE[,ROLE...]  CREDENTIAL
//! ci      read,post       sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ops     read,operate    cert:ops.example.com
//! ```
//!
//! A credential is `sha256:HEX`, the SHA-256 of a bearer token (the token itself
//! is never stored), or `cert:VALUE`, a client certificate whose subject, common
//! name or one of whose subject alternative names is `VALUE`. `#` starts a comment.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::roles::Role;

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who: written in audit lines and errors.
    pub name: String,
    /// What it may do.
    pub roles: BTreeSet<Role>,
    /// How it proves who it is.
    pub credential: Credential,
}

/// How an identity authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The SHA-256 of its bearer token.
    TokenSha256([u8; 32]),
    /// A verified client certificate naming this subject, common name or SAN.
    Cert(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::TokenSha256(_) => f.write_str("TokenSha256(..)"),
            Credential::Cert(value) => write!(f, "Cert({value:?})"),
        }
    }
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    identities: Vec<Identity>,
}

impl Identities {
    /// Parses the text of an auth file; every bad line is reported as `LINE: what`.
    pub fn parse(text: &str) -> Result<Identities, String> {
        let mut identities = Vec::new();
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok(identity) if !names.insert(identity.name.clone()) => {
                    problems.push(format!("line {}: the name {} is given twice", index + 1, identity.name));
                }
                Ok(identity) => identities.push(identity),
                Err(problem) => problems.push(format!("line {}: {problem}", index + 1)),
            }
        }
        match problems.is_empty() {
            true => Ok(Identities { identities }),
            false => Err(problems.join("; ")),
        }
    }

    /// How many identities the file names.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether the file names nobody.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The identity whose token hashes to the SHA-256 of `token`. Every token entry is
    /// compared, each in constant time, so the time taken says nothing of the stored tokens.
    pub fn by_token(&self, token: &str) -> Option<&Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for identity in &self.identities {
            if let Credential::TokenSha256(stored) = &identity.credential {
                if bool::from(stored.ct_eq(&digest)) {
                    found = Some(identity);
                }
            }
        }
        found
    }

    /// The first identity whose `cert:` value is one of `names` (a certificate's subject, CN and SANs).
    pub fn by_cert(&self, names: &[String]) -> Option<&Identity> {
        self.identities.iter().find(|identity| match &identity.credential {
            Credential::Cert(value) => names.iter().any(|name| name == value),
            Credential::TokenSha256(_) => false,
        })
    }
}

fn parse_line(line: &str) -> Result<Identity, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [name, roles, credential] = fields[..] else {
        return Err(format!("expected NAME ROLE[,ROLE...] sha256:HEX|cert:VALUE, found {} fields", fields.len()));
    };
    let mut parsed = BTreeSet::new();
    for role in roles.split(',').filter(|r| !r.is_empty()) {
        let role = Role::parse(role).ok_or_else(|| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
            format!("unknown role {role:?} (roles: {})", known.join(", "))
        })?;
        parsed.insert(role);
    }
    if parsed.is_empty() {
        return Err(format!("{name} has no role"));
    }
    let credential = if let Some(hex) = credential.strip_prefix("sha256:") {
        Credential::TokenSha256(decode_sha256(hex).ok_or("sha256: wants 64 hex digits (the SHA-256 of the token)")?)
    } else if let Some(value) = credential.strip_prefix("cert:") {
        if value.is_empty() {
            return Err("cert: wants a subject, common name or SAN".into());
        }
        Credential::Cert(value.to_owned())
    } else {
        return Err("the credential must be sha256:HEX (never a plaintext token) or cert:VALUE".into());
    };
    Ok(Identity { name: name.to_owned(), roles: parsed, credential })
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `sha256:HEX` of a token: what an operator writes in the file (`printf %s TOKEN | sha256sum`).
pub fn token_line_credential(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_certificates_are_found_and_bad_lines_are_named() {
        let text = format!(
            "# comment\n\nci read,post {}\nops operate,read cert:ops.example.com # trailing\n",
            token_line_credential("t0ken")
        );
        let ids = Identities::parse(&text).expect("parses");
        assert_eq!(ids.len(), 2);
        let ci = ids.by_token("t0ken").expect("token found");
        assert_eq!(ci.name, "ci");
        assert!(ci.roles.contains(&Role::Post) && !ci.roles.contains(&Role::Operate));
        assert!(ids.by_token("t0ken ").is_none());
        assert!(ids.by_token("").is_none());
        assert_eq!(ids.by_cert(&["CN=x".into(), "ops.example.com".into()]).map(|i| i.name.as_str()), Some("ops"));
        assert!(ids.by_cert(&["t0ken".into()]).is_none());

        let bad = Identities::parse("a read plaintext\nb root sha256:00\nc read\nd read cert:\n").unwrap_err();
        for wanted in ["line 1: the credential", "line 2: unknown role \"root\"", "line 3: expected", "line 4: cert:"] {
            assert!(bad.contains(wanted), "{wanted:?} not in {bad}");
        }
        let twice = Identities::parse("a read cert:x\na read cert:y\n").unwrap_err();
        assert!(twice.contains("line 2: the name a is given twice"), "{twice}");
    }
}
