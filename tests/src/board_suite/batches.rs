//! `Storage::save_changes` through a claim: a batch of flow and atom changes is
//! written whole (or, past a backend's txn limits, as an in-order prefix) and a
//! refused batch writes nothing.

use std::collections::BTreeMap;

use flows::{AtomDetail, AtomKind, AtomState, FlowChanges, FlowDetail, FlowState, LogBook, StorageError};
use jobboard::JobState;
use serde_json::json;
use uuid::Uuid;

use super::{job, post, suite_config, wait_for_state, BoardFactory};

/// A task atom in `state` with a small result naming it.
fn atom(name: &str, state: AtomState) -> AtomDetail {
    let mut atom = AtomDetail::new(name, AtomKind::Task);
    atom.state = state;
    atom.result = Some(json!({ "by": name }));
    atom
}

/// `flow` as a resumer would load it: its own fields and exactly `atoms`.
fn with_atoms(flow: &FlowDetail, atoms: &[&AtomDetail]) -> FlowDetail {
    let atoms = atoms.iter().map(|a| (a.name.clone(), AtomDetail::clone(a))).collect();
    FlowDetail { atoms, ..flow.clone() }
}

/// One batch creates the flow, its book header and three atoms; an empty batch writes nothing.
pub async fn batch_creates_flow_and_atoms(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    let flow = FlowDetail { state: FlowState::Running, version: 1, ..FlowDetail::new(Uuid::new_v4(), "provision") };

    storage.save_changes(posted.id, flow.id, FlowChanges::atoms(&[])).await.expect("an empty batch failed");
    assert_eq!(a.logbook(posted.id).await.expect("logbook failed"), None, "an empty batch wrote a logbook");

    let (x, y, z) = (atom("x", AtomState::Success), atom("y", AtomState::Running), atom("z", AtomState::Pending));
    let changes = FlowChanges { flow: Some(&flow), atoms: &[&x, &y, &z] };
    storage.save_changes(posted.id, flow.id, changes).await.expect("save_changes failed");

    let expected = with_atoms(&flow, &[&x, &y, &z]);
    assert_eq!(storage.load_flow(posted.id, flow.id).await.expect("load_flow failed"), Some(expected.clone()));
    let book = storage.load_book(posted.id).await.expect("load_book failed").expect("no book header was created");
    assert_eq!((book.id, book.name.as_str()), (posted.id, "provision"), "the book is named after its first flow");
    assert_eq!(book.flows, BTreeMap::from([(flow.id, expected)]));
}

/// 300 atoms of ~10 KiB each (3 MiB, far over one etcd txn by count and by
/// bytes) round-trip exactly, and a later batch still updates them.
pub async fn big_batch_round_trips(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    let flow = FlowDetail::new(Uuid::new_v4(), "wide");
    let atoms: Vec<AtomDetail> = (0..300)
        .map(|i| {
            let mut atom = atom(&format!("shard-{i:03}"), AtomState::Success);
            atom.result = Some(json!({ "shard": i, "blob": format!("{i:04}").repeat(2560) }));
            atom
        })
        .collect();
    let refs: Vec<&AtomDetail> = atoms.iter().collect();
    let changes = FlowChanges { flow: Some(&flow), atoms: &refs };
    storage.save_changes(posted.id, flow.id, changes).await.expect("save_changes of a big batch failed");
    let loaded = storage.load_flow(posted.id, flow.id).await.expect("load_flow failed").expect("the flow was lost");
    assert_eq!(loaded, with_atoms(&flow, &refs), "the big batch did not round-trip exactly");

    let mut reverted = atoms.clone();
    for atom in &mut reverted {
        atom.state = AtomState::Reverted;
        atom.version += 1;
    }
    let refs: Vec<&AtomDetail> = reverted.iter().collect();
    storage.save_changes(posted.id, flow.id, FlowChanges::atoms(&refs)).await.expect("atoms-only big batch failed");
    let book = a.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(book.flows, BTreeMap::from([(flow.id, with_atoms(&flow, &refs))]));
}

/// Atoms of a flow that was never saved: `NotFound`, and nothing is written.
pub async fn atoms_only_batch_needs_its_flow(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    let (x, y) = (atom("x", AtomState::Success), atom("y", AtomState::Running));

    let orphan = storage.save_changes(posted.id, Uuid::new_v4(), FlowChanges::atoms(&[&x, &y])).await;
    assert!(matches!(orphan, Err(StorageError::NotFound(_))), "atoms of an unsaved flow gave {orphan:?}");
    assert_eq!(a.logbook(posted.id).await.expect("logbook failed"), None, "a refused batch wrote a logbook");

    let flow = FlowDetail::new(Uuid::new_v4(), "real");
    storage.save_flow(posted.id, &flow).await.expect("save_flow failed");
    let stray = storage.save_changes(posted.id, Uuid::new_v4(), FlowChanges::atoms(&[&x, &y])).await;
    assert!(matches!(stray, Err(StorageError::NotFound(_))), "atoms of another flow gave {stray:?}");
    let book = a.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(book.flows, BTreeMap::from([(flow.id, flow)]), "a refused batch wrote atoms");
}

