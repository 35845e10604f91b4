//! Secrets: `${secret.NAME}` resolved on the conductor at execute time.
//!
//! A secret is read only when a task runs, never stored in a job's store or
//! the logbook, and every value read for a call is replaced by `***` in what
//! the call returns (its result or its failure) before the engine records it.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

/// Why a secret could not be had (the message never holds a secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret of that name.
    #[error("secret {0:?} is not defined on this conductor")]
    Missing(String),
    /// The name could escape the secrets directory or is otherwise malformed.
    #[error("{0:?} is not a valid secret name (letters, digits, '_', '-' and '.', not starting with '.')")]
    BadName(String),
    /// The secret exists but cannot be read.
    #[error("secret {name:?} cannot be read: {reason}")]
    Unreadable {
        /// The secret.
        name: String,
        /// Why (an I/O error).
        reason: String,
    },
}

/// Where secrets come from.
pub trait Secrets: Send + Sync + 'static {
    /// The value of secret `name`.
    fn get(&self, name: &str) -> Result<String, SecretError>;
}

/// No secrets at all: every reference to one fails the task.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn get(&self, name: &str) -> Result<String, SecretError> {
        Err(SecretError::Missing(name.to_owned()))
    }
}

/// A directory with one file per secret (`--secrets-dir`; a Kubernetes Secret
/// mounted as a volume looks like this). One trailing newline is dropped.
#[derive(Clone)]
pub struct DirSecrets {
    dir: PathBuf,
}

impl DirSecrets {
    /// Secrets read from files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSecrets { dir: dir.into() }
    }
}

impl fmt::Debug for DirSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirSecrets").field("dir", &self.dir).finish()
    }
}

/// Secret names are file names: no separators, no leading dot.
pub(crate) fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Secrets for DirSecrets {
    fn get(&self, name: &str) -> Result<String, SecretError> {
        if !valid_secret_name(name) {
            return Err(SecretError::BadName(name.to_owned()));
        }
        match std::fs::read_to_string(self.dir.join(name)) {
            Ok(mut text) => {
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretError::Missing(name.to_owned())),
            Err(e) => Err(SecretError::Unreadable { name: name.to_owned(), reason: e.kind().to_string() }),
        }
    }
}

/// What a redacted secret looks like.
pub const REDACTED: &str = "***";

/// Replaces every occurrence of each secret in `text` with `***`.
pub(crate) fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// Redacts every string (and object key) inside `value`.
pub(crate) fn redact_value(value: Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return value;
    }
    match value {
        Value::String(s) => Value::String(redact_text(&s, secrets)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redact_value(v, secrets)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (redact_text(&k, secrets), redact_value(v, secrets))).collect())
        }
        other => other,
    }
}

/// Redacts a failure's message, details and causes.
pub(crate) fn redact_failure(mut failure: flows::Failure, secrets: &[String]) -> flows::Failure {
    if secrets.is_empty() {
        return failure;
    }
    failure.message = redact_text(&failure.message, secrets);
    failure.details = failure.details.map(|d| redact_value(d, secrets));
    failure.cause = failure.cause.map(|c| Box::new(redact_failure(*c, secrets)));
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_secrets_refuse_escaping_names_and_drop_one_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cr3t\n").expect("write");
        let secrets = DirSecrets::new(dir.path());
        assert_eq!(secrets.get("token"), Ok("s3cr3t".to_owned()));
        assert_eq!(secrets.get("../token"), Err(SecretError::BadName("../token".into())));
        assert_eq!(secrets.get("nope"), Err(SecretError::Missing("nope".into())));
    }

    #[test]
    fn redaction_reaches_nested_values_and_causes() {
        let secrets = vec!["pw".to_owned()];
        let v = redact_value(serde_json::json!({"a": ["xpwx", 1], "pw": true}), &secrets);
        assert_eq!(v, serde_json::json!({"a": ["x***x", 1], "***": true}));
        let f = redact_failure(flows::Failure::task("bad pw").with_cause(flows::Failure::task("pw!")), &secrets);
        assert_eq!(f.to_string(), "TaskError: bad ***: caused by TaskError: ***!");
    }
}
