//! The claim loop: take a free `--max-jobs` slot, claim the best job this
//! conductor can run, hand it to the job runner; when there is none, sleep
//! until the board says a job may have become claimable.
//!
//! Nothing polls: the loop waits on the semaphore, on the board's `claimable`
//! wake-ups and on the drain switch. It subscribes to wake-ups before its
//! first look, so a job posted between a look and the wait still wakes it.
//! Board errors back off exponentially (100 ms doubling to 5 s), and end the
//! wait as soon as an unavailable board answers again.
//!
//! A job is *picked* (`JobBoard::pick_next`: chosen, nothing written) and
//! handed to the job runner with its slot; the claim is made by the job's
//! first logbook write, in the same transaction (`jobboard::pick`). A pick
//! that finds the job changed meanwhile writes nothing and runs nothing; the
//! slot frees and the loop picks again.
//!
//! Several copies of the loop run at once (up to [`CLAIM_LOOPS`], never more
//! than `--max-jobs`): a pick is a round trip to etcd (a read of the queue
//! around its head, and of the spec when the queue entry does not carry it),
//! so one loop alone caps a conductor at one pick per round trip,
//! however many slots are free. The board is built for this: loops of one board share
//! the queue entries one of them read instead of racing each other for them.

use std::sync::Arc;
use std::time::Duration;

use jobboard::{Availability, JobBoard};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::job_runner::JobRunner;
use super::registration::Registration;
use crate::catalog::Catalog;
use crate::drain::DrainHandle;

/// First delay after a failed claim.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest delay between failed claims.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A wake-up re-reads the drain flag from the board if the last read is older than this.
const DRAIN_FRESHNESS: Duration = Duration::from_secs(1);
/// Claim loops per conductor.
pub(crate) const CLAIM_LOOPS: usize = 4;

/// Claims jobs until stopped.
#[derive(Debug)]
pub(crate) struct Claimer {
    pub(crate) board: Arc<dyn JobBoard>,
    /// The flows this conductor runs: what it claims, and a wake-up when they change.
    pub(crate) catalog: Arc<Catalog>,
    /// One permit per job that may run at once.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) drain: DrainHandle,
    pub(crate) registration: Arc<Registration>,
    pub(crate) runner: Arc<JobRunner>,
    /// Job tasks are spawned here, so shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    /// Stop claiming (shutdown or session lost).
    pub(crate) stop: CancellationToken,
}

impl Claimer {
    /// Runs `loops` claim loops (at least one); returns when all have ended.
    pub(crate) async fn run(self, loops: usize) {
        let this = Arc::new(self);
        let loops = (0..loops.max(1)).map(|_| this.clone().claim_loop());
        futures::future::join_all(loops).await;
    }

    /// One loop. Returns when `stop` fires or the board session is closed.
    async fn claim_loop(self: Arc<Self>) {
        let mut wakeups = self.board.claimable();
        let mut drain = self.drain.subscribe();
        // A new flow's jobs may be waiting already: a change of the flows is a wake-up.
        let mut flows = self.catalog.changes();
        let mut backoff = BACKOFF_START;
        loop {
            let permit = tokio::select! {
                _ = self.stop.cancelled() => break,
                permit = self.slots.clone().acquire_owned() => permit.expect("the slot semaphore is never closed"),
            };
            if *drain.borrow_and_update() {
                // Not holding a slot while drained: held-job counts (logs, registration) stay true.
                drop(permit);
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    changed = drain.changed() => if changed.is_err() { break },
                }
                continue;
            }
            let filter = self.catalog.filter();
            if filter.flows.is_empty() {
                // No flow runs here (yet): an empty filter would mean "any flow" to the board.
                drop(permit);
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    _ = flows.changed() => {}
                }
                continue;
            }
            // A pick: the claim is folded into the job's first logbook write (`jobboard::pick`).
            match self.board.pick_next(&filter).await {
                Ok(Some(pick)) => {
                    backoff = BACKOFF_START;
                    if self.stop.is_cancelled() {
                        // Shutdown began while picking: nothing is claimed yet, so nothing to give back.
                        drop(pick);
                        break;
                    }
                    self.tracker.spawn(self.runner.clone().run(pick, permit));
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        woken = wakeups.changed() => {
                            if woken.is_err() {
                                tracing::debug!("board wake-ups closed; claim loop ends");
                                break;
                            }
                            self.registration.refresh_if_stale(DRAIN_FRESHNESS).await;
                        }
                        _ = drain.changed() => {}
                        _ = flows.changed() => {}
                    }
                }
                Err(jobboard::Error::Closed) => {
                    tracing::debug!("board session closed; claim loop ends");
                    break;
                }
                Err(error) => {
                    drop(permit);
                    tracing::warn!(%error, retry_in = ?backoff, "claim failed");
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                        () = self.board_recovered() => backoff = BACKOFF_START,
                    }
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                }
            }
        }
    }

    /// Resolves when a board that is unavailable now answers again (never, if it is
    /// available now): a returning etcd is claimed from at once, not after the backoff.
    async fn board_recovered(&self) {
        let mut availability = self.board.availability();
        if *availability.borrow_and_update() == Availability::Available {
            return std::future::pending().await;
        }
        if availability.wait_for(|now| *now == Availability::Available).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
