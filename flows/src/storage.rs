//! `Storage`: where the engine writes its logbook, and `MemoryStorage`.
//!
//! The engine writes through this trait *before* it acts on a transition, so
//! a crashed run can be resumed from what is stored. This crate knows no real
//! backend: the etcd and embedded (SQLite) implementations live in `jobboard`,
//! where every write is also fenced by the job's claim.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use crate::failure::Failure;
use crate::logbook::{now_millis, AtomDetail, FlowDetail, LogBook};
use crate::state::FlowState;

/// A boxed error from a storage backend, kept as the `source` of a [`StorageError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The writer no longer owns the job this logbook belongs to; nothing was written.
    #[error("claim lost: {0}; the write was fenced off")]
    ClaimLost(String),
    /// The backend cannot be reached right now; the operation may succeed later.
    #[error("storage unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The logbook or flow detail does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A value could not be stored (too large, not serializable, ...).
    #[error("cannot store {what}: {message}")]
    Rejected {
        /// What was being stored.
        what: String,
        /// Why it was refused.
        message: String,
    },
    /// Anything else the backend reports.
    #[error("storage backend error: {message}")]
    Backend {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StorageError {
    /// True if retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

/// Changes to one flow detail, to be written together and in order: the engine
/// gathers every transition it must record before it next acts (starts a task,
/// waits, or ends the run) into one of these, so a linear step costs one write
/// (the finished atom's outcome with the next atom's RUNNING), not two.
#[derive(Debug, Clone, Copy)]
pub struct FlowChanges<'a> {
    /// The flow detail's own fields (its `atoms` map is ignored): written when
    /// `Some`, creating the flow (and its book, named after it) if absent.
    pub flow: Option<&'a FlowDetail>,
    /// Atom details to create or replace, in the order they changed.
    pub atoms: &'a [&'a AtomDetail],
}

impl<'a> FlowChanges<'a> {
    /// Only the flow detail's own fields.
    pub fn flow(flow: &'a FlowDetail) -> Self {
        FlowChanges { flow: Some(flow), atoms: &[] }
    }

    /// Only atoms.
    pub fn atoms(atoms: &'a [&'a AtomDetail]) -> Self {
        FlowChanges { flow: None, atoms }
    }

    /// True if there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.flow.is_none() && self.atoms.is_empty()
    }
}

/// How a run ended, handed to [`Storage::save_final`] with the run's last write.
#[derive(Debug, Clone, Copy)]
pub struct FlowEnd<'a> {
    /// The state the run ends in (the flow detail of that write holds it too).
    pub state: FlowState,
    /// The failure the run reports with it (`RunOutcome::failure`), if any.
    pub failure: Option<&'a Failure>,
}

/// Persistence for logbooks. Implementations must make each call atomic, except
/// that a [`Storage::save_changes`] too large for one backend transaction may be
/// split into several, in order (see there).
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates the book, or updates its name, meta and `updated_at`; its flows are not written.
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError>;
    /// Reads a whole book with all its flows and atoms; `None` if it was never saved.
    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError>;
    /// Reads one flow detail with its atoms; `None` if it was never saved.
    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError>;
    /// Writes `changes` to flow `flow` of `book`: the flow's own fields first (if
    /// given: created with its book if absent, else its state, meta, name and
    /// version updated; its atoms untouched), then each atom (created or replaced).
    ///
    /// Backends write the whole batch in one transaction when it fits; a batch over
    /// a backend's transaction limits may be written as several transactions in
    /// order, so a crash can leave a *prefix* of the batch recorded, never a later
    /// change without an earlier one. That is a state the engine could have
    /// recorded one write at a time, so resuming from it is safe.
    ///
    /// `NotFound` if no flow fields are given and the flow was never saved.
    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError>;

    /// Writes the last batch of a run: the one that records the state the run
    /// ends in (`end`), as [`Storage::save_changes`] does. A storage that also
    /// records the end elsewhere may do it in the same atomic write: a job board
    /// consumes the job with it, so that a job's last step and its outcome cost
    /// one transaction. Either way, `Ok` means the batch is stored, and the engine
    /// reports the run's end only after that.
    async fn save_final(
        &self,
        book: Uuid,
        flow: Uuid,
        changes: FlowChanges<'_>,
        _end: FlowEnd<'_>,
    ) -> Result<(), StorageError> {
        self.save_changes(book, flow, changes).await
    }

    /// Creates the flow detail in `book`, or updates its state, meta and version;
    /// its atoms are not written.
    async fn save_flow(&self, book: Uuid, flow: &FlowDetail) -> Result<(), StorageError> {
        self.save_changes(book, flow.id, FlowChanges::flow(flow)).await
    }

    /// Creates or replaces one atom detail of a flow.
    async fn save_atom(&self, book: Uuid, flow: Uuid, atom: &AtomDetail) -> Result<(), StorageError> {
        self.save_changes(book, flow, FlowChanges::atoms(&[atom])).await
    }
}

