//! Writes the upgrade fixtures with the code of the day: `tests/fixtures/upgrade/`.
//!
//! `cargo run -p tests --bin make_upgrade_fixtures` (needs `etcd` on the PATH; it starts a
//! throwaway one on free loopback ports). It writes, replacing what is there:
//! - `embedded.sqlite3` and `embedded-jobs.json`: an embedded board file;
//! - `etcd.jsonl` and `etcd-jobs.json`: the keys of an etcd board, one JSON object a line;
//!
//! each with the jobs of `tests::upgrade::write_jobs`. See the README beside them for when
//! to regenerate.

use std::path::Path;

use jobboard::embedded::EmbeddedBoard;
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::BoardConfig;
use tests::upgrade::{dump_etcd, fixtures_dir, jobs_json, write_jobs};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("make_upgrade_fixtures: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> tests::conductor::HarnessResult<()> {
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(embedded(&dir))?;
    let etcd = tests::etcd::EtcdProcess::start();
    runtime.block_on(etcd_board(&dir, &etcd.endpoint()))?;
    println!("wrote the fixtures in {}", dir.display());
    Ok(())
}

async fn embedded(dir: &Path) -> tests::conductor::HarnessResult<()> {
    let work = tempfile::tempdir()?;
    let file = work.path().join("board.sqlite3");
    let jobs = {
        let board = EmbeddedBoard::open(&file, BoardConfig::new("fixture-writer"))?;
        write_jobs(&board).await?
        // Dropped without `close`: the mid-run claim stays CLAIMED on disk, as after a crash.
    };
    // The last connection gone, SQLite has folded its write-ahead log into the file.
    if work.path().join("board.sqlite3-wal").exists() {
        return Err("the board's write-ahead log is still there; the file alone is not the board".into());
    }
    std::fs::copy(&file, dir.join("embedded.sqlite3"))?;
    std::fs::write(dir.join("embedded-jobs.json"), jobs_json(&jobs)?)?;
    Ok(())
}

async fn etcd_board(dir: &Path, endpoint: &str) -> tests::conductor::HarnessResult<()> {
    let prefix = "/fixture/";
    let mut config = EtcdConfig::new(vec![endpoint.to_owned()], BoardConfig::new("fixture-writer"));
    config.prefix = prefix.into();
    let board = EtcdBoard::connect(config).await?;
    let jobs = write_jobs(&board).await?;
    let dump = dump_etcd(endpoint, prefix).await?;
    drop(board);
    std::fs::write(dir.join("etcd.jsonl"), dump)?;
    std::fs::write(dir.join("etcd-jobs.json"), jobs_json(&jobs)?)?;
    Ok(())
}
