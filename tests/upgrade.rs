//! Upgrades: a board written by the previous release opens under this one and its jobs run
//! (issue 12, "Upgrades").
//!
//! The fixtures in `tests/fixtures/upgrade/` were written by an older release's code
//! (`make_upgrade_fixtures`): an embedded board file, and the keys of an etcd board as JSON
//! lines. Each test puts one under a real stock `conductor` and checks that the waiting job
//! runs, that the job left mid-run resumes from its logbook (its finished tasks are not run
//! again), that the finished job still reads, and that a new job runs on the migrated board.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::time::Duration;

use serde_json::Value;
use tests::conductor::{
    get_job, is_complete, post_job, task_executions, wait_job, ConductorConfig, ConductorProcess, OrFail,
};
use tests::etcd::{unique_prefix, EtcdProcess};
use tests::upgrade::{finish_result, fixture_jobs, fixtures_dir, load_etcd, FixtureJobs};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
const PATIENCE: Duration = Duration::from_secs(120);

/// The fixture's jobs all end as the previous release would have ended them, run here.
fn check_jobs_run(endpoint: &str, jobs: &FixtureJobs) {
    let finished = get_job(endpoint, &jobs.finished).or_fail();
    assert_eq!(
        (finished["state"].as_str(), finished["outcome"].as_str()),
        (Some("COMPLETE"), Some("SUCCESS")),
        "the job finished before the upgrade still reads: {finished}"
    );
    assert_eq!(finished["outputs"]["done"], finish_result("done"), "{finished}");

    let waiting = wait_job(endpoint, &jobs.waiting, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(waiting["outcome"].as_str(), Some("SUCCESS"), "{waiting}");
    assert_eq!(waiting["outputs"]["done"], finish_result("waiting"), "{waiting}");

    let resumed = wait_job(endpoint, &jobs.mid_run, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(resumed["outcome"].as_str(), Some("SUCCESS"), "{resumed}");
    // `finish` is built from the greeting `greet` recorded before the upgrade.
    assert_eq!(resumed["outputs"]["done"], finish_result("mid"), "{resumed}");
    let runs = task_executions(&resumed);
    assert_eq!(
        (runs.get("greet"), runs.get("pause"), runs.get("finish")),
        (Some(&1), Some(&1), Some(&1)),
        "tasks finished before the upgrade are not run again: {resumed}"
    );

    let new = post_job(endpoint, "upgrade-demo", &[("who", "new")]).or_fail();
    let new: Value = wait_job(endpoint, &new, PATIENCE, "completion", is_complete).or_fail();
    assert_eq!(new["outputs"]["done"], finish_result("new"), "a job posted after the upgrade runs: {new}");
}

#[test]
fn an_embedded_board_of_the_previous_release_runs_its_jobs() {
    let data = tempfile::tempdir().or_fail();
    std::fs::copy(fixtures_dir().join("embedded.sqlite3"), data.path().join("board.sqlite3")).or_fail();
    let jobs = fixture_jobs("embedded-jobs.json").or_fail();
    let mut config = ConductorConfig::embedded(data.path(), "upgraded");
    config.binary = "conductor";
    let conductor = ConductorProcess::start(&config).or_fail();
    check_jobs_run(&conductor.endpoint(), &jobs);
}

#[test]
fn an_etcd_board_of_the_previous_release_runs_its_jobs() {
    let etcd = EtcdProcess::shared();
    let prefix = unique_prefix("upgrade");
    let runtime = tokio::runtime::Runtime::new().or_fail();
    let dump = std::fs::read_to_string(fixtures_dir().join("etcd.jsonl")).or_fail();
    let loaded = runtime.block_on(load_etcd(&etcd.endpoint(), &prefix, &dump)).or_fail();
    assert!(loaded > 10, "the dump holds the board: {loaded} keys");
    let jobs = fixture_jobs("etcd-jobs.json").or_fail();
    let mut config = ConductorConfig::etcd(&etcd.endpoint(), &prefix, "upgraded", Duration::from_secs(10));
    config.binary = "conductor";
    let conductor = ConductorProcess::start(&config).or_fail();
    check_jobs_run(&conductor.endpoint(), &jobs);
}
