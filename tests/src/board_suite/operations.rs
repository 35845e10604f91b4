//! Operators' requests and job deadlines on every backend: suspend, halt and
//! resume; retry of a FAILURE and of a TRASHED job; the overdue scan; each as
//! `jobboard::lifecycle` says, recorded with who asked.

use jobboard::{Error, FlowFilter, JobId, JobState, NewJob, Operation, Outcome, DEADLINE_EXCEEDED};

use super::{job, post, within, BoardFactory};

/// Suspend takes an unclaimed job off the queue at once; a claimed one is flagged
/// (its claim's token fires) and its owner halts it; resume makes it claimable.
pub async fn suspend_halt_and_resume(f: &impl BoardFactory) {
    let (board, other) = (f.session("owner").await, f.session("other").await);
    let queued = post(&board, job("ops", 1)).await;
    let suspended = other.operate(queued.id, Operation::Suspend, "alice").await.expect("suspend failed");
    assert_eq!(suspended.state, JobState::Suspended);
    assert!(
        board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none(),
        "a suspended job was claimable"
    );
    assert!(matches!(board.claim(queued.id).await, Err(Error::NotClaimable { state: JobState::Suspended, .. })));
    let refused = other.operate(queued.id, Operation::Suspend, "alice").await.expect_err("suspended twice");
    assert!(matches!(refused, Error::IllegalTransition { .. }), "{refused:?}");
    let resumed = other.operate(queued.id, Operation::Resume, "bob").await.expect("resume failed");
    assert_eq!(resumed.state, JobState::Unclaimed);
    let actions: Vec<(&str, &str)> = resumed.actions.iter().map(|a| (a.action.as_str(), a.by.as_str())).collect();
    assert_eq!(actions, [("suspend", "alice"), ("resume", "bob")]);

    let claim =
        board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("resumed job not claimable");
    let flagged = other.operate(claim.id(), Operation::Suspend, "alice").await.expect("suspend failed");
    assert_eq!((flagged.state, flagged.suspend_requested), (JobState::Claimed, true));
    within("the owner to be told", claim.cancelled().cancelled()).await;
    let resume = other.operate(claim.id(), Operation::Resume, "bob").await.expect_err("resumed while claimed");
    assert!(resume.to_string().contains("CLAIMED"), "{resume}");
    let id = claim.id();
    let halted = claim.halt().await.expect("halt failed");
    assert_eq!((halted.state, halted.owner.as_deref(), halted.suspend_requested), (JobState::Suspended, None, false));
    other.operate(id, Operation::Resume, "bob").await.expect("resume failed");
    let again = board.claim(id).await.expect("a resumed job is claimable by anyone");
    again.consume(Outcome::Success, None).await.expect("consume failed");
    let unknown = other.operate(JobId::new_v4(), Operation::Suspend, "alice").await.expect_err("an unknown job");
    assert!(matches!(unknown, Error::NotFound(_)), "{unknown:?}");
}

/// Retry re-queues a job that ended FAILURE and a trashed one (claims counted afresh), and
/// refuses a successful one.
pub async fn retry_requeues_failures_and_trashed_jobs(f: &impl BoardFactory) {
    let board = f.session("owner").await;
    let failed = post(&board, job("ops", 1)).await;
    let claim = board.claim(failed.id).await.expect("claim failed");
    claim.consume(Outcome::Failure, None).await.expect("consume failed");
    let retried = board.operate(failed.id, Operation::Retry, "carol").await.expect("retry failed");
    assert_eq!((retried.state, retried.outcome, retried.finished_at), (JobState::Unclaimed, None, None));
    assert_eq!(retried.claim_base, 1);
    board
        .claim(failed.id)
        .await
        .expect("a retried job is claimable")
        .consume(Outcome::Success, None)
        .await
        .expect("consume");
    let refused = board.operate(failed.id, Operation::Retry, "carol").await.expect_err("retry of a SUCCESS job");
    assert!(refused.to_string().contains("its outcome is SUCCESS"), "{refused}");

    let trashed = post(&board, job("ops", 2)).await;
    board.claim(trashed.id).await.expect("claim failed").trash("poison").await.expect("trash failed");
    let retried = board.operate(trashed.id, Operation::Retry, "carol").await.expect("retry failed");
    assert_eq!((retried.state, retried.trash_reason.as_deref(), retried.claim_base), (JobState::Unclaimed, None, 1));
    let again = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("not claimable");
    assert_eq!(again.id(), trashed.id);
    assert_eq!(again.job().actions.last().map(|a| a.action.as_str()), Some("retry"));
}

/// The overdue scan cancels what is due (an unclaimed job at once, a claimed one flagged,
/// ending with DEADLINE_EXCEEDED when its owner consumes it) and nothing else.
pub async fn overdue_jobs_are_cancelled_with_deadline_exceeded(f: &impl BoardFactory) {
    let board = f.session("owner").await;
    let now = flows::now_millis();
    let with_deadline = |n, deadline| NewJob { deadline: Some(deadline), ..job("ops", n) };
    let running = post(&board, with_deadline(1, now - 1)).await;
    let claim = board.claim(running.id).await.expect("claim failed");
    let queued = post(&board, with_deadline(2, now - 1)).await;
    let later = post(&board, with_deadline(3, now + 3_600_000)).await;
    assert_eq!(board.cancel_overdue(10).await.expect("scan failed"), 2);
    assert_eq!(board.cancel_overdue(10).await.expect("scan failed"), 0, "a second scan found work again");
    let cancelled = board.get(queued.id).await.expect("get failed");
    assert_eq!((cancelled.state, cancelled.outcome), (JobState::Complete, Some(Outcome::Cancelled)));
    assert_eq!(cancelled.failure.map(|f| f.kind), Some(DEADLINE_EXCEEDED.to_owned()));
    assert_eq!(board.get(later.id).await.expect("get failed").state, JobState::Unclaimed);
    within("the owner to be told", claim.cancelled().cancelled()).await;
    let ended = claim.consume(Outcome::Cancelled, Some(flows::Failure::new(flows::CANCELLED, "reverted"))).await;
    let failure = ended.expect("consume failed").failure.expect("a failure");
    assert_eq!(failure.kind, DEADLINE_EXCEEDED);
    assert_eq!(failure.cause.map(|c| c.kind), Some(flows::CANCELLED.to_owned()));
    let by = board.get(running.id).await.expect("get failed").actions;
    assert_eq!(by.iter().map(|a| (a.action.as_str(), a.by.as_str())).collect::<Vec<_>>(), [("deadline", "fleet")]);
    // The owner's own timer goes through `expire`: a finished job is returned unchanged.
    let unchanged = board.expire(running.id, now - 1).await.expect("expire failed");
    assert_eq!(unchanged.outcome, Some(Outcome::Cancelled));
}
