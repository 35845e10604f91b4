//! The features a job needs and a conductor has (`jobboard::features`), from flows and kinds.
//!
//! - **Needed** ([`required`]): computed at post from the flow the posting conductor
//!   resolved. A flow file needs `file-flow` and `kind:<k>` for every kind it uses
//!   (reverts included), plus `parking` if it uses `await` and `remote-workers` if it uses
//!   `remote`. A Rust flow needs nothing more: its name is the requirement, and claimers
//!   ask only for the Rust flows they have built in.
//! - **Had** ([`supported`]): `file-flow`, `parking`, `remote-workers` and `kind:<k>` for
//!   every kind `--task-kinds` allows; registered with the conductor and passed with every
//!   claim (`Catalog::filter`), so the board never hands out a job needing more.
//! - `BATON_TEST_WITHOUT_FEATURES` (comma-separated, not a documented setting) takes
//!   features away, so tests can run a conductor as an older release would be.

use flowfile::Kinds;
use jobboard::features::{self, Features, FILE_FLOW, PARKING, REMOTE_WORKERS};

use crate::catalog::Resolving;

/// The environment variable that takes features away (tests of mixed fleets).
pub const WITHOUT_FEATURES_ENV: &str = "BATON_TEST_WITHOUT_FEATURES";

/// Feature names from a comma-separated list.
pub fn names(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
}

/// What a job of this flow needs, sorted.
pub fn required(resolving: &Resolving) -> Vec<String> {
    let Resolving::File(parsed) = resolving else { return Vec::new() };
    let kinds = parsed.file.kinds_used();
    let mut needs: Features = kinds.iter().map(|k| features::kind(k)).collect();
    needs.insert(FILE_FLOW.to_owned());
    if kinds.contains("await") {
        needs.insert(PARKING.to_owned());
    }
    if kinds.contains("remote") {
        needs.insert(REMOTE_WORKERS.to_owned());
    }
    needs.into_iter().collect()
}

/// What a conductor allowing `kinds` has, less `without`.
pub fn supported(kinds: &Kinds, without: &[String]) -> Features {
    let mut has: Features = kinds.names().into_iter().map(features::kind).collect();
    has.extend([FILE_FLOW, PARKING, REMOTE_WORKERS].map(str::to_owned));
    has.retain(|f| !without.contains(f));
    has
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flowfile::FlowFile;

    use super::*;
    use crate::catalog::Parsed;

    fn resolving(source: &str) -> Resolving {
        let file = FlowFile::parse("f.yaml", source).expect("parses");
        let kinds = Arc::new(Kinds::all());
        Resolving::File(Arc::new(Parsed { factory: file.factory(kinds), file, missing: Vec::new() }))
    }

    #[test]
    fn a_flow_file_needs_its_kinds_and_what_they_imply() {
        let parked = "name: p\nflow:\n  linear:\n    - task: wait\n      kind: await\n      with: {timeout: 1h}\n    \
                      - task: done\n      kind: noop\n";
        assert_eq!(required(&resolving(parked)), ["file-flow", "kind:await", "kind:noop", "parking"]);
        let remote = "name: r\nflow:\n  linear:\n    - task: far\n      kind: remote\n      with: {task: echo}\n";
        assert_eq!(required(&resolving(remote)), ["file-flow", "kind:remote", "remote-workers"]);
    }

    #[test]
    fn a_conductor_has_its_kinds_less_what_is_taken_away() {
        let kinds = Kinds::allowing(&["noop", "await"]).expect("kinds");
        let has = supported(&kinds, &["parking".to_owned()]);
        let has: Vec<&str> = has.iter().map(String::as_str).collect();
        assert_eq!(has, ["file-flow", "kind:await", "kind:noop", "remote-workers"]);
    }
}
