//! Board conformance: the shared suite on the embedded and etcd backends.
//!
//! `board_test!(case)` emits one test per backend for a case of
//! `tests::board_suite` (as ripgrep's `rgtest!` does per engine): the
//! `embedded` one on a fresh SQLite file, the `etcd` one under a fresh key
//! prefix on the one etcd this binary starts. Embedded-only behaviour
//! (durability across a reopen) is tested at the bottom.

use std::time::Duration;

use flows::{AtomDetail, AtomKind, FlowDetail, LogBook};
use jobboard::embedded::EmbeddedBoard;
use jobboard::{BoardConfig, FlowFilter, JobBoard, JobState, NewJob, Outcome};
use serde_json::{json, Map};
use uuid::Uuid;

macro_rules! board_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn embedded() {
                let factory = tests::board_suite::EmbeddedFactory::new();
                tests::board_suite::$name(&factory).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn etcd() {
                let factory = tests::board_suite::EtcdFactory::new(stringify!($name)).await;
                tests::board_suite::$name(&factory).await;
            }
        }
    };
}

board_test!(twenty_claimers_race);
board_test!(a_fleet_drains_a_backlog_claiming_each_job_once);
board_test!(priority_then_fifo);
board_test!(flow_filter);
board_test!(filtered_claims_keep_order);
board_test!(claims_honour_required_features);
board_test!(abandon_then_reclaim);
board_test!(consume_and_trash);
board_test!(quarantine_after_n_claims);
board_test!(quarantine_reason_is_the_rules);
board_test!(suspend_halt_and_resume);
board_test!(retry_requeues_failures_and_trashed_jobs);
board_test!(overdue_jobs_are_cancelled_with_deadline_exceeded);
board_test!(api_follows_the_lifecycle_table);
board_test!(flow_versions_follow_the_apply_rule);
board_test!(unknown_flows_and_bad_names_are_refused);
board_test!(concurrent_applies_each_get_a_version);
board_test!(a_flow_in_use_is_not_deleted);
board_test!(pins_persist_and_flow_changes_wake);
board_test!(lost_session_returns_job);
board_test!(close_releases_claims);
board_test!(old_owner_is_fenced);
board_test!(wakeups_fire);
board_test!(schedules_are_stored_once_and_changed_by_compare_and_swap);
board_test!(cancel_unclaimed_and_claimed);
board_test!(idempotent_post);
board_test!(bad_inputs_write_nothing);
board_test!(list_filters_and_pages);
board_test!(list_by_state_matches_filtered_full_list);
board_test!(listings_show_other_sessions_writes_at_once);
board_test!(conductors_register_and_drain);
board_test!(logbook_round_trip_and_resume);
board_test!(first_claim_book_is_empty_until_written);
board_test!(batch_creates_flow_and_atoms);
board_test!(big_batch_round_trips);
board_test!(atoms_only_batch_needs_its_flow);
board_test!(oversize_atom_refuses_whole_batch);
board_test!(fenced_batch_writes_nothing);
board_test!(batch_updates_flow_and_leaves_other_atoms);
board_test!(final_write_consumes_the_job);
board_test!(final_write_ends_the_job_only_when_asked);
board_test!(lost_claims_final_write_writes_nothing);
board_test!(a_pick_claims_with_its_first_write);
board_test!(a_pick_that_loses_the_race_writes_nothing);
board_test!(a_job_cancelled_after_its_pick_is_not_claimed);
board_test!(sibling_picks_take_different_jobs);
board_test!(a_resumed_job_is_picked_with_its_logbook);
board_test!(workers_are_seen_by_every_session_and_leave_with_theirs);
board_test!(a_parked_job_is_completed_and_resumed_elsewhere);
board_test!(wrong_tokens_are_not_found);
board_test!(cancel_while_parked_reverts);
board_test!(a_completion_while_claimed_reaches_the_owner);
board_test!(completion_races_the_deadline);
board_test!(the_backlog_counts_the_queue_and_the_parked_jobs);

/// Embedded only: the board file survives the process. A job claimed when the
/// process "died" (the board was dropped without closing) is UNCLAIMED after
/// reopening, keeps its claim count and logbook, and resumes under a new token;
/// a finished job keeps its outcome.
#[tokio::test(flavor = "multi_thread")]
async fn embedded_durable_across_reopen() {
    let dir = tempfile::tempdir().expect("cannot create a temp dir");
    let path = dir.path().join("board.db");
    let mut store = Map::new();
    store.insert("disk".into(), json!("sda"));

    let (held, finished, book, flow, atom, old_token) = {
        let board = EmbeddedBoard::open(&path, BoardConfig::new("before")).expect("open failed");
        let held = board.post(NewJob::new("work", store.clone())).await.expect("post failed");
        let finished = board.post(NewJob::new("work", store.clone())).await.expect("post failed");
        board
            .claim(finished.id)
            .await
            .expect("claim failed")
            .consume(Outcome::Reverted, None)
            .await
            .expect("consume failed");

        let claim = board.claim(held.id).await.expect("claim failed");
        let storage = claim.storage();
        let book = LogBook::new(held.id, "book");
        let flow = FlowDetail::new(Uuid::new_v4(), "flow");
        let mut atom = AtomDetail::new("step", AtomKind::Task);
        atom.result = Some(json!({"done": 1}));
        storage.save_book(&book).await.expect("save_book failed");
        storage.save_flow(book.id, &flow).await.expect("save_flow failed");
        storage.save_atom(book.id, flow.id, &atom).await.expect("save_atom failed");
        let token = claim.token();
        // The process dies: no close, no abandon.
        drop((claim, storage, board));
        (held, finished, book, flow, atom, token)
    };

    let board = EmbeddedBoard::open(&path, BoardConfig::new("after")).expect("reopen failed");
    let mut wakeups = board.claimable();
    let recovered = board.get(held.id).await.expect("get failed");
    assert_eq!((recovered.state, recovered.owner.as_deref(), recovered.claims), (JobState::Unclaimed, None, 1));
    assert_eq!(recovered.store, store);
    let done = board.get(finished.id).await.expect("get failed");
    assert_eq!((done.state, done.outcome), (JobState::Complete, Some(Outcome::Reverted)));

    let resumed = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("nothing to resume");
    assert_eq!(resumed.id(), held.id);
    assert!(resumed.token() > old_token);
    let seen = resumed.storage().load_book(book.id).await.expect("load_book failed").expect("the logbook was lost");
    assert_eq!(seen.flows[&flow.id].atoms["step"], atom);
    // Nothing else is claimable, and a new post still wakes claimers.
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none());
    board.post(NewJob::new("work", Map::new())).await.expect("post failed");
    tokio::time::timeout(Duration::from_secs(30), wakeups.changed())
        .await
        .expect("no wake-up after a post")
        .expect("wake-ups closed");
}
