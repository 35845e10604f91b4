//! The claim Txn (the one step that makes a job ours), and picks: claims
//! folded into the engine's first logbook write (`crate::pick`).
//!
//! The Txn: `owner` absent, `state` unchanged since read and the board epoch
//! current → put `owner` on the session lease, rewrite `state` (claims + 1),
//! put `held`, delete the queue entries, and, for a pick, the first logbook
//! batch (as `EtcdStorage::plan` makes it: one txn's worth, else it is written
//! after the claim, through it); all in one revision, which is the fencing
//! token (the owner key's create = mod revision). A lost reply is settled by
//! re-reading the owner key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, TxnOp};
use tokio_util::sync::CancellationToken;

use super::batch::{Committed, Member};
use super::claim::Attempt;
use super::codec::{assemble, decode, encode, SpecRecord, StateRecord};
use super::local::LocalClaims;
use super::owner::{get_kv, owner_name};
use super::storage::KnownEmpty;
use super::{Held, Inner};
use crate::claim::{Claim, ClaimOps, FenceToken, FinalBatch};
use crate::error::Error;
use crate::job::JobId;
use crate::lifecycle::fold::{self, Picked};
use crate::lifecycle::Change;
use crate::pick::{Pick, Taking};

/// What a claim Txn carries besides the claim.
#[derive(Default)]
pub(super) struct Claiming {
    /// Logbook puts written in the same Txn (a pick's first batch).
    book_ops: Vec<TxnOp>,
    /// The spec, if read already (a pick's); else the Txn reads it.
    spec: Option<SpecRecord>,
    /// The claim's `lost` and `cancelled` tokens, if made already (a pick's).
    tokens: Option<(CancellationToken, CancellationToken)>,
}

impl Claiming {
    /// A bare claim, of a job whose spec may be known already (from its queue entry).
    pub(super) fn known_spec(spec: Option<SpecRecord>) -> Self {
        Claiming { spec, ..Claiming::default() }
    }
}

impl Inner {
    /// The claim Txn of `id`, its state as read at `state_rev` (see the module doc).
    pub(super) async fn claim_txn(
        this: &Arc<Inner>,
        id: JobId,
        state: &StateRecord,
        state_rev: i64,
        with: Claiming,
    ) -> Result<Attempt, Error> {
        let keys = &this.keys;
        // Unowned: the txn below compares that.
        let next = state
            .apply(state.current(false), &Change::Claim, flows::logbook::now_millis())
            .map_err(|refused| refused.into_error(id, None))?;
        let owner = this.config.owner.clone();
        let mut ops = vec![
            TxnOp::put(keys.owner(id), owner.clone(), Some(PutOptions::new().with_lease(this.session.lease))),
            TxnOp::put(keys.state(id), encode(&next, "job state")?, None),
            TxnOp::put(keys.held(id), "", None),
            TxnOp::delete(keys.queue(state.priority, id), None),
            TxnOp::delete(keys.flow_queue(&state.flow, state.priority, id), None),
        ];
        if with.spec.is_none() {
            ops.push(TxnOp::get(keys.spec(id), None));
        }
        let wrote_book = !with.book_ops.is_empty();
        ops.extend(with.book_ops);
        let when = vec![
            Compare::create_revision(keys.owner(id), CompareOp::Equal, 0),
            Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
            this.epoch.compare(),
        ];
        let (token, spec) = match this.batched(Member::new(when, ops, Vec::new()), &format!("claiming job {id}")).await
        {
            Ok(Committed { resp, .. }) if !resp.succeeded() => {
                // Owned or changed since the queue was read: almost always another board's claim.
                this.with_local(LocalClaims::lost_race);
                return Ok(Attempt::Lost);
            }
            Ok(Committed { resp, revision }) => {
                // The Txn's revision is the claim's fencing token.
                let token = Some(revision).filter(|&rev| rev > 0).ok_or_else(|| Error::Backend {
                    // Never seen: etcd always sends a header. Token 0 would match an absent owner key.
                    message: format!("etcd answered the claim of job {id} without a revision"),
                    source: None,
                })?;
                let spec: SpecRecord = match (with.spec, get_kv(&resp, 5)) {
                    (Some(spec), _) => spec,
                    (None, Some(kv)) => decode(kv.value(), "job spec")?,
                    (None, None) => {
                        return Err(Error::Backend {
                            message: format!("job {id} has a state but no spec"),
                            source: None,
                        })
                    }
                };
                (token, spec)
            }
            Err(error) if error.is_retryable() => match Inner::settle_doubtful_claim(this, id, error).await? {
                Some(won) => won,
                None => return Ok(Attempt::Lost),
            },
            Err(error) => return Err(error),
        };
        let (lost, cancelled) =
            with.tokens.unwrap_or_else(|| (this.session.lost.child_token(), CancellationToken::new()));
        if next.cancel_requested {
            cancelled.cancel();
        }
        this.with_held(|held| {
            held.insert(
                id,
                Held {
                    token,
                    state: next.clone(),
                    state_rev: token,
                    cancelled: cancelled.clone(),
                    lost: lost.clone(),
                    // Only an owner writes a logbook: before the first claim nobody could.
                    book_empty: KnownEmpty::new(next.claims == 1 && !wrote_book),
                },
            );
            // A cancel request right after our txn may have reached the watch before this insert.
            if this.take_unheld_cancel(id, token) {
                cancelled.cancel();
            }
        });
        let job = assemble(id, spec, next, Some(owner));
        let ops: Arc<dyn ClaimOps> = this.clone();
        Ok(Attempt::Won(Box::new(Claim::new(job, token as FenceToken, ops, lost, cancelled))))
    }

