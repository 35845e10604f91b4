//! Picks (`JobBoard::pick_next`): the claim folded into the job's first
//! logbook write. A pick writes nothing; its first write claims the job and
//! lands the batch in one atomic step; a job that changed since the pick
//! (claimed elsewhere, cancelled) is not claimed and nothing is written;
//! sibling picks of one board never take the same job; a resumed job is
//! picked with its logbook read back.

use flows::{AtomDetail, AtomKind, AtomState, FlowChanges, FlowDetail, FlowEnd, FlowState, StorageError};
use jobboard::{FlowFilter, JobState, Outcome};

use super::{job, post, wait_for_state, BoardFactory};

fn atom(name: &str, state: AtomState) -> AtomDetail {
    let mut atom = AtomDetail::new(name, AtomKind::Task);
    atom.state = state;
    atom
}

fn flow_in(id: uuid::Uuid, state: FlowState, version: u64) -> FlowDetail {
    FlowDetail { state, version, ..FlowDetail::new(id, "picked") }
}

/// Nothing is written by a pick; the first write claims with its batch; the
/// last one consumes; the claim handed over afterwards is that one.
pub async fn a_pick_claims_with_its_first_write(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let pick = a.pick_next(&FlowFilter::any()).await.expect("pick_next failed").expect("nothing picked");
    assert_eq!(pick.id(), posted.id);
    assert_eq!((pick.job().state, pick.job().owner.as_deref(), pick.job().claims), (JobState::Claimed, Some("a"), 1));
    let seen = a.get(posted.id).await.expect("get failed");
    assert_eq!((seen.state, seen.owner, seen.claims), (JobState::Unclaimed, None, 0), "a pick wrote");
    assert!(a.logbook(posted.id).await.expect("logbook failed").is_none(), "a pick wrote a logbook");

    let storage = pick.storage();
    assert!(storage.load_flow(posted.id, posted.id).await.expect("load_flow failed").is_none());
    let running = flow_in(posted.id, FlowState::Running, 1);
    let first = atom("a0", AtomState::Running);
    storage
        .save_changes(posted.id, posted.id, FlowChanges { flow: Some(&running), atoms: &[&first] })
        .await
        .expect("the first write (the claim) failed");
    let claimed = a.get(posted.id).await.expect("get failed");
    assert_eq!((claimed.state, claimed.owner.as_deref(), claimed.claims), (JobState::Claimed, Some("a"), 1));
    let book = a.logbook(posted.id).await.expect("logbook failed").expect("the first batch is missing");
    assert_eq!(book.flows[&posted.id].atoms["a0"].state, AtomState::Running);

    let done = flow_in(posted.id, FlowState::Success, 2);
    let last = atom("a0", AtomState::Success);
    let how = FlowEnd { state: FlowState::Success, failure: None };
    let changes = FlowChanges { flow: Some(&done), atoms: &[&last] };
    storage.save_final(posted.id, posted.id, changes, how).await.expect("the last write failed");
    let claim = pick.claim().await.expect("the claim made by the first write");
    assert!(claim.is_consumed(), "the last write did not consume the job");
    let ended = claim.consume(Outcome::Success, None).await.expect("consume failed");
    assert_eq!((ended.state, ended.outcome), (JobState::Complete, Some(Outcome::Success)));
}

/// A job claimed by another owner between the pick and the first write: that
/// write fails with `ClaimLost`, and neither the batch nor an owner lands.
pub async fn a_pick_that_loses_the_race_writes_nothing(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&a, job("work", 1)).await;
    let pick = a.pick_next(&FlowFilter::any()).await.expect("pick_next failed").expect("nothing picked");
    let winner = b.claim(posted.id).await.expect("b's claim failed");

    let running = flow_in(posted.id, FlowState::Running, 1);
    let first = atom("a0", AtomState::Running);
    let result =
        pick.storage().save_changes(posted.id, posted.id, FlowChanges { flow: Some(&running), atoms: &[&first] }).await;
    assert!(matches!(result, Err(StorageError::ClaimLost(_))), "the losing pick's write gave {result:?}");
    let after = a.get(posted.id).await.expect("get failed");
    assert_eq!((after.state, after.owner.as_deref(), after.claims), (JobState::Claimed, Some("b"), 1));
    assert!(a.logbook(posted.id).await.expect("logbook failed").is_none(), "the losing pick wrote its batch");
    assert!(pick.claim().await.is_err(), "a pick that lost still handed out a claim");
    assert!(pick.made().await.is_none());
    winner.consume(Outcome::Success, None).await.expect("the winner's consume failed");
}

