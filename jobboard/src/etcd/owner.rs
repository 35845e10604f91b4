//! The owner's writes: consume, abandon and trash, each one transaction fenced
//! by the claim (the owner key's mod revision equals the token and the key is
//! on our lease), by the board epoch, and by the state record as last seen;
//! `ClaimOps` for etcd. A consume may carry the run's last logbook write in its
//! txn (`consume_with`), so a job's last step and its end are one Txn.

use std::sync::Arc;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, KeyValue, TxnOp, TxnOpResponse, TxnResponse};
use flows::{Failure, Millis, Storage, StorageError};

use super::batch::Member;
use super::codec::{assemble, check_size, decode, encode, StateRecord};
use super::storage::{EtcdStorage, KnownEmpty};
use super::Inner;
use crate::claim::{ClaimOps, FenceToken, FinalBatch};
use crate::error::Error;
use crate::job::{Job, JobId, Outcome};
use crate::lifecycle::Change;

impl Inner {
    /// Runs an owner write: the lifecycle table turns the current state into the
    /// new one by `change` at `now` (a refusal writes nothing), and `extra` gives the
    /// extra ops from the old and new states; the txn holds only if our owner key
    /// and the state are as seen.
    async fn fenced_transition(
        &self,
        id: JobId,
        token: FenceToken,
        change: &Change,
        now: Millis,
        extra: impl Fn(&StateRecord, &StateRecord) -> Result<Vec<TxnOp>, Error>,
    ) -> Result<(StateRecord, TxnResponse), Error> {
        let keys = &self.keys;
        let lost = || Error::ClaimLost { job: id, token };
        if self.session.lost.is_cancelled() {
            // Self-fenced (or closed): etcd may still hold our lease for a while, but
            // another owner must be able to count on this session writing nothing more.
            self.lose(id, token);
            return Err(lost());
        }
        let cached = self.with_held(|held| {
            held.get(&id).filter(|h| h.token as u64 == token).map(|h| (h.state.clone(), h.state_rev))
        });
        let (mut state, mut state_rev) = match cached {
            Some(seen) => seen,
            None => {
                let (state, rev, _) = self.read_state(id).await?;
                (state, rev)
            }
        };
        for _ in 0..16 {
            // The record's own state: under our owner key it must say CLAIMED.
            let next = state.apply(state.state, change, now).map_err(|refused| refused.into_error(id, None))?;
            let mut ops = extra(&state, &next)?;
            ops.insert(0, TxnOp::put(keys.state(id), encode(&next, "job state")?, None));
            let member = Member::new(
                vec![
                    Compare::mod_revision(keys.owner(id), CompareOp::Equal, token as i64),
                    Compare::lease(keys.owner(id), CompareOp::Equal, self.session.lease),
                    Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
                    self.epoch.compare(),
                ],
                ops,
                vec![TxnOp::get(keys.owner(id), None), TxnOp::get(keys.state(id), None), self.epoch.get()],
            );
            let resp = self.batched(member, &format!("writing job {id} under claim {token}")).await?.resp;
            if resp.succeeded() {
                self.forget(id, token);
                return Ok((next, resp));
            }
            let same_epoch = self.epoch.is_current(get_kv(&resp, 2).as_ref());
            match get_kv(&resp, 0) {
                Some(owner)
                    if same_epoch && owner.mod_revision() as u64 == token && owner.lease() == self.session.lease => {}
                _ => {
                    self.lose(id, token);
                    return Err(lost());
                }
            }
            // Only the state moved under us (a cancel request): retry on the new one.
            let kv = get_kv(&resp, 1).ok_or(Error::NotFound(id))?;
            state = decode(kv.value(), "job state")?;
            state_rev = kv.mod_revision();
        }
        Err(Error::Unavailable { message: format!("job {id} kept changing while writing it"), source: None })
    }

    /// Our claim ended normally: stop tracking it.
    pub(super) fn forget(&self, id: JobId, token: FenceToken) {
        self.with_held(|held| {
            if held.get(&id).is_some_and(|h| h.token as u64 == token) {
                held.remove(&id);
            }
        });
    }

