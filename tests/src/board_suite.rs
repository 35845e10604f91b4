//! The `JobBoard` conformance suite, run against every backend.
//!
//! Each case is a `pub async fn name(f: &impl BoardFactory)`: it asks the
//! factory for sessions (one owner each) on one fresh board namespace and
//! checks behaviour through the public trait only. `tests/board.rs` runs every
//! case on every backend with its `board_test!` macro (ripgrep's `rgtest!`).
//!
//! Factories use `BoardConfig` defaults (quarantine after 5 claims, 1 MiB
//! values), and the cases rely on them.
//!
//! ## Layout
//! - `factories`: `EmbeddedFactory` (SQLite in a temp dir) and `EtcdFactory` (the shared test etcd).
//! - `claiming`: racing claimers, order, filters, abandon, consume, trash, quarantine.
//! - `failover`: lost sessions, fencing of the old owner, wake-ups, cancellation.
//! - `features`: claims never hand out a job needing a feature the claimer lacks.
//! - `flow_defs`: flow definitions: versions, the apply rule, concurrent applies, deletion.
//! - `lifecycle`: the API follows `jobboard::lifecycle`'s table and quarantine rule.
//! - `posting`: idempotency, bad inputs, listing, conductors.
//! - `listing`: every state and flow filter agrees with the filtered full listing.
//! - `logbooks`: logbook storage through a claim, and resume by another owner.
//! - `workers`: remote workers recorded by one session, seen by every session's watch.
//! - `batches`: `save_changes` batches: whole, chunked, refused, fenced.
//! - `schedules`: schedules: create once, compare-and-swap on the revision, delete, wake-ups.
//! - `operations`: suspend, halt, resume, retry, and the job deadline scan.
//! - `final_writes`: the run's last logbook write with the consume (`Claim::consuming_storage`), fenced.
//! - `picks`: claims folded into the first logbook write (`JobBoard::pick_next`): races, cancels, resume.
//! - `parking`: parked tasks: park, complete by token, resume elsewhere, cancel, deadline races.

mod batches;
mod claiming;
mod factories;
mod failover;
mod features;
mod final_writes;
mod flow_defs;
mod lifecycle;
mod listing;
mod logbooks;
mod operations;
mod parking;
mod picks;
mod posting;
mod schedules;
mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jobboard::{BoardConfig, JobBoard, JobId, JobState, ListQuery, NewJob};
use serde_json::{json, Map, Value};

pub use batches::{
    atoms_only_batch_needs_its_flow, batch_creates_flow_and_atoms, batch_updates_flow_and_leaves_other_atoms,
    big_batch_round_trips, fenced_batch_writes_nothing, oversize_atom_refuses_whole_batch,
};
pub use claiming::{
    a_fleet_drains_a_backlog_claiming_each_job_once, abandon_then_reclaim, consume_and_trash,
    filtered_claims_keep_order, flow_filter, priority_then_fifo, quarantine_after_n_claims, twenty_claimers_race,
};
pub use factories::{EmbeddedFactory, EtcdFactory};
pub use failover::{
    cancel_unclaimed_and_claimed, close_releases_claims, lost_session_returns_job, old_owner_is_fenced, wakeups_fire,
};
pub use features::claims_honour_required_features;
pub use final_writes::{
    final_write_consumes_the_job, final_write_ends_the_job_only_when_asked, lost_claims_final_write_writes_nothing,
};
pub use flow_defs::{
    a_flow_in_use_is_not_deleted, concurrent_applies_each_get_a_version, flow_versions_follow_the_apply_rule,
    pins_persist_and_flow_changes_wake, unknown_flows_and_bad_names_are_refused,
};
pub use lifecycle::{api_follows_the_lifecycle_table, quarantine_reason_is_the_rules};
pub use listing::{
    assert_filtered_listings_agree, assert_filtered_listings_agree_at, list_by_state_matches_filtered_full_list,
    listings_show_other_sessions_writes_at_once,
};
pub use logbooks::{first_claim_book_is_empty_until_written, logbook_round_trip_and_resume};
pub use operations::{
    overdue_jobs_are_cancelled_with_deadline_exceeded, retry_requeues_failures_and_trashed_jobs,
    suspend_halt_and_resume,
};
pub use parking::{
    a_completion_while_claimed_reaches_the_owner, a_parked_job_is_completed_and_resumed_elsewhere,
    cancel_while_parked_reverts, completion_races_the_deadline, the_backlog_counts_the_queue_and_the_parked_jobs,
    wrong_tokens_are_not_found,
};
pub use picks::{
    a_job_cancelled_after_its_pick_is_not_claimed, a_pick_claims_with_its_first_write,
    a_pick_that_loses_the_race_writes_nothing, a_resumed_job_is_picked_with_its_logbook,
    sibling_picks_take_different_jobs,
};
pub use posting::{bad_inputs_write_nothing, conductors_register_and_drain, idempotent_post, list_filters_and_pages};
pub use schedules::schedules_are_stored_once_and_changed_by_compare_and_swap;
pub use workers::workers_are_seen_by_every_session_and_leave_with_theirs;

/// Makes sessions on one board namespace, fresh for each test.
pub trait BoardFactory: Send + Sync {
    /// A new session (its own owner name) on this test's board.
    fn session(&self, owner: &str) -> impl Future<Output = Arc<dyn JobBoard>> + Send;

    /// Ends the session of `owner` the way a crash would, as far as the
    /// backend allows: on etcd its lease is left to expire; the embedded board
    /// has no lease, so the session is closed.
    fn kill_session(&self, owner: &str) -> impl Future<Output = ()> + Send;
}

/// The settings every factory must use (the cases rely on these defaults).
pub fn suite_config(owner: &str) -> BoardConfig {
    BoardConfig::new(owner)
}

/// How long any single wait may take before the case fails instead of hanging.
/// Generous: a lease must expire (2 s TTL on etcd) on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// A small store.
pub fn store(n: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("n".into(), json!(n));
    m
}

/// A job of `flow` with priority 0.
pub fn job(flow: &str, n: i64) -> NewJob {
    NewJob::new(flow, store(n))
}

/// Posts a job, failing the test on error.
pub async fn post(board: &Arc<dyn JobBoard>, new: NewJob) -> jobboard::Job {
    board.post(new).await.unwrap_or_else(|e| panic!("post failed: {e}"))
}

/// Waits until a job is in `state` (woken by `watch_job`, never polling blindly).
pub async fn wait_for_state(board: &Arc<dyn JobBoard>, id: JobId, state: JobState) -> jobboard::Job {
    let mut changes = board.watch_job(id).await.unwrap_or_else(|e| panic!("watch_job({id}) failed: {e}"));
    within(&format!("job {id} to become {state}"), async {
        loop {
            let job = board.get(id).await.unwrap_or_else(|e| panic!("get({id}) failed: {e}"));
            if job.state == state {
                return job;
            }
            changes.changed().await.unwrap_or_else(|e| panic!("job watch of {id} ended: {e}"));
        }
    })
    .await
}

/// Every job on the board, all pages.
pub async fn list_all(board: &Arc<dyn JobBoard>) -> Vec<jobboard::Job> {
    let mut query = ListQuery::default();
    let mut jobs = Vec::new();
    loop {
        let page = board.list(&query).await.unwrap_or_else(|e| panic!("list failed: {e}"));
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => query.page_token = Some(next),
            None => return jobs,
        }
    }
}
