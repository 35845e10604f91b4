//! Operators' requests on etcd (cancel, suspend, resume, retry), the deadline's
//! cancel, and the job deadline index `P jdue/<deadline-ms>/<id>`.
//!
//! Each request is one conditional txn on the job's state record (its mod
//! revision, and whether an owner key exists), retried on a race. The lifecycle
//! table decides the new state; this file only says which keys each move touches.
//! The deadline index is written with the job at post and read only up to now;
//! a key whose job is finished, flagged or gone is dropped when met.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use flows::Millis;

use super::codec::{encode, StateRecord};
use super::Inner;
use crate::error::Error;
use crate::job::{Job, JobId, JobState};
use crate::lifecycle::operate::{deadline_failure, Operation, FLEET};
use crate::lifecycle::Change;

/// Attempts of a request that keeps meeting a changed record.
const ATTEMPTS: usize = 16;

impl Inner {
    /// Applies an operator's request (or, with `expire`, the deadline's cancel) and records who asked.
    pub(super) async fn operate(
        &self,
        id: JobId,
        op: Operation,
        by: &str,
        expire: Option<Millis>,
    ) -> Result<Job, Error> {
        for _ in 0..ATTEMPTS {
            let (state, state_rev, owner) = self.read_state(id).await?;
            let from = state.current(owner.is_some());
            let now = flows::logbook::now_millis();
            let change = match expire {
                Some(deadline) => Change::Expire(deadline_failure(deadline)),
                None => op.change(),
            };
            let next = match state.apply(from, &change, now) {
                Ok(next) => next,
                // A finished job is returned unchanged by a cancel, as ever.
                Err(_) if op == Operation::Cancel => return self.get_job(id).await,
                Err(refused) => return Err(refused.into_error(id, owner.as_deref())),
            };
            if from == JobState::Claimed && op == Operation::Cancel && state.cancel_requested {
                return self.get_job(id).await;
            }
            let mut status = next.status(next.state);
            status.record(if expire.is_some() { "deadline" } else { op.as_str() }, by, now);
            let next = state.with_status(status);
            if self.write_operation(id, &state, state_rev, from, next, &change).await? {
                tracing::info!(job = %id, %from, action = op.as_str(), %by, "operator request applied");
                return self.get_job(id).await;
            }
        }
        Err(Error::Unavailable { message: format!("job {id} kept changing while changing it"), source: None })
    }

    /// The txn of one move; false if the record (or its owner) changed since read.
    async fn write_operation(
        &self,
        id: JobId,
        state: &StateRecord,
        state_rev: i64,
        from: JobState,
        next: StateRecord,
        change: &Change,
    ) -> Result<bool, Error> {
        let keys = &self.keys;
        if from == JobState::Unclaimed && next.state == JobState::Complete {
            return self.finish_unowned(id, state, state_rev, next, "cancelling").await;
        }
        let cancelling = matches!(change, Change::Cancel | Change::Expire(_));
        // Parked tasks' tokens die with a cancel request.
        let (mut when, mut ops) = if cancelling { self.cancel_park_ops(id).await? } else { Default::default() };
        let owned = if from == JobState::Claimed { CompareOp::NotEqual } else { CompareOp::Equal };
        when.push(Compare::create_revision(keys.owner(id), owned, 0));
        when.push(Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev));
        let encoded = encode(&next, "job state")?;
        ops.push(TxnOp::put(keys.state(id), encoded.clone(), None));
        let queued = next.state == JobState::Unclaimed;
        if queued {
            ops.push(TxnOp::put(keys.queue(state.priority, id), encoded.clone(), None));
            ops.push(TxnOp::put(keys.flow_queue(&state.flow, state.priority, id), encoded, None));
        }
        if from == JobState::Unclaimed && next.state == JobState::Suspended {
            ops.push(TxnOp::delete(keys.queue(state.priority, id), None));
            ops.push(TxnOp::delete(keys.flow_queue(&state.flow, state.priority, id), None));
        }
        if from == JobState::Parked {
            // No longer parked: out of the backlog's parked index (see `parks`).
            ops.push(TxnOp::delete(keys.parked(id), None));
        }
        if let (JobState::Complete | JobState::Trashed, Some(finished)) = (from, state.finished_at) {
            ops.push(TxnOp::delete(keys.done(finished, id), None));
        }
        let landed = self.txn(Txn::new().when(when).and_then(ops), &format!("changing job {id}")).await?.succeeded();
        if landed && queued {
            let key = keys.queue(state.priority, id);
            self.with_local(|local| local.queue_put(key.as_bytes()));
            self.with_queue_view(|view| view.insert(key.as_bytes()));
        }
        Ok(landed)
    }

    /// Cancels up to `limit` jobs whose deadline passed, earliest first; returns how many.
    pub(super) async fn cancel_overdue(&self, limit: usize) -> Result<usize, Error> {
        let keys = &self.keys;
        let now = flows::logbook::now_millis();
        let end = format!("{}{:013}0", keys.job_due_prefix(), now);
        let options =
            GetOptions::new().with_range(end).with_limit(i64::try_from(limit).unwrap_or(i64::MAX)).with_keys_only();
        let mut resp = self.get(keys.job_due_prefix(), Some(options), "reading overdue jobs").await?;
        let mut cancelled = 0;
        for kv in resp.take_kvs() {
            let Some((deadline, id)) = keys.parse_job_due(kv.key()) else { continue };
            match self.operate(id, Operation::Cancel, FLEET, Some(deadline)).await {
                Ok(job) if job.cancel_requested || job.outcome == Some(crate::Outcome::Cancelled) => {
                    tracing::info!(job = %id, "job deadline passed: cancelled");
                    cancelled += 1;
                }
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            // Applied, or nothing left to do (finished, flagged, purged): the key has served.
            self.txn(Txn::new().and_then([TxnOp::delete(kv.key().to_vec(), None)]), "dropping a job deadline key")
                .await?;
        }
        Ok(cancelled)
    }
}