    /// A claim txn whose reply was lost (etcd restarting, a cut link) may have
    /// landed: then the job is CLAIMED on our lease and nobody runs it, for as
    /// long as this session lives. So find out, re-reading until etcd answers
    /// (or the session ends): if the owner key is ours, the claim is ours (its
    /// token and spec are returned); if not, it did not land. (A pick's first
    /// batch landed or not with it: one Txn.)
    async fn settle_doubtful_claim(
        this: &Arc<Inner>,
        id: JobId,
        error: Error,
    ) -> Result<Option<(i64, SpecRecord)>, Error> {
        tracing::debug!(job = %id, %error, "claim txn outcome unknown; reading the owner key to settle it");
        let lost = this.session.lost.clone();
        let read = || async {
            let owner = this.get(this.keys.owner(id), None, &format!("settling the claim of job {id}")).await?;
            let spec = this.get(this.keys.spec(id), None, &format!("reading the spec of job {id}")).await?;
            Ok::<_, Error>((owner, spec))
        };
        let (owner, spec) =
            crate::patient::retry(&lost, "settling a claim", Error::is_retryable, || Error::Closed, read).await?;
        let ours =
            owner.kvs().first().filter(|kv| kv.lease() == this.session.lease && owner_name(kv) == this.config.owner);
        let Some(owner_kv) = ours else {
            return Ok(None);
        };
        let spec = match spec.kvs().first() {
            Some(kv) => decode(kv.value(), "job spec")?,
            None => return Err(Error::Backend { message: format!("job {id} has a state but no spec"), source: None }),
        };
        tracing::info!(job = %id, "a claim whose reply was lost had landed: it is ours");
        Ok(Some((owner_kv.mod_revision(), spec)))
    }

    /// Picks `id` (reserved by the caller, whose reservation the pick then
    /// holds): its state as read at `state_rev`, its spec as its queue entry
    /// carried it, or else read now. `None` if it was quarantined instead (the
    /// reservation is the caller's to release).
    pub(super) async fn pick_one(
        this: &Arc<Inner>,
        id: JobId,
        state: StateRecord,
        spec: Option<SpecRecord>,
        state_rev: i64,
    ) -> Result<Option<Pick>, Error> {
        let status = state.status(state.current(false));
        let now = flows::logbook::now_millis();
        let next = match fold::pick(&status, this.quarantine_rule(), now).map_err(|r| r.into_error(id, None))? {
            Picked::Quarantine => {
                this.quarantine(id, state, state_rev).await?;
                return Ok(None);
            }
            Picked::Claim(next) => state.with_status(next),
        };
        let spec = match spec {
            Some(spec) => spec,
            None => this.read_spec(id).await?,
        };
        let tokens = (this.session.lost.child_token(), CancellationToken::new());
        if next.cancel_requested {
            tokens.1.cancel();
        }
        let job = assemble(id, spec.clone(), next, Some(this.config.owner.clone()));
        let taking = EtcdTaking {
            inner: this.clone(),
            id,
            state,
            state_rev,
            spec,
            tokens: tokens.clone(),
            released: AtomicBool::new(false),
        };
        let ops: Arc<dyn ClaimOps> = this.clone();
        Ok(Some(Pick::new(job, ops, tokens, fold::no_logbook_yet(&status), Box::new(taking))))
    }

