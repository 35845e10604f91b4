//! Claims as single etcd transactions, quarantine, and re-queueing after a lease expiry.
//!
//! Claim: `owner` absent and `state` unchanged since read → put `owner` on the
//! session lease, rewrite `state` (claims + 1), put `held`, delete the queue
//! entries, read the spec; all in one revision, which is the fencing token
//! (the owner key's create = mod revision). The writes that end a claim are
//! in [`super::owner`].
//!
//! Candidates: one range of the all-flows queue per attempt, filtered by the
//! claimer's flows; only when none of that page is theirs, one range per flow.

use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnResponse};
use tokio_util::sync::CancellationToken;

use super::codec::{assemble, decode, encode, SpecRecord, StateRecord};
use super::keys::prefix_end;
use super::local::LocalClaims;
use super::owner::{get_kv, owner_name};
use super::storage::KnownEmpty;
use super::{Held, Inner};
use crate::claim::{Claim, ClaimOps, FenceToken};
use crate::error::Error;
use crate::job::{FlowFilter, JobId};
use crate::lifecycle::{self, Change, Event, IllegalTransition, QuarantineRule};

/// Queue entries read per claim attempt: enough to step past a few racing claimers.
const CANDIDATES: i64 = 16;
/// While other boards take the same entries (`LocalClaims::pick`), a page this many times
/// wider: random picks from a wider page collide less often.
const CONTENDED_WIDTH: i64 = 4;

/// The outcome of trying one candidate.
enum Attempt {
    Won(Box<Claim>),
    /// Someone else changed it first, or it was quarantined: try another.
    Lost,
}

impl Attempt {
    fn won_at(&self) -> Option<i64> {
        match self {
            Attempt::Won(claim) => Some(claim.token() as i64),
            Attempt::Lost => None,
        }
    }
}

/// Queue entries to try, in claim order.
struct Candidates {
    entries: Vec<KeyValue>,
    /// They are all-flows queue entries (the filter's first ones), which
    /// sibling claimers with the same filter may take from (`LocalClaims::share`).
    shareable: bool,
}

/// The first entries under a prefix.
struct Page {
    entries: Vec<KeyValue>,
    /// Every key under the prefix is in `entries` (one range of the whole prefix, not cut by its limit).
    complete: bool,
}

/// Counts a board's claim_next calls in flight (sizes the candidate range).
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.with_local(|local| local.in_flight += 1);
        InFlight(inner)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.with_local(|local| local.in_flight -= 1);
    }
}

impl Inner {
    pub(super) async fn claim_next(this: &Arc<Inner>, filter: &FlowFilter) -> Result<Option<Claim>, Error> {
        this.check_live()?;
        let _in_flight = InFlight::enter(this);
        let mut raced = false;
        // Bounded: each round either wins, or sees every candidate taken by others.
        for _round in 0..8 {
            if this.with_local(|local| local.use_shared(filter)) {
                // Siblings are claiming too: take from the entries one of them read.
                while let Some((id, kv)) = this.with_local(LocalClaims::take_shared) {
                    if let Some(claim) = Inner::attempt(this, id, &kv).await? {
                        return Ok(Some(claim));
                    }
                    raced = true;
                }
                continue;
            }
            let Candidates { entries: mut candidates, shareable } = this.candidates(filter).await?;
            if candidates.is_empty() {
                return Ok(None);
            }
            let mut first = true;
            while !candidates.is_empty() {
                // The head (strict order when uncontended); after a lost race, a random
                // one, so that claimers of other boards spread out instead of colliding.
                let pick = this.with_local(|local| local.pick(candidates.len()));
                let kv = candidates.remove(pick);
                let Some(id) = super::keys::id_at_end(kv.key()) else { continue };
                // A sibling task of this board is on it, or already won it since this range was read.
                if !this.with_local(|local| local.reserve(id, kv.mod_revision())) {
                    continue;
                }
                if first && shareable {
                    // Leave the rest to siblings, who would otherwise each range the same entries.
                    this.with_local(|local| local.share(filter, std::mem::take(&mut candidates)));
                }
                first = false;
                if let Some(claim) = Inner::attempt(this, id, &kv).await? {
                    return Ok(Some(claim));
                }
                raced = true;
            }
        }
        if raced {
            // Every try went to another claimer (or was quarantined), round after round:
            // jobs may well remain, yet `None` sends the caller to sleep until the next
            // post or release. Wake it (and this board's other waiters) to look again.
            this.wake_claimers();
        }
        Ok(None)
    }

