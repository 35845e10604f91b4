//! `LiveIndex`: the open-job index keys the board watch has seen (`P m/held/<id>`,
//! `P m/owner/<id>`), and the revision through which it has applied every event, so that
//! a CLAIMED or UNCLAIMED listing (`list_live`) can take its candidates from memory
//! instead of ranging those prefixes.
//!
//! Why: every claim puts a key under `owner/` and `held/` and deletes one under `queue/`
//! (and `fqueue/`), and its end deletes the first two; etcd 3.4 walks the deleted keys of a
//! range in its index (under the index lock, blocking claims meanwhile) before it applies
//! the limit, until a compaction. With many finished jobs since the last compaction, those
//! ranges cost tens of milliseconds; these sets cost the open jobs only.
//!
//! The sets are listed whole when the watch starts or re-lists after a compaction
//! (`watch::recover`, at one revision) and then follow the watch's events. `applied` is
//! the revision through which every event under `P m/` has been applied: the re-listing's
//! revision, then each event's mod revision (a watcher's events come in revision order, a
//! txn's together). Never a response header's revision: during a watch's catch-up etcd
//! sends a batch cut at 1,000 revisions with the current revision in its header, and
//! before 3.4.25 it may send a requested progress notification ahead of events still
//! queued (etcd#15220); so a listing proves the watch is current with a write of its own
//! (`list_live`). `applied` is `None` while the sets are not listed (before the first
//! listing, and from a compaction that cut the watch until the re-listing).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch as tokio_watch;

use super::keys::Watched;
use crate::job::JobId;

/// The keys of `P m/held/` and `P m/owner/` as of the watch's last applied revision.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct OpenSets {
    held: BTreeSet<JobId>,
    owners: BTreeSet<JobId>,
}

impl OpenSets {
    /// Applies one watched put or delete; other keys are not this index's.
    pub(crate) fn apply(&mut self, watched: Option<Watched>, put: bool) {
        let (set, id) = match watched {
            Some(Watched::Held(id)) => (&mut self.held, id),
            Some(Watched::Owner(id)) => (&mut self.owners, id),
            _ => return,
        };
        if put {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// The jobs with a `held` key, after `after`, ascending.
    pub(crate) fn held_after(&self, after: Option<JobId>) -> impl Iterator<Item = JobId> + '_ {
        self.held.range((start(after), Bound::Unbounded)).copied()
    }

    /// The jobs with an owner key, after `after`, ascending.
    pub(crate) fn owners_after(&self, after: Option<JobId>) -> impl Iterator<Item = JobId> + '_ {
        self.owners.range((start(after), Bound::Unbounded)).copied()
    }

    pub(crate) fn is_owned(&self, id: &JobId) -> bool {
        self.owners.contains(id)
    }
}

fn start(after: Option<JobId>) -> Bound<JobId> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

/// The sets and the revision they are complete through, shared by the watch and listings.
#[derive(Debug)]
pub(crate) struct LiveIndex {
    sets: Mutex<OpenSets>,
    applied: tokio_watch::Sender<Option<i64>>,
}

impl Default for LiveIndex {
    fn default() -> Self {
        LiveIndex { sets: Mutex::default(), applied: tokio_watch::channel(None).0 }
    }
}

impl LiveIndex {
    /// Applies one event of the board watch (see [`OpenSets::apply`]).
    pub(crate) fn note(&self, watched: Option<Watched>, put: bool) {
        if matches!(watched, Some(Watched::Held(_) | Watched::Owner(_))) {
            self.with_sets(|sets| sets.apply(watched, put));
        }
    }

    /// Every event through `revision` has been applied (call after applying them).
    pub(crate) fn applied_through(&self, revision: i64) {
        self.applied.send_if_modified(|applied| match applied {
            Some(through) if revision > *through => {
                *through = revision;
                true
            }
            _ => false,
        });
    }

    /// The watch lost events (compaction): the sets are not to be read until [`Self::restart`].
    pub(crate) fn invalidate(&self) {
        self.applied.send_replace(None);
    }

