//! The flow catalog: every flow a conductor knows, the binary's Rust flows and the
//! board's flow files, and how each job's flow is built.
//!
//! - **Current definitions, in memory.** [`Catalog::follow`] reads the board's current
//!   flow files once per session and again each time the board says one changed
//!   (`JobBoard::flow_changes`: an etcd watch on the definitions, or an in-process
//!   wake-up on the embedded board). A post of a file flow therefore reads nothing
//!   from the board that a post of a Rust flow does not: it pins the current version
//!   from memory. Only a flow the catalog has never heard of costs one read (a flow
//!   applied a moment ago, whose wake-up has not arrived).
//! - **Parsed definitions, by hash.** A version is immutable and named by its hash, so a
//!   parsed file is kept by hash for the life of the process: a claim of a pinned
//!   version reads the board at most once per hash per conductor.
//! - **What this conductor claims** ([`Catalog::filter`]): its Rust flows, plus the
//!   file flows whose current version uses only kinds `--task-kinds` allows (reverts
//!   included). It changes with the definitions; [`Catalog::changes`] wakes the claimer.
//! - **Names are one namespace.** A board file flow with the name of one of this
//!   binary's Rust flows is refused here, with an error naming both: the Rust flow
//!   wins on this conductor, the file flow is neither claimed nor accepted through it.
//!
//! A job pinned to a version this conductor cannot build (the version uses a kind it
//! does not allow, or cannot be read or parsed) is not lost silently: the runner
//! trashes it with a reason naming the flow, the version and what is missing (see
//! [`CatalogError`]), so `baton get` says why.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowfile::{FlowFile, Kinds};
use flows::{FlowFactory, FlowRegistry};
use jobboard::{Features, FlowFilter, FlowPin, FlowVersion, JobBoard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Longest pause between reads of the definitions while the board fails.
const REFRESH_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Why a flow cannot be had from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Neither a Rust flow nor a file flow on the board.
    #[error("unknown flow {name:?}; known flows: {}", .known.join(", "))]
    UnknownFlow {
        /// The name asked for.
        name: String,
        /// Every name known here.
        known: Vec<String>,
    },
    /// The flow exists, but not in the version asked for.
    #[error("flow {name:?} has no version {version}")]
    UnknownVersion {
        /// The flow.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// A version was asked of a flow built into the conductor.
    #[error("flow {name:?} is built into the conductor (a Rust flow) and has no versions")]
    NotVersioned {
        /// The flow.
        name: String,
    },
    /// A stored version that cannot be built on this conductor.
    #[error("flow {name:?} version {version} cannot be built on this conductor: {reason}")]
    Unbuildable {
        /// The flow.
        name: String,
        /// Its version.
        version: u32,
        /// Why, in words.
        reason: String,
    },
    /// The board did not answer.
    #[error("reading flow definitions: {0}")]
    Board(String),
}

/// A parsed stored version, shared by every job pinned to it.
#[derive(Debug)]
pub struct Parsed {
    /// The file.
    pub file: FlowFile,
    /// Its factory over this conductor's kinds.
    pub factory: FlowFactory,
    /// Kinds it uses that `--task-kinds` does not allow (empty: it runs here).
    pub missing: Vec<String>,
}

/// A file flow's current version, as the catalog holds it.
#[derive(Debug, Clone)]
pub struct Current {
    /// The stored version.
    pub version: FlowVersion,
    /// Parsed, or why it does not parse here.
    pub parsed: Result<Arc<Parsed>, String>,
}

impl Current {
    /// The pin a job posted now gets.
    pub fn pin(&self) -> FlowPin {
        FlowPin { version: self.version.version, hash: self.version.hash.clone() }
    }
}

/// A flow to post or run: its factory, and the pin of a file flow.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Builds the flow and checks inputs.
    pub factory: Resolving,
    /// `Some` for a file flow.
    pub pin: Option<FlowPin>,
}

/// Where a resolved factory lives.
#[derive(Debug, Clone)]
pub enum Resolving {
    /// A Rust flow of the registry.
    Rust(Arc<FlowRegistry>, String),
    /// A parsed file flow.
    File(Arc<Parsed>),
}

impl Resolving {
    /// The default deadline of the flow's jobs, in ms from the post: a flow file's `deadline:`.
    pub fn default_deadline(&self) -> Option<u64> {
        match self {
            Resolving::File(parsed) => parsed.file.deadline().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Resolving::Rust(..) => None,
        }
    }