    /// Our claim was found lost: fire its token and stop tracking it.
    pub(super) fn lose(&self, id: JobId, token: FenceToken) {
        if let Some(h) =
            self.with_held(
                |held| {
                    if held.get(&id).is_some_and(|h| h.token as u64 == token) {
                        held.remove(&id)
                    } else {
                        None
                    }
                },
            )
        {
            h.lost.cancel();
        }
    }

    /// Consumes the job; `book_ops` (a logbook write, see `consume_with`) go in the same txn.
    async fn finish(
        &self,
        id: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
        book_ops: Vec<TxnOp>,
    ) -> Result<Job, Error> {
        if let Some(failure) = &failure {
            check_size("failure", failure, self.config.max_value_bytes)?;
        }
        let now = flows::logbook::now_millis();
        let keys = &self.keys;
        let consume = Change::Consume(outcome, failure);
        let (next, resp) = self
            .fenced_transition(id, token, &consume, now, |_, _| {
                let mut ops = vec![
                    TxnOp::delete(keys.owner(id), None),
                    TxnOp::delete(keys.held(id), None),
                    TxnOp::put(keys.done(now, id), "", None),
                    TxnOp::get(keys.spec(id), None),
                ];
                ops.extend(book_ops.iter().cloned());
                Ok(ops)
            })
            .await?;
        let spec = get_kv(&resp, 4).ok_or(Error::NotFound(id))?;
        Ok(assemble(id, decode(spec.value(), "job spec")?, next, None))
    }
}

impl Inner {
    /// The fenced logbook storage of claim `token` on `job`.
    pub(super) fn etcd_storage(&self, job: JobId, token: FenceToken) -> EtcdStorage {
        let fence = super::storage::Fence {
            lease: self.session.lease,
            token,
            session_lost: self.session.lost.clone(),
            epoch: self.epoch.clone(),
            revisions: self.session.revisions.clone(),
        };
        // The claim's own flag, so a second `storage()` after writes does not set it again.
        // A claim no longer held writes nothing anyway (`ClaimLost`); it reads as a stranger would.
        let book_empty = self
            .with_held(|held| held.get(&job).filter(|h| h.token as u64 == token).map(|h| h.book_empty.clone()))
            .unwrap_or_else(|| KnownEmpty::new(false));
        EtcdStorage::new(self.kv(), self.batcher.clone(), self.keys.clone(), fence, &self.config, job, book_empty)
    }
}

#[async_trait]
impl ClaimOps for Inner {
    fn storage(&self, job: JobId, token: FenceToken) -> Arc<dyn Storage> {
        Arc::new(self.etcd_storage(job, token))
    }

    async fn consume(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
    ) -> Result<Job, Error> {
        self.finish(job, token, outcome, failure, Vec::new()).await
    }

    async fn consume_with(
        &self,
        job: JobId,
        token: FenceToken,
        outcome: Outcome,
        failure: Option<Failure>,
        batch: FinalBatch<'_>,
    ) -> Result<Job, Error> {
        let FinalBatch { book, flow, changes } = batch;
        if book != job {
            return Err(Error::InvalidInput(format!("job {job} writes only its own logbook, not {book}")));
        }
        if let Some(failure) = &failure {
            check_size("failure", failure, self.config.max_value_bytes)?;
        }
        let mut book_ops = Vec::new();
        if !changes.is_empty() {
            let storage = self.etcd_storage(job, token);
            let mut planned = storage.plan(flow, &changes).await?;
            let folded = match planned.txns.as_slice() {
                // An atoms-only batch needs its flow to exist already: sent alone, so
                // that a missing flow is `NotFound` as ever, and nothing is consumed.
                [(_, extra)] if !extra.is_empty() => None,
                // Past one txn, the earlier ones go first (in order, fenced, as
                // `save_changes` sends them); the first created the flow if absent.
                _ => planned.txns.pop(),
            };
            storage.write_planned(planned).await.map_err(|e| from_storage(job, token, e))?;
            if let Some((ops, _)) = folded {
                storage.written();
                book_ops = ops;
            }
        }
        self.finish(job, token, outcome, failure, book_ops).await
    }

