//! Flow files on a conductor: `--flows-dir`, `--task-kinds` and `--secrets-dir`.
//!
//! At start, every `*.yaml` / `*.yml` file in the flows directory is parsed and
//! checked (against every built-in kind, so a file is judged the same on every
//! conductor) and its flow registered beside the binary's Rust flows. The
//! registry's names are the claim filter and what the API accepts posts of, so
//! a flow that is not registered here is one this conductor neither claims nor
//! accepts.
//!
//! - A file with problems, or a flow name taken twice (by a Rust flow or by
//!   another file), is bad configuration: the conductor refuses to start, listing
//!   every problem of every file (`FILE:LINE:COLUMN: path: what`).
//! - A flow that uses a kind outside `--task-kinds` anywhere (reverts included)
//!   is left out with one warning naming the file, the flow and the kinds missing.
//!
//! Scope, until flows are stored on the board (`baton flows apply`, issue 9 section 3):
//! each conductor loads its own directory, so a fleet must be given the same files. A
//! post of a flow through a conductor that did not load it is refused as an unknown
//! flow, even when another conductor of the fleet runs it (the issue's "accepted with a
//! warning" needs the board to know every flow). A job is built, when claimed, from the
//! claiming conductor's copy of the file.
//!
//! Hidden entries are skipped and symbolic links followed, so a Kubernetes
//! ConfigMap mounted as the directory (`flow.yaml -> ..data/flow.yaml`) loads
//! each file once. Files are read in name order.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowfile::{DirSecrets, FlowFile, Kinds};
use flows::FlowRegistry;

use crate::config::Config;
use crate::error::Error;

/// A flow file left out because this conductor does not allow all its kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub file: PathBuf,
    /// Its flow.
    pub flow: String,
    /// The kinds it uses that `--task-kinds` does not name.
    pub missing: Vec<String>,
}

/// What loading a flows directory did.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The Rust flows plus every file flow this conductor can run.
    pub registry: FlowRegistry,
    /// `(file, flow)` of each file flow registered.
    pub registered: Vec<(PathBuf, String)>,
    /// File flows left out for their kinds.
    pub skipped: Vec<Skipped>,
}

/// The kinds `config` allows, with `${secret.NAME}` resolving from `--secrets-dir`
/// and `${callback.url}` based on `--http-advertise` (or `--http-listen`).
pub fn kinds(config: &Config) -> Result<Kinds, Error> {
    let mut kinds = Kinds::allowing(&config.task_kinds).map_err(|e| Error::Config(format!("--task-kinds: {e}")))?;
    if let Some(base) = config.callback_base() {
        kinds = kinds.callback_base(base);
    }
    match &config.secrets_dir {
        None => Ok(kinds),
        Some(dir) if dir.is_dir() => Ok(kinds.secrets(Arc::new(DirSecrets::new(dir)))),
        Some(dir) => Err(Error::Config(format!("--secrets-dir {} is not a directory", dir.display()))),
    }
}

/// The registry a conductor runs: `rust` plus the flows of `--flows-dir` it can run.
/// Logs what was loaded and warns about each flow left out.
pub fn registry(config: &Config, rust: &FlowRegistry) -> Result<FlowRegistry, Error> {
    let kinds = Arc::new(kinds(config)?);
    let Some(dir) = &config.flows_dir else {
        return Ok(rust.clone());
    };
    let loaded = load(dir, &kinds, rust)?;
    for (file, flow) in &loaded.registered {
        tracing::info!(file = %file.display(), flow, "flow file loaded");
    }
    for skip in &loaded.skipped {
        tracing::warn!(
            file = %skip.file.display(),
            flow = %skip.flow,
            missing = %skip.missing.join(","),
            allowed = %kinds.names().join(","),
            "flow file not loaded: its flow uses task kinds this conductor does not allow (--task-kinds); \
             this conductor will not claim its jobs nor accept posts of it"
        );
    }
    if loaded.registered.is_empty() && loaded.skipped.is_empty() {
        tracing::warn!(dir = %dir.display(), "--flows-dir holds no *.yaml or *.yml file");
    }
    Ok(loaded.registry)
}

/// Parses every flow file in `dir` and registers, over `rust`, those `kinds` can run.
/// Any problem in any file is an `Error::Config` listing them all.
pub fn load(dir: &Path, kinds: &Arc<Kinds>, rust: &FlowRegistry) -> Result<Loaded, Error> {
    let mut problems: Vec<String> = Vec::new();
    let mut parsed: Vec<(PathBuf, FlowFile)> = Vec::new();
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
            Ok(flow) => parsed.push((file, flow)),
            Err(found) => problems.extend(found.lines()),
        }
    }
    let mut owners: BTreeMap<&str, &Path> = BTreeMap::new();
    for (file, flow) in &parsed {
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
    let mut loaded = Loaded { registry: rust.clone(), ..Loaded::default() };
    for (file, flow) in parsed {
        let used = flow.kinds_used();
        let missing = kinds.missing(used.iter().map(String::as_str));
        if missing.is_empty() {
            loaded.registry.register(flow.factory(kinds.clone()));
            loaded.registered.push((file, flow.name().to_owned()));
        } else {
            loaded.skipped.push(Skipped { file, flow: flow.name().to_owned(), missing });
        }
    }
    Ok(loaded)
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
