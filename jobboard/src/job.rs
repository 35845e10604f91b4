//! `Job` and the values that describe it: states, outcomes, queries, conductors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use flows::{Failure, Millis};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::Error;
use crate::features::Features;

/// A job's identity.
pub type JobId = Uuid;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Waiting for a conductor.
    Unclaimed,
    /// Owned by a conductor (on its lease).
    Claimed,
    /// Every task it can run waits for a completion: released, not claimable.
    Parked,
    /// Suspended by an operator (`baton suspend`): released, not claimable until resumed.
    Suspended,
    /// Finished; see the outcome.
    Complete,
    /// Given up on (see the reason); its logbook is kept.
    Trashed,
}

/// How a complete job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// The flow succeeded.
    Success,
    /// The flow failed and everything it did was undone.
    Reverted,
    /// The flow failed and could not be fully undone.
    Failure,
    /// Cancelled on request (before running, or reverted part-way).
    Cancelled,
}

impl Outcome {
    /// The outcome a job gets when its flow's run ends in `state` with `failure`
    /// (`RunOutcome::failure`): SUCCESS, REVERTED (CANCELLED if a cancel was
    /// requested or caused it) and FAILURE end the job; `None` for any other state
    /// (SUSPENDED and PARKED hand the job back instead). The one rule for a
    /// consume, whether the job runner sends it or the last logbook write carries it.
    pub fn of_flow(state: flows::FlowState, failure: Option<&Failure>, cancel_requested: bool) -> Option<Outcome> {
        match state {
            flows::FlowState::Success => Some(Outcome::Success),
            flows::FlowState::Reverted if cancel_requested || failure.is_some_and(|f| f.kind == flows::CANCELLED) => {
                Some(Outcome::Cancelled)
            }
            flows::FlowState::Reverted => Some(Outcome::Reverted),
            flows::FlowState::Failure => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// A request to put a job on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The registered flow factory to run.
    pub flow: String,
    /// The flow's inputs.
    pub store: Map<String, Value>,
    /// Higher runs first.
    pub priority: i32,
    /// Posting twice with the same key returns the first job.
    pub idempotency_key: Option<String>,
    /// The stored flow definition the job runs (flow files); `None` for a flow built into
    /// the conductor binary (Rust). Absent in records written before pinning existed.
    #[serde(default)]
    pub pin: Option<FlowPin>,
    /// The features a conductor needs to run it ([`crate::features`]); empty from older code,
    /// which any conductor claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// When the job is cancelled (and reverted) if it has not finished, ms since the epoch.
    #[serde(default)]
    pub deadline: Option<Millis>,
    /// The job this one reruns (`baton rerun`).
    #[serde(default)]
    pub rerun_of: Option<JobId>,
}

/// The version of a stored flow definition a job was posted against: it runs that version,
/// whatever is current when it is claimed or resumed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowPin {
    /// The definition's version number (see [`crate::FlowVersion`]).
    pub version: u32,
    /// The hash of that version's canonical form.
    pub hash: String,
}

/// The longest flow name or idempotency key a board accepts, in bytes. Both
/// become part of etcd keys, and etcd refuses a whole request over 1.5 MiB
/// with an error that would name neither.
pub const MAX_NAME_BYTES: usize = 1024;

impl NewJob {
    /// A job of priority 0 without an idempotency key.
    pub fn new(flow: impl Into<String>, store: Map<String, Value>) -> Self {
        NewJob {
            flow: flow.into(),
            store,
            priority: 0,
            idempotency_key: None,
            pin: None,
            requires: Vec::new(),
            deadline: None,
            rerun_of: None,
        }
    }

    /// Refuses, the same way on every backend, a blank or overlong flow name or
    /// idempotency key. (Each backend checks the store against its size limit.)
    pub(crate) fn check_names(&self) -> Result<(), Error> {
        let named = [("flow name", Some(&self.flow)), ("idempotency key", self.idempotency_key.as_ref())];
        for (what, value) in named {
            let Some(value) = value else { continue };
            if value.trim().is_empty() {
                return Err(Error::InvalidInput(format!("{what} is empty")));
            }
            if value.len() > MAX_NAME_BYTES {
                return Err(Error::TooLarge { what: what.into(), size: value.len(), limit: MAX_NAME_BYTES });
            }
        }
        Ok(())
    }
}

/// A job as stored on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identity.
    pub id: JobId,
    /// The flow factory name.
    pub flow: String,
    /// The inputs.
    pub store: Map<String, Value>,
    /// Higher runs first.
    pub priority: i32,
    /// The idempotency key it was posted with.
    pub idempotency_key: Option<String>,
    /// When it was posted.
    pub created_at: Millis,
    /// Current state.
    pub state: JobState,
    /// The conductor that holds it, while CLAIMED.
    pub owner: Option<String>,
    /// How many times it has been claimed.
    pub claims: u32,
    /// How it ended, once COMPLETE.
    pub outcome: Option<Outcome>,
    /// The flow's failure, when it did not succeed.
    pub failure: Option<Failure>,
    /// Why it was trashed, once TRASHED.
    pub trash_reason: Option<String>,
    /// Cancellation was requested while it was claimed.
    pub cancel_requested: bool,
    /// When it became COMPLETE or TRASHED.
    pub finished_at: Option<Millis>,
    /// The stored flow definition it runs; `None` for a Rust flow (see [`NewJob::pin`]).
    #[serde(default)]
    pub pin: Option<FlowPin>,
    /// The features it needs (see [`NewJob::requires`]).
    #[serde(default)]
    pub requires: Vec<String>,
    /// When it is cancelled if not finished by then (see [`NewJob::deadline`]).
    #[serde(default)]
    pub deadline: Option<Millis>,
    /// The job this one reruns.
    #[serde(default)]
    pub rerun_of: Option<JobId>,
    /// Suspension was requested while it was claimed; its owner suspends the flow.
    #[serde(default)]
    pub suspend_requested: bool,
    /// Claims counted before its last `retry` (the quarantine rule counts claims since).
    #[serde(default)]
    pub claim_base: u32,
    /// What operators did to it (cancel, suspend, resume, retry), oldest first, with who and when.
    #[serde(default)]
    pub actions: Vec<OperatorAction>,
}

