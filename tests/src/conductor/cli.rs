//! Driving the `baton` CLI from tests: run it, parse its `--output json`, poll a job.
//!
//! Every run is bounded: a `baton` that hangs is killed after [`BATON_DEADLINE`] and the
//! test sees a failed run that says so, rather than hanging with it.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin_path, HarnessResult};

/// What one `baton` invocation printed and how it exited.
#[derive(Debug)]
pub struct BatonOutput {
    pub args: Vec<String>,
    pub output: Output,
}

impl BatonOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> HarnessResult<Value> {
        serde_json::from_slice(&self.output.stdout)
            .map_err(|e| format!("`baton {}` printed no JSON ({e}): {:?}", self.args.join(" "), self.stdout()).into())
    }

    /// Standard output as JSON if the command succeeded, else an error with its stderr.
    pub fn ok_json(&self) -> HarnessResult<Value> {
        if !self.success() {
            return Err(format!(
                "`baton {}` failed ({}): {}",
                self.args.join(" "),
                self.output.status,
                self.stderr().trim()
            )
            .into());
        }
        self.json()
    }
}

/// How long one `baton` run may take before the harness kills it: far beyond any
/// timeout the tests give it, only there so a hang fails instead of blocking the suite.
pub const BATON_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `baton --endpoint ENDPOINT --output json ARGS...` and captures what it printed.
pub fn baton<I, S>(endpoint: &str, args: I) -> BatonOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    baton_with_env(endpoint, &[], args)
}

/// [`baton`] with `env` set (and no other `BATON_*` from the test's own environment).
pub fn baton_with_env<I, S>(endpoint: &str, env: &[(&str, &str)], args: I) -> BatonOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    BatonRun::spawn(endpoint, env, args).finish()
}

/// A `baton` process running in the background; [`BatonRun::finish`] collects it.
pub struct BatonRun {
    args: Vec<String>,
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    /// What the process has written to stderr so far (its progress lines).
    stderr_so_far: Arc<Mutex<Vec<u8>>>,
}

impl BatonRun {
    /// Starts `baton --endpoint ENDPOINT --output json ARGS...` with `env`.
    pub fn spawn<I, S>(endpoint: &str, env: &[(&str, &str)], args: I) -> BatonRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let mut command = Command::new(bin_path("baton"));
        command.arg("--endpoint").arg(endpoint).arg("--output").arg("json").args(&args);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BATON_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => panic!("could not run {}: {error}", bin_path("baton").display()),
        };
        let stdout = read_all(child.stdout.take(), Arc::default());
        let stderr_so_far = Arc::new(Mutex::new(Vec::new()));
        let stderr = read_all(child.stderr.take(), stderr_so_far.clone());
        BatonRun { args, child, stdout, stderr, stderr_so_far }
    }

    /// Waits (at most [`BATON_DEADLINE`]) until the process has written `text` to stderr:
    /// a `watch` has seen a state, so what the test does next happens while it follows.
    pub fn wait_for_stderr(&self, text: &str) -> HarnessResult<()> {
        let deadline = Instant::now() + BATON_DEADLINE;
        loop {
            let seen = self.stderr_so_far.lock().map(|s| String::from_utf8_lossy(&s).contains(text)).unwrap_or(false);
            if seen {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("baton {:?} printed no {text:?} within {BATON_DEADLINE:?}", self.args).into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit (killing it after [`BATON_DEADLINE`]) and returns what it printed.
    pub fn finish(mut self) -> BatonOutput {
        let deadline = Instant::now() + BATON_DEADLINE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        let stdout = self.stdout.join().unwrap_or_default();
        let mut stderr = self.stderr.join().unwrap_or_default();
        let status = status.unwrap_or_else(|| {
            stderr
                .extend_from_slice(format!("\n(harness: killed after {BATON_DEADLINE:?} without exiting)").as_bytes());
            killed_status()
        });
        BatonOutput { args: self.args, output: Output { status, stdout, stderr } }
    }
}

/// Reads a child's pipe to the end on a thread of its own, so neither pipe fills up,
/// copying what arrives into `so_far` as it comes.
fn read_all<R: Read + Send + 'static>(pipe: Option<R>, so_far: Arc<Mutex<Vec<u8>>>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let Some(mut pipe) = pipe else { return bytes };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            if let Ok(mut seen) = so_far.lock() {
                seen.extend_from_slice(&chunk[..n]);
            }
        }
        bytes
    })
}

