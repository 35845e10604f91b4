//! `Failure`: a task failure as a value.
//!
//! Task failures are data, not Rust errors: they are stored in the logbook,
//! handed to `revert`, shown to the poster of a job. A failure carries a kind
//! (a short machine-readable name such as `Timeout`), a message and the chain
//! of causes that led to it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task (or retry) failure, persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure this is, e.g. `TaskError`, `Timeout`, `Panic`, `NotFound`.
    pub kind: String,
    /// A human-readable description.
    pub message: String,
    /// Extra structured data the task chose to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The failure that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Failure>>,
}

impl Failure {
    /// Kind of a failure raised by a task's own code.
    pub const TASK_ERROR: &'static str = "TaskError";
    /// Kind of a failure produced when a task exceeds its timeout.
    pub const TIMEOUT: &'static str = "Timeout";
    /// Kind of a failure produced when a task panics.
    pub const PANIC: &'static str = "Panic";
    /// Kind of a failure produced when a required input cannot be found at run time.
    pub const NOT_FOUND: &'static str = "NotFound";
    /// Kind of what a task returns to park ([`Park`](crate::park::Park)): read by the
    /// engine as an outcome, never recorded as a failure.
    pub const PARKED: &'static str = "Parked";

    /// A failure of the given kind with a message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { kind: kind.into(), message: message.into(), details: None, cause: None }
    }

    /// A `TaskError` failure with the given message.
    pub fn task(message: impl Into<String>) -> Self {
        Failure::new(Self::TASK_ERROR, message)
    }

    /// Builds a failure from a Rust error, keeping its `source()` chain as causes.
    pub fn from_error(kind: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut failure = Failure::new(kind, err.to_string());
        if let Some(source) = err.source() {
            failure.cause = Some(Box::new(Failure::from_error("Cause", source)));
        }
        failure
    }

    /// Attaches a cause.
    #[must_use]
    pub fn with_cause(mut self, cause: Failure) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Attaches structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// This failure followed by its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &Failure> {
        std::iter::successors(Some(self), |f| f.cause.as_deref())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        for cause in self.chain().skip(1) {
            write!(f, ": caused by {}: {}", cause.kind, cause.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot write")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_source_chain_becomes_causes() {
        let outer = Outer(std::io::Error::other("disk on fire"));
        let failure = Failure::from_error("TaskError", &outer);
        assert_eq!(failure.chain().count(), 2);
        assert_eq!(failure.to_string(), "TaskError: cannot write: caused by Cause: disk on fire");
    }

    #[test]
    fn round_trips_through_json() {
        let f = Failure::task("boom").with_cause(Failure::new("Timeout", "slow"));
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), f);
    }
}
