//! `baton workers`: the connected remote workers, as JSON or a table.

use proto::pb;
use serde_json::{json, Value};

use crate::duration::format_time;
use crate::output::table;

/// "in use/total", or "?/total" when the worker's conductor did not answer.
fn slots(w: &pb::WorkerInfo) -> String {
    match w.slots_in_use {
        Some(used) => format!("{used}/{}", w.slots),
        None => format!("?/{}", w.slots),
    }
}

/// The JSON form of a worker.
pub fn worker_json(w: &pb::WorkerInfo) -> Value {
    let tasks: Vec<Value> = w.tasks.iter().map(|t| json!({"name": t.name, "can_revert": t.can_revert})).collect();
    json!({
        "id": w.worker_id,
        "conductor": w.conductor,
        "tasks": tasks,
        "slots": w.slots,
        "slots_in_use": w.slots_in_use,
        "labels": w.labels,
        "sdk": w.sdk,
        "since": w.connected_since_ms,
    })
}

/// Workers as a table.
pub fn workers_table(workers: &[pb::WorkerInfo]) -> String {
    let rows = workers.iter().map(|w| {
        let tasks: Vec<&str> = w.tasks.iter().map(|t| t.name.as_str()).collect();
        vec![w.worker_id.clone(), w.conductor.clone(), tasks.join(", "), slots(w), format_time(w.connected_since_ms)]
    });
    table(&["ID", "CONDUCTOR", "TASKS", "SLOTS", "SINCE"], rows)
}
