//! Flow files on a conductor: `--flows-dir`, `--task-kinds` and `--secrets-dir`.
//!
//! At start, every `*.yaml` / `*.yml` file in the flows directory is parsed and
//! checked (against every built-in kind, so a file is judged the same on every
//! conductor). Once the board answers, each is applied to it with
//! `ApplyRule::NeverBack` ([`apply_all`]): unchanged content writes nothing, so a
//! fleet started with the same directory stores each flow once, and a conductor
//! started with an older file during a rolling update never moves a flow's current
//! version back. The conductor then runs what the board holds, through its
//! [`catalog`](crate::catalog), like every other conductor of the fleet.
//!
//! - A file with problems, or a flow name taken twice (by a Rust flow of the binary
//!   or by another file), is bad configuration: the conductor refuses to start (exit
//!   2), listing every problem of every file (`FILE:LINE:COLUMN: path: what`).
//! - A flow that uses a kind outside `--task-kinds` is still applied (other
//!   conductors may run it); this conductor does not claim its jobs (the catalog logs
//!   one warning naming the flow and the missing kinds).
//!
//! Hidden entries are skipped and symbolic links followed, so a Kubernetes
//! ConfigMap mounted as the directory (`flow.yaml -> ..data/flow.yaml`) loads
//! each file once. Files are read in name order.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowfile::remote::Dispatch;
use flowfile::{DirSecrets, FlowFile, Kinds};
use flows::FlowRegistry;
use jobboard::{ApplyRule, JobBoard, NewFlowVersion};

use crate::config::Config;
use crate::error::Error;

/// The kinds `config` allows (`http` limited by `--http-allow`), with `${secret.NAME}` resolving from `--secrets-dir`,
/// `remote` tasks sent to `workers` (the conductor's worker hub) and `${callback.url}`
/// based on `--http-advertise` (or `--http-listen`).
pub fn kinds(config: &Config, workers: Arc<dyn Dispatch>) -> Result<Kinds, Error> {
    let mut kinds = Kinds::allowing(&config.task_kinds)
        .map_err(|e| Error::Config(format!("--task-kinds: {e}")))?
        .remote_dispatch(workers);
    if let Some(allow) = &config.guards.http_allow {
        kinds = kinds.http_allow(allow.clone());
    }
    if let Some(base) = config.callback_base() {
        kinds = kinds.callback_base(base);
    }
    match &config.secrets_dir {
        None => Ok(kinds),
        Some(dir) if dir.is_dir() => Ok(kinds.secrets(Arc::new(DirSecrets::new(dir)))),
        Some(dir) => Err(Error::Config(format!("--secrets-dir {} is not a directory", dir.display()))),
    }
}

/// One checked file of `--flows-dir`.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Where it was read.
    pub path: PathBuf,
    /// Its text, as stored on the board (`baton flows get` prints it back).
    pub text: String,
    /// The parsed flow.
    pub flow: FlowFile,
}

/// The checked files of `--flows-dir` (none without one), to apply once the board answers.
pub fn files(config: &Config, rust: &FlowRegistry) -> Result<Vec<LoadedFile>, Error> {
    let Some(dir) = &config.flows_dir else {
        return Ok(Vec::new());
    };
    let files = load(dir, rust)?;
    if files.is_empty() {
        tracing::warn!(dir = %dir.display(), "--flows-dir holds no *.yaml or *.yml file");
    }
    Ok(files)
}

/// Applies `files` to the board (`NeverBack`), logging what each did. Stops at the
/// first transient board error (the caller retries; applies already made are no-ops
/// then); a file the board refuses for good is logged as an error and skipped.
/// A file named like a live conductor's Rust flow is not applied (one name, one flow),
/// with an error naming both.
pub async fn apply_all(board: &dyn JobBoard, files: &[LoadedFile]) -> Result<(), jobboard::Error> {
    let conductors = if files.is_empty() { Vec::new() } else { board.conductors().await? };
    for LoadedFile { path, text, flow: file } in files {
        if let Some(owner) = conductors.iter().find(|c| c.rust_flows.iter().any(|f| f == file.name())) {
            tracing::error!(
                file = %path.display(), flow = file.name(), conductor = %owner.name,
                "flow file not applied: its name is a Rust flow built into a live conductor; rename the file's flow"
            );
            continue;
        }
        let def = NewFlowVersion { name: file.name().to_owned(), hash: file.hash().to_owned(), source: text.clone() };
        let applied = match board.apply_flow(def, ApplyRule::NeverBack).await {
            Ok(applied) => applied,
            Err(error) if error.is_retryable() => return Err(error),
            // Retrying cannot help (too large, say): say so and serve the rest.
            Err(error) => {
                tracing::error!(file = %path.display(), flow = file.name(), %error, "flow file not applied");
                continue;
            }
        };
        if applied.created {
            tracing::info!(file = %path.display(), flow = file.name(), version = applied.version, "flow file applied");
        } else if applied.version == applied.current {
            tracing::info!(file = %path.display(), flow = file.name(), version = applied.version, "flow file unchanged");
        } else {
            tracing::warn!(
                file = %path.display(), flow = file.name(), version = applied.version, current = applied.current,
                "flow file is an older version than the board's current one; current stays (never moved back)"
            );
        }
    }
    Ok(())
}

/// Parses every flow file in `dir`. Any problem in any file, or a name taken by a Rust
/// flow of `rust` or by another file, is an `Error::Config` listing them all.
pub fn load(dir: &Path, rust: &FlowRegistry) -> Result<Vec<LoadedFile>, Error> {
    let mut problems: Vec<String> = Vec::new();
    let mut parsed: Vec<LoadedFile> = Vec::new();
    // Checked against every built-in kind: a kind this conductor leaves out
    // makes the flow not runnable here, not the file wrong.
    let every_kind = Kinds::all();
    for file in flow_file_paths(dir)? {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        match FlowFile::parse_with(&shown, &text, &every_kind) {
            Ok(flow) => parsed.push(LoadedFile { path: file, text, flow }),
            Err(found) => problems.extend(found.lines()),
        }
    }
    let mut owners: BTreeMap<&str, &Path> = BTreeMap::new();
    for LoadedFile { path: file, flow, .. } in &parsed {
        let name = flow.name();
        if rust.get(name).is_some() {
            problems.push(format!(
                "{}: name: flow {name:?} is already a Rust flow of this conductor's binary; rename the file's flow",
                file.display()
            ));
        } else if let Some(first) = owners.get(name) {
            problems.push(format!("{}: name: flow {name:?} is also declared by {}", file.display(), first.display()));
        } else {
            owners.insert(name, file);
        }
    }
    if !problems.is_empty() {
        let count = problems.len();
        let s = if count == 1 { "" } else { "s" };
        return Err(Error::Config(format!(
            "{count} problem{s} in the flow files of --flows-dir {}:\n{}",
            dir.display(),
            problems.join("\n")
        )));
    }
    Ok(parsed)
}

/// The flow files of `dir`, in name order: visible `*.yaml` / `*.yml` entries that are
/// (or link to) regular files.
fn flow_file_paths(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let unreadable = |e: std::io::Error| Error::Config(format!("--flows-dir {}: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let path = entry.path();
        if yaml && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
