//! The live conductors as the API last read them, for the post warning "no live
//! conductor can run this flow".
//!
//! Conductors register what they can run (`ConductorInfo::task_kinds`,
//! `rust_flows`, `features`: a job needing a feature no live conductor has waits, during a
//! rolling update, for a conductor of the release that has it). A post is never refused for lack of a conductor (one may start
//! later); the reply carries a warning instead. A Rust flow this conductor lacks but
//! another live one has is accepted too ([`Fleet::rust_owners`]). The set is read at most once per
//! [`FRESH_FOR`], shared by concurrent posts, so posting costs no board request
//! beyond the post itself while the cache is fresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobboard::{ConductorInfo, Features, JobBoard};
use tokio::sync::Mutex;

use crate::catalog::Resolving;

/// How long a read of the conductor set is used for warnings.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// The cached conductor set.
#[derive(Debug, Default)]
pub struct Fleet {
    /// When it was read, and what. A tokio mutex, held across the read so that
    /// concurrent posts share one read.
    cached: Mutex<Option<(Instant, Arc<Vec<ConductorInfo>>)>>,
}

impl Fleet {
    /// The live conductors, from the cache while it is fresh.
    async fn conductors(&self, board: &dyn JobBoard) -> Result<Arc<Vec<ConductorInfo>>, jobboard::Error> {
        let mut cached = self.cached.lock().await;
        if let Some((at, list)) = cached.as_ref().filter(|(at, _)| at.elapsed() < FRESH_FOR) {
            tracing::trace!(age = ?at.elapsed(), "conductor set from cache");
            return Ok(list.clone());
        }
        let list = Arc::new(board.conductors().await?);
        *cached = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// Why a job of `flow` may wait: empty when some live conductor can run it (or
    /// the conductor set cannot be read now: a warning is advice, never a refusal).
    pub async fn warnings(&self, board: &dyn JobBoard, flow: &str, resolving: &Resolving) -> Vec<String> {
        let conductors = match self.conductors(board).await {
            Ok(list) => list,
            Err(error) => {
                tracing::debug!(%error, "cannot read the conductor set for post warnings");
                return Vec::new();
            }
        };
        let wait = "the job waits on the board until one does";
        match resolving {
            Resolving::Rust(..) => {
                // A conductor registered before conductors told what they run is given the benefit of the doubt.
                let runs = |c: &ConductorInfo| c.rust_flows.iter().any(|f| f == flow) || knows_nothing(c);
                if conductors.iter().any(runs) {
                    return Vec::new();
                }
                vec![format!("no live conductor has the Rust flow {flow:?} built in; {wait}")]
            }
            Resolving::File(parsed) => {
                let kinds = parsed.file.kinds_used();
                let runs = |c: &ConductorInfo| {
                    knows_nothing(c)
                        || (!c.rust_flows.iter().any(|f| f == flow) && kinds.iter().all(|k| c.task_kinds.contains(k)))
                };
                if !conductors.iter().any(runs) {
                    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
                    return vec![format!(
                        "no live conductor allows every task kind flow {flow:?} uses ({}; see --task-kinds); {wait}",
                        kinds.join(", ")
                    )];
                }
                let requires = crate::features::required(resolving);
                let has_all = |c: &ConductorInfo| {
                    // Registered before conductors told their features: it claims whatever it is given.
                    c.features.is_empty()
                        || c.features
                            .iter()
                            .cloned()
                            .collect::<Features>()
                            .is_superset(&requires.iter().cloned().collect())
                };
                if conductors.iter().filter(|c| runs(c)).any(has_all) {
                    return Vec::new();
                }
                vec![format!(
                    "no live conductor has every feature the job needs ({}; an older release lacks some): {wait}",
                    requires.join(", ")
                )]
            }
        }
    }

    /// The live conductors that have `flow` built in (Rust flows), by name; empty if
    /// none, or if the conductor set cannot be read now.
    pub async fn rust_owners(&self, board: &dyn JobBoard, flow: &str) -> Vec<String> {
        match self.conductors(board).await {
            Ok(list) => {
                list.iter().filter(|c| c.rust_flows.iter().any(|f| f == flow)).map(|c| c.name.clone()).collect()
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the conductor set");
                Vec::new()
            }
        }
    }
}

/// A conductor that registered nothing of what it runs (older than this field).
fn knows_nothing(c: &ConductorInfo) -> bool {
    c.task_kinds.is_empty() && c.rust_flows.is_empty()
}
