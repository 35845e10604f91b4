//! Remote workers on the board: who is connected to which conductor.
//!
//! The conductor a worker's stream is attached to records it (`JobBoard::put_worker`)
//! under its own session (etcd: its lease, key `P w/<conductor>/<worker-id>`), and
//! removes it when the stream ends; a conductor that dies takes its records with its
//! lease. Every board keeps the whole set current by a watch (`JobBoard::worker_set`),
//! so routing reads memory, never etcd, and no write happens per task.

use std::collections::BTreeMap;
use std::sync::Arc;

use flows::Millis;
use serde::{Deserialize, Serialize};

/// One task name a worker offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTask {
    /// The name flows use.
    pub name: String,
    /// Whether it has a revert handler.
    pub can_revert: bool,
    /// Its default execution timeout in ms (0: none).
    #[serde(default)]
    pub default_timeout_ms: u64,
}

/// A connected worker as the fleet sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The worker's id.
    pub id: String,
    /// The conductor its stream is attached to.
    pub conductor: String,
    /// That conductor's advertised gRPC address (where relays go).
    pub address: String,
    /// What it runs.
    pub tasks: Vec<WorkerTask>,
    /// Its slot count when it connected.
    pub slots: u32,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its SDK.
    #[serde(default)]
    pub sdk: String,
    /// When it connected.
    pub since: Millis,
}

impl WorkerRecord {
    /// The set's key for this record: conductor and worker id.
    pub fn key(&self) -> (String, String) {
        (self.conductor.clone(), self.id.clone())
    }
}

/// Every connected worker, by (conductor, worker id).
pub type WorkerSet = Arc<BTreeMap<(String, String), WorkerRecord>>;

/// Checks the names a record's key is made of.
pub(crate) fn check(record: &WorkerRecord) -> Result<(), crate::Error> {
    for (what, name) in [("worker id", &record.id), ("conductor name", &record.conductor)] {
        if name.is_empty() || name.contains('/') || name.len() > 256 {
            return Err(crate::Error::InvalidInput(format!("bad {what} {name:?}: empty, too long or contains '/'")));
        }
    }
    Ok(())
}
