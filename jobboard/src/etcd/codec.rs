//! What the etcd backend stores (spec and state records), ids, input checks,
//! and the mapping of etcd-client errors to [`Error`].

use std::sync::Mutex;

use flows::{Failure, Millis};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::job::{FlowPin, Job, JobId, JobState, NewJob, OperatorAction, Outcome};
use crate::lifecycle::{self, Change, IllegalTransition, Status};

/// The immutable part of a job, written once by `post` (`P spec/<id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpecRecord {
    pub flow: String,
    pub store: Map<String, Value>,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    /// Absent in specs written before pinning existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<FlowPin>,
    /// The features the job needs; absent in specs of older code (needs nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// When it is cancelled if unfinished; indexed by `P jdue/` (see `deadlines`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<JobId>,
}

/// The small mutable part of a job (`P m/state/<id>`); every transition rewrites it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    pub flow: String,
    pub priority: i32,
    /// `Claimed` here with no owner key means the lease expired and nobody re-queued it yet.
    pub state: JobState,
    pub claims: u32,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub trash_reason: Option<String>,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub finished_at: Option<Millis>,
    /// The spec's `requires`, copied so that a claimer reads it from the queue entry it
    /// ranges (queue entries are copies of this record). Code older than features drops
    /// it when it rewrites the record; the spec keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend_requested: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub claim_base: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<OperatorAction>,
}

/// Encoded specs up to this size are copied into the queue entries of a post.
const INLINE_SPEC_MAX: usize = 1024;

/// A queue entry (`P m/queue/...` and `P m/fqueue/...`): a copy of the state
/// record and, as posted, the spec when it is small, so that a claimer reads
/// the job whole from the entry it ranged, and sends no read of its own for the
/// spec (a read costs etcd 3.4 a copy of its write buffer, see `batch`). Code
/// that reads an entry as a bare [`StateRecord`] ignores the spec. Entries
/// written again later (a release, a retry) carry the state only.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct QueueEntry {
    #[serde(flatten)]
    pub state: StateRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecRecord>,
}

