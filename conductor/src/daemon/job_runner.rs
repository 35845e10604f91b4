//! The job runner: one picked job, from its flow factory to consume or abandon.
//!
//! The flow is built from the catalog (a Rust flow, or the flow file version the
//! job is pinned to, whatever is current now) and run by the flows engine on the
//! job's logbook (`Pick::storage`, book id = flow id = job id: the run's first
//! logbook write claims the job, in one board write; its last one also
//! consumes it, in one board write), so a job abandoned or lost part-way
//! resumes from what was recorded. Until the first write nothing is claimed:
//! a job that changed since the pick (claimed elsewhere, cancelled) fails that
//! write with nothing written and nothing run, and a run that stops before it
//! leaves the job queued. Completions of
//! parked tasks the board holds are handed to the engine before it runs, and
//! while it runs (`Claim::deliveries`, a watch). How it ends:
//!
//! | what happened | board action |
//! |---|---|
//! | flow SUCCESS / REVERTED / FAILURE | consume with that outcome (done by the engine's last logbook write) |
//! | flow PARKED (every runnable task waits for a completion) | park: released, not claimable, no slot held |
//! | a completion or cancel arrived while parking | the park is refused: fold it in and run on |
//! | cancel requested, flow reverted | consume CANCELLED |
//! | the job's deadline passed (its timer here, or the fleet's cancel) | as a cancel; the failure says DEADLINE_EXCEEDED |
//! | an operator's suspend, flow SUSPENDED (or PARKED) | halt: released SUSPENDED, not claimable until resumed |
//! | claimed after an operator's retry, flow FAILURE in the logbook | the failed reverts run again, then consume |
//! | graceful shutdown, flow SUSPENDED | abandon (another conductor resumes at once) |
//! | grace period over | engine dropped, then abandon (running tasks re-run: at-least-once) |
//! | board briefly unreachable | nothing: the claim's writes wait and land when it answers |
//! | claim lost (lease expired, session fenced) | engine dropped at once; nothing written (it would be fenced anyway) |
//! | logbook storage failed for good | abandon (retried elsewhere; quarantine stops a loop) |
//! | the job changed between pick and first write | nothing: nothing was written or run |
//! | flow cannot be built or compiled, engine bug | trash with the reason (retrying cannot help; claimed first if not yet) |
//! | pinned version uses a kind this conductor does not allow (a job of older code: newer jobs require `kind:<k>` and are never claimed here) | trash naming flow, version and kinds |
//! | pinned version cannot be read (board error) | give the pick up (still queued; retried) |

use std::sync::Arc;
use std::time::Instant;

use flows::{Engine, FlowState, LoggingListener, RunOutcome, StorageError};
use jobboard::{Claim, JobBoard, Outcome, Parking, Pick};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::catalog::Catalog;
use crate::local::{LocalStatus, RunningJob};
use crate::metrics::tasks::TaskListener;
use crate::workers::WorkerHub;

/// The tokens that stop running jobs; both are children of the daemon's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stops {
    /// Graceful shutdown: suspend the flow (running tasks finish), then abandon.
    pub(crate) suspend: CancellationToken,
    /// Hard stop: drop the engine now (grace over, or the session is lost).
    pub(crate) abort: CancellationToken,
}

/// What every job shares.
#[derive(Debug)]
pub(crate) struct JobRunner {
    /// Builds each job's flow: a Rust flow, or the file flow version it is pinned to.
    pub(crate) catalog: Arc<Catalog>,
    /// Where a pinned version not met before is read.
    pub(crate) board: Arc<dyn JobBoard>,
    /// Remote workers: a job cancel cancels the job's running remote tasks.
    pub(crate) workers: WorkerHub,
    /// Tasks of one job run at once.
    pub(crate) concurrency: usize,
    pub(crate) stops: Stops,
    /// Where the jobs this conductor runs are listed (`GetStatus`).
    pub(crate) local: Arc<LocalStatus>,
}

/// How the engine part of a job ended.
enum Ended {
    /// The engine returned.
    Ran(Result<RunOutcome, flows::Error>),
    /// The claim was lost; the engine was dropped.
    Lost,
    /// The hard stop fired; the engine was dropped.
    Aborted,
    /// The job's deadline passed: the run was dropped (its running tasks stopped) and
    /// runs again, cancelled, to revert what it did.
    Expired,
}