/// A batch whose second atom is over the size limit is refused naming that
/// atom, and nothing of it is written: not the flow, not the first atom.
pub async fn oversize_atom_refuses_whole_batch(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    let flow = FlowDetail::new(Uuid::new_v4(), "flow");
    let (first, last) = (atom("first", AtomState::Success), atom("last", AtomState::Running));
    let mut huge = atom("huge", AtomState::Success);
    huge.result = Some(json!("x".repeat(suite_config("any").max_value_bytes + 1)));

    let batch = [&first, &huge, &last];
    let refused = storage.save_changes(posted.id, flow.id, FlowChanges { flow: Some(&flow), atoms: &batch }).await;
    match &refused {
        Err(StorageError::Rejected { what, .. }) => assert!(what.contains("huge"), "the refusal names {what:?}"),
        other => panic!("a batch with an oversize atom gave {other:?}"),
    }
    assert_eq!(a.logbook(posted.id).await.expect("logbook failed"), None, "a refused batch wrote something");

    storage.save_flow(posted.id, &flow).await.expect("save_flow failed");
    let refused = storage.save_changes(posted.id, flow.id, FlowChanges::atoms(&[&first, &huge])).await;
    assert!(matches!(refused, Err(StorageError::Rejected { .. })), "an atoms-only oversize batch gave {refused:?}");
    let loaded = storage.load_flow(posted.id, flow.id).await.expect("load_flow failed");
    assert_eq!(loaded, Some(flow), "a refused atoms-only batch wrote its first atom");
}

/// After the claim passed to another owner, the old owner's batches (small,
/// atoms-only, and big enough to span several etcd txns) get `ClaimLost` and
/// change nothing.
pub async fn fenced_batch_writes_nothing(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&b, job("work", 1)).await;
    let old = a.claim(posted.id).await.expect("claim failed");
    let old_storage = old.storage();
    let mut flow = FlowDetail::new(Uuid::new_v4(), "flow");
    let step = atom("step", AtomState::Running);
    old_storage
        .save_changes(posted.id, flow.id, FlowChanges { flow: Some(&flow), atoms: &[&step] })
        .await
        .expect("save_changes failed");

    f.kill_session("a").await;
    wait_for_state(&b, posted.id, JobState::Unclaimed).await;
    let _new = b.claim(posted.id).await.expect("second claim failed");
    let recorded = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");

    flow.state = FlowState::Success;
    flow.version += 1;
    let done = atom("step", AtomState::Success);
    let many: Vec<AtomDetail> = (0..150).map(|i| atom(&format!("zombie-{i}"), AtomState::Success)).collect();
    let many: Vec<&AtomDetail> = many.iter().collect();
    let writes = [
        (
            "flow and atom",
            old_storage.save_changes(posted.id, flow.id, FlowChanges { flow: Some(&flow), atoms: &[&done] }).await,
        ),
        ("atoms only", old_storage.save_changes(posted.id, flow.id, FlowChanges::atoms(&[&done])).await),
        ("many atoms", old_storage.save_changes(posted.id, flow.id, FlowChanges::atoms(&many)).await),
    ];
    for (what, result) in writes {
        assert!(matches!(result, Err(StorageError::ClaimLost(_))), "old owner's batch of {what} gave {result:?}");
    }
    let after = b.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!(after, recorded, "a fenced batch changed the logbook");
}

/// A batch updating the flow's state and some atoms leaves the other atoms
/// alone, ignores the atoms map of the flow detail it is given, and applies
/// two changes of one atom in order (the last one wins).
pub async fn batch_updates_flow_and_leaves_other_atoms(f: &impl BoardFactory) {
    let a = f.session("a").await;
    let posted = post(&a, job("work", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let storage = claim.storage();
    let mut book = LogBook::new(posted.id, "job book");
    book.meta.insert("poster".into(), json!("client-7"));
    storage.save_book(&book).await.expect("save_book failed");
    let mut flow = FlowDetail { state: FlowState::Running, ..FlowDetail::new(Uuid::new_v4(), "flow") };
    let (x, y, z) = (atom("x", AtomState::Success), atom("y", AtomState::Running), atom("z", AtomState::Pending));
    storage
        .save_changes(posted.id, flow.id, FlowChanges { flow: Some(&flow), atoms: &[&x, &y, &z] })
        .await
        .expect("save_changes failed");

    flow.state = FlowState::Success;
    flow.version += 1;
    flow.meta.insert("took_ms".into(), json!(12));
    // Stale atoms riding on the flow detail must not be written.
    let mut carried = flow.clone();
    carried.atoms.insert("ghost".into(), atom("ghost", AtomState::Failure));
    carried.atoms.insert("x".into(), atom("x", AtomState::Failure));
    let y_done = atom("y", AtomState::Success);
    let mut y_reverted = y_done.clone();
    y_reverted.state = AtomState::Reverted;
    y_reverted.version += 1;
    let w = atom("w", AtomState::Success);
    let changes = FlowChanges { flow: Some(&carried), atoms: &[&y_done, &w, &y_reverted] };
    storage.save_changes(posted.id, flow.id, changes).await.expect("save_changes failed");

    let expected = with_atoms(&flow, &[&x, &y_reverted, &z, &w]);
    assert_eq!(storage.load_flow(posted.id, flow.id).await.expect("load_flow failed"), Some(expected.clone()));
    let loaded = a.logbook(posted.id).await.expect("logbook failed").expect("the logbook was lost");
    assert_eq!((loaded.name.as_str(), &loaded.meta), ("job book", &book.meta), "a batch rewrote the book header");
    assert_eq!(loaded.flows, BTreeMap::from([(flow.id, expected)]));
}
