//! # jobboard: where jobs wait, are claimed, and keep their logbooks
//!
//! ## Layout
//! - [`job`]: `Job`, `NewJob`, `JobState`, `Outcome`, queries, `ConductorInfo`, `BoardConfig`.
//! - [`board`]: the `JobBoard` trait every backend implements, and `Wakeups`.
//! - [`claim`]: `Claim`, ownership of a job and the only way to write to it (fencing);
//!   `patient` makes its writes ride out transient board errors while the claim lives.
//! - [`lifecycle`]: the table of job transitions (and the quarantine rule) every backend goes through.
//! - [`backlog`]: `Backlog` (queue depth and parked jobs, from the indexes) and the etcd session's `SessionStats`.
//! - [`flow_defs`]: flow definitions on the board: versions, the apply rule.
//! - [`schedules`]: flows posted on a cron clock, and the rule that fires each tick once.
//! - [`error`]: `Error`, one enum for the crate.
//!
//! Backends: `etcd` (`EtcdBoard`, for a fleet) and `embedded` (`EmbeddedBoard`,
//! SQLite in one file, for a single machine).

#![warn(missing_docs)]

pub mod backlog;
pub mod board;
pub mod capacity;
pub mod claim;
mod consuming;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod features;
pub mod flow_defs;
pub mod job;
pub mod lifecycle;
pub mod parking;
mod patient;
pub mod pick;
pub mod schedules;
pub mod workers;

pub use backlog::{Backlog, SessionStats};
pub use board::{Availability, JobBoard, Wakeups};
pub use capacity::{Capacity, StorageUse};
pub use claim::{Claim, FenceToken};
pub use error::Error;
pub use features::Features;
pub use flow_defs::{Applied, ApplyRule, FlowVersion, NewFlowVersion};
pub use job::{
    BoardConfig, ConductorInfo, FlowFilter, FlowPin, Job, JobId, JobPage, JobState, ListQuery, NewJob, OperatorAction,
    Outcome, MAX_NAME_BYTES,
};
pub use lifecycle::operate::{Operation, DEADLINE_EXCEEDED};
pub use parking::{Completed, ParkEntry, ParkState, Parking, Presenter, TaskOutcome};
pub use pick::Pick;
pub use schedules::{Schedule, ScheduleSpec, ScheduleStore};
pub use workers::{WorkerRecord, WorkerSet, WorkerTask};