/// The status of a process killed by SIGKILL: not a success.
fn killed_status() -> ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(libc::SIGKILL)
}

/// Posts a job through `baton post FLOW --store k=v ...` and returns its id.
pub fn post_job(endpoint: &str, flow: &str, store: &[(&str, &str)]) -> HarnessResult<String> {
    let mut args = vec!["post".to_string(), flow.to_string()];
    for (key, value) in store {
        args.push("--store".to_string());
        args.push(format!("{key}={value}"));
    }
    let posted = baton(endpoint, &args).ok_json()?;
    let id = posted["id"].as_str().ok_or_else(|| format!("`baton post` printed no id: {posted}"))?;
    Ok(id.to_string())
}

/// `baton get ID` as JSON.
pub fn get_job(endpoint: &str, id: &str) -> HarnessResult<Value> {
    baton(endpoint, ["get", id]).ok_json()
}

/// Polls `baton get ID` until `done` says yes, for at most `timeout`; returns that snapshot.
pub fn wait_job(
    endpoint: &str,
    id: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> HarnessResult<Value> {
    let deadline = Instant::now() + timeout;
    let mut last = Value::Null;
    loop {
        // A conductor being killed or restarted may make one call fail; keep polling.
        if let Ok(job) = get_job(endpoint, id) {
            if done(&job) {
                return Ok(job);
            }
            last = job;
        }
        if Instant::now() > deadline {
            return Err(format!("job {id}: {what} did not happen within {timeout:?}; last seen: {last}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each task's execution count, by task name, from a `baton get` snapshot.
pub fn task_executions(job: &Value) -> BTreeMap<String, u64> {
    job["tasks"]
        .as_array()
        .map(|tasks| {
            tasks.iter().filter_map(|t| Some((t["name"].as_str()?.to_string(), t["executions"].as_u64()?))).collect()
        })
        .unwrap_or_default()
}

/// The names of the tasks a `baton get` snapshot shows in state SUCCESS.
pub fn succeeded_tasks(job: &Value) -> Vec<String> {
    job["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t["state"].as_str() == Some("SUCCESS"))
                .filter_map(|t| Some(t["name"].as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `baton get`/`list` snapshot shows the job COMPLETE (whatever the outcome).
pub fn is_complete(job: &Value) -> bool {
    job["state"].as_str() == Some("COMPLETE")
}

/// Checks a finished job that was interrupted once and resumed from its logbook: it ended
/// COMPLETE/SUCCESS with every task SUCCESS; the tasks in `done_before` (seen SUCCESS before
/// the interruption) ran exactly once; of the others, at most one (the one RUNNING at the
/// interruption) ran twice and the rest once.
pub fn check_resumed_once(done_before: &[String], job: &Value) -> HarnessResult<()> {
    if job["state"].as_str() != Some("COMPLETE") || job["outcome"].as_str() != Some("SUCCESS") {
        return Err(format!("job did not end COMPLETE/SUCCESS: {job}").into());
    }
    let executions = task_executions(job);
    if executions.is_empty() {
        return Err(format!("job shows no tasks: {job}").into());
    }
    let unfinished: Vec<&Value> =
        job["tasks"].as_array().into_iter().flatten().filter(|t| t["state"].as_str() != Some("SUCCESS")).collect();
    if !unfinished.is_empty() {
        return Err(format!("tasks not SUCCESS in a successful job: {unfinished:?}").into());
    }
    for name in done_before {
        match executions.get(name) {
            Some(1) => {}
            other => {
                return Err(format!(
                    "task {name} had finished before the interruption but ran {other:?} times: {executions:?}"
                )
                .into())
            }
        }
    }
    let repeated: Vec<(&String, &u64)> = executions.iter().filter(|(_, n)| **n != 1).collect();
    let at_most_one_rerun = match repeated.as_slice() {
        [] => true,
        [(_, n)] => **n == 2,
        _ => false,
    };
    if !at_most_one_rerun {
        return Err(format!("more than the one interrupted task ran again: {executions:?}").into());
    }
    Ok(())
}
