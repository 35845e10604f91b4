//! `LocalClaims`: what the claiming tasks of one board share, so that they do
//! not race each other (only other boards' tasks) and do not each re-read the queue.
//!
//! - `reserved`: entries a task of this board is trying right now; siblings skip them.
//! - `won`: jobs this board won, at the claim's revision; an entry read before that is stale.
//! - `shared`: the rest of the last range of the all-flows queue, as seen by a
//!   claimer's flow filter (only the entries it accepts, the first of that
//!   filter's claim order). While several tasks with the same filter claim at
//!   once they take from it instead of each ranging etcd again (a range reads
//!   every entry it returns). A lone claimer always ranges afresh, so a
//!   sequential caller sees exact priority order; under concurrency the order is
//!   approximate anyway. A queue entry put *before* the end of the shared range
//!   (higher priority, or an older job re-queued) throws the rest away.

use std::collections::{HashMap, HashSet, VecDeque};

use etcd_client::KeyValue;

use super::keys::id_at_end;
use crate::job::{FlowFilter, JobId};

#[derive(Debug, Default)]
pub(crate) struct LocalClaims {
    pub(crate) in_flight: usize,
    reserved: HashSet<JobId>,
    won: HashMap<JobId, i64>,
    shared: VecDeque<KeyValue>,
    /// The filter `shared` was read with: only claimers with this very filter take from it.
    shared_filter: FlowFilter,
}

impl LocalClaims {
    /// Marks the entry as taken by the calling task; `false` if a sibling has it or won it already.
    pub(crate) fn reserve(&mut self, id: JobId, entry_rev: i64) -> bool {
        if self.won.get(&id).is_some_and(|&won| won >= entry_rev) {
            return false;
        }
        self.reserved.insert(id)
    }

    pub(crate) fn release(&mut self, id: JobId, won_at: Option<i64>) {
        self.reserved.remove(&id);
        if let Some(rev) = won_at {
            // Only an optimisation: forgetting everything now and then is safe.
            if self.won.len() >= 4096 {
                self.won.clear();
            }
            self.won.insert(id, rev);
        }
    }

    /// Whether a task claiming with `filter` should take from the shared entries rather than range etcd.
    pub(crate) fn use_shared(&self, filter: &FlowFilter) -> bool {
        self.in_flight > 1 && !self.shared.is_empty() && self.shared_filter == *filter
    }

    /// Keeps the rest of a range of the all-flows queue (the entries `filter`
    /// accepts, in order) for sibling tasks. Never per-flow queue entries:
    /// `queue_put` compares them with all-flows queue keys.
    pub(crate) fn share(&mut self, filter: &FlowFilter, entries: Vec<KeyValue>) {
        self.shared = entries.into();
        self.shared_filter.clone_from(filter);
    }

    /// Takes and reserves the next shared entry nobody is on.
    pub(crate) fn take_shared(&mut self) -> Option<(JobId, KeyValue)> {
        while let Some(kv) = self.shared.pop_front() {
            let Some(id) = id_at_end(kv.key()) else { continue };
            if self.reserve(id, kv.mod_revision()) {
                return Some((id, kv));
            }
        }
        None
    }

    /// An all-flows queue entry was put: if it sorts before the end of the
    /// shared entries, they no longer are the head.
    pub(crate) fn queue_put(&mut self, key: &[u8]) {
        if self.shared.back().is_some_and(|last| key <= last.key()) {
            self.shared.clear();
        }
    }
}
