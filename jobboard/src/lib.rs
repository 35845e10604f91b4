//! # jobboard: where jobs wait, are claimed, and keep their logbooks
//!
//! ## Layout
//! - [`job`]: `Job`, `NewJob`, `JobState`, `Outcome`, queries, `ConductorInfo`, `BoardConfig`.
//! - [`board`]: the `JobBoard` trait every backend implements, and `Wakeups`.
//! - [`claim`]: `Claim`, ownership of a job and the only way to write to it (fencing);
//!   `patient` makes its writes ride out transient board errors while the claim lives.
//! - [`lifecycle`]: the table of job transitions (and the quarantine rule) every backend goes through.
//! - [`flow_defs`]: flow definitions on the board: versions, the apply rule.
//! - [`error`]: `Error`, one enum for the crate.
//!
//! Backends: `etcd` (`EtcdBoard`, for a fleet) and `embedded` (`EmbeddedBoard`,
//! SQLite in one file, for a single machine).

#![warn(missing_docs)]

pub mod board;
pub mod capacity;
pub mod claim;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod flow_defs;
pub mod job;
pub mod lifecycle;
pub mod parking;
mod patient;
pub mod workers;

pub use board::{Availability, JobBoard, Wakeups};
pub use capacity::{Capacity, StorageUse};
pub use claim::{Claim, FenceToken};
pub use error::Error;
pub use flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
pub use job::{
    BoardConfig, ConductorInfo, FlowFilter, FlowPin, Job, JobId, JobPage, JobState, ListQuery, NewJob, Outcome,
    MAX_NAME_BYTES,
};
pub use parking::{Completed, ParkEntry, ParkState, Parking, Presenter, TaskOutcome};
pub use workers::{WorkerRecord, WorkerSet, WorkerTask};
