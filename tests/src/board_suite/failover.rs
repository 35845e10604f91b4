//! Failover: a lost session returns its jobs, the old owner is fenced off,
//! wake-ups fire on post and release, cancellation reaches the owner.

use flows::{AtomDetail, AtomKind, AtomState, FlowDetail, LogBook, StorageError};
use jobboard::{Error, FlowFilter, JobState, Outcome};
use uuid::Uuid;

use super::{job, post, wait_for_state, within, BoardFactory};

/// When a claimer's session is lost (it crashed: no close, no abandon) its
/// job returns to UNCLAIMED and a second claimer gets it, with a greater token.
pub async fn lost_session_returns_job(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&b, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");

    f.kill_session("a").await;
    let released = wait_for_state(&b, posted.id, JobState::Unclaimed).await;
    assert_eq!(released.owner, None);

    let second = b.claim(posted.id).await.expect("second claimer could not claim the released job");
    assert_eq!(second.job().owner.as_deref(), Some("b"));
    assert!(second.token() > claim.token());
}

/// Closing a session releases its claims at once and tells its holders; the
/// closed session refuses new claims.
pub async fn close_releases_claims(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&b, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let (lost, session_lost) = (claim.lost(), a.session_lost());
    assert!(!lost.is_cancelled() && !session_lost.is_cancelled());

    a.close().await.expect("close failed");
    assert!(session_lost.is_cancelled(), "session_lost must fire when close returns");
    within("the claim to be reported lost", lost.cancelled()).await;
    wait_for_state(&b, posted.id, JobState::Unclaimed).await;
    assert!(matches!(a.claim_next(&FlowFilter::any()).await, Err(Error::Closed)), "a closed session still claims");
    let again = b.claim(posted.id).await.expect("the released job is not claimable");
    assert!(again.token() > claim.token());
}

/// After a hand-off, every write of the old owner fails with `ClaimLost` and
/// changes nothing: the new owner sees exactly what was recorded before.
pub async fn old_owner_is_fenced(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&b, job("work", 1)).await;
    let old = a.claim(posted.id).await.expect("claim failed");
    let old_storage = old.storage();
    let book = LogBook::new(posted.id, "book");
    let mut flow = FlowDetail::new(Uuid::new_v4(), "flow");
    let mut atom = AtomDetail::new("step", AtomKind::Task);
    old_storage.save_book(&book).await.expect("save_book failed");
    old_storage.save_flow(book.id, &flow).await.expect("save_flow failed");
    old_storage.save_atom(book.id, flow.id, &atom).await.expect("save_atom failed");

    f.kill_session("a").await;
    wait_for_state(&b, posted.id, JobState::Unclaimed).await;
    let new = b.claim(posted.id).await.expect("second claim failed");
    let recorded = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(recorded.flows.get(&flow.id).map(|f| f.atoms.len()), Some(1));

    atom.state = AtomState::Success;
    atom.result = Some(serde_json::json!("zombie"));
    flow.version += 1;
    let mut renamed = book.clone();
    renamed.name = "zombie".into();
    let writes = [
        ("save_atom", old_storage.save_atom(book.id, flow.id, &atom).await),
        ("save_flow", old_storage.save_flow(book.id, &flow).await),
        ("save_book", old_storage.save_book(&renamed).await),
    ];
    for (what, result) in writes {
        assert!(matches!(result, Err(StorageError::ClaimLost(_))), "old owner's {what} gave {result:?}");
    }
    match old.consume(Outcome::Success, None).await {
        Err(Error::ClaimLost { job, .. }) => assert_eq!(job, posted.id),
        other => panic!("old owner's consume gave {other:?}"),
    }
    let after = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(after.flows, recorded.flows, "a fenced write changed the logbook");
    assert_eq!(after.name, recorded.name);
    let current = b.get(posted.id).await.expect("get failed");
    assert_eq!((current.state, current.owner.as_deref()), (JobState::Claimed, Some("b")));
    new.consume(Outcome::Success, None).await.expect("the new owner's consume failed");
}

/// The claimable stream fires on post, abandon and a lost session; a job
/// watch fires when the job or its logbook changes.
pub async fn wakeups_fire(f: &impl BoardFactory) {
    let (waiter, a, b) = (f.session("waiter").await, f.session("a").await, f.session("b").await);

    let mut wakeups = waiter.claimable();
    let posted = post(&a, job("work", 1)).await;
    within("a wake-up on post", wakeups.changed()).await.expect("wake-ups closed");

    let mut job_changes = waiter.watch_job(posted.id).await.expect("watch_job failed");
    let claim = b.claim(posted.id).await.expect("claim failed");
    within("a job watch wake-up on claim", job_changes.changed()).await.expect("job watch closed");
    claim.storage().save_book(&LogBook::new(posted.id, "book")).await.expect("save_book failed");
    within("a job watch wake-up on a logbook write", job_changes.changed()).await.expect("job watch closed");

    let mut wakeups = waiter.claimable();
    claim.abandon().await.expect("abandon failed");
    within("a wake-up on abandon", wakeups.changed()).await.expect("wake-ups closed");

    let _held = b.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to claim");
    let mut wakeups = waiter.claimable();
    f.kill_session("b").await;
    within("a wake-up on a lost session", wakeups.changed()).await.expect("wake-ups closed");
    // The wake-up means the job is (or is about to be) claimable: the waiter gets it.
    let got = within("the released job to be claimable", async {
        loop {
            if let Some(claim) = waiter.claim_next(&FlowFilter::any()).await.expect("claim_next failed") {
                return claim;
            }
            wakeups.changed().await.expect("wake-ups closed");
        }
    })
    .await;
    assert_eq!(got.id(), posted.id);
}

/// Cancelling an unclaimed job completes it as CANCELLED at once; cancelling
/// a claimed one tells its owner, who finishes it.
pub async fn cancel_unclaimed_and_claimed(f: &impl BoardFactory) {
    let (client, owner) = (f.session("client").await, f.session("owner").await);
    let waiting = post(&client, job("work", 1)).await;
    let cancelled = client.request_cancel(waiting.id).await.expect("request_cancel failed");
    assert_eq!((cancelled.state, cancelled.outcome), (JobState::Complete, Some(Outcome::Cancelled)));
    assert!(matches!(owner.claim(waiting.id).await, Err(Error::NotClaimable { .. })));

    let running = post(&client, job("work", 2)).await;
    let claim = owner.claim(running.id).await.expect("claim failed");
    assert!(!claim.cancelled().is_cancelled());
    let flagged = client.request_cancel(running.id).await.expect("request_cancel failed");
    assert_eq!(flagged.state, JobState::Claimed, "a claimed job is only flagged; its owner decides");
    assert!(flagged.cancel_requested);
    within("the owner to be told of the cancel request", claim.cancelled().cancelled()).await;
    claim.consume(Outcome::Cancelled, None).await.expect("consume failed");
    let done = client.get(running.id).await.expect("get failed");
    assert_eq!((done.state, done.outcome), (JobState::Complete, Some(Outcome::Cancelled)));

    let again = client.request_cancel(running.id).await.expect("request_cancel of a finished job failed");
    assert_eq!(again, done, "cancelling a finished job must change nothing");
}
