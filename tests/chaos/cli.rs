//! `Cli`: the real `baton` CLI with a deadline per call, since a stopped conductor (SIGSTOP)
//! holds a connection open and `baton` has no timeout of its own. Calls that may go to any
//! conductor rotate the endpoint list, so a stopped or cut-off one is not always tried first.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tests::conductor::bin_path;
use tokio::runtime::Handle;

/// How long one `baton` call may take before it is killed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `baton --output json` against the fleet.
#[derive(Debug)]
pub struct Cli {
    endpoints: Vec<String>,
    runtime: Handle,
    next: AtomicUsize,
    timeouts: AtomicU64,
}

impl Cli {
    /// A CLI for these conductor endpoints, running its processes on `runtime`.
    pub fn new(endpoints: Vec<String>, runtime: Handle) -> Cli {
        Cli { endpoints, runtime, next: AtomicUsize::new(0), timeouts: AtomicU64::new(0) }
    }

    /// `baton ARGS` on the whole fleet (comma-separated endpoints, rotated), as JSON.
    pub fn any(&self, args: &[&str]) -> Result<Value, String> {
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        let rotated: Vec<&str> =
            self.endpoints[start..].iter().chain(&self.endpoints[..start]).map(String::as_str).collect();
        self.on(&rotated.join(","), args)
    }

    /// `baton --endpoint ENDPOINT ARGS`, as JSON.
    fn on(&self, endpoint: &str, args: &[&str]) -> Result<Value, String> {
        let mut command = tokio::process::Command::new(bin_path("baton"));
        command.arg("--endpoint").arg(endpoint).arg("--output").arg("json").args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BATON_") {
                command.env_remove(key);
            }
        }
        command.stdin(Stdio::null()).kill_on_drop(true);
        let what = format!("baton {}", args.join(" "));
        let output = self.runtime.block_on(async { tokio::time::timeout(CALL_TIMEOUT, command.output()).await });
        let output = match output {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => panic!("cannot run {}: {error}", bin_path("baton").display()),
            Err(_) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(format!("`{what}` on {endpoint} did not answer within {CALL_TIMEOUT:?}"));
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("`{what}` failed ({}): {}", output.status, stderr.trim()));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| format!("`{what}` printed no JSON: {e}"))
    }

    /// Calls killed at their deadline so far.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }
}