/// An in-process `Storage`: fast, not durable. For tests, benchmarks and one-off runs.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    // A std mutex is right here: no `.await` happens while it is held, and
    // each critical section is a map insert or a clone.
    books: Mutex<HashMap<Uuid, StoredBook>>,
}

/// A book as kept in memory: its flows in a map of their own.
#[derive(Debug)]
struct StoredBook {
    /// The book's own fields; its `flows` map stays empty.
    book: LogBook,
    flows: HashMap<Uuid, StoredFlow>,
}

/// A flow detail as kept in memory: atoms hashed by name, so a write costs the
/// same for the 100,000th atom as for the first (a `BTreeMap<String, _>` would
/// chase a pointer per key comparison).
#[derive(Debug)]
struct StoredFlow {
    /// The flow's own fields; its `atoms` map stays empty.
    detail: FlowDetail,
    /// Boxed so that growing the map moves pointers, not whole details.
    atoms: HashMap<String, Box<AtomDetail>, BuildHasherDefault<NameHasher>>,
}

/// FNV-1a over atom names: the map is private and its keys come from flow
/// definitions, so SipHash's flood resistance buys nothing here but costs a
/// sizeable share of every write.
#[derive(Debug, Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl StoredFlow {
    fn assemble(&self) -> FlowDetail {
        let mut detail = self.detail.clone();
        detail.atoms = self.atoms.iter().map(|(k, v)| (k.clone(), AtomDetail::clone(v))).collect();
        detail
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_books<R>(&self, f: impl FnOnce(&mut HashMap<Uuid, StoredBook>) -> R) -> R {
        // A poisoned lock means a panic mid-insert; the maps are still consistent
        // (each write is a single insert), so keep serving.
        let mut guard = self.books.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

fn empty_book(id: Uuid, name: String) -> StoredBook {
    StoredBook { book: LogBook::new(id, name), flows: HashMap::new() }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.with_books(|books| {
            let entry = books.entry(book.id).or_insert_with(|| StoredBook {
                book: LogBook { flows: Default::default(), ..book.clone() },
                flows: HashMap::new(),
            });
            entry.book.name.clone_from(&book.name);
            entry.book.meta.clone_from(&book.meta);
            entry.book.updated_at = now_millis();
        });
        Ok(())
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        Ok(self.with_books(|books| {
            books.get(&book).map(|stored| {
                let mut out = stored.book.clone();
                out.flows = stored.flows.iter().map(|(id, f)| (*id, f.assemble())).collect();
                out
            })
        }))
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        Ok(self.with_books(|books| books.get(&book).and_then(|b| b.flows.get(&flow)).map(StoredFlow::assemble)))
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        self.with_books(|books| {
            if let Some(detail) = changes.flow {
                let entry = books.entry(book).or_insert_with(|| empty_book(book, detail.name.clone()));
                entry.book.updated_at = now_millis();
                match entry.flows.get_mut(&flow) {
                    Some(stored) => {
                        stored.detail.state = detail.state;
                        stored.detail.meta.clone_from(&detail.meta);
                        stored.detail.version = detail.version;
                        stored.detail.name.clone_from(&detail.name);
                    }
                    None => {
                        let detail = FlowDetail { id: flow, atoms: Default::default(), ..detail.clone() };
                        entry.flows.insert(flow, StoredFlow { detail, atoms: HashMap::default() });
                    }
                }
            }
            if changes.atoms.is_empty() {
                return Ok(());
            }
            let stored = books
                .get_mut(&book)
                .and_then(|b| b.flows.get_mut(&flow))
                .ok_or_else(|| StorageError::NotFound(format!("flow {flow} in logbook {book}")))?;
            for atom in changes.atoms {
                match stored.atoms.get_mut(&atom.name) {
                    Some(existing) => existing.as_mut().clone_from(atom),
                    None => {
                        stored.atoms.insert(atom.name.clone(), Box::new(AtomDetail::clone(atom)));
                    }
                }
            }
            Ok(())
        })
    }
}