/// A job cancelled between the pick and the first write is not claimed, not
/// written to, and stays CANCELLED.
pub async fn a_job_cancelled_after_its_pick_is_not_claimed(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let pick = a.pick_next(&FlowFilter::any()).await.expect("pick_next failed").expect("nothing picked");
    let cancelled = a.request_cancel(posted.id).await.expect("cancel failed");
    assert_eq!((cancelled.state, cancelled.outcome), (JobState::Complete, Some(Outcome::Cancelled)));

    let running = flow_in(posted.id, FlowState::Running, 1);
    let first = atom("a0", AtomState::Running);
    let result =
        pick.storage().save_changes(posted.id, posted.id, FlowChanges { flow: Some(&running), atoms: &[&first] }).await;
    assert!(matches!(result, Err(StorageError::ClaimLost(_))), "a write after the cancel gave {result:?}");
    let after = a.get(posted.id).await.expect("get failed");
    assert_eq!((after.state, after.outcome, after.owner), (JobState::Complete, Some(Outcome::Cancelled), None));
    assert!(a.logbook(posted.id).await.expect("logbook failed").is_none(), "a cancelled job's logbook was written");
}

/// Sibling picks of one board pass by each other's jobs; a pick given up
/// (dropped) leaves its job claimable, unchanged.
pub async fn sibling_picks_take_different_jobs(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let one = post(&a, job("work", 1)).await;
    let two = post(&a, job("work", 2)).await;
    let any = FlowFilter::any();
    let first = a.pick_next(&any).await.expect("pick_next failed").expect("nothing picked");
    let second = a.pick_next(&any).await.expect("pick_next failed").expect("the second job was not picked");
    assert_eq!((first.id(), second.id()), (one.id, two.id), "picks out of order, or one job picked twice");
    assert!(a.pick_next(&any).await.expect("pick_next failed").is_none(), "a picked job was picked again");
    drop(second);
    let again = a.pick_next(&any).await.expect("pick_next failed").expect("a given-up pick's job was lost");
    assert_eq!(again.id(), two.id);
    assert_eq!(a.get(two.id).await.expect("get failed").state, JobState::Unclaimed, "a given-up pick wrote");
}

/// A job whose owner died part-way is picked with its logbook: the engine
/// reads it back before the claim, and the first write claims it (claim 2).
pub async fn a_resumed_job_is_picked_with_its_logbook(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&a, job("work", 1)).await;
    let old = a.claim(posted.id).await.expect("claim failed");
    let running = flow_in(posted.id, FlowState::Running, 1);
    let step = atom("a0", AtomState::Running);
    let changes = FlowChanges { flow: Some(&running), atoms: &[&step] };
    old.storage().save_changes(posted.id, posted.id, changes).await.expect("first write failed");
    f.kill_session("a").await;
    wait_for_state(&b, posted.id, JobState::Unclaimed).await;

    let pick = b.pick_next(&FlowFilter::any()).await.expect("pick_next failed").expect("nothing picked");
    assert_eq!((pick.id(), pick.job().claims), (posted.id, 2));
    let storage = pick.storage();
    let flow = storage.load_flow(posted.id, posted.id).await.expect("load_flow failed").expect("the logbook was lost");
    assert_eq!(flow.atoms["a0"].state, AtomState::Running, "the pick read another logbook");
    let done = atom("a0", AtomState::Success);
    storage.save_changes(posted.id, posted.id, FlowChanges::atoms(&[&done])).await.expect("resumed first write failed");
    let claimed = b.get(posted.id).await.expect("get failed");
    assert_eq!((claimed.state, claimed.owner.as_deref(), claimed.claims), (JobState::Claimed, Some("b"), 2));
    let book = b.logbook(posted.id).await.expect("logbook failed").expect("no logbook");
    assert_eq!(book.flows[&posted.id].atoms["a0"].state, AtomState::Success);
    let claim = pick.claim().await.expect("claim");
    claim.consume(Outcome::Success, None).await.expect("consume failed");
}
