//! The hub and the board: this conductor's workers recorded under its session (one put
//! when a worker connects, one delete when it goes: a few writes per worker session,
//! none per task), and the fleet's worker set followed by the board's watch, for routing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jobboard::JobBoard;
use tokio_util::sync::CancellationToken;

use super::WorkerHub;

/// How soon a failed board write is tried again.
const RETRY: Duration = Duration::from_secs(1);

impl WorkerHub {
    /// For one board session: publishes this conductor's workers and follows the fleet's,
    /// until `stop` (the session ends; its lease takes the records along).
    pub async fn follow_board(self, board: Arc<dyn JobBoard>, stop: CancellationToken) {
        let mut fleet = loop {
            match board.worker_set().await {
                Ok(set) => break set,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch the board's workers; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        };
        *self.inner.fleet.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fleet.clone());
        let mut local = self.inner.local_changed.subscribe();
        let (conductor, address) = (self.settings().conductor.clone(), self.address().to_owned());
        // Worker id -> the stream session whose record is on the board.
        let mut published: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            let records = self.lock().records(&conductor, &address);
            let mut failed = false;
            for (session, record) in &records {
                if published.get(&record.id) != Some(session) {
                    match board.put_worker(record).await {
                        Ok(()) => {
                            published.insert(record.id.clone(), *session);
                        }
                        Err(error) => {
                            tracing::warn!(%error, worker = %record.id, "cannot record the worker on the board");
                            failed = true;
                        }
                    }
                }
            }
            let gone: Vec<String> =
                published.keys().filter(|id| !records.iter().any(|(_, r)| &r.id == *id)).cloned().collect();
            for id in gone {
                match board.remove_worker(&conductor, &id).await {
                    Ok(()) => {
                        published.remove(&id);
                    }
                    Err(error) => {
                        tracing::warn!(%error, worker = %id, "cannot remove the worker from the board");
                        failed = true;
                    }
                }
            }
            tokio::select! {
                _ = local.changed() => {}
                _ = fleet.changed() => self.inner.capacity.notify_waiters(),
                () = tokio::time::sleep(RETRY), if failed => {}
                () = stop.cancelled() => break,
            }
        }
        *self.inner.fleet.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The fleet's workers on other conductors (empty before the board answers). A worker
    /// attached here is left out: a record of it elsewhere is that conductor's stale one
    /// (it died, its lease has not expired yet).
    pub(crate) fn elsewhere(&self) -> Vec<jobboard::WorkerRecord> {
        let records: Vec<jobboard::WorkerRecord> = {
            let fleet = self.inner.fleet.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(fleet) = fleet.as_ref() else { return Vec::new() };
            let set = fleet.borrow();
            set.values().filter(|r| r.conductor != self.settings().conductor).cloned().collect()
        };
        let state = self.lock();
        records.into_iter().filter(|r| !state.workers.contains_key(&r.id)).collect()
    }
}