    /// The factory.
    pub fn factory(&self) -> &FlowFactory {
        match self {
            Resolving::Rust(registry, name) => {
                registry.get(name).expect("a resolved Rust flow is in the registry it was resolved from")
            }
            Resolving::File(parsed) => &parsed.factory,
        }
    }
}

/// Every flow this conductor knows. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Catalog {
    rust: Arc<FlowRegistry>,
    /// The kinds this conductor runs (with its secrets).
    kinds: Arc<Kinds>,
    /// The board's current file flows (Rust names excluded), by name.
    current: watch::Sender<Arc<BTreeMap<String, Current>>>,
    /// Parsed versions by hash; immutable, so never invalidated.
    by_hash: Mutex<HashMap<String, Arc<Parsed>>>,
    /// The features this conductor has (see [`crate::features`]): every claim passes them.
    features: Features,
}

impl Catalog {
    /// A catalog of `rust` flows, running file flows with `kinds`; no file flow yet.
    pub fn new(rust: Arc<FlowRegistry>, kinds: Arc<Kinds>) -> Self {
        let features = crate::features::supported(&kinds, &[]);
        Catalog { rust, kinds, current: watch::Sender::new(Arc::default()), by_hash: Mutex::default(), features }
    }

    /// The same catalog, lacking `without` among its features (as an older release would).
    #[must_use]
    pub fn without_features(mut self, without: &[String]) -> Self {
        self.features = crate::features::supported(&self.kinds, without);
        self
    }

    /// The features this conductor has.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The binary's Rust flows.
    pub fn rust(&self) -> &Arc<FlowRegistry> {
        &self.rust
    }

    /// The kinds this conductor allows.
    pub fn kinds(&self) -> &Arc<Kinds> {
        &self.kinds
    }

    /// The board's current file flows, as last read.
    pub fn current(&self) -> Arc<BTreeMap<String, Current>> {
        self.current.borrow().clone()
    }

    /// Fires when the file flows change (the claim filter may have).
    pub fn changes(&self) -> watch::Receiver<Arc<BTreeMap<String, Current>>> {
        self.current.subscribe()
    }

    /// The flows this conductor claims: its Rust flows and the file flows it can run, of
    /// jobs needing no feature it lacks.
    pub fn filter(&self) -> FlowFilter {
        let mut names: Vec<String> = self.rust.names().into_iter().map(str::to_owned).collect();
        let current = self.current();
        names.extend(
            current
                .iter()
                .filter(|(_, c)| c.parsed.as_ref().is_ok_and(|p| p.missing.is_empty()))
                .map(|(name, _)| name.clone()),
        );
        FlowFilter::flows(names).having(self.features.clone())
    }