impl JobRunner {
    /// Runs one picked job in its own span; the permit (a `--max-jobs` slot) is held until it ends.
    pub(crate) async fn run(self: Arc<Self>, pick: Pick, permit: OwnedSemaphorePermit) {
        let job = pick.job();
        let span = tracing::info_span!("job", job_id = %job.id, flow = %job.flow, claims = job.claims);
        // Its token is known once the claim lands, with the engine's first logbook write.
        let running = RunningJob { flow: job.flow.clone(), token: 0, claimed_ms: flows::now_millis() };
        let listed = self.local.running(job.id, running);
        let (local, id) = (self.local.clone(), job.id);
        let pick = pick.when_claimed(move |claim| local.claimed(id, claim.token()));
        self.run_job(pick).instrument(span).await;
        drop(listed);
        drop(permit);
    }

    async fn run_job(&self, pick: Pick) {
        let started = Instant::now();
        let job = pick.job().clone();
        tracing::info!(resumed = job.claims > 1, "job picked; its first logbook write claims it");
        // The store with its declared defaults: what the flow is built from and what its tasks see.
        let factory = match self.catalog.for_job(self.board.as_ref(), &job.flow, job.pin.as_ref()).await {
            Ok(factory) => factory,
            Err(crate::catalog::CatalogError::Board(error)) => {
                // Nothing was written: the job stays queued for the next pick.
                return tracing::warn!(%error, "cannot read the job's flow definition; giving the pick up");
            }
            // Not silently lost: TRASHED, with the reason naming the flow, version and what is missing.
            Err(error) => return trash_pick(&self.local, &pick, format!("cannot build flow: {error}")).await,
        };
        let factory = factory.factory();
        let store = match factory.complete(&job.store) {
            Ok(store) => store,
            Err(error) => return trash_pick(&self.local, &pick, format!("cannot build flow: {error}")).await,
        };
        let flow = match factory.build(&store) {
            Ok(flow) => flow,
            Err(error) => return trash_pick(&self.local, &pick, format!("cannot build flow: {error}")).await,
        };
        // The pick's storage: its first write claims the job with that batch (one board
        // write), then it is the claim's consuming storage (the last write consumes).
        let engine = Engine::builder(flow)
            .store(store)
            .storage(pick.storage(), job.id, job.id)
            .max_concurrency(self.concurrency)
            // Re-queued by an operator's retry: a flow that ended FAILURE finishes its revert.
            .retry_failed_reverts(job.actions.last().is_some_and(|a| a.action == jobboard::Operation::Retry.as_str()))
            .listener(Arc::new(LoggingListener))
            .listener(Arc::new(TaskListener::new(job.flow.clone(), self.local.metrics.clone())))
            .build()
            .await;
        let mut engine = match engine {
            Ok(engine) => engine,
            Err(error) => return self.engine_failed(&pick, None, error).await,
        };
        let control = engine.control();
        let lost = pick.lost();
        let cancel_requested = pick.cancelled();
        let mut deliveries = pick.deliveries();
        // The claim, once handed over by the pick (made by the first write, or for a park).
        let mut claim: Option<Claim> = None;
        let mut cancelling = false;
        let mut suspending = false;
        // Why the claim's token fired is read from the job: a cancel, or an operator's suspend.
        let mut requested = false;
        let mut halting = false;
        let mut expired = false;
        let deadline = deadline_timer(job.deadline);
        tokio::pin!(deadline);
        // Completions and timeouts recorded while the job was parked (or before a crash).
        match pick.settled().await {
            Ok(settled) => settled.into_iter().for_each(|d| control.deliver(d)),
            // Before the first write nothing is claimed: the job stays queued.
            Err(error) => return tracing::warn!(%error, "cannot read the parked tasks; giving the pick up"),
        }
        let ended = loop {
            let ended = {
                // Dropping this future drops the engine's task set, aborting every running task.
                let run = engine.run();
                tokio::pin!(run);
                loop {
                    tokio::select! {
                        biased;
                        _ = lost.cancelled() => break Ended::Lost,
                        _ = self.stops.abort.cancelled() => break Ended::Aborted,
                        result = &mut run => break Ended::Ran(result),
                        _ = cancel_requested.cancelled(), if !requested && !cancelling => {
                            requested = true;
                            if self.cancel_asked(job.id).await {
                                tracing::info!("cancellation requested: reverting");
                                cancelling = true;
                                control.cancel();
                                self.workers.cancel_job(job.id);
                            } else if !suspending {
                                // A cancel that comes meanwhile makes the halt an abandon: a claimer reverts.
                                tracing::info!("suspension requested: running tasks finish, no new one starts");
                                halting = true;
                                control.suspend();
                            }
                        }
                        _ = &mut deadline, if !expired => {
                            tracing::info!("the job's deadline passed: stopping its tasks, reverting");
                            (cancelling, expired) = (true, true);
                            control.cancel();
                            self.workers.cancel_job(job.id);
                            if let Some(at) = job.deadline {
                                // Recorded on the job too, so the fleet and its watchers see why.
                                if let Err(error) = self.board.expire(job.id, at).await {
                                    tracing::warn!(%error, "cannot record the deadline's cancel on the board");
                                }
                            }
                            // Unlike a cancel, a deadline does not wait for running tasks.
                            break Ended::Expired;
                        }
                        _ = self.stops.suspend.cancelled(), if !suspending => {
                            tracing::info!("shutting down: suspending the flow");
                            suspending = true;
                            control.suspend();
                        }
                        // A parked task was completed while other branches run: the owner folds it in.
                        changed = deliveries.changed() => match (changed, pick.settled().await) {
                            (Ok(()), Ok(settled)) => settled.into_iter().for_each(|d| control.deliver(d)),
                            (_, Err(error)) => tracing::warn!(%error, "cannot read completed parked tasks; will retry"),
                            (Err(_), _) => deliveries = pick.deliveries(),
                        },
                    }
                }
            };
            if matches!(ended, Ended::Expired) {
                // The next run starts from the logbook with the cancel set: it reverts.
                continue;
            }
            let Ended::Ran(Ok(outcome)) = &ended else { break ended };
            if outcome.state != FlowState::Parked {
                break ended;
            }
            let parking = match claim_of(&pick, &mut claim).await {
                Ok(held) => held.park(&engine.parked()).await,
                Err(error) => Err(error),
            };
            match parking {
                Ok(Parking::Parked) => {
                    let waiting: Vec<String> = engine.parked().into_iter().map(|(atom, _)| atom).collect();
                    return tracing::info!(?waiting, "job parked; released until a completion or a deadline");
                }
                Ok(Parking::Delivered(settled)) => settled.into_iter().for_each(|d| control.deliver(d)),
                Ok(Parking::Cancelled) => {
                    tracing::info!("cancellation requested while parking: reverting");
                    cancelling = true;
                    control.cancel();
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot park the job; giving it back");
                    return give_back(&self.local, &pick, claim).await;
                }
            }
        };
        let made = match claim {
            Some(claim) => Some(claim),
            None => pick.made().await,
        };
        match ended {
            // The engine's last logbook write consumed the job: whatever fired meanwhile, it is over.
            Ended::Lost | Ended::Aborted if made.as_ref().is_some_and(Claim::is_consumed) => {
                tracing::info!("job complete")
            }
            Ended::Lost => {
                tracing::warn!("claim lost: flow stopped, nothing more written; another conductor takes over")
            }
            // (An expired run never gets here: the loop runs it again, cancelled.)
            Ended::Aborted | Ended::Expired => match made {
                Some(claim) => {
                    tracing::warn!(
                        "grace period over: flow stopped mid-task; abandoning (its running tasks will run again)"
                    );
                    abandon(&self.local, claim).await;
                }
                None => tracing::info!("stopped before its first logbook write: nothing written, the job stays queued"),
            },
            Ended::Ran(Ok(mut outcome)) => {
                // A run with nothing to write (its end was in the logbook already) claims now.
                let claim = match made {
                    Some(claim) => claim,
                    None => match pick.claim().await {
                        Ok(claim) => claim,
                        Err(error) => return tracing::warn!(%error, "cannot claim the job to record its end"),
                    },
                };
                if let (true, Some(at)) = (expired, job.deadline) {
                    let why = jobboard::lifecycle::operate::deadline_failure(at);
                    outcome.failure = Some(match outcome.failure.take() {
                        Some(cause) => why.with_cause(cause),
                        None => why,
                    });
                }
                if halting && outcome.state == FlowState::Suspended {
                    return halt(claim).await;
                }
                finish(claim, outcome, cancelling, &self.local, started).await
            }
            Ended::Ran(Err(error)) => self.engine_failed(&pick, made, error).await,
        }
    }

