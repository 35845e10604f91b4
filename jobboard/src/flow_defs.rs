//! Flow definitions on the board: versioned, immutable, one of them current.
//!
//! A declared flow (a flow file) is stored on the board so that every
//! conductor of a fleet runs the same definition: each apply of new content
//! adds an immutable version, numbered from 1, and makes it current, in one
//! conditional write, so two concurrent applies both land (as two versions)
//! and neither is lost. Content is identified by its hash (the caller's
//! canonical form), so applying unchanged content writes nothing.
//!
//! What an apply does is decided here, once, for every backend ([`decide`]):
//! the backends only read the history and write the outcome atomically.

use serde::{Deserialize, Serialize};

/// One stored version of a flow definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowVersion {
    /// The flow's name (unique on the board).
    pub name: String,
    /// 1 for the first version applied, then 2, 3, ...
    pub version: u32,
    /// The hash of the definition's canonical form.
    pub hash: String,
    /// The definition as applied (a flow file's text).
    pub source: String,
    /// When it was applied, in ms since the Unix epoch.
    pub applied_ms: u64,
}

/// A definition to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlowVersion {
    /// The flow's name.
    pub name: String,
    /// The hash of its canonical form: equal hashes are the same definition.
    pub hash: String,
    /// The definition's text.
    pub source: String,
}

/// How an apply treats content the board has seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyRule {
    /// Content that is not the current version becomes a new current version,
    /// even if an older version had it (an operator's explicit apply).
    NewUnlessCurrent,
    /// As above, except that content equal to any older version changes
    /// nothing: the current version never moves back (conductors applying
    /// their `--flows-dir` at start during a rolling update).
    NeverBack,
}

/// What an apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The version holding the applied content.
    pub version: u32,
    /// Whether a new version was stored (false: the content was already there).
    pub created: bool,
    /// The current version after the apply.
    pub current: u32,
}

/// What an apply must do, given the flow's versions as `(version, hash)` and its current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to write: report this.
    Unchanged(Applied),
    /// Store this new version and make it current.
    Create(u32),
}

/// The one rule of applies, for every backend.
pub(crate) fn decide(history: &[(u32, &str)], current: Option<u32>, hash: &str, rule: ApplyRule) -> Decision {
    let current_hash = current.and_then(|c| history.iter().find(|(v, _)| *v == c)).map(|(_, h)| *h);
    let next = history.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
    match (current, current_hash) {
        (Some(current), Some(h)) if h == hash => {
            Decision::Unchanged(Applied { version: current, created: false, current })
        }
        (Some(current), _) if rule == ApplyRule::NeverBack => match history.iter().rev().find(|(_, h)| *h == hash) {
            Some((older, _)) => Decision::Unchanged(Applied { version: *older, created: false, current }),
            None => Decision::Create(next),
        },
        _ => Decision::Create(next),
    }
}

/// Checks a definition's name the same way on every backend: `[a-z0-9._-]`, 1 to 128 bytes.
pub(crate) fn check_name(name: &str) -> Result<(), crate::Error> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(crate::Error::InvalidInput(format!(
            "flow name {name:?} must be 1 to 128 characters of a-z, 0-9, '.', '_' and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: u32, created: bool, current: u32) -> Decision {
        if created {
            Decision::Create(version)
        } else {
            Decision::Unchanged(Applied { version, created, current })
        }
    }

    #[test]
    fn the_first_apply_creates_version_one() {
        assert_eq!(decide(&[], None, "a", ApplyRule::NeverBack), applied(1, true, 1));
        assert_eq!(decide(&[], None, "a", ApplyRule::NewUnlessCurrent), applied(1, true, 1));
    }

    #[test]
    fn the_current_content_again_changes_nothing() {
        let history = [(1, "a"), (2, "b")];
        for rule in [ApplyRule::NeverBack, ApplyRule::NewUnlessCurrent] {
            assert_eq!(decide(&history, Some(2), "b", rule), applied(2, false, 2));
        }
    }

    #[test]
    fn older_content_moves_current_back_only_when_asked() {
        let history = [(1, "a"), (2, "b")];
        assert_eq!(decide(&history, Some(2), "a", ApplyRule::NeverBack), applied(1, false, 2));
        assert_eq!(decide(&history, Some(2), "a", ApplyRule::NewUnlessCurrent), applied(3, true, 3));
    }

    #[test]
    fn new_content_takes_the_next_number() {
        let history = [(1, "a"), (2, "b"), (3, "c")];
        assert_eq!(decide(&history, Some(3), "d", ApplyRule::NeverBack), applied(4, true, 4));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("provision-cluster.v2_b").is_ok());
        for bad in ["", "Upper", "with space", "slash/y", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
