//! Logbook storage through a claim: exact round trips, and resume by another owner.

use std::collections::BTreeMap;

use flows::{
    AtomDetail, AtomKind, AtomState, Attempt, Failure, FlowChanges, FlowDetail, FlowState, Intention, LogBook,
    StorageError,
};
use jobboard::{FlowFilter, JobState, Outcome};
use serde_json::json;
use uuid::Uuid;

use super::{job, post, suite_config, BoardFactory};

/// FlowDetail and AtomDetail round-trip exactly through a claim's storage;
/// a job resumed by another owner sees exactly what was recorded.
pub async fn logbook_round_trip_and_resume(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    assert_eq!(a.logbook(posted.id).await.expect("logbook failed"), None, "a new job has no logbook yet");

    let mut book = LogBook::new(posted.id, "job book");
    book.meta.insert("poster".into(), json!("client-7"));
    storage.save_book(&book).await.expect("save_book failed");

    let mut flow = FlowDetail::new(Uuid::new_v4(), "provision");
    flow.state = FlowState::Running;
    flow.version = 3;
    flow.meta.insert("factory".into(), json!("provision-v2"));
    storage.save_flow(book.id, &flow).await.expect("save_flow failed");

    let atoms = sample_atoms();
    for atom in &atoms {
        storage.save_atom(book.id, flow.id, atom).await.expect("save_atom failed");
    }
    let mut expected = flow.clone();
    expected.atoms = atoms.iter().map(|a| (a.name.clone(), a.clone())).collect();

    let loaded = storage.load_book(book.id).await.expect("load_book failed").expect("the book was not saved");
    assert_eq!((loaded.id, loaded.name.as_str(), &loaded.meta), (book.id, "job book", &book.meta));
    assert_eq!(loaded.flows, BTreeMap::from([(flow.id, expected.clone())]));
    assert_eq!(storage.load_flow(book.id, flow.id).await.expect("load_flow failed"), Some(expected.clone()));
    assert_eq!(storage.load_flow(book.id, Uuid::new_v4()).await.expect("load_flow failed"), None);

    // Writes that must be refused, and change nothing.
    let stray = storage.save_atom(book.id, Uuid::new_v4(), &atoms[0]).await;
    assert!(matches!(stray, Err(StorageError::NotFound(_))), "an atom of an unknown flow gave {stray:?}");
    let mut huge = atoms[0].clone();
    huge.result = Some(json!("x".repeat(suite_config("any").max_value_bytes + 1)));
    let refused = storage.save_atom(book.id, flow.id, &huge).await;
    assert!(matches!(refused, Err(StorageError::Rejected { .. })), "an oversize result gave {refused:?}");

    // save_flow updates the flow's own fields and leaves its atoms alone.
    let mut moved = FlowDetail { atoms: BTreeMap::new(), ..expected.clone() };
    moved.state = FlowState::Suspended;
    moved.version = 4;
    storage.save_flow(book.id, &moved).await.expect("save_flow failed");
    expected.state = FlowState::Suspended;
    expected.version = 4;

    claim.abandon().await.expect("abandon failed");
    let resumed = b.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to resume");
    assert_eq!(resumed.id(), posted.id);
    let seen = resumed.storage().load_book(book.id).await.expect("load_book failed").expect("the book was lost");
    assert_eq!(
        seen.flows,
        BTreeMap::from([(flow.id, expected.clone())]),
        "the resumer must see exactly what was recorded"
    );
    let via_board = b.logbook(posted.id).await.expect("logbook failed").expect("the board lost the logbook");
    assert_eq!(via_board.flows, seen.flows);

    // The new owner carries on: an atom write replaces the stored one.
    let mut retried = atoms[1].clone();
    retried.state = AtomState::Success;
    retried.intention = Intention::Execute;
    retried.failure = None;
    retried.result = Some(json!({"ok": true}));
    retried.version += 1;
    resumed.storage().save_atom(book.id, flow.id, &retried).await.expect("save_atom failed");
    let done = resumed.consume(Outcome::Success, None).await.expect("consume failed");
    assert_eq!(done.state, JobState::Complete);
    let finished = a.logbook(posted.id).await.expect("logbook failed").expect("a finished job keeps its logbook");
    assert_eq!(finished.flows[&flow.id].atoms["deploy"], retried);
}

