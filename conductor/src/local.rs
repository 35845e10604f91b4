//! `LocalStatus`: what a conductor knows of itself, from its own memory.
//!
//! The board says who owns a job; this says what the owner actually runs.
//! `GetStatus` serves it (so it answers while the board is unreachable), and
//! the invariant "no job stays claimed by a conductor that is not running it"
//! is checked by comparing the two.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use jobboard::{FenceToken, JobId};

use crate::drain::DrainHandle;
use crate::metrics::Metrics;

/// A job this conductor runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    /// The job's flow.
    pub flow: String,
    /// The fencing token of the claim it runs under.
    pub token: FenceToken,
    /// When it was claimed, in ms since the epoch.
    pub claimed_ms: u64,
}

/// One conductor process's own view. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct LocalStatus {
    /// The conductor's name.
    pub name: String,
    /// When the process started, in ms since the epoch.
    pub started_ms: u64,
    /// Its drain switch.
    pub drain: DrainHandle,
    /// What `/metrics` serves (see [`crate::metrics`]).
    pub metrics: Arc<Metrics>,
    sessions_started: AtomicU32,
    sessions_lost: AtomicU32,
    running: Mutex<BTreeMap<JobId, RunningJob>>,
}

impl LocalStatus {
    /// A conductor that has started no session yet.
    pub fn new(name: impl Into<String>, drain: DrainHandle) -> Arc<Self> {
        Arc::new(LocalStatus {
            name: name.into(),
            started_ms: flows::now_millis(),
            drain,
            metrics: Arc::default(),
            sessions_started: AtomicU32::new(0),
            sessions_lost: AtomicU32::new(0),
            running: Mutex::default(),
        })
    }

    /// A board session began.
    pub fn session_started(&self) {
        self.sessions_started.fetch_add(1, Ordering::Relaxed);
    }

    /// A board session was lost (not closed by us).
    pub fn session_lost(&self) {
        self.sessions_lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions started and lost so far.
    pub fn sessions(&self) -> (u32, u32) {
        (self.sessions_started.load(Ordering::Relaxed), self.sessions_lost.load(Ordering::Relaxed))
    }

    /// Records that this conductor runs `id` until the returned guard is dropped.
    pub fn running(self: &Arc<Self>, id: JobId, job: RunningJob) -> RunningGuard {
        self.with_running(|running| running.insert(id, job));
        RunningGuard { status: self.clone(), id }
    }

    /// Notes the token of the claim job `id` now runs under (known once its first write claimed it).
    pub fn claimed(&self, id: JobId, token: FenceToken) {
        self.with_running(|running| running.get_mut(&id).map(|job| job.token = token));
    }

    /// The jobs it runs now, by id.
    pub fn running_jobs(&self) -> Vec<(JobId, RunningJob)> {
        self.with_running(|running| running.iter().map(|(id, job)| (*id, job.clone())).collect())
    }

    fn with_running<R>(&self, f: impl FnOnce(&mut BTreeMap<JobId, RunningJob>) -> R) -> R {
        // No await while held; single inserts and removes leave it consistent.
        let mut guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// Removes its job from the running set when the job runner is done with it.
#[derive(Debug)]
pub struct RunningGuard {
    status: Arc<LocalStatus>,
    id: JobId,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.status.with_running(|running| running.remove(&self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_listed_while_its_guard_lives() {
        let status = LocalStatus::new("c1", DrainHandle::new());
        let id = uuid::Uuid::new_v4();
        let guard = status.running(id, RunningJob { flow: "chain".into(), token: 3, claimed_ms: 1 });
        assert_eq!(status.running_jobs().len(), 1);
        assert_eq!(status.running_jobs()[0].0, id);
        drop(guard);
        assert!(status.running_jobs().is_empty());
    }

    #[test]
    fn sessions_are_counted() {
        let status = LocalStatus::new("c1", DrainHandle::new());
        status.session_started();
        status.session_lost();
        status.session_started();
        assert_eq!(status.sessions(), (2, 1));
    }
}
