//! Drain: stop claiming new jobs while finishing the ones held.
//!
//! Two ways in, one switch. Locally, whoever holds the conductor's
//! [`DrainHandle`] (the API of this process, `baton demo`, a test) flips it and
//! the claimer reacts at once; the registration task then writes the flag to
//! the board so `baton conductors` shows it. Remotely, an API call on *another*
//! conductor sets the flag on the board (`JobBoard::set_draining`); this
//! conductor notices it when the registration task re-reads the board: every
//! `--drain-check-interval` (default 5 s), and when the claimer is woken for
//! new work and the last read is older than a second, so a drained conductor
//! does not claim a job posted after the drain was seen by the board.
//! The board is the source of truth: a local change is written to it, and a
//! board value is applied locally unless a local change happened meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// The drain switch of one conductor. Cheap to clone; clones share the switch.
#[derive(Debug, Clone)]
pub struct DrainHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The current value; the claimer waits on it.
    draining: watch::Sender<bool>,
    /// Bumped on every local change, so a board read that started before the
    /// change cannot overwrite it with a stale value.
    generation: AtomicU64,
}

impl Default for DrainHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl DrainHandle {
    /// A switch that starts off (claiming).
    pub fn new() -> Self {
        DrainHandle { inner: Arc::new(Inner { draining: watch::channel(false).0, generation: AtomicU64::new(0) }) }
    }

    /// Whether the conductor is draining (claims nothing new).
    pub fn is_draining(&self) -> bool {
        *self.inner.draining.borrow()
    }

    /// Starts (`true`) or ends (`false`) draining. Takes effect in the claimer at
    /// once; the daemon then records it on the board.
    pub fn set(&self, draining: bool) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.draining.send_replace(draining);
    }

    /// Follows changes of the switch.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.draining.subscribe()
    }

    /// The local-change counter, read before a board read starts.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Applies the board's value, unless a local change happened since `seen_generation`.
    /// Returns whether the value changed.
    pub(crate) fn apply_from_board(&self, draining: bool, seen_generation: u64) -> bool {
        if self.generation() != seen_generation {
            return false;
        }
        self.inner.draining.send_if_modified(|current| {
            let changed = *current != draining;
            *current = draining;
            changed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_read_older_than_a_local_change_is_ignored() {
        let drain = DrainHandle::new();
        let seen = drain.generation();
        drain.set(true);
        assert!(!drain.apply_from_board(false, seen));
        assert!(drain.is_draining());
        assert!(drain.apply_from_board(false, drain.generation()));
        assert!(!drain.is_draining());
    }

    #[test]
    fn subscribers_see_changes() {
        let drain = DrainHandle::new();
        let mut rx = drain.subscribe();
        drain.clone().set(true);
        assert!(rx.has_changed().unwrap());
        assert!(*rx.borrow_and_update());
    }
}
