//! `baton demo`: a `conductor` child process on an embedded board, running one demo job.
//!
//! The README's first command. It needs the `conductor` binary (beside `baton`, as
//! `cargo build --bins` leaves it, else on PATH) and nothing else: the board is a SQLite
//! file in a temporary directory (or `--data-dir`), the demo flows are flow files embedded
//! in this binary and handed over with `conductor --flows-dir`, the conductor listens on a
//! free loopback port, and the job is followed through the same gRPC client every other
//! subcommand uses. The conductor gets SIGTERM at the end, whatever the job's outcome.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use proto::pb;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::args::{DemoArgs, DemoFlow, Output};
use crate::commands::finish;
use crate::fleet::{Fleet, Timeouts};

/// The demo flows, as flow files (the same as `examples/flows/`).
pub const FLOW_FILES: [(&str, &str); 2] = [
    ("chain.yaml", include_str!("../../examples/flows/chain.yaml")),
    ("provision-cluster.yaml", include_str!("../../examples/flows/provision-cluster.yaml")),
];

/// The conductor's program name.
const CONDUCTOR: &str = "conductor";
/// How long the conductor gets to start serving and register.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long the conductor gets to stop after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(15);
/// The pause between two looks at a starting conductor.
const POLL: Duration = Duration::from_millis(100);

/// The demo job for `flow`: its flow name and store.
pub fn demo_job(flow: DemoFlow) -> (&'static str, Value) {
    match flow {
        // Every node's wait-for-server fails once, so each node's subflow is reverted and retried.
        DemoFlow::ProvisionCluster => ("provision-cluster", json!({"nodes": 3, "step_ms": 300, "fail_until": 2})),
        DemoFlow::Chain => ("chain", json!({"steps": 5, "step_ms": 300})),
    }
}

/// Runs the demo; exit 0 if the job succeeded.
pub async fn run(args: DemoArgs, out: Output, timeouts: Timeouts) -> anyhow::Result<ExitCode> {
    let program = find_conductor()?;
    // Held until the end: dropping it removes the flows, the log and the temporary board.
    let work = tempfile::Builder::new().prefix("baton-demo-").tempdir().context("cannot create a temporary dir")?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => work.path().join("board"),
    };
    let flows_dir = work.path().join("flows");
    std::fs::create_dir_all(&flows_dir).with_context(|| format!("cannot create {}", flows_dir.display()))?;
    for (name, text) in FLOW_FILES {
        let path = flows_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let listen = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .context("cannot find a free port on 127.0.0.1")?;
    let endpoint = format!("http://{listen}");
    let log_path = work.path().join("conductor.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(&program);
    command
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--flows-dir")
        .arg(&flows_dir)
        .args(["--listen", &listen.to_string(), "--name", "baton-demo"])
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,flows=error".to_owned()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the conductor's log file")?)
        .stderr(log)
        .kill_on_drop(true);
    let mut child = command.spawn().with_context(|| format!("cannot start {}", program.display()))?;
    eprintln!("baton demo: conductor {} on {endpoint}, embedded board in {}", program.display(), data_dir.display());

    let fleet = Fleet::new(&endpoint, timeouts)?;
    let result = match wait_until_serving(&fleet, &mut child, &log_path).await {
        Ok(()) => tokio::select! {
            result = post_and_follow(&fleet, args.flow, out) => result,
            status = child.wait() => Err(exited("stopped before the job ended", status, &log_path)),
        },
        Err(error) => Err(error),
    };
    stop(&mut child).await;
    result
}

/// The `conductor` beside this executable, else the first on PATH.
fn find_conductor() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(CONDUCTOR)));
    if let Some(path) = beside.as_ref().filter(|path| path.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(CONDUCTOR))
        .find(|path| path.is_file());
    on_path.ok_or_else(|| {
        let beside = beside.map_or_else(|| "beside baton".to_owned(), |path| path.display().to_string());
        anyhow!(
            "cannot find the `{CONDUCTOR}` program: not at {beside} and not on PATH; build both with \
             `cargo build --release --bins` and run target/release/baton, or put `{CONDUCTOR}` on PATH"
        )
    })
}

/// Waits until the conductor lists itself (it serves and has registered on its board).
async fn wait_until_serving(fleet: &Fleet, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("cannot check on the demo conductor")? {
            return Err(exited("exited before it served", Ok(status), log));
        }
        let listed = fleet.call(|c| async move { c.list_conductors().await }).await;
        if listed.is_ok_and(|conductors| !conductors.is_empty()) {
            return Ok(());
        }
        if start.elapsed() >= START_WAIT {
            bail!("the demo conductor did not serve within {}", flowfile::duration::format_duration(START_WAIT));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why the conductor is gone, with the last error line it logged (else its last line).
fn exited(what: &str, status: std::io::Result<ExitStatus>, log: &Path) -> anyhow::Error {
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines = || text.lines().rev().filter(|line| !line.trim().is_empty());
    let error_line = lines().find(|line| line.to_lowercase().contains("error"));
    match error_line.or_else(|| lines().next()) {
        Some(last) => anyhow!("the demo conductor {what} ({status}): {last}"),
        None => anyhow!("the demo conductor {what} ({status})"),
    }
}

/// SIGTERM, then SIGKILL if it has not stopped within [`STOP_WAIT`].
async fn stop(child: &mut Child) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else { return };
    if let Err(error) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
        tracing::warn!(%error, "cannot send SIGTERM to the demo conductor");
    }
    match tokio::time::timeout(STOP_WAIT, child.wait()).await {
        Ok(Ok(status)) if !status.success() => tracing::warn!(%status, "demo conductor stopped with an error"),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot wait for the demo conductor"),
        Err(_) => {
            tracing::warn!("demo conductor did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}

async fn post_and_follow(fleet: &Fleet, flow: DemoFlow, out: Output) -> anyhow::Result<ExitCode> {
    let (name, store) = demo_job(flow);
    let request = &pb::PostJobRequest {
        flow: name.to_owned(),
        store_json: store.to_string(),
        priority: 0,
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        version: None,
        deadline_in_ms: None,
    };
    let job = fleet.call(|c| async move { c.post_job(request.clone()).await }).await;
    let job = job.with_context(|| format!("cannot post the {name} demo job"))?;
    eprintln!("posted job {} ({name} with {store})", job.id);
    finish(fleet, &job.id, out).await
}

#[cfg(test)]
mod tests {
    use flowfile::{FlowFile, Kinds};

    use super::*;

    #[test]
    fn demo_jobs_satisfy_their_embedded_flow_files() {
        for flow in [DemoFlow::ProvisionCluster, DemoFlow::Chain] {
            let (name, store) = demo_job(flow);
            let (file, text) = FLOW_FILES
                .iter()
                .find(|(file, _)| file.trim_end_matches(".yaml") == name)
                .unwrap_or_else(|| panic!("no flow file for {name}"));
            let parsed = FlowFile::parse(file, text).unwrap_or_else(|problems| panic!("{problems}"));
            assert_eq!(parsed.name(), name);
            let store = store.as_object().cloned().unwrap_or_default();
            let checked = flowfile::inputs::schema(parsed.inputs()).check(&store).unwrap();
            parsed.build(&checked, &Kinds::all()).unwrap();
        }
    }

    #[test]
    fn the_demo_never_needs_the_shell_kind() {
        for (file, text) in FLOW_FILES {
            let parsed = FlowFile::parse(file, text).unwrap_or_else(|problems| panic!("{problems}"));
            assert!(Kinds::default_allowed().missing(parsed.kinds_used().iter().map(String::as_str)).is_empty());
        }
    }
}