    /// Tries one reserved queue entry, then releases the reservation.
    async fn attempt(this: &Arc<Inner>, id: JobId, kv: &KeyValue) -> Result<Option<Claim>, Error> {
        let state: StateRecord = match decode(kv.value(), "queue entry") {
            Ok(state) => state,
            Err(e) => {
                this.with_local(|local| local.release(id, None));
                return Err(e);
            }
        };
        let attempt = Inner::try_claim(this, id, state, kv.mod_revision()).await;
        this.with_local(|local| local.release(id, attempt.as_ref().ok().and_then(Attempt::won_at)));
        match attempt? {
            Attempt::Won(claim) => Ok(Some(*claim)),
            Attempt::Lost => Ok(None),
        }
    }

    /// The first queue entries this filter accepts, in claim order.
    ///
    /// A filtered claim first ranges the all-flows queue, once, and keeps the
    /// entries of its flows: a conductor typically runs every flow posted, so
    /// this is one range instead of one per flow. Only if none of that page is
    /// ours does it range each flow's queue and merge them.
    async fn candidates(&self, filter: &FlowFilter) -> Result<Candidates, Error> {
        // Room for every sibling task of this board that is claiming right now, so none runs dry.
        let (in_flight, contended) = self.with_local(|local| (local.in_flight as i64, local.contended()));
        let limit = if contended { CANDIDATES * CONTENDED_WIDTH } else { CANDIDATES } + in_flight;
        let head = self.first_entries(&self.keys.queue_prefix(), limit).await?;
        if *filter == FlowFilter::any() {
            return Ok(Candidates { entries: head.entries, shareable: true });
        }
        // The page is a prefix of the queue (every entry below its last key, in
        // key order = claim order), so a job of our flows not in it sorts after
        // all of it: its entries of our flows are exactly the first ones of the
        // filtered order, and taking them skips no better job of ours. (With
        // siblings claiming, the page may start at the first key the queue view
        // knows: the same approximation as for unfiltered claims, see `queue_view`.)
        let mut undecodable = false;
        let ours: Vec<KeyValue> = head
            .entries
            .into_iter()
            .filter(|kv| match decode::<StateRecord>(kv.value(), "queue entry") {
                Ok(state) => filter.accepts_job(&state.flow, &state.requires),
                // Corrupt: not ours as far as we can tell. If nothing in the page is
                // ours, the per-flow ranges below look again, and `attempt` reports a
                // corrupt entry of our flows there, as it always has.
                Err(_) => {
                    undecodable = true;
                    false
                }
            })
            .collect();
        if !ours.is_empty() {
            return Ok(Candidates { entries: ours, shareable: true });
        }
        if head.complete && !undecodable {
            // The whole queue was in the page, and none of it is ours.
            return Ok(Candidates { entries: Vec::new(), shareable: false });
        }
        // Per flow, the first `limit` entries, less those needing a feature the claimer
        // lacks: behind more than `limit` of those, a flow's other jobs wait for a
        // conductor that has the features to take them (a rolling update's passing state).
        let mut merged = Vec::new();
        for flow in &filter.flows {
            let prefix = self.keys.flow_queue_prefix(flow);
            let entries = self.first_entries(&prefix, limit).await?.entries;
            let runnable = entries.into_iter().filter(|kv| {
                decode::<StateRecord>(kv.value(), "queue entry").map_or(true, |s| filter.accepts_job(flow, &s.requires))
            });
            merged.extend(runnable.map(|kv| (kv.key()[prefix.len()..].to_vec(), kv)));
        }
        // The part after the flow is `<inv-prio>/<id>`: its order is claim order.
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        // Per-flow keys: `LocalClaims::queue_put` compares shared entries with all-flows queue keys.
        Ok(Candidates {
            entries: merged.into_iter().take(limit as usize).map(|(_, kv)| kv).collect(),
            shareable: false,
        })
    }