/// One operator's action on a job, as recorded on its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// `cancel`, `suspend`, `resume`, `retry`, or `deadline` (the fleet's cancel at the deadline).
    pub action: String,
    /// The caller's identity (`anonymous` without an auth file), or `fleet` for a deadline.
    pub by: String,
    /// When, ms since the epoch.
    pub at: Millis,
}

/// What a claimer can run: which flows (empty: any), and which features it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// The flows it runs; empty means any.
    pub flows: Vec<String>,
    /// The features it has; `None` claims a job whatever it requires (tests, tools).
    pub features: Option<Features>,
}

impl FlowFilter {
    /// Accept every job.
    pub fn any() -> Self {
        FlowFilter::default()
    }

    /// Jobs of these flows, whatever they require.
    pub fn flows(flows: Vec<String>) -> Self {
        FlowFilter { flows, features: None }
    }

    /// The same filter, for a claimer that has exactly `features`.
    #[must_use]
    pub fn having(mut self, features: Features) -> Self {
        self.features = Some(features);
        self
    }

    /// Whether a job of this flow passes the filter's flows.
    pub fn accepts(&self, flow: &str) -> bool {
        self.flows.is_empty() || self.flows.iter().any(|f| f == flow)
    }

    /// Whether a job of `flow` needing `requires` passes the filter.
    pub fn accepts_job(&self, flow: &str, requires: &[String]) -> bool {
        self.accepts(flow)
            && self.features.as_ref().is_none_or(|has| crate::features::missing(requires, has).is_empty())
    }
}

/// A `list` query: filters and a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this flow.
    pub flow: Option<String>,
    /// At most this many jobs (0 means the backend default of 100).
    pub limit: usize,
    /// Continue after this token, from a previous page's `next`.
    pub page_token: Option<String>,
}

/// One page of a `list`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs, oldest first.
    pub jobs: Vec<Job>,
    /// Pass as `page_token` to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// A registered conductor, as `list conductors` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConductorInfo {
    /// Its unique name.
    pub name: String,
    /// Its gRPC address.
    pub address: String,
    /// When it registered.
    pub since: Millis,
    /// Told to stop claiming new jobs.
    pub draining: bool,
    /// How many jobs it holds now (computed when listing; ignored on register).
    #[serde(default)]
    pub jobs: u32,
    /// The task kinds it allows for flow files (`--task-kinds`); empty from older conductors.
    #[serde(default)]
    pub task_kinds: Vec<String>,
    /// The flows built into its binary (Rust flows); empty from older conductors.
    #[serde(default)]
    pub rust_flows: Vec<String>,
    /// The features it has ([`crate::features`]); empty from older conductors.
    #[serde(default)]
    pub features: Vec<String>,
}

/// Settings every backend shares.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    /// This session's owner name (the conductor's name); claims are made in it.
    pub owner: String,
    /// A job claimed this many times without finishing is trashed ("quarantined"); 0 never quarantines.
    pub quarantine_after: u32,
    /// The largest store or result accepted, in serialized bytes.
    pub max_value_bytes: usize,
    /// How long complete and trashed jobs and their logbooks are kept.
    pub retention: Duration,
}

impl BoardConfig {
    /// Defaults for the given owner: quarantine after 5 claims, 1 MiB values, 7 days' retention.
    pub fn new(owner: impl Into<String>) -> Self {
        BoardConfig {
            owner: owner.into(),
            quarantine_after: 5,
            // etcd refuses requests over 1.5 MiB; leave room for the rest of the txn.
            max_value_bytes: 1024 * 1024,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl JobState {
    /// The wire and display spelling, e.g. `UNCLAIMED`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Unclaimed => "UNCLAIMED",
            JobState::Claimed => "CLAIMED",
            JobState::Complete => "COMPLETE",
            JobState::Trashed => "TRASHED",
            JobState::Parked => "PARKED",
            JobState::Suspended => "SUSPENDED",
        }
    }
}

impl Outcome {
    /// The wire and display spelling, e.g. `REVERTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Reverted => "REVERTED",
            Outcome::Failure => "FAILURE",
            Outcome::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            JobState::Unclaimed,
            JobState::Claimed,
            JobState::Parked,
            JobState::Suspended,
            JobState::Complete,
            JobState::Trashed,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            format!("unknown job state {s:?}; expected UNCLAIMED, CLAIMED, PARKED, SUSPENDED, COMPLETE or TRASHED")
        })
    }
}