    /// Replaces the sets with a listing's, taken at `revision`.
    pub(crate) fn restart(
        &self,
        held: impl IntoIterator<Item = JobId>,
        owners: impl IntoIterator<Item = JobId>,
        revision: i64,
    ) {
        let listed = OpenSets { held: held.into_iter().collect(), owners: owners.into_iter().collect() };
        self.with_sets(|sets| *sets = listed);
        self.applied.send_replace(Some(revision));
    }

    /// The revision through which the sets are complete; `None` while they are not listed.
    pub(crate) fn applied(&self) -> Option<i64> {
        *self.applied.borrow()
    }

    /// Waits, at most `patience`, until every event through `revision` is applied.
    pub(crate) async fn wait_applied(&self, revision: i64, patience: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        let reached = applied.wait_for(|applied| applied.is_some_and(|through| through >= revision));
        let reached = matches!(tokio::time::timeout(patience, reached).await, Ok(Ok(_)));
        reached
    }

    /// Reads the sets (no await inside).
    pub(crate) fn with_sets<R>(&self, f: impl FnOnce(&mut OpenSets) -> R) -> R {
        // A poisoned lock still holds whole sets: every update is one insert or remove, or a swap.
        let mut guard = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> JobId {
        JobId::from_u128(n)
    }

    #[test]
    fn sets_follow_held_and_owner_puts_and_deletes_only() {
        let mut sets = OpenSets::default();
        for n in [3, 1, 2] {
            sets.apply(Some(Watched::Held(id(n))), true);
            sets.apply(Some(Watched::Owner(id(n))), true);
        }
        sets.apply(Some(Watched::State(id(9))), true);
        sets.apply(Some(Watched::Queue), true);
        sets.apply(None, true);
        // Released by a lease expiry: the owner key goes, the held key stays until re-queued.
        sets.apply(Some(Watched::Owner(id(2))), false);
        assert_eq!(sets.held_after(None).collect::<Vec<_>>(), vec![id(1), id(2), id(3)]);
        assert_eq!(sets.owners_after(None).collect::<Vec<_>>(), vec![id(1), id(3)]);
        assert!(!sets.is_owned(&id(2)) && sets.is_owned(&id(3)));
        assert_eq!(sets.held_after(Some(id(1))).collect::<Vec<_>>(), vec![id(2), id(3)], "after is excluded");
        assert_eq!(sets.owners_after(Some(id(3))).count(), 0);
        sets.apply(Some(Watched::Held(id(2))), false);
        sets.apply(Some(Watched::Held(id(7))), false);
        assert_eq!(sets.held_after(None).collect::<Vec<_>>(), vec![id(1), id(3)]);
    }

    #[tokio::test]
    async fn the_applied_revision_moves_up_only_while_listed() {
        let index = LiveIndex::default();
        index.note(Some(Watched::Owner(id(1))), true);
        index.applied_through(5);
        assert_eq!(index.applied(), None, "not listed yet: no revision");
        assert!(!index.wait_applied(1, Duration::from_millis(10)).await);

        index.restart([id(1)], [id(1), id(2)], 10);
        assert_eq!(index.applied(), Some(10));
        assert_eq!(index.with_sets(|s| s.owners_after(None).collect::<Vec<_>>()), vec![id(1), id(2)]);
        index.applied_through(8);
        assert_eq!(index.applied(), Some(10), "never back");
        assert!(index.wait_applied(10, Duration::from_millis(10)).await);
        assert!(!index.wait_applied(11, Duration::from_millis(10)).await, "not there yet");

        let waiting = index.wait_applied(12, Duration::from_secs(10));
        let applying = async {
            tokio::task::yield_now().await;
            index.note(Some(Watched::Held(id(2))), true);
            index.applied_through(12);
        };
        let (reached, ()) = tokio::join!(waiting, applying);
        assert!(reached, "a waiter sees the revision applied meanwhile");

        index.invalidate();
        assert_eq!(index.applied(), None);
        index.applied_through(20);
        assert_eq!(index.applied(), None, "events after a gap do not make the sets whole");
        index.restart([], [id(4)], 30);
        assert_eq!(
            index.with_sets(|s| (s.held_after(None).count(), s.owners_after(None).collect::<Vec<_>>())),
            (0, vec![id(4)])
        );
    }
}
