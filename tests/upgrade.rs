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
    bin_path, get_job, is_complete, post_job, task_executions, wait_job, ConductorConfig, ConductorProcess, OrFail,
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
    let kept = data.path().join("board.sqlite3.schema-v4.bak");
    assert!(kept.is_file(), "the file as the previous release left it is kept beside it");
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
    let format = runtime.block_on(keys_under(&etcd.endpoint(), &format!("{prefix}format"))).or_fail();
    assert_eq!(format, vec![(format!("{prefix}format"), "1".to_string())], "the migrated board records its format");
}

/// Runs the stock conductor on `board_args` until it exits (bounded): its status and stderr.
fn refused_start(board_args: &[&str]) -> (Option<i32>, String) {
    let log = tempfile::NamedTempFile::new().or_fail();
    let mut child = std::process::Command::new(bin_path("conductor"))
        .args(["--listen", "127.0.0.1:0", "--name", "refused"])
        .args(board_args)
        .env_remove("BATON_ETCD_PASSWORD")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().or_fail())
        .spawn()
        .or_fail();
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().or_fail() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the conductor did not refuse the board: {}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(log.path()).or_fail())
}

/// The refusal names what it found, what it reads and what to do, and exits 2 (the unit's
/// `RestartPreventExitStatus`: restarting cannot help).
fn check_refusal(code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(2), "exit 2: {stderr}");
    for needle in ["format 99", "reads formats up to", "newer release", "restore the backup"] {
        assert!(stderr.contains(needle), "the start-up error says {needle:?}: {stderr}");
    }
}

#[test]
fn a_conductor_refuses_an_embedded_board_of_a_newer_release() {
    let data = tempfile::tempdir().or_fail();
    let file = data.path().join("board.sqlite3");
    let mut bytes = std::fs::read(fixtures_dir().join("embedded.sqlite3")).or_fail();
    // `PRAGMA user_version` is the big-endian u32 at offset 60 of an SQLite file's header.
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&file, &bytes).or_fail();
    let (code, stderr) = refused_start(&["--data-dir", &data.path().display().to_string()]);
    check_refusal(code, &stderr);
    assert_eq!(std::fs::read(&file).or_fail(), bytes, "the refused file is left as it was");
}

#[test]
fn a_conductor_refuses_an_etcd_board_of_a_newer_release() {
    let etcd = EtcdProcess::shared();
    let prefix = unique_prefix("upgrade-newer");
    let runtime = tokio::runtime::Runtime::new().or_fail();
    let format = format!("{prefix}format");
    runtime.block_on(put(&etcd.endpoint(), &format, "99")).or_fail();
    let (code, stderr) = refused_start(&["--etcd", &etcd.endpoint(), "--prefix", &prefix]);
    check_refusal(code, &stderr);
    assert!(stderr.contains(&format), "names the key: {stderr}");
    let keys = runtime.block_on(keys_under(&etcd.endpoint(), &prefix)).or_fail();
    assert_eq!(keys, vec![(format, "99".to_string())], "nothing else was written");
}

/// A new board records the format; a conductor of this release on it runs jobs as ever.
#[test]
fn a_new_etcd_board_records_its_format_at_first_use() {
    let etcd = EtcdProcess::shared();
    let prefix = unique_prefix("upgrade-new");
    let runtime = tokio::runtime::Runtime::new().or_fail();
    let mut config = ConductorConfig::etcd(&etcd.endpoint(), &prefix, "first", Duration::from_secs(10));
    config.binary = "conductor";
    let _conductor = ConductorProcess::start(&config).or_fail();
    let keys = runtime.block_on(keys_under(&etcd.endpoint(), &format!("{prefix}format"))).or_fail();
    assert_eq!(keys, vec![(format!("{prefix}format"), "1".to_string())]);
}

async fn put(endpoint: &str, key: &str, value: &str) -> tests::conductor::HarnessResult<()> {
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    client.put(key, value, None).await?;
    Ok(())
}

async fn keys_under(endpoint: &str, prefix: &str) -> tests::conductor::HarnessResult<Vec<(String, String)>> {
    let mut client = etcd_client::Client::connect([endpoint], None).await?;
    let resp = client.get(prefix, Some(etcd_client::GetOptions::new().with_prefix())).await?;
    Ok(resp
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap_or("?").to_owned(), kv.value_str().unwrap_or("?").to_owned()))
        .collect())
}