    /// Whether the job's claim token fired for a cancel (else: an operator's suspend).
    /// A job that cannot be read counts as a suspend, which is safe: the halt that
    /// follows gives it back claimable if a cancel was what came.
    async fn cancel_asked(&self, id: jobboard::JobId) -> bool {
        match self.board.get(id).await {
            Ok(job) => job.cancel_requested || !job.suspend_requested,
            Err(error) => {
                tracing::warn!(%error, "cannot read why the job was flagged; suspending it");
                false
            }
        }
    }

    /// The engine could not build or run the flow; `made` is the claim, if one was made.
    async fn engine_failed(&self, pick: &Pick, made: Option<Claim>, error: flows::Error) {
        match (&error, made) {
            (flows::Error::Storage(StorageError::ClaimLost(_)), None) => tracing::info!(
                %error,
                "the job changed since it was picked (claimed elsewhere, cancelled, suspended): nothing written, nothing ran"
            ),
            (flows::Error::Storage(StorageError::ClaimLost(_)), Some(_)) => {
                tracing::warn!(%error, "claim lost: logbook write fenced off; another conductor takes over");
            }
            (flows::Error::Storage(storage), made) if storage.is_retryable() => {
                tracing::warn!(error = %format_args!("{error}: {storage}"), "logbook unavailable; abandoning the job");
                give_back(&self.local, pick, made).await;
            }
            (flows::Error::Storage(storage), made) => {
                tracing::error!(error = %format_args!("{error}: {storage}"), "logbook storage failed; abandoning the job");
                give_back(&self.local, pick, made).await;
            }
            (_, Some(claim)) => trash(&self.local, claim, format!("engine error: {error}")).await,
            (_, None) => trash_pick(&self.local, pick, format!("engine error: {error}")).await,
        }
    }
}

