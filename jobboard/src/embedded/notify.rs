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
    /// Bumped after a flow definition is applied or deleted.
    flow_changes: watch::Sender<u64>,
    /// One channel per watched job; dropped once nobody listens.
    // std Mutex: every critical section is a map lookup, never across `.await`.
    jobs: Mutex<HashMap<JobId, watch::Sender<u64>>>,
    /// The live claims of this process, to fire their `cancelled` tokens.
    claims: Mutex<LiveClaims>,
    /// Per claimed job with parked tasks: bumped when one of them is settled.
    parks: Mutex<HashMap<JobId, watch::Sender<u64>>>,
}

/// Live claims, and cancel requests that found a CLAIMED job whose claim was
/// not registered yet (its transaction had committed, `claim_started` had not run).
#[derive(Debug, Default)]
struct LiveClaims {
    live: HashMap<JobId, LiveClaim>,
    /// Bounded; a stale entry only repeats a flag the job's row keeps anyway.
    early_cancels: std::collections::HashSet<JobId>,
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
        Notifier {
            claimable: watch::Sender::new(0),
            flow_changes: watch::Sender::new(0),
            jobs: Mutex::default(),
            claims: Mutex::default(),
            parks: Mutex::default(),
        }
    }

    /// A subscription to "a job may have become claimable".
    pub(crate) fn subscribe_claimable(&self) -> Wakeups {
        Wakeups::new(self.claimable.subscribe())
    }

    /// Wakes every waiting claimer.
    pub(crate) fn claimable(&self) {
        self.claimable.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A subscription to "a flow definition may have changed".
    pub(crate) fn subscribe_flow_changes(&self) -> Wakeups {
        Wakeups::new(self.flow_changes.subscribe())
    }

    /// Wakes every `flow_changes` subscriber.
    pub(crate) fn flow_changed(&self) {
        self.flow_changes.send_modify(|n| *n = n.wrapping_add(1));
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

    /// A subscription to "a parked task of this job was completed or timed out".
    pub(crate) fn subscribe_parks(&self, id: JobId) -> Wakeups {
        let mut parks = lock(&self.parks);
        parks.retain(|_, tx| tx.receiver_count() > 0);
        Wakeups::new(parks.entry(id).or_insert_with(|| watch::Sender::new(0)).subscribe())
    }

    /// Wakes the owner of a job one of whose parked tasks was settled.
    pub(crate) fn park_settled(&self, id: JobId) {
        if let Some(tx) = lock(&self.parks).get(&id) {
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
        self.claim_started_with(id, owner, token, cancel_requested, &cancelled);
        cancelled
    }

    /// As `claim_started`, with the `cancelled` token made beforehand (a pick's).
    pub(crate) fn claim_started_with(
        &self,
        id: JobId,
        owner: &str,
        token: FenceToken,
        cancel_requested: bool,
        cancelled: &CancellationToken,
    ) {
        if cancel_requested {
            cancelled.cancel();
        }
        let live = LiveClaim { owner: owner.to_owned(), token, cancelled: cancelled.clone() };
        let mut claims = lock(&self.claims);
        if claims.early_cancels.remove(&id) {
            cancelled.cancel();
        }
        claims.live.insert(id, live);
    }

    /// Forgets a claim that ended (consumed, abandoned, trashed).
    pub(crate) fn claim_ended(&self, id: JobId, token: FenceToken) {
        let mut claims = lock(&self.claims);
        if claims.live.get(&id).is_some_and(|c| c.token == token) {
            claims.live.remove(&id);
        }
    }

    /// Forgets every claim of an owner whose session ended.
    pub(crate) fn owner_released(&self, owner: &str) {
        lock(&self.claims).live.retain(|_, c| c.owner != owner);
    }

    /// Tells the current owner of a (CLAIMED) job that cancellation was requested,
    /// or, if its claim is not registered yet, the claim as it registers.
    pub(crate) fn cancel(&self, id: JobId) {
        let mut claims = lock(&self.claims);
        match claims.live.get(&id) {
            Some(live) => live.cancelled.cancel(),
            None => {
                if claims.early_cancels.len() >= 1024 {
                    claims.early_cancels.clear();
                }
                claims.early_cancels.insert(id);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map operation: a poisoned map is still consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim's transaction committed, then a cancel request came before the
    /// board registered the claim: the claim must still be told, as it registers.
    #[test]
    fn a_cancel_between_the_claim_commit_and_its_registration_reaches_the_claim() {
        let notify = Notifier::new();
        let id = JobId::from_u128(1);
        notify.cancel(id);
        let cancelled = notify.claim_started(id, "owner", 1, false);
        assert!(cancelled.is_cancelled(), "the early cancel request was lost");
        let later = notify.claim_started(JobId::from_u128(2), "owner", 1, false);
        assert!(!later.is_cancelled(), "another job's claim was cancelled");
    }
}