impl QueueEntry {
    /// The entry of a job just posted: its spec inline if `encoded_spec` is small.
    pub(crate) fn posted(state: &StateRecord, spec: &SpecRecord, encoded_spec: &[u8]) -> Result<Vec<u8>, Error> {
        match encoded_spec.len() <= INLINE_SPEC_MAX {
            true => encode(&QueueEntry { state: state.clone(), spec: Some(spec.clone()) }, "queue entry"),
            false => encode(state, "queue entry"),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StateRecord {
    pub(crate) fn new(spec: &SpecRecord) -> Self {
        StateRecord {
            flow: spec.flow.clone(),
            priority: spec.priority,
            state: lifecycle::POSTED,
            claims: 0,
            outcome: None,
            failure: None,
            trash_reason: None,
            cancel_requested: false,
            finished_at: None,
            requires: spec.requires.clone(),
            suspend_requested: false,
            claim_base: 0,
            actions: Vec::new(),
        }
    }

    /// The job's state as callers see it, given whether an owner key exists:
    /// a record left CLAIMED by an expired lease is UNCLAIMED (the expiry was
    /// the release; `requeue_orphan` only writes it down).
    pub(crate) fn current(&self, owned: bool) -> JobState {
        match (owned, self.state) {
            (true, _) => JobState::Claimed,
            (false, JobState::Claimed) => JobState::Unclaimed,
            (false, other) => other,
        }
    }

    /// The record after `change` at `now`, taken from state `from` (the record's
    /// own, or [`StateRecord::current`]), if the lifecycle table allows it.
    pub(crate) fn apply(&self, from: JobState, change: &Change, now: Millis) -> Result<StateRecord, IllegalTransition> {
        let status = self.status(from);
        let next = status.apply(change, now)?;
        Ok(self.with_status(next))
    }

    /// The status part of this record, as the lifecycle sees it, in state `from`.
    pub(crate) fn status(&self, from: JobState) -> Status {
        Status {
            state: from,
            claims: self.claims,
            outcome: self.outcome,
            failure: self.failure.clone(),
            trash_reason: self.trash_reason.clone(),
            cancel_requested: self.cancel_requested,
            finished_at: self.finished_at,
            suspend_requested: self.suspend_requested,
            claim_base: self.claim_base,
            actions: self.actions.clone(),
        }
    }

    /// This record with `next` as its status.
    pub(crate) fn with_status(&self, next: Status) -> StateRecord {
        StateRecord {
            flow: self.flow.clone(),
            priority: self.priority,
            state: next.state,
            claims: next.claims,
            outcome: next.outcome,
            failure: next.failure,
            trash_reason: next.trash_reason,
            cancel_requested: next.cancel_requested,
            finished_at: next.finished_at,
            requires: self.requires.clone(),
            suspend_requested: next.suspend_requested,
            claim_base: next.claim_base,
            actions: next.actions,
        }
    }
}

/// Assembles the public `Job` from its records and its owner key's value.
pub(crate) fn assemble(id: JobId, spec: SpecRecord, state: StateRecord, owner: Option<String>) -> Job {
    // The lease expired: the job is claimable even before it is re-queued.
    let current = state.current(owner.is_some());
    Job {
        id,
        flow: spec.flow,
        store: spec.store,
        priority: spec.priority,
        idempotency_key: spec.idempotency_key,
        created_at: spec.created_at,
        state: current,
        owner,
        claims: state.claims,
        outcome: state.outcome,
        failure: state.failure,
        trash_reason: state.trash_reason,
        cancel_requested: state.cancel_requested,
        finished_at: state.finished_at,
        pin: spec.pin,
        requires: spec.requires,
        deadline: spec.deadline,
        rerun_of: spec.rerun_of,
        suspend_requested: state.suspend_requested,
        claim_base: state.claim_base,
        actions: state.actions,
    }
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::Backend { message: format!("cannot encode {what}"), source: Some(Box::new(e)) })
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Backend { message: format!("corrupt {what} in etcd"), source: Some(Box::new(e)) })
}

/// Refuses what `post` must refuse, before anything is written.
pub(crate) fn validate_new_job(job: &NewJob, max_value_bytes: usize) -> Result<(), Error> {
    job.check_names()?;
    check_size("store", &Value::Object(job.store.clone()), max_value_bytes)
}

/// `TooLarge` if the value's JSON is over `limit` bytes.
pub(crate) fn check_size<T: Serialize>(what: &str, value: &T, limit: usize) -> Result<(), Error> {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > limit {
        return Err(Error::TooLarge { what: what.to_string(), size, limit });
    }
    Ok(())
}

/// A new job id: UUID version 7 layout (48-bit milliseconds, then a 12-bit
/// counter that keeps ids from one process strictly increasing within a
/// millisecond), so that key order is posting order.
///
/// Its milliseconds are `not_before` at least: a post refused by the board's list floor
/// (a clock behind it) takes an id at the floor (see `floor`); the process's later ids
/// then stay at or above it (ids are monotonic per process), until its clock catches up.
pub(crate) fn new_job_id_from(not_before: Millis) -> (JobId, Millis) {
    static LAST: Mutex<(u64, u16)> = Mutex::new((0, 0));
    let now = flows::logbook::now_millis().max(not_before);
    let (ms, counter) = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let next = if now > last.0 {
            (now, 0)
        } else if last.1 < 0x0fff {
            (last.0, last.1 + 1)
        } else {
            (last.0 + 1, 0)
        };
        *last = next;
        next
    };
    let random: [u8; 8] = rand::random();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70 | ((counter >> 8) as u8 & 0x0f);
    bytes[7] = (counter & 0xff) as u8;
    bytes[8..].copy_from_slice(&random);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    (JobId::from_bytes(bytes), ms)
}

/// Maps an etcd-client error: connection trouble is `Unavailable` (retryable),
/// anything else is `Backend`.
pub(crate) fn etcd_error(err: etcd_client::Error, doing: &str) -> Error {
    use etcd_client::Error as E;
    use tonic::Code;
    let retryable = match &err {
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => true,
        E::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled | Code::Aborted
        ),
        _ => false,
    };
    let message = format!("etcd failed while {doing}: {}", cause_in_words(&err));
    if retryable {
        Error::Unavailable { message, source: Some(Box::new(err)) }
    } else {
        Error::Backend { message, source: Some(Box::new(err)) }
    }
}

/// Whether the request failed before anything was sent: no connection to the
/// member could be made. Repeating such a request is always safe.
pub(crate) fn never_sent(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => status.message() == "tcp connect error",
        _ => false,
    }
}

/// What went wrong, in words: the OS error under a transport failure
/// ("Connection refused (os error 111)"), or the status message etcd sent,
/// rather than the nested debug dump of tonic and hyper errors. The whole
/// chain stays available as the error's `source`.
pub(crate) fn cause_in_words(err: &etcd_client::Error) -> String {
    use etcd_client::Error as E;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.to_string();
        }
        source = error.source();
    }
    match err {
        // tonic keeps only the summary of a failed connect ("tcp connect error").
        E::GRpcStatus(status) if matches!(status.message(), "transport error" | "tcp connect error") => {
            "cannot connect".to_owned()
        }
        E::GRpcStatus(status) if !status.message().is_empty() => status.message().to_owned(),
        E::TransportError(_) => "cannot connect".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_in_key_order() {
        let ids: Vec<String> = (0..5000).map(|_| new_job_id_from(0).0.to_string()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids must sort in posting order");
    }
}
