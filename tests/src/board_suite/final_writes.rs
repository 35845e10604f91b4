//! The run's last logbook write with the consume (`Claim::consuming_storage`):
//! one fenced atomic step records the last batch and ends the job; a plain
//! claim storage only writes; a lost claim's final write writes nothing.

use flows::{AtomDetail, AtomKind, AtomState, Failure, FlowChanges, FlowDetail, FlowEnd, FlowState, StorageError};
use jobboard::{JobState, Outcome};
use serde_json::json;

use super::{job, post, wait_for_state, BoardFactory};

fn atom(name: &str, state: AtomState) -> AtomDetail {
    let mut atom = AtomDetail::new(name, AtomKind::Task);
    atom.state = state;
    atom.result = Some(json!({ "by": name }));
    atom
}

fn flow_in(id: uuid::Uuid, state: FlowState, version: u64) -> FlowDetail {
    FlowDetail { state, version, ..FlowDetail::new(id, "final") }
}

/// SUCCESS: the last batch and the consume land together; `consume` then
/// answers with that job and writes nothing. REVERTED by a cancel ends it
/// CANCELLED, and a batch over one etcd txn is written whole before the end.
pub async fn final_write_consumes_the_job(f: &impl BoardFactory) {
    let a = f.session("a").await;
    for (end, failure, expected, atoms) in [
        (FlowState::Success, None, Outcome::Success, 1),
        (FlowState::Reverted, Some(Failure::new(flows::CANCELLED, "stop")), Outcome::Cancelled, 1),
        (FlowState::Failure, Some(Failure::task("undo failed")), Outcome::Failure, 150),
    ] {
        let posted = post(&a, job("work", 1)).await;
        let claim = a.claim(posted.id).await.expect("claim failed");
        let storage = claim.consuming_storage();
        let running = flow_in(posted.id, FlowState::Running, 1);
        let first = atom("a0", AtomState::Running);
        storage
            .save_changes(posted.id, posted.id, FlowChanges { flow: Some(&running), atoms: &[&first] })
            .await
            .expect("first write failed");
        assert!(!claim.is_consumed(), "an ordinary write consumed the job");

        let last = flow_in(posted.id, end, 2);
        let done: Vec<AtomDetail> = (0..atoms).map(|i| atom(&format!("a{i}"), AtomState::Success)).collect();
        let done: Vec<&AtomDetail> = done.iter().collect();
        let changes = FlowChanges { flow: Some(&last), atoms: &done };
        let how = FlowEnd { state: end, failure: failure.as_ref() };
        storage.save_final(posted.id, posted.id, changes, how).await.expect("final write failed");
        assert!(claim.is_consumed(), "the final write of a {end} run did not consume the job");

        let stored = a.get(posted.id).await.expect("get failed");
        assert_eq!((stored.state, stored.outcome), (JobState::Complete, Some(expected)), "{end}");
        assert_eq!(stored.failure, failure, "{end}: the run's failure is the job's");
        let book = a.logbook(posted.id).await.expect("logbook failed").expect("no logbook");
        let flow = &book.flows[&posted.id];
        assert_eq!((flow.state, flow.atoms.len()), (end, atoms), "{end}: the last batch is stored whole");
        assert!(flow.atoms.values().all(|a| a.state == AtomState::Success), "{end}: an atom missed the last batch");

        let answered = claim.consume(Outcome::Reverted, None).await.expect("consume after the final write failed");
        assert_eq!((answered.state, answered.outcome), (JobState::Complete, Some(expected)));
        assert_eq!(a.get(posted.id).await.expect("get failed"), stored, "consume wrote again");
    }
}

/// A final write that does not end the job (SUSPENDED) only writes; so does a
/// final write through the plain claim storage, whatever the end.
pub async fn final_write_ends_the_job_only_when_asked(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let suspended = flow_in(posted.id, FlowState::Suspended, 1);
    let how = FlowEnd { state: FlowState::Suspended, failure: None };
    let consuming = claim.consuming_storage();
    consuming.save_final(posted.id, posted.id, FlowChanges::flow(&suspended), how).await.expect("final write failed");
    assert!(!claim.is_consumed(), "a SUSPENDED run consumed the job");

    let done = flow_in(posted.id, FlowState::Success, 2);
    let how = FlowEnd { state: FlowState::Success, failure: None };
    let plain = claim.storage();
    plain.save_final(posted.id, posted.id, FlowChanges::flow(&done), how).await.expect("plain final write failed");
    assert!(!claim.is_consumed(), "the plain claim storage consumed the job");
    let stored = a.get(posted.id).await.expect("get failed");
    assert_eq!(stored.state, JobState::Claimed, "only the logbook was to change");
    let book = a.logbook(posted.id).await.expect("logbook failed").expect("no logbook");
    assert_eq!(book.flows[&posted.id].state, FlowState::Success);
    claim.abandon().await.expect("the claim stands: abandon failed");
}

/// After the claim passed to another owner, the old owner's final write (small,
/// and big enough to span several etcd txns) gets `ClaimLost`: the job is not
/// consumed and the logbook is unchanged.
pub async fn lost_claims_final_write_writes_nothing(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&b, job("work", 1)).await;
    let old = a.claim(posted.id).await.expect("claim failed");
    let old_storage = old.consuming_storage();
    let running = flow_in(posted.id, FlowState::Running, 1);
    let step = atom("step", AtomState::Running);
    old_storage
        .save_changes(posted.id, posted.id, FlowChanges { flow: Some(&running), atoms: &[&step] })
        .await
        .expect("save_changes failed");

    f.kill_session("a").await;
    wait_for_state(&b, posted.id, JobState::Unclaimed).await;
    let new = b.claim(posted.id).await.expect("second claim failed");
    let recorded = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");

    let done = flow_in(posted.id, FlowState::Success, 2);
    let how = FlowEnd { state: FlowState::Success, failure: None };
    let many: Vec<AtomDetail> = (0..150).map(|i| atom(&format!("zombie-{i}"), AtomState::Success)).collect();
    let many: Vec<&AtomDetail> = many.iter().collect();
    for (what, atoms) in [("one atom", vec![&step]), ("many atoms", many)] {
        let changes = FlowChanges { flow: Some(&done), atoms: &atoms };
        let result = old_storage.save_final(posted.id, posted.id, changes, how).await;
        assert!(matches!(result, Err(StorageError::ClaimLost(_))), "old owner's final write of {what} gave {result:?}");
    }
    assert!(!old.is_consumed());
    let after = b.get(posted.id).await.expect("get failed");
    assert_eq!(
        (after.state, after.owner.as_deref()),
        (JobState::Claimed, Some("b")),
        "a fenced final write ended the job"
    );
    let book = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(book, recorded, "a fenced final write changed the logbook");
    assert_eq!(book.flows.keys().copied().collect::<Vec<_>>(), vec![posted.id]);
    new.consume(Outcome::Success, None).await.expect("the new owner's consume failed");
}
