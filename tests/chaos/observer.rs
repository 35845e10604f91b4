//! The observer: once a second it lists the jobs and snapshots (`baton get`, with tasks)
//! each posted job it sees final (COMPLETE or TRASHED) for the first time. The checker
//! compares these snapshots with the records at the end: a final record never changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tests::chaos::flow::FLOW;

use crate::cli::Cli;
use crate::poster::PostedJobs;

/// Each job's `baton get` as first seen final, by id.
pub type FinalSnapshots = Arc<Mutex<BTreeMap<String, Value>>>;

/// Whether a job's state is final.
pub fn is_final(job: &Value) -> bool {
    matches!(job["state"].as_str(), Some("COMPLETE" | "TRASHED"))
}

/// Starts observing until `stop` is set.
pub fn spawn(cli: Arc<Cli>, posted: PostedJobs, finals: FinalSnapshots, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("chaos-observer".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                snapshot_new_finals(&cli, &posted, &finals);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the observer thread: {e}"))
}

/// One round: list, then `get` each posted job newly listed as final.
pub fn snapshot_new_finals(cli: &Cli, posted: &PostedJobs, finals: &FinalSnapshots) {
    let Ok(Value::Array(listed)) = cli.any(&["list", "--flow", FLOW]) else { return };
    let ours: BTreeSet<String> =
        posted.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|p| p.id.clone()).collect();
    let new: Vec<String> = {
        let known = finals.lock().unwrap_or_else(|e| e.into_inner());
        listed
            .iter()
            .filter(|job| is_final(job))
            .filter_map(|job| job["id"].as_str())
            .filter(|id| ours.contains(*id) && !known.contains_key(*id))
            .map(str::to_string)
            .collect()
    };
    for id in new {
        if let Ok(job) = cli.any(&["get", &id]) {
            if is_final(&job) {
                finals.lock().unwrap_or_else(|e| e.into_inner()).insert(id, job);
            }
        }
    }
}
