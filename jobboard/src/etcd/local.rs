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
//!   (higher priority, or an older job re-queued) throws the rest away; an entry
//!   deleted (claimed, by any board) leaves it, so nobody here races for it.
//! - `contended_until`: a claim txn of this board failed lately (the job was
//!   owned or changed since read: another board's claim, or rarely a cancel or a
//!   re-queue). Every board reads the same head of the queue, so if each tried it
//!   in order they would all collide on the same jobs, a wasted Txn per loser;
//!   while contended, tasks pick at random among the entries instead. A lone
//!   claimer whose claims never fail keeps exact priority order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use etcd_client::KeyValue;
use rand::Rng;

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
    contended_until: Option<Instant>,
}

/// How long one lost claim race makes a board pick candidates at random.
const CONTENDED_FOR: Duration = Duration::from_secs(1);

impl LocalClaims {
    /// Marks the entry as taken by the calling task; `false` if a sibling has it or won it already.
    pub(crate) fn reserve(&mut self, id: JobId, entry_rev: i64) -> bool {
        if self.won.get(&id).is_some_and(|&won| won >= entry_rev) {
            return false;
        }
        self.reserved.insert(id)
    }

    /// Entries reserved now: by claims being tried, and by picks not yet written.
    pub(crate) fn reservations(&self) -> usize {
        self.reserved.len()
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

    /// A claim txn failed: the job was owned or changed since it was read.
    pub(crate) fn lost_race(&mut self) {
        self.contended_until = Some(Instant::now() + CONTENDED_FOR);
    }

    /// Whether a claim txn of this board failed within the last [`CONTENDED_FOR`].
    pub(crate) fn contended(&self) -> bool {
        self.contended_until.is_some_and(|until| Instant::now() < until)
    }

    /// Which of `len` candidates (in claim order) to try next: the first, or while
    /// other boards take the same ones, any.
    pub(crate) fn pick(&self, len: usize) -> usize {
        if self.contended() && len > 1 {
            rand::rng().random_range(0..len)
        } else {
            0
        }
    }

    /// Takes and reserves the next shared entry nobody is on.
    pub(crate) fn take_shared(&mut self) -> Option<(JobId, KeyValue)> {
        // Removing from the middle keeps the rest in key order (`queue_put` relies on it).
        while let Some(kv) = self.shared.remove(self.pick(self.shared.len())) {
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

    /// An all-flows queue entry was deleted: its job is claimed (or finished), so
    /// no task here should try it. Only an optimisation: a delete seen after the
    /// same key was put again (an abandon) drops a live entry, which the next
    /// range of the queue finds anyway.
    pub(crate) fn queue_delete(&mut self, key: &[u8]) {
        self.shared.retain(|kv| kv.key() != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_that_never_lost_a_race_claims_in_order() {
        let local = LocalClaims::default();
        assert!((0..200).all(|_| local.pick(16) == 0));
    }

    #[test]
    fn after_a_lost_race_claims_spread_over_the_candidates() {
        let mut local = LocalClaims::default();
        local.lost_race();
        let picks: HashSet<usize> = (0..200).map(|_| local.pick(16)).collect();
        assert!(picks.iter().all(|&pick| pick < 16), "{picks:?}");
        // 200 draws of 16: all on a few indexes would mean no spreading (odds ~1e-150).
        assert!(picks.len() > 4, "{picks:?}");
        assert_eq!(local.pick(1), 0, "a single candidate is the only pick");
    }
}