    /// Every name known here, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rust.names().into_iter().map(str::to_owned).collect();
        names.extend(self.current().keys().cloned());
        names.sort();
        names
    }

    /// Keeps the current file flows in step with `board` until `stop` fires or the
    /// board's wake-ups end (the session is over).
    pub async fn follow(self: Arc<Self>, board: Arc<dyn JobBoard>, stop: CancellationToken) {
        let mut changes = board.flow_changes();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.refresh(board.as_ref()).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot read the flow definitions; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(REFRESH_BACKOFF_CAP);
                    continue;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                woken = changes.changed() => if woken.is_err() { return },
            }
        }
    }

    /// Reads the board's current definitions now.
    pub async fn refresh(&self, board: &dyn JobBoard) -> Result<(), jobboard::Error> {
        let versions = board.current_flows().await?;
        let mut next = BTreeMap::new();
        for version in versions {
            if self.rust.get(&version.name).is_some() {
                tracing::error!(
                    flow = %version.name,
                    "the board holds a flow file named like this conductor's Rust flow {:?}; \
                     the file flow is refused here (one name, one flow: rename or delete one of them)",
                    version.name
                );
                continue;
            }
            let parsed = self.parse(&version);
            next.insert(version.name.clone(), Current { version, parsed });
        }
        let changed = {
            let old = self.current.borrow();
            old.len() != next.len()
                || old.iter().zip(next.iter()).any(|((a, x), (b, y))| a != b || x.version.hash != y.version.hash)
        };
        if changed {
            for (name, current) in &next {
                match &current.parsed {
                    Ok(p) if p.missing.is_empty() => {
                        tracing::info!(flow = %name, version = current.version.version, "file flow runs here")
                    }
                    Ok(p) => tracing::warn!(
                        flow = %name, version = current.version.version, missing = %p.missing.join(","),
                        "file flow uses task kinds this conductor does not allow (--task-kinds); not claiming its jobs"
                    ),
                    Err(reason) => tracing::warn!(flow = %name, %reason, "file flow cannot be built here"),
                }
            }
            self.current.send_replace(Arc::new(next));
        }
        Ok(())
    }

    /// Parses a stored version, or takes it from the cache by its hash.
    fn parse(&self, version: &FlowVersion) -> Result<Arc<Parsed>, String> {
        if let Some(parsed) = lock(&self.by_hash).get(&version.hash) {
            return Ok(parsed.clone());
        }
        let label = format!("{}@{}", version.name, version.version);
        let file = FlowFile::parse(&label, &version.source).map_err(|problems| problems.lines().join("; "))?;
        if file.name() != version.name {
            return Err(format!("the stored file names flow {:?}", file.name()));
        }
        let missing = self.kinds.missing(file.kinds_used().iter().map(String::as_str));
        let parsed = Arc::new(Parsed { factory: file.factory(self.kinds.clone()), file, missing });
        lock(&self.by_hash).insert(version.hash.clone(), parsed.clone());
        Ok(parsed)
    }

    /// The flow a post of `name` (at `version`, or the current one) runs. Reads the
    /// board only for an older version asked for by number, or a name not heard of yet.
    pub async fn for_post(
        &self,
        board: &dyn JobBoard,
        name: &str,
        version: Option<u32>,
    ) -> Result<Resolved, CatalogError> {
        if self.rust.get(name).is_some() {
            if version.is_some() {
                return Err(CatalogError::NotVersioned { name: name.to_owned() });
            }
            return Ok(Resolved { factory: Resolving::Rust(self.rust.clone(), name.to_owned()), pin: None });
        }
        let known = self.current().get(name).cloned();
        let stored = match (known, version) {
            (Some(current), None) => current.version,
            (Some(current), Some(v)) if current.version.version == v => current.version,
            (_, asked) => board.flow_version(name, asked).await.map_err(|e| match e {
                jobboard::Error::UnknownFlow { .. } => match asked {
                    Some(version) if self.current().contains_key(name) => {
                        CatalogError::UnknownVersion { name: name.to_owned(), version }
                    }
                    _ => CatalogError::UnknownFlow { name: name.to_owned(), known: self.names() },
                },
                other => CatalogError::Board(other.to_string()),
            })?,
        };
        let parsed = self.parse(&stored).map_err(|reason| CatalogError::Unbuildable {
            name: name.to_owned(),
            version: stored.version,
            reason,
        })?;
        let pin = FlowPin { version: stored.version, hash: stored.hash };
        Ok(Resolved { factory: Resolving::File(parsed), pin: Some(pin) })
    }

    /// The factory of a job's flow: its Rust flow, or its pinned version (read from the
    /// board only the first time this conductor meets that hash).
    pub async fn for_job(
        &self,
        board: &dyn JobBoard,
        flow: &str,
        pin: Option<&FlowPin>,
    ) -> Result<Resolving, CatalogError> {
        let Some(pin) = pin else {
            return match self.rust.get(flow) {
                Some(_) => Ok(Resolving::Rust(self.rust.clone(), flow.to_owned())),
                None => Err(CatalogError::UnknownFlow { name: flow.to_owned(), known: self.names() }),
            };
        };
        let unbuildable =
            |reason: String| CatalogError::Unbuildable { name: flow.to_owned(), version: pin.version, reason };
        let cached = lock(&self.by_hash).get(&pin.hash).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let stored = board.flow_version(flow, Some(pin.version)).await.map_err(|e| match e {
                    jobboard::Error::UnknownFlow { .. } => unbuildable("the version is not on the board".into()),
                    other => CatalogError::Board(other.to_string()),
                })?;
                if stored.hash != pin.hash {
                    return Err(unbuildable(format!(
                        "the board's version {} has hash {}, the job was posted against {}",
                        stored.version, stored.hash, pin.hash
                    )));
                }
                self.parse(&stored).map_err(unbuildable)?
            }
        };
        if !parsed.missing.is_empty() {
            return Err(unbuildable(format!(
                "it uses task kinds this conductor does not allow (--task-kinds): {}",
                parsed.missing.join(", ")
            )));
        }
        Ok(Resolving::File(parsed))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
