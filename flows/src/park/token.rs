//! Callback tokens: the credential that completes one parked attempt.
//!
//! `bt1.<job>.<atom>.<attempt>.<secret>`: a readable prefix naming the job
//! (its id, simple form), the atom and the attempt, so whoever receives the
//! token finds the park record with one read; then 32 bytes from a CSPRNG in
//! hex. Every character is URL-safe (`A-Z a-z 0-9 - _ . ~`). An atom name made
//! only of `A-Za-z0-9_-` is kept as it is; any other is `~` and the hex of its
//! UTF-8 bytes. Only the SHA-256 of the secret is ever stored, and it is
//! compared in constant time. The token has no `Display`; its `Debug` shows
//! the prefix only, so logging one by mistake leaks nothing.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const VERSION: &str = "bt1";
const SECRET_BYTES: usize = 32;

/// What a token names: job, atom and attempt. Safe to log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenName {
    /// The job (the logbook's id).
    pub job: Uuid,
    /// The atom's name.
    pub atom: String,
    /// The attempt.
    pub attempt: u32,
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VERSION}.{}.{}.{}", self.job.simple(), encode_atom(&self.atom), self.attempt)
    }
}

/// A whole token, secret included.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackToken {
    name: TokenName,
    secret: [u8; SECRET_BYTES],
}

/// Why a text is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a callback token")]
pub struct TokenError;

impl CallbackToken {
    /// A new token for `name`, its secret from the thread's CSPRNG.
    pub fn mint(name: TokenName) -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        CallbackToken { name, secret }
    }

    /// Reads a token. Says nothing of which part was wrong.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let mut parts = text.split('.');
        let (Some(VERSION), Some(job), Some(atom), Some(attempt), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError);
        };
        let job = Uuid::try_parse(job).map_err(|_| TokenError)?;
        let atom = decode_atom(atom).ok_or(TokenError)?;
        if attempt.is_empty() || !attempt.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TokenError);
        }
        let attempt = attempt.parse().map_err(|_| TokenError)?;
        let bytes = from_hex(secret).ok_or(TokenError)?;
        let secret = <[u8; SECRET_BYTES]>::try_from(bytes.as_slice()).map_err(|_| TokenError)?;
        Ok(CallbackToken { name: TokenName { job, atom, attempt }, secret })
    }

    /// What the token names.
    pub fn name(&self) -> &TokenName {
        &self.name
    }

    /// The whole token as text: the credential. Hand it only to whoever must complete the park.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.name, to_hex(&self.secret))
    }

    /// SHA-256 of the secret, hex: what a park record stores.
    pub fn hash(&self) -> String {
        to_hex(&Sha256::digest(self.secret))
    }

    /// True if this token's secret hashes to `stored` (compared in constant time).
    pub fn matches(&self, stored: &str) -> bool {
        let mine = self.hash();
        let (a, b) = (mine.as_bytes(), stored.as_bytes());
        // Both are 64 hex characters when well formed; a length difference reveals nothing secret.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackToken({}.***)", self.name)
    }
}

fn encode_atom(atom: &str) -> String {
    let plain = !atom.is_empty() && atom.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        atom.to_owned()
    } else {
        format!("~{}", to_hex(atom.as_bytes()))
    }
}

fn decode_atom(text: &str) -> Option<String> {
    match text.strip_prefix('~') {
        Some(hex) => String::from_utf8(from_hex(hex)?).ok(),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {
            Some(text.to_owned())
        }
        None => None,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(atom: &str) -> TokenName {
        TokenName { job: Uuid::new_v4(), atom: atom.into(), attempt: 3 }
    }

    #[test]
    fn a_token_reads_back_and_matches_only_its_hash() {
        for atom in ["approve", "each.1/x y", "ünï"] {
            let token = CallbackToken::mint(name(atom));
            let text = token.expose();
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)), "{text}");
            let back = CallbackToken::parse(&text).expect("parses");
            assert_eq!(back, token);
            assert!(back.matches(&token.hash()));
            assert!(!CallbackToken::mint(name(atom)).matches(&token.hash()));
        }
    }

    #[test]
    fn secrets_differ_and_never_show_in_debug() {
        let a = CallbackToken::mint(name("t"));
        let b = CallbackToken::mint(TokenName { ..a.name().clone() });
        assert_ne!(a.expose(), b.expose());
        let secret = a.expose().rsplit('.').next().expect("secret").to_owned();
        assert_eq!(secret.len(), 64);
        assert!(!format!("{a:?}").contains(&secret));
        assert!(format!("{a:?}").contains(&a.name().to_string()));
    }

    #[test]
    fn malformed_texts_are_refused() {
        let good = CallbackToken::mint(name("t")).expose();
        let prefix = good.rsplit_once('.').expect("dot").0.to_owned();
        for bad in
            [String::new(), prefix.clone(), format!("{prefix}.zz"), format!("{good}.x"), good.replace("bt1", "bt2")]
        {
            assert_eq!(CallbackToken::parse(&bad), Err(TokenError), "{bad}");
        }
    }
}
