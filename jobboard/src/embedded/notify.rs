//! `Notifier`: in-process wake-ups of the embedded board, and its live claims' tokens.
//!
//! The board has one process, so there is nothing to watch on disk: every
//! write that can make a job claimable or change a job bumps a `watch`
//! channel right after its transaction commits. No polling anywhere.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::board::Wakeups;
use crate::claim::FenceToken;
use crate::job::JobId;

/// Wake-up channels and the cancellation tokens of live claims.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// Bumped when a job may have become claimable.
    claimable: watch::Sender<u64>,
    /// One channel per watched job; dropped once nobody listens.
    // std Mutex: every critical section is a map lookup, never across `.await`.
    jobs: Mutex<HashMap<JobId, watch::Sender<u64>>>,
    /// The live claims of this process, to fire their `cancelled` tokens.
    claims: Mutex<HashMap<JobId, LiveClaim>>,
}

/// What the notifier keeps of one live claim.
#[derive(Debug)]
struct LiveClaim {
    owner: String,
    token: FenceToken,
    cancelled: CancellationToken,
}

impl Notifier {
    /// A notifier nobody listens to yet.
    pub(crate) fn new() -> Self {
        Notifier { claimable: watch::Sender::new(0), jobs: Mutex::default(), claims: Mutex::default() }
    }

    /// A subscription to "a job may have become claimable".
    pub(crate) fn subscribe_claimable(&self) -> Wakeups {
        Wakeups::new(self.claimable.subscribe())
    }

    /// Wakes every waiting claimer.
    pub(crate) fn claimable(&self) {
        self.claimable.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A subscription to changes of one job (state or logbook).
    pub(crate) fn subscribe_job(&self, id: JobId) -> Wakeups {
        let mut jobs = lock(&self.jobs);
        // Forget channels whose subscribers are all gone, so the map stays small.
        jobs.retain(|_, tx| tx.receiver_count() > 0);
        Wakeups::new(jobs.entry(id).or_insert_with(|| watch::Sender::new(0)).subscribe())
    }

    /// Wakes the watchers of one job.
    pub(crate) fn job_changed(&self, id: JobId) {
        let jobs = lock(&self.jobs);
        if let Some(tx) = jobs.get(&id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Records a new claim; returns its `cancelled` token (already fired if
    /// cancellation was requested before this claim).
    pub(crate) fn claim_started(
        &self,
        id: JobId,
        owner: &str,
        token: FenceToken,
        cancel_requested: bool,
    ) -> CancellationToken {
        let cancelled = CancellationToken::new();
        if cancel_requested {
            cancelled.cancel();
        }
        let live = LiveClaim { owner: owner.to_owned(), token, cancelled: cancelled.clone() };
        lock(&self.claims).insert(id, live);
        cancelled
    }

    /// Forgets a claim that ended (consumed, abandoned, trashed).
    pub(crate) fn claim_ended(&self, id: JobId, token: FenceToken) {
        let mut claims = lock(&self.claims);
        if claims.get(&id).is_some_and(|c| c.token == token) {
            claims.remove(&id);
        }
    }

    /// Forgets every claim of an owner whose session ended.
    pub(crate) fn owner_released(&self, owner: &str) {
        lock(&self.claims).retain(|_, c| c.owner != owner);
    }

    /// Tells the current owner of a job that cancellation was requested.
    pub(crate) fn cancel(&self, id: JobId) {
        if let Some(live) = lock(&self.claims).get(&id) {
            live.cancelled.cancel();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map operation: a poisoned map is still consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
