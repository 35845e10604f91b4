//! The job lifecycle as the API shows it: every backend follows the one table
//! of `jobboard::lifecycle` (and its quarantine rule), refusing what it refuses.

use std::sync::Arc;

use jobboard::lifecycle::{next_state, Event, QuarantineRule};
use jobboard::{Claim, Error, FlowFilter, Job, JobBoard, JobState, Outcome};

use super::{job, post, suite_config, wait_for_state, BoardFactory};

/// Both backends quarantine with the rule's own words, whether the poison job
/// is met by `claim_next` or claimed by id.
pub async fn quarantine_reason_is_the_rules(f: &impl BoardFactory) {
    let limit = suite_config("any").quarantine_after;
    let rule = QuarantineRule::new(limit);
    let board = f.session("a").await;
    let by_next = post(&board, job("poison", 1)).await;
    for _ in 0..limit {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to claim");
        claim.abandon().await.expect("abandon failed");
    }
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none());
    let by_id = post(&board, job("poison", 2)).await;
    for _ in 0..limit {
        board.claim(by_id.id).await.expect("claim failed").abandon().await.expect("abandon failed");
    }
    assert!(matches!(board.claim(by_id.id).await, Err(Error::NotClaimable { state: JobState::Trashed, .. })));
    for id in [by_next.id, by_id.id] {
        let trashed = board.get(id).await.expect("get failed");
        assert_eq!(trashed.state, JobState::Trashed);
        assert_eq!(trashed.trash_reason, Some(rule.reason(limit)), "the quarantine reason is not the rule's");
        assert!(trashed.finished_at.is_some(), "a quarantined job has no finish time");
    }
}

/// From each state a job can be in, `claim` and `cancel` (and, from CLAIMED,
/// `consume`, `abandon`, `trash` and a session's release) do what the table
/// says; what it refuses changes nothing and fails as the table's refusal maps.
pub async fn api_follows_the_lifecycle_table(f: &impl BoardFactory) {
    let (owner, other) = (f.session("owner").await, f.session("other").await);
    for from in [JobState::Unclaimed, JobState::Claimed, JobState::Complete, JobState::Trashed] {
        // Claim, by another session.
        let (before, held) = job_in(&owner, from).await;
        let expected = next_state(from, Event::Claim);
        match (other.claim(before.id).await, expected) {
            (Ok(claim), Ok(to)) => {
                let after = other.get(before.id).await.expect("get failed");
                assert_eq!((after.state, after.owner.as_deref()), (to, Some("other")));
                claim.abandon().await.expect("abandon failed");
            }
            (Err(got), Err(refused)) => {
                let want = refused.into_error(before.id, before.owner.as_deref());
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "claim of a {from} job");
                assert_eq!(other.get(before.id).await.expect("get failed"), before, "a refused claim changed the job");
            }
            (got, want) => panic!("claim of a {from} job gave {:?}; the table says {want:?}", got.map(|c| c.id())),
        }
        drop(held);

        // Cancel.
        let (before, held) = job_in(&owner, from).await;
        let cancelled = other.request_cancel(before.id).await.expect("request_cancel failed");
        match next_state(from, Event::Cancel) {
            Ok(to) => {
                assert_eq!(cancelled.state, to, "cancel of a {from} job");
                match to {
                    JobState::Complete => assert_eq!(cancelled.outcome, Some(Outcome::Cancelled)),
                    _ => assert!(cancelled.cancel_requested, "cancel of a claimed job must flag it"),
                }
            }
            Err(_) => assert_eq!(cancelled, before, "cancel of a finished job must return it unchanged"),
        }
        assert_eq!(other.get(before.id).await.expect("get failed"), cancelled, "cancel returned another job");
        if let Some(claim) = held {
            // A second request changes nothing more.
            assert_eq!(other.request_cancel(before.id).await.expect("request_cancel failed"), cancelled);
            claim.abandon().await.expect("abandon failed");
        }
    }

    // The owner's events, from CLAIMED.
    type End = fn(Claim) -> futures::future::BoxFuture<'static, Result<(), Error>>;
    let ends: [(Event, End); 3] = [
        (Event::Consume, |c| Box::pin(async move { c.consume(Outcome::Success, None).await.map(drop) })),
        (Event::Abandon, |c| Box::pin(c.abandon())),
        (Event::Trash, |c| Box::pin(c.trash("given up"))),
    ];
    for (event, end) in ends {
        let (before, held) = job_in(&owner, JobState::Claimed).await;
        end(held.expect("a claimed job comes with its claim")).await.unwrap_or_else(|e| panic!("{event} failed: {e}"));
        let after = other.get(before.id).await.expect("get failed");
        assert_eq!(Ok(after.state), next_state(JobState::Claimed, event), "{event} of a claimed job");
        assert_eq!(after.owner, None, "{event} left an owner");
    }

    // Release: the owner's session ends; its old claim can then change nothing.
    let leaving = f.session("leaving").await;
    let (before, held) = job_in(&leaving, JobState::Claimed).await;
    leaving.close().await.expect("close failed");
    let to = next_state(JobState::Claimed, Event::Release).expect("release of a claimed job");
    let released = wait_for_state(&other, before.id, to).await;
    let stale = held.expect("a claimed job comes with its claim").consume(Outcome::Success, None).await;
    assert!(matches!(stale, Err(Error::ClaimLost { .. })), "a released claim's consume gave {stale:?}");
    assert_eq!(other.get(before.id).await.expect("get failed"), released, "a released claim's consume wrote");
}

/// A fresh job in `state`, made through the API by `board`, with its claim when CLAIMED.
async fn job_in(board: &Arc<dyn JobBoard>, state: JobState) -> (Job, Option<Claim>) {
    let posted = post(board, job("lifecycle", 0)).await;
    if state == JobState::Unclaimed {
        return (posted, None);
    }
    let claim = board.claim(posted.id).await.expect("claim failed");
    match state {
        JobState::Complete => drop(claim.consume(Outcome::Success, None).await.expect("consume failed")),
        JobState::Trashed => claim.trash("done with it").await.expect("trash failed"),
        _ => return (board.get(posted.id).await.expect("get failed"), Some(claim)),
    }
    let finished = board.get(posted.id).await.expect("get failed");
    assert_eq!(finished.state, state);
    (finished, None)
}