    /// A job's spec. Written once at post, never changed: a serializable read
    /// (the member's own copy, no consensus round) is exact when it finds it.
    async fn read_spec(&self, id: JobId) -> Result<SpecRecord, Error> {
        let doing = format!("reading the spec of job {id}");
        let local = self.get(self.keys.spec(id), Some(GetOptions::new().with_serializable()), &doing).await?;
        let resp = match local.kvs().first() {
            Some(_) => local,
            None => self.get(self.keys.spec(id), None, &doing).await?,
        };
        match resp.kvs().first() {
            Some(kv) => decode(kv.value(), "job spec"),
            None => Err(Error::Backend { message: format!("job {id} has a state but no spec"), source: None }),
        }
    }
}

/// A picked job's claim step: holds the queue entry's local reservation until taken or dropped.
#[derive(Debug)]
struct EtcdTaking {
    inner: Arc<Inner>,
    id: JobId,
    state: StateRecord,
    state_rev: i64,
    spec: SpecRecord,
    tokens: (CancellationToken, CancellationToken),
    released: AtomicBool,
}

impl EtcdTaking {
    fn release(&self, won_at: Option<i64>) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.inner.with_local(|local| local.release(self.id, won_at));
        }
    }

    /// The first batch as the claim Txn's ops, if it fits one txn and needs no flow already there.
    async fn book_ops(&self, batch: FinalBatch<'_>) -> Result<Option<Vec<TxnOp>>, Error> {
        let FinalBatch { book, flow, changes } = batch;
        if book != self.id {
            return Err(Error::InvalidInput(format!("job {} writes only its own logbook, not {book}", self.id)));
        }
        let mut planned = self.inner.etcd_storage(self.id, 0).plan(flow, &changes).await?;
        match planned.txns.as_slice() {
            [(_, extra)] if extra.is_empty() => Ok(planned.txns.pop().map(|(ops, _)| ops)),
            // Atoms only (their flow must exist: that compare stays with the storage), or past one txn.
            _ => Ok(None),
        }
    }
}

impl Drop for EtcdTaking {
    fn drop(&mut self) {
        self.release(None);
    }
}

#[async_trait]
impl Taking for EtcdTaking {
    async fn take(&self, first: Option<FinalBatch<'_>>) -> Result<(Claim, bool), Error> {
        let attempt = async {
            self.inner.check_live()?;
            let book_ops = match first {
                Some(batch) => self.book_ops(batch).await?,
                None => None,
            };
            let folded = book_ops.is_some();
            let with = Claiming {
                book_ops: book_ops.unwrap_or_default(),
                spec: Some(self.spec.clone()),
                tokens: Some(self.tokens.clone()),
            };
            Ok::<_, Error>((Inner::claim_txn(&self.inner, self.id, &self.state, self.state_rev, with).await?, folded))
        }
        .await;
        let won_at = match &attempt {
            Ok((Attempt::Won(claim), _)) => Some(claim.token() as i64),
            _ => None,
        };
        self.release(won_at);
        match attempt? {
            (Attempt::Won(claim), folded) => Ok((*claim, folded)),
            (Attempt::Lost, _) => {
                // Changed since the pick: another look may find the job still there, or the next one.
                self.inner.wake_claimers();
                Err(Error::ClaimLost { job: self.id, token: 0 })
            }
        }
    }
}
