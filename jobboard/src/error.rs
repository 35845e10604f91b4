//! `Error`: everything a job board operation can fail with.

use flows::StorageError;

use crate::job::{JobId, JobState};
use crate::lifecycle::IllegalTransition;

/// A boxed backend error, kept only as a `source`; no dependency type leaks out.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a board operation failed. Each variant is a domain fact; backend errors
/// are only ever a `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No job has this id (or it was removed after its retention).
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The request is malformed; the message names the problem. Nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A value is over the configured size limit. Nothing was written.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large (`store`, `result`, ...).
        what: String,
        /// Its serialized size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Another owner holds the job.
    #[error("job {job} is already claimed by {owner}")]
    AlreadyClaimed {
        /// The job.
        job: JobId,
        /// Its current owner.
        owner: String,
    },
    /// The job is in a state that cannot be claimed (complete or trashed).
    #[error("job {job} is {state} and cannot be claimed")]
    NotClaimable {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
    },
    /// The job lifecycle does not allow this change from the job's state (see
    /// `lifecycle`); nothing was written. A refused claim is `AlreadyClaimed`
    /// or `NotClaimable` instead.
    #[error("job {job}: {refused}")]
    IllegalTransition {
        /// The job.
        job: JobId,
        /// The refused event and the state it was refused in.
        refused: IllegalTransition,
    },
    /// The caller's claim is no longer current (its lease expired, or the job
    /// was released); the write was refused and changed nothing.
    #[error("claim on job {job} (token {token}) was lost; nothing was written")]
    ClaimLost {
        /// The job.
        job: JobId,
        /// The fencing token of the lost claim.
        token: u64,
    },
    /// The backend cannot be reached; retry later.
    #[error("job board unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// No flow definition has this name (or this version).
    #[error("flow definition {name:?}{} not found", .version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownFlow {
        /// The flow's name.
        name: String,
        /// The version asked for; `None` for the current one.
        version: Option<u32>,
    },
    /// The flow definition is used by a job that has not finished.
    #[error("flow definition {name:?} is used by unfinished job {job}; cancel it or let it finish first")]
    FlowInUse {
        /// The flow's name.
        name: String,
        /// One unfinished job that uses it.
        job: JobId,
    },
    /// No schedule has this name.
    #[error("schedule {0:?} not found")]
    UnknownSchedule(String),
    /// A schedule with this name exists already.
    #[error("schedule {0:?} already exists")]
    ScheduleExists(String),
    /// A callback token names no park, or its secret does not match (no hint which).
    #[error("no parked task matches this token")]
    TokenNotFound,
    /// The parked task was already completed with a different outcome.
    #[error("parked task {atom} was already completed with a different outcome")]
    CompletionConflict {
        /// The atom.
        atom: String,
    },
    /// The parked task can no longer be completed (timed out, cancelled, superseded).
    #[error("parked task {atom} can no longer be completed: {why}")]
    ParkClosed {
        /// The atom.
        atom: String,
        /// Why.
        why: String,
    },
    /// The board was written in a format newer than this build understands (a later release
    /// wrote or migrated it). Nothing was written; use a release that reads it.
    #[error(
        "{board} has format {found}; this build reads formats up to {supported}. A newer release wrote \
         it: run that release (or a later one) here, or restore the backup taken before it was upgraded"
    )]
    UnsupportedFormat {
        /// Which board (its file, or its etcd prefix).
        board: String,
        /// The format version found (as stored).
        found: String,
        /// The newest format version this build reads.
        supported: String,
    },
    /// The board was closed (or its session ended); open a new one.
    #[error("job board session is closed")]
    Closed,
    /// The backend failed in a way that retrying will not fix (corrupt data, ...).
    #[error("job board backend error: {message}")]
    Backend {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// True if the same operation may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

impl From<Error> for StorageError {
    fn from(err: Error) -> Self {
        match err {
            Error::ClaimLost { job, token } => StorageError::ClaimLost(format!("job {job}, token {token}")),
            Error::NotFound(job) => StorageError::NotFound(format!("logbook of job {job}")),
            Error::TooLarge { what, size, limit } => {
                StorageError::Rejected { what, message: format!("{size} bytes, over the limit of {limit} bytes") }
            }
            Error::Unavailable { message, source } => StorageError::Unavailable { message, source },
            other => StorageError::Backend { message: other.to_string(), source: Some(Box::new(other)) },
        }
    }
}
