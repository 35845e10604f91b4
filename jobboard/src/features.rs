//! Features: what a job needs of the conductor that runs it, and what a conductor has.
//!
//! A job records the features it needs when it is posted ([`crate::NewJob::requires`]; the
//! posting conductor knows the flow), and every conductor registers the features it has
//! ([`crate::ConductorInfo::features`]). A claimer passes its features in its
//! [`crate::FlowFilter`], and the board never hands it a job needing one it lacks: in a
//! fleet of mixed releases (a rolling update) each job runs on a conductor that
//! understands it. A job posted by older code records nothing and any conductor claims it.
//!
//! Names are plain strings, so a newer release can add some that older ones do not know
//! (and therefore lack): `file-flow`, `kind:<name>` per task kind, `parking`,
//! `remote-workers`.

use std::collections::BTreeSet;

/// The job's flow is a flow file stored on the board (pinned to a version).
pub const FILE_FLOW: &str = "file-flow";
/// The job may park (a task waits for a completion, e.g. the `await` kind).
pub const PARKING: &str = "parking";
/// The job runs tasks on remote workers (the `remote` kind).
pub const REMOTE_WORKERS: &str = "remote-workers";

/// The feature of a task kind: `kind:<name>`.
pub fn kind(name: &str) -> String {
    format!("kind:{name}")
}

/// A set of feature names, sorted.
pub type Features = BTreeSet<String>;

/// The features `requires` names that `has` lacks, in order.
pub fn missing<'a>(requires: &'a [String], has: &Features) -> Vec<&'a str> {
    requires.iter().filter(|f| !has.contains(*f)).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_what_is_lacked_and_nothing_else() {
        let has: Features = [FILE_FLOW.to_owned(), kind("noop")].into_iter().collect();
        let requires = vec![FILE_FLOW.to_owned(), kind("noop"), PARKING.to_owned()];
        assert_eq!(missing(&requires, &has), vec![PARKING]);
        assert!(missing(&[], &has).is_empty(), "a job of older code needs nothing");
    }
}
