//! `WorkerProcess`: a real `test_worker` (the Rust worker SDK with test tasks), started,
//! killed (SIGKILL), stopped (SIGSTOP) and continued by tests; and waiting for workers
//! to show up in `baton workers`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conductor::{baton, bin_path, send_signal, HarnessResult};

/// A running `test_worker`. Killed (SIGKILL, after SIGCONT) on drop.
pub struct WorkerProcess {
    child: Child,
    status: Option<std::process::ExitStatus>,
    id: String,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts worker `id` with `slots` slots on `endpoints`, logging its tasks to `log`.
    pub fn start(endpoints: &[String], id: &str, slots: u32, log: &Path) -> HarnessResult<Self> {
        Self::start_with(endpoints, id, slots, log, &[])
    }

    /// [`start`](Self::start) with more flags (`--token`, `--ca`, `--cert`, `--key`...).
    pub fn start_with(endpoints: &[String], id: &str, slots: u32, log: &Path, extra: &[String]) -> HarnessResult<Self> {
        let dir = tempfile::Builder::new().prefix("baton-worker-").tempdir()?;
        let stderr = dir.path().join("stderr.log");
        let child = Command::new(bin_path("test_worker"))
            .args(["--endpoints", &endpoints.join(","), "--id", id, "--slots", &slots.to_string()])
            .arg("--log")
            .arg(log)
            .args(extra)
            .env_remove("BATON_TOKEN")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        Ok(WorkerProcess { child, status: None, id: id.to_owned(), stderr, _dir: dir })
    }

    /// Its worker id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it logged (tracing output).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) -> HarnessResult<()> {
        if self.exited() {
            return Ok(());
        }
        self.signal(libc::SIGCONT)?;
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM: the worker takes no new work, finishes what it runs and exits.
    pub fn terminate_gracefully(&self) -> HarnessResult<()> {
        self.signal(libc::SIGTERM)
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        self.status = self.child.try_wait().ok().flatten();
        self.status.is_some()
    }

    /// Whether it exited with status 0.
    pub fn exit_ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// SIGSTOP: the process stays, its TCP connection stays open, nothing answers.
    pub fn stop(&self) -> HarnessResult<()> {
        self.signal(libc::SIGSTOP)
    }

    /// SIGCONT after [`stop`](Self::stop).
    pub fn cont(&self) -> HarnessResult<()> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, signal: libc::c_int) -> HarnessResult<()> {
        send_signal(self.child.id(), signal)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
        if std::thread::panicking() {
            eprintln!("--- worker {} log ---\n{}", self.id, self.log());
        }
    }
}

/// `baton workers` through `endpoint`, as JSON.
pub fn list_workers(endpoint: &str) -> HarnessResult<Vec<Value>> {
    let listed = baton(endpoint, ["workers"]).ok_json()?;
    Ok(listed.as_array().cloned().unwrap_or_default())
}

/// Waits until `endpoint` lists every worker of `ids` (bounded by `patience`).
pub fn wait_for_workers(endpoint: &str, ids: &[&str], patience: Duration) -> HarnessResult<Vec<Value>> {
    let deadline = Instant::now() + patience;
    loop {
        let listed = list_workers(endpoint).unwrap_or_default();
        let seen: Vec<&str> = listed.iter().filter_map(|w| w["id"].as_str()).collect();
        if ids.iter().all(|id| seen.contains(id)) {
            return Ok(listed);
        }
        if Instant::now() > deadline {
            return Err(format!("workers {ids:?} not listed by {endpoint} within {patience:?}; seen {seen:?}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of a test worker's task log: `(worker, event, atom, attempt)`.
pub fn task_log(path: &Path) -> Vec<(String, String, String, u32)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let worker = parts.next()?.to_owned();
            let event = parts.next()?.to_owned();
            let atom = parts.next()?.to_owned();
            let attempt = parts.next()?.parse().ok()?;
            Some((worker, event, atom, attempt))
        })
        .collect()
}