    /// The first `limit` entries under `prefix`, exactly, ranging no further
    /// than the queue view says is needed (see `queue_view`).
    async fn first_entries(&self, prefix: &str, limit: i64) -> Result<Page, Error> {
        let whole = prefix_end(prefix);
        let concurrent = self.with_local(|local| local.in_flight > 1);
        let (start, end) = self.with_queue_view(|view| {
            let start = if concurrent { view.first(prefix.as_bytes()) } else { None };
            (start, view.bounded_end(prefix.as_bytes(), limit as usize))
        });
        if let Some(end) = end.filter(|end| *end < whole) {
            let start = start.unwrap_or_else(|| prefix.as_bytes().to_vec());
            let options = GetOptions::new().with_range(end).with_limit(limit);
            let mut resp = self.get(start, Some(options), "listing claimable jobs").await?;
            if !resp.kvs().is_empty() {
                // Keys past the bounded end, or before a later start, were not looked at.
                return Ok(Page { entries: resp.take_kvs(), complete: false });
            }
        }
        let options = GetOptions::new().with_range(whole).with_limit(limit);
        let mut resp = self.get(prefix, Some(options), "listing claimable jobs").await?;
        Ok(Page { complete: !resp.more(), entries: resp.take_kvs() })
    }

    /// Claims `id` if its state is still the one read at `state_rev` and nobody owns it.
    async fn try_claim(this: &Arc<Inner>, id: JobId, state: StateRecord, state_rev: i64) -> Result<Attempt, Error> {
        if this.quarantine_rule().claim_event(lifecycle::claims_since_retry(state.claims, state.claim_base))
            == Event::Quarantine
        {
            this.quarantine(id, state, state_rev).await?;
            return Ok(Attempt::Lost);
        }
        let keys = &this.keys;
        // Unowned: the txn below compares that.
        let next = state
            .apply(state.current(false), &Change::Claim, flows::logbook::now_millis())
            .map_err(|refused| refused.into_error(id, None))?;
        let owner = this.config.owner.clone();
        let txn = Txn::new()
            .when([
                Compare::create_revision(keys.owner(id), CompareOp::Equal, 0),
                Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
                this.epoch.compare(),
            ])
            .and_then([
                TxnOp::put(keys.owner(id), owner.clone(), Some(PutOptions::new().with_lease(this.session.lease))),
                TxnOp::put(keys.state(id), encode(&next, "job state")?, None),
                TxnOp::put(keys.held(id), "", None),
                TxnOp::delete(keys.queue(state.priority, id), None),
                TxnOp::delete(keys.flow_queue(&state.flow, state.priority, id), None),
                TxnOp::get(keys.spec(id), None),
            ]);
        let (token, spec) = match this.txn(txn, &format!("claiming job {id}")).await {
            Ok(resp) if !resp.succeeded() => {
                // Owned or changed since the queue was read: almost always another board's claim.
                this.with_local(LocalClaims::lost_race);
                return Ok(Attempt::Lost);
            }
            Ok(resp) => {
                let token = revision(&resp).ok_or_else(|| Error::Backend {
                    // Never seen: etcd always sends a header. Token 0 would match an absent owner key.
                    message: format!("etcd answered the claim of job {id} without a revision"),
                    source: None,
                })?;
                let spec: SpecRecord = match get_kv(&resp, 5) {
                    Some(kv) => decode(kv.value(), "job spec")?,
                    None => {
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
        let lost = this.session.lost.child_token();
        let cancelled = CancellationToken::new();
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
                    book_empty: KnownEmpty::new(next.claims == 1),
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
    /// token and spec are returned); if not, it did not land.
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

    fn quarantine_rule(&self) -> QuarantineRule {
        QuarantineRule::new(self.config.quarantine_after)
    }

    /// Moves a job claimed too often to TRASHED, if it is still unowned and unchanged.
    async fn quarantine(&self, id: JobId, state: StateRecord, state_rev: i64) -> Result<bool, Error> {
        let quarantine = Change::Quarantine(self.quarantine_rule());
        let next = state
            .apply(state.current(false), &quarantine, flows::logbook::now_millis())
            .map_err(|refused| refused.into_error(id, None))?;
        tracing::warn!(job = %id, claims = state.claims, "quarantining job");
        self.finish_unowned(id, &state, state_rev, next, "quarantining").await
    }

    /// Ends a job nobody owns (quarantine, cancel of an unclaimed job) with the
    /// final record `next` (COMPLETE or TRASHED, from the lifecycle table), if
    /// it is still unowned and its state unchanged since `state_rev`: one txn
    /// that also takes it off the queue and lists it for the retention purge.
    /// `false` if it changed meanwhile.
    pub(super) async fn finish_unowned(
        &self,
        id: JobId,
        state: &StateRecord,
        state_rev: i64,
        next: StateRecord,
        doing: &str,
    ) -> Result<bool, Error> {
        let keys = &self.keys;
        let now = next.finished_at.unwrap_or_else(flows::logbook::now_millis);
        let txn = Txn::new()
            .when([
                Compare::create_revision(keys.owner(id), CompareOp::Equal, 0),
                Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
            ])
            .and_then([
                TxnOp::put(keys.state(id), encode(&next, "job state")?, None),
                TxnOp::delete(keys.held(id), None),
                TxnOp::delete(keys.queue(state.priority, id), None),
                TxnOp::delete(keys.flow_queue(&state.flow, state.priority, id), None),
                TxnOp::put(keys.done(now, id), "", None),
            ]);
        Ok(self.txn(txn, &format!("{doing} job {id}")).await?.succeeded())
    }

    pub(super) async fn claim_one(this: &Arc<Inner>, id: JobId) -> Result<Claim, Error> {
        this.check_live()?;
        for _ in 0..16 {
            let (state, state_rev, owner) = this.read_state(id).await?;
            let event =
                this.quarantine_rule().claim_event(lifecycle::claims_since_retry(state.claims, state.claim_base));
            let to = lifecycle::next_state(state.current(owner.is_some()), event)
                .map_err(|refused| refused.into_error(id, owner.as_deref()))?;
            if event == Event::Quarantine {
                if this.quarantine(id, state, state_rev).await? {
                    // The claim asked for is refused: the job is now TRASHED.
                    return Err(IllegalTransition { event: Event::Claim, from: to, why: None }.into_error(id, None));
                }
                continue;
            }
            if let Attempt::Won(claim) = Inner::try_claim(this, id, state, state_rev).await? {
                return Ok(*claim);
            }
        }
        Err(Error::Unavailable { message: format!("job {id} kept changing while claiming it"), source: None })
    }

    /// The state record, its mod revision and the owner (if any). `NotFound` if no such job.
    pub(super) async fn read_state(&self, id: JobId) -> Result<(StateRecord, i64, Option<String>), Error> {
        let txn = Txn::new().and_then([TxnOp::get(self.keys.state(id), None), TxnOp::get(self.keys.owner(id), None)]);
        let resp = self.txn(txn, &format!("reading job {id}")).await?;
        let state_kv = get_kv(&resp, 0).ok_or(Error::NotFound(id))?;
        let state = decode(state_kv.value(), "job state")?;
        let owner = get_kv(&resp, 1).map(|kv| owner_name(&kv));
        Ok((state, state_kv.mod_revision(), owner))
    }

    /// Puts a job whose owner's lease expired back in the queue (any board may do it; one wins).
    pub(super) async fn requeue_orphan(&self, id: JobId) -> Result<(), Error> {
        let (state, state_rev, owner) = match self.read_state(id).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if owner.is_some() {
            return Ok(());
        }
        // The lease expiry was the release; this writes it down, from the record as
        // its owner left it. Not CLAIMED there: someone already did (or it finished).
        let Ok(next) = state.apply(state.state, &Change::Release, flows::logbook::now_millis()) else {
            return Ok(());
        };
        let keys = &self.keys;
        let encoded = encode(&next, "job state")?;
        let txn = Txn::new()
            .when([
                Compare::create_revision(keys.owner(id), CompareOp::Equal, 0),
                Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
            ])
            .and_then([
                TxnOp::put(keys.state(id), encoded.clone(), None),
                TxnOp::delete(keys.held(id), None),
                TxnOp::put(keys.queue(state.priority, id), encoded.clone(), None),
                TxnOp::put(keys.flow_queue(&state.flow, state.priority, id), encoded, None),
            ]);
        if self.txn(txn, &format!("re-queueing job {id}")).await?.succeeded() {
            tracing::info!(job = %id, "job released by an expired lease is claimable again");
        }
        Ok(())
    }
}

/// Re-queues a job released by a lease expiry, retrying while etcd cannot be
/// reached: the watch event that revealed the orphan will not come again, and a
/// job left CLAIMED without an owner is in no queue. Ends with the board.
pub(super) async fn requeue_released(board: Weak<Inner>, id: JobId) {
    let mut delay = Duration::from_millis(200);
    loop {
        let Some(inner) = board.upgrade() else { return };
        let stop = inner.stop.clone();
        match inner.requeue_orphan(id).await {
            Ok(()) => return,
            Err(e) if e.is_retryable() => {
                tracing::debug!(job = %id, error = %e, retry_in = ?delay, "cannot re-queue a released job yet")
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot re-queue a job released by lease expiry; the next re-list will");
                return;
            }
        }
        drop(inner);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The txn's revision (the fencing token of a claim txn).
fn revision(resp: &TxnResponse) -> Option<i64> {
    resp.header().map(|h| h.revision()).filter(|&rev| rev > 0)
}
