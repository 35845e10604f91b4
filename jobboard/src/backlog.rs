//! [`Backlog`]: how many jobs wait and since when, as the board's indexes tell it
//! (never a scan of every job), and [`SessionStats`], the etcd session's lease
//! renewal counters. The conductor turns both into metrics; this crate has no
//! metrics dependency of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use flows::Millis;

/// The jobs that wait: queued (UNCLAIMED, claimable) and PARKED.
///
/// The oldest are by creation time (a job id's time, or the embedded board's
/// `created_at`), so a job nobody can run shows up as a growing age.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Claimable jobs (the claim queue's length).
    pub queued: u64,
    /// When the oldest claimable job was posted; `None` when the queue is empty.
    pub oldest_queued: Option<Millis>,
    /// PARKED jobs (released, waiting for a completion or a deadline).
    pub parked: u64,
    /// When the oldest PARKED job was posted; `None` when there is none.
    pub oldest_parked: Option<Millis>,
}

/// Counters of an etcd board's session lease, shared by every session made with
/// the same [`EtcdConfig`](crate::etcd::EtcdConfig) so they only ever grow.
#[derive(Debug, Default)]
pub struct SessionStats {
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
}

impl SessionStats {
    /// Lease renewals etcd answered.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// Renewal attempts that failed (no answer in time, stream closed, etcd unreachable).
    pub fn renewal_failures(&self) -> u64 {
        self.renewal_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn renewed(&self) {
        self.renewals.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn renewal_failed(&self) {
        self.renewal_failures.fetch_add(1, Ordering::Relaxed);
    }
}