/// On a job's first claim the logbook is empty, and reads see every write of
/// the claim, through any of its storages, however many; a later claim reads
/// what the earlier owner wrote.
pub async fn first_claim_book_is_empty_until_written(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to claim");
    assert_eq!((claim.id(), claim.job().claims), (posted.id, 1));
    let first = claim.storage();
    let flow_id = Uuid::new_v4();
    assert_eq!(first.load_flow(posted.id, flow_id).await.expect("load_flow failed"), None);
    assert_eq!(first.load_book(posted.id).await.expect("load_book failed"), None);

    let mut flow = FlowDetail::new(flow_id, "provision");
    flow.state = FlowState::Running;
    let atoms = sample_atoms();
    let changed: Vec<&AtomDetail> = atoms.iter().collect();
    first
        .save_changes(posted.id, flow_id, FlowChanges { flow: Some(&flow), atoms: &changed })
        .await
        .expect("save_changes failed");
    let mut expected = flow.clone();
    expected.atoms = atoms.iter().map(|a| (a.name.clone(), a.clone())).collect();
    assert_eq!(first.load_flow(posted.id, flow_id).await.expect("load_flow failed"), Some(expected.clone()));
    // A storage asked for after the write is the same claim's: it must read, not assume empty.
    let second = claim.storage();
    assert_eq!(second.load_flow(posted.id, flow_id).await.expect("load_flow failed"), Some(expected.clone()));
    let book = second.load_book(posted.id).await.expect("load_book failed").expect("the book was not created");
    assert_eq!(book.name, "provision");

    claim.abandon().await.expect("abandon failed");
    let again = b.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to resume");
    assert_eq!((again.id(), again.job().claims), (posted.id, 2));
    let resumed = again.storage();
    assert_eq!(
        resumed.load_flow(posted.id, flow_id).await.expect("load_flow failed"),
        Some(expected),
        "a second claim must read what the first owner wrote"
    );

    // save_book on a first claim creates the header it could not read.
    let other = post(&a, job("work", 2)).await;
    let claim = a.claim(other.id).await.expect("claim failed");
    let storage = claim.storage();
    let header = LogBook::new(other.id, "header first");
    storage.save_book(&header).await.expect("save_book failed");
    let read = claim.storage().load_book(other.id).await.expect("load_book failed").expect("the header was lost");
    assert_eq!((read.name.as_str(), read.created_at), ("header first", header.created_at));
}

/// Atoms with every field set, so a lossy column shows up.
fn sample_atoms() -> Vec<AtomDetail> {
    let mut fetch = AtomDetail::new("fetch", AtomKind::Task);
    fetch.state = AtomState::Success;
    fetch.result = Some(json!({"image": "debian-12", "size": 2048, "tags": ["a", null, 1.5]}));
    fetch.executions = 1;
    fetch.started_at = Some(1_700_000_000_000);
    fetch.finished_at = Some(1_700_000_000_250);
    fetch.version = 2;
    fetch.meta.insert("progress".into(), json!(1.0));

    let mut deploy = AtomDetail::new("deploy", AtomKind::Task);
    deploy.state = AtomState::Failure;
    deploy.intention = Intention::Revert;
    deploy.failure = Some(Failure::new("Timeout", "no answer in 30s").with_cause(Failure::task("connection reset")));
    deploy.revert_failure = Some(Failure::task("undo failed"));
    deploy.executions = 3;
    deploy.version = 5;

    let mut retry = AtomDetail::new("retry", AtomKind::Retry);
    retry.state = AtomState::Retrying;
    retry.intention = Intention::Retry;
    retry.attempts = vec![
        Attempt { value: json!(1), failures: BTreeMap::from([("deploy".to_string(), Failure::task("first"))]) },
        Attempt { value: json!({"delay": 2}), failures: BTreeMap::new() },
    ];
    vec![fetch, deploy, retry]
}
