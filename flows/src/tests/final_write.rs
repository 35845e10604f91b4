//! The run's last write goes through `Storage::save_final` with how the run
//! ends, so a backend can record the end in the same atomic write (a job board
//! consumes the job with it); the engine reports the end only once it is stored.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use uuid::Uuid;

use super::{boom, engine_on, ok};
use crate::{Error, Flow, FlowChanges, FlowDetail, FlowEnd, FlowState, LogBook, MemoryStorage, Storage, StorageError};

/// Memory storage noting each write as `changes: ...` or `final <STATE> <failure kind>: ...`;
/// `refuse_final` makes every `save_final` fail (writing nothing), as a lost claim would.
#[derive(Debug, Default)]
struct Noted {
    inner: MemoryStorage,
    writes: Mutex<Vec<String>>,
    refuse_final: bool,
}

fn describe(changes: &FlowChanges<'_>) -> String {
    let mut parts: Vec<String> = changes.flow.map(|f| format!("flow {}", f.state)).into_iter().collect();
    parts.extend(changes.atoms.iter().map(|a| format!("{} {}", a.name, a.state)));
    parts.join(", ")
}

#[async_trait]
impl Storage for Noted {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.inner.save_book(book).await
    }
    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.inner.load_book(book).await
    }
    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.inner.load_flow(book, flow).await
    }
    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        self.writes.lock().expect("lock").push(format!("changes: {}", describe(&changes)));
        self.inner.save_changes(book, flow, changes).await
    }
    async fn save_final(
        &self,
        book: Uuid,
        flow: Uuid,
        changes: FlowChanges<'_>,
        end: FlowEnd<'_>,
    ) -> Result<(), StorageError> {
        if self.refuse_final {
            return Err(StorageError::ClaimLost("test".into()));
        }
        let kind = end.failure.map_or("-", |f| f.kind.as_str());
        self.writes.lock().expect("lock").push(format!("final {} {kind}: {}", end.state, describe(&changes)));
        self.inner.save_changes(book, flow, changes).await
    }
}

#[tokio::test]
async fn the_last_write_of_a_run_is_its_final_write_with_how_it_ends() {
    let storage = Arc::new(Noted::default());
    let flow = Flow::linear("f").add(ok("a")).add(ok("b")).add(ok("c"));
    let mut engine = engine_on(flow, storage.clone(), Uuid::new_v4(), Uuid::new_v4(), 1).await;
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Success);
    let writes = storage.writes.lock().expect("lock").clone();
    assert_eq!(
        writes,
        [
            "changes: flow RUNNING, a RUNNING",
            "changes: a SUCCESS, b RUNNING",
            "changes: b SUCCESS, c RUNNING",
            "final SUCCESS -: flow SUCCESS, c SUCCESS",
        ]
    );

    let storage = Arc::new(Noted::default());
    let flow = Flow::linear("f").add(ok("a")).add(boom("b"));
    let mut engine = engine_on(flow, storage.clone(), Uuid::new_v4(), Uuid::new_v4(), 1).await;
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    let last = storage.writes.lock().expect("lock").last().cloned().unwrap_or_default();
    let kind = outcome.failure.map(|f| f.kind).unwrap_or_default();
    assert!(last.starts_with(&format!("final REVERTED {kind}: flow REVERTED")), "{last}");
}

#[tokio::test]
async fn a_refused_final_write_fails_the_run_and_a_resume_ends_it_again() {
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    let storage = Arc::new(Noted { refuse_final: true, ..Noted::default() });
    let flow = || Flow::linear("f").add(ok("a")).add(ok("b"));
    let mut engine = engine_on(flow(), storage.clone(), book, flow_id, 1).await;
    let err = engine.run().await.expect_err("the end was not stored, so the run cannot report it");
    assert!(matches!(err, Error::Storage(StorageError::ClaimLost(_))), "{err:?}");
    let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
    assert_eq!(stored.state, FlowState::Running, "nothing of the refused final write is stored");

    // The logbook is as the engine could have left it: a later run ends it with a final write.
    let resumed = Arc::new(Noted { inner: MemoryStorage::new(), ..Noted::default() });
    resumed.inner.save_changes(book, flow_id, FlowChanges::flow(&stored)).await.expect("copy flow");
    let atoms: Vec<_> = stored.atoms.values().collect();
    resumed.inner.save_changes(book, flow_id, FlowChanges::atoms(&atoms)).await.expect("copy atoms");
    let mut engine = engine_on(flow(), resumed.clone(), book, flow_id, 1).await;
    assert_eq!(engine.run().await.expect("resumes").state, FlowState::Success);
    let last = resumed.writes.lock().expect("lock").last().cloned().unwrap_or_default();
    assert!(last.starts_with("final SUCCESS -: flow SUCCESS"), "{last}");
}
