//! The job runner: one claimed job, from its flow factory to consume or abandon.
//!
//! The flow is built from the registry and run by the flows engine on the
//! job's logbook (`Claim::storage`, book id = flow id = job id), so a job
//! abandoned or lost part-way resumes from what was recorded. Completions of
//! parked tasks the board holds are handed to the engine before it runs, and
//! while it runs (`Claim::deliveries`, a watch). How it ends:
//!
//! | what happened | board action |
//! |---|---|
//! | flow SUCCESS / REVERTED / FAILURE | consume with that outcome |
//! | flow PARKED (every runnable task waits for a completion) | park: released, not claimable, no slot held |
//! | a completion or cancel arrived while parking | the park is refused: fold it in and run on |
//! | cancel requested, flow reverted | consume CANCELLED |
//! | graceful shutdown, flow SUSPENDED | abandon (another conductor resumes at once) |
//! | grace period over | engine dropped, then abandon (running tasks re-run: at-least-once) |
//! | board briefly unreachable | nothing: the claim's writes wait and land when it answers |
//! | claim lost (lease expired, session fenced) | engine dropped at once; nothing written (it would be fenced anyway) |
//! | logbook storage failed for good | abandon (retried elsewhere; quarantine stops a loop) |
//! | flow cannot be built or compiled, engine bug | trash with the reason (retrying cannot help) |

use std::sync::Arc;

use flows::{Engine, FlowRegistry, FlowState, LoggingListener, RunOutcome, StorageError, CANCELLED};
use jobboard::{Claim, Outcome, Parking};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::local::{LocalStatus, RunningJob};

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
    pub(crate) registry: Arc<FlowRegistry>,
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
}

impl JobRunner {
    /// Runs one job in its own span; the permit (a `--max-jobs` slot) is held until it ends.
    pub(crate) async fn run(self: Arc<Self>, claim: Claim, permit: OwnedSemaphorePermit) {
        let job = claim.job();
        let span = tracing::info_span!("job", job_id = %job.id, flow = %job.flow, claims = job.claims);
        let running = RunningJob { flow: job.flow.clone(), token: claim.token(), claimed_ms: flows::now_millis() };
        let listed = self.local.running(job.id, running);
        self.run_job(claim).instrument(span).await;
        drop(listed);
        drop(permit);
    }