    async fn abandon(&self, job: JobId, token: FenceToken) -> Result<(), Error> {
        let keys = &self.keys;
        let now = flows::logbook::now_millis();
        let (next, _) = self
            .fenced_transition(job, token, &Change::Abandon, now, |state, next| {
                let encoded = encode(next, "job state")?;
                Ok(vec![
                    TxnOp::delete(keys.owner(job), None),
                    TxnOp::delete(keys.held(job), None),
                    TxnOp::put(keys.queue(state.priority, job), encoded.clone(), None),
                    TxnOp::put(keys.flow_queue(&state.flow, state.priority, job), encoded, None),
                ])
            })
            .await?;
        self.with_local(|local| local.queue_put(keys.queue(next.priority, job).as_bytes()));
        Ok(())
    }

    async fn halt(&self, job: JobId, token: FenceToken) -> Result<Job, Error> {
        let keys = &self.keys;
        let now = flows::logbook::now_millis();
        let (next, resp) = self
            .fenced_transition(job, token, &Change::Halt, now, |state, next| {
                let mut ops = vec![
                    TxnOp::delete(keys.owner(job), None),
                    TxnOp::delete(keys.held(job), None),
                    TxnOp::get(keys.spec(job), None),
                ];
                if next.state == crate::JobState::Unclaimed {
                    let encoded = encode(next, "job state")?;
                    ops.push(TxnOp::put(keys.queue(state.priority, job), encoded.clone(), None));
                    ops.push(TxnOp::put(keys.flow_queue(&state.flow, state.priority, job), encoded, None));
                }
                Ok(ops)
            })
            .await?;
        if next.state == crate::JobState::Unclaimed {
            self.with_local(|local| local.queue_put(keys.queue(next.priority, job).as_bytes()));
        }
        let spec = get_kv(&resp, 3).ok_or(Error::NotFound(job))?;
        Ok(assemble(job, decode(spec.value(), "job spec")?, next, None))
    }

    async fn parked_tasks(&self, job: JobId) -> Result<Vec<crate::parking::ParkEntry>, Error> {
        Inner::parked_tasks(self, job).await
    }

    fn deliveries(&self, job: JobId) -> crate::board::Wakeups {
        self.subscribe_parks(job)
    }

    async fn park(
        &self,
        job: JobId,
        token: FenceToken,
        waiting: &[(String, u32)],
    ) -> Result<crate::parking::Parking, Error> {
        self.park_job(job, token, waiting).await
    }

    async fn trash(&self, job: JobId, token: FenceToken, reason: String) -> Result<(), Error> {
        check_size("trash reason", &reason, self.config.max_value_bytes)?;
        let now = flows::logbook::now_millis();
        let keys = &self.keys;
        self.fenced_transition(job, token, &Change::Trash(reason), now, |_, _| {
            Ok(vec![
                TxnOp::delete(keys.owner(job), None),
                TxnOp::delete(keys.held(job), None),
                TxnOp::put(keys.done(now, job), "", None),
            ])
        })
        .await?;
        Ok(())
    }
}

/// A logbook write's error, as the board error of the owner write it is part of.
fn from_storage(job: JobId, token: FenceToken, error: StorageError) -> Error {
    match error {
        StorageError::ClaimLost(_) => Error::ClaimLost { job, token },
        StorageError::Unavailable { message, source } => Error::Unavailable { message, source },
        other => Error::Backend { message: other.to_string(), source: Some(Box::new(other)) },
    }
}

/// The first key-value of the `index`th response, if that was a get that found one.
pub(super) fn get_kv(resp: &TxnResponse, index: usize) -> Option<KeyValue> {
    match resp.op_responses().into_iter().nth(index)? {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
        _ => None,
    }
}

/// The conductor name an owner key holds.
pub(super) fn owner_name(kv: &KeyValue) -> String {
    String::from_utf8_lossy(kv.value()).into_owned()
}
