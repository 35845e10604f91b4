//! Remote workers end to end: real conductors (the stock binary with flow files) on a
//! real etcd, real `test_worker` processes on the Rust SDK, the real `baton` CLI; kill -9
//! and SIGSTOP for the failure cases. The protocol garbage cases speak the wire directly.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

mod basics;
mod failures;
mod fleet;
mod garbage;
mod parked;
mod timeouts;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{is_complete, wait_job, ConductorProcess, OrFail};
use tests::flow_files::{flows_dir, BoardKind, TestBoard};
use tests::workers::{task_log, wait_for_workers, WorkerProcess};

/// Bound on anything that should take seconds; only there so a broken build cannot hang.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// One test's fleet: a board, flow files, conductors, workers and the workers' task log.
pub(crate) struct Fleet {
    _board: TestBoard,
    _flows: tempfile::TempDir,
    pub(crate) work: tempfile::TempDir,
    pub(crate) conductors: Vec<ConductorProcess>,
    pub(crate) workers: Vec<WorkerProcess>,
}

impl Fleet {
    /// A board on etcd and `conductors` conductors running `files`, with `args`.
    pub(crate) fn new(test: &str, files: &[(&str, &str)], conductors: usize, args: &[&str]) -> Fleet {
        let board = TestBoard::new(BoardKind::Etcd, test).or_fail();
        let flows = flows_dir(files).or_fail();
        let work = tempfile::tempdir().or_fail();
        let mut all_args = vec!["--worker-heartbeat-timeout", "1s", "--concurrency", "32"];
        all_args.extend_from_slice(args);
        let conductors = (0..conductors)
            .map(|i| {
                ConductorProcess::start(&board.conductor(&format!("{test}-c{i}"), flows.path(), &all_args)).or_fail()
            })
            .collect();
        Fleet { _board: board, _flows: flows, work, conductors, workers: Vec::new() }
    }

    pub(crate) fn endpoint(&self, conductor: usize) -> String {
        self.conductors[conductor].endpoint()
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.work.path().join("tasks.log")
    }

    /// Starts worker `id` on these conductors (in this order) and waits until it is listed.
    pub(crate) fn worker(&mut self, id: &str, slots: u32, on: &[usize]) -> usize {
        let endpoints: Vec<String> = on.iter().map(|&c| self.endpoint(c)).collect();
        let worker = WorkerProcess::start(&endpoints, id, slots, &self.log_path()).or_fail();
        wait_for_workers(&endpoints[0], &[id], PATIENCE).or_fail();
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// The task log lines.
    pub(crate) fn log(&self) -> Vec<(String, String, String, u32)> {
        task_log(&self.log_path())
    }

    /// Waits until the task log has a line matching `wanted`; returns it.
    pub(crate) fn wait_log(
        &self,
        what: &str,
        wanted: impl Fn(&(String, String, String, u32)) -> bool,
    ) -> (String, String, String, u32) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| wanted(l)) {
                return line;
            }
            assert!(Instant::now() < deadline, "{what} not logged within {PATIENCE:?}: {:?}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the job to end; returns its `baton get` snapshot.
    pub(crate) fn finished(&self, conductor: usize, id: &str) -> Value {
        wait_job(&self.endpoint(conductor), id, PATIENCE, "completion", is_complete).or_fail()
    }
}

/// A task of a `baton get` snapshot, by name.
pub(crate) fn task<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["name"].as_str() == Some(name)))
        .unwrap_or_else(|| panic!("no task {name} in {job}"))
}

/// The result of a task of a snapshot, parsed.
pub(crate) fn result_of(job: &Value, name: &str) -> Value {
    let t = task(job, name);
    match &t["result"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
        other => other.clone(),
    }
}