    async fn run_job(&self, claim: Claim) {
        let job = claim.job().clone();
        tracing::info!(resumed = job.claims > 1, "job claimed");
        // The store with its declared defaults: what the flow is built from and what its tasks see.
        let store = match self.registry.complete(&job.flow, &job.store) {
            Ok(store) => store,
            Err(error) => return trash(claim, format!("cannot build flow: {error}")).await,
        };
        let flow = match self.registry.build(&job.flow, &store) {
            Ok(flow) => flow,
            Err(error) => return trash(claim, format!("cannot build flow: {error}")).await,
        };
        let engine = Engine::builder(flow)
            .store(store)
            .storage(claim.storage(), job.id, job.id)
            .max_concurrency(self.concurrency)
            .listener(Arc::new(LoggingListener))
            .build()
            .await;
        let mut engine = match engine {
            Ok(engine) => engine,
            Err(error) => return self.engine_failed(claim, error).await,
        };
        let control = engine.control();
        let lost = claim.lost();
        let cancel_requested = claim.cancelled();
        let mut deliveries = claim.deliveries();
        let mut cancelling = false;
        let mut suspending = false;
        // Completions and timeouts recorded while the job was parked (or before a crash).
        match claim.settled().await {
            Ok(settled) => settled.into_iter().for_each(|d| control.deliver(d)),
            Err(error) => return tracing::warn!(%error, "cannot read the parked tasks; the job returns to the board"),
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
                        _ = cancel_requested.cancelled(), if !cancelling => {
                            tracing::info!("cancellation requested: reverting");
                            cancelling = true;
                            control.cancel();
                        }
                        _ = self.stops.suspend.cancelled(), if !suspending => {
                            tracing::info!("shutting down: suspending the flow");
                            suspending = true;
                            control.suspend();
                        }
                        // A parked task was completed while other branches run: the owner folds it in.
                        changed = deliveries.changed() => match (changed, claim.settled().await) {
                            (Ok(()), Ok(settled)) => settled.into_iter().for_each(|d| control.deliver(d)),
                            (_, Err(error)) => tracing::warn!(%error, "cannot read completed parked tasks; will retry"),
                            (Err(_), _) => deliveries = claim.deliveries(),
                        },
                    }
                }
            };
            let Ended::Ran(Ok(outcome)) = &ended else { break ended };
            if outcome.state != FlowState::Parked {
                break ended;
            }
            match claim.park(&engine.parked()).await {
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
                Err(error) => return tracing::warn!(%error, "cannot park the job; it returns to the board"),
            }
        };
        match ended {
            Ended::Lost => {
                tracing::warn!("claim lost: flow stopped, nothing more written; another conductor takes over")
            }
            Ended::Aborted => {
                tracing::warn!(
                    "grace period over: flow stopped mid-task; abandoning (its running tasks will run again)"
                );
                abandon(claim).await;
            }
            Ended::Ran(Ok(outcome)) => finish(claim, outcome, cancelling).await,
            Ended::Ran(Err(error)) => self.engine_failed(claim, error).await,
        }
    }

    /// The engine could not build or run the flow.
    async fn engine_failed(&self, claim: Claim, error: flows::Error) {
        match &error {
            flows::Error::Storage(StorageError::ClaimLost(_)) => {
                tracing::warn!(%error, "claim lost: logbook write fenced off; another conductor takes over");
            }
            flows::Error::Storage(storage) if storage.is_retryable() => {
                tracing::warn!(error = %format_args!("{error}: {storage}"), "logbook unavailable; abandoning the job");
                abandon(claim).await;
            }
            flows::Error::Storage(storage) => {
                tracing::error!(error = %format_args!("{error}: {storage}"), "logbook storage failed; abandoning the job");
                abandon(claim).await;
            }
            _ => trash(claim, format!("engine error: {error}")).await,
        }
    }
}

/// Records how the flow ended.
async fn finish(claim: Claim, outcome: RunOutcome, cancelling: bool) {
    let cancelled = outcome.failure.as_ref().is_some_and(|f| f.kind == CANCELLED);
    let result = match outcome.state {
        FlowState::Success => Outcome::Success,
        FlowState::Reverted if cancelling || cancelled => Outcome::Cancelled,
        FlowState::Reverted => Outcome::Reverted,
        FlowState::Failure => Outcome::Failure,
        FlowState::Suspended => {
            tracing::info!("flow suspended; abandoning so another conductor resumes it");
            return abandon(claim).await;
        }
        other => {
            tracing::error!(state = %other, "engine returned a non-final flow state; abandoning");
            return abandon(claim).await;
        }
    };
    match claim.consume(result, outcome.failure.clone()).await {
        Ok(_) => match &outcome.failure {
            Some(failure) => tracing::info!(outcome = %result, %failure, "job complete"),
            None => tracing::info!(outcome = %result, "job complete"),
        },
        Err(error) => {
            tracing::warn!(%error, outcome = %result, "cannot record the outcome; the job will be resumed elsewhere")
        }
    }
}

async fn abandon(claim: Claim) {
    match claim.abandon().await {
        Ok(()) => tracing::info!("job abandoned; back on the board"),
        Err(error) => tracing::warn!(%error, "abandon failed; the job returns to the board when the lease ends"),
    }
}

async fn trash(claim: Claim, reason: String) {
    tracing::error!(%reason, "trashing job");
    if let Err(error) = claim.trash(reason).await {
        tracing::warn!(%error, "trash failed");
    }
}