/// Records how the flow ended.
async fn finish(claim: Claim, outcome: RunOutcome, cancelling: bool, local: &LocalStatus, started: Instant) {
    let result = match Outcome::of_flow(outcome.state, outcome.failure.as_ref(), cancelling) {
        Some(result) => result,
        None if outcome.state == FlowState::Suspended => {
            tracing::info!("flow suspended; abandoning so another conductor resumes it");
            return abandon(local, claim).await;
        }
        None => {
            tracing::error!(state = %outcome.state, "engine returned a non-final flow state; abandoning");
            return abandon(local, claim).await;
        }
    };
    let flow = claim.job().flow.clone();
    // Usually already done by the engine's last logbook write; then this only reads back the job.
    match claim.consume(result, outcome.failure.clone()).await {
        Ok(job) => {
            let result = job.outcome.unwrap_or(result);
            local.metrics.job_completed(&flow, &result.to_string(), started.elapsed());
            match &outcome.failure {
                Some(failure) => tracing::info!(outcome = %result, %failure, "job complete"),
                None => tracing::info!(outcome = %result, "job complete"),
            }
        }
        Err(error) => {
            tracing::warn!(%error, outcome = %result, "cannot record the outcome; the job will be resumed elsewhere")
        }
    }
}

/// Fires at the job's deadline, if it has one (at once if it passed already).
async fn deadline_timer(deadline: Option<flows::Millis>) {
    let Some(at) = deadline else { return std::future::pending().await };
    let left = at.saturating_sub(flows::now_millis());
    tokio::time::sleep(std::time::Duration::from_millis(left)).await;
}

/// Gives the job back SUSPENDED after an operator's suspend.
async fn halt(claim: Claim) {
    match claim.halt().await {
        Ok(job) => tracing::info!(state = %job.state, "job suspended by an operator; released"),
        Err(error) => tracing::warn!(%error, "cannot suspend the job; it returns to the board when the lease ends"),
    }
}

/// The claim, handed over by the pick into `claim` (made by the first write, or now).
async fn claim_of<'a>(pick: &Pick, claim: &'a mut Option<Claim>) -> Result<&'a Claim, jobboard::Error> {
    if claim.is_none() {
        *claim = Some(pick.claim().await?);
    }
    Ok(claim.as_ref().expect("set just above"))
}

/// Abandons the claim if one was made; before it, nothing was written and the job stays queued.
async fn give_back(local: &LocalStatus, pick: &Pick, claim: Option<Claim>) {
    let made = match claim {
        Some(claim) => Some(claim),
        None => pick.made().await,
    };
    match made {
        Some(claim) => abandon(local, claim).await,
        None => tracing::info!("nothing was written; the job stays queued"),
    }
}

/// Trashes a picked job (claiming it first, with nothing else written).
async fn trash_pick(local: &LocalStatus, pick: &Pick, reason: String) {
    match pick.claim().await {
        Ok(claim) => trash(local, claim, reason).await,
        Err(error) => tracing::warn!(%error, %reason, "cannot claim the job to trash it"),
    }
}

async fn abandon(local: &LocalStatus, claim: Claim) {
    local.metrics.job_abandoned(&claim.job().flow);
    match claim.abandon().await {
        Ok(()) => tracing::info!("job abandoned; back on the board"),
        Err(error) => tracing::warn!(%error, "abandon failed; the job returns to the board when the lease ends"),
    }
}

async fn trash(local: &LocalStatus, claim: Claim, reason: String) {
    tracing::error!(%reason, "trashing job");
    local.metrics.job_trashed(&claim.job().flow);
    if let Err(error) = claim.trash(reason).await {
        tracing::warn!(%error, "trash failed");
    }
}
