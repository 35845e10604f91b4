//! Claims as single etcd transactions, quarantine, and re-queueing after a lease expiry.
//!
//! The claim Txn itself is in [`super::take`], with picks (a claim folded
//! into the engine's first logbook write); the writes that end a claim are
//! in [`super::owner`].
//!
//! Candidates: one range of the all-flows queue per attempt, filtered by the
//! claimer's flows; only when none of that page is theirs, one range per flow.

use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp};

use super::codec::{decode, encode, QueueEntry, SpecRecord, StateRecord};
use super::keys::prefix_end;
use super::local::LocalClaims;
use super::owner::{get_kv, owner_name};
use super::take::Claiming;
use super::Inner;
use crate::claim::Claim;
use crate::error::Error;
use crate::job::{FlowFilter, JobId};
use crate::lifecycle::{self, Change, Event, IllegalTransition, QuarantineRule};
use crate::pick::Pick;

/// Queue entries read per claim attempt: enough to step past a few racing claimers.
const CANDIDATES: i64 = 16;
/// At most this many more for the entries of picks not yet written (a conductor's
/// `--max-jobs` is 32 by default): a range never grows with a runaway count.
const MAX_RESERVED_ROOM: usize = 64;
/// While other boards take the same entries (`LocalClaims::pick`), a page this many times
/// wider: random picks from a wider page collide less often.
const CONTENDED_WIDTH: i64 = 4;

/// The outcome of trying one candidate.
pub(super) enum Attempt {
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

/// Whether `claim_or_pick` claims, or picks (`crate::pick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Claim,
    Pick,
}

/// What `claim_or_pick` got.
enum Got {
    Claim(Claim),
    Pick(Pick),
}

impl Got {
    fn into_claim(self) -> Option<Claim> {
        match self {
            Got::Claim(claim) => Some(claim),
            Got::Pick(_) => None,
        }
    }

    fn into_pick(self) -> Option<Pick> {
        match self {
            Got::Pick(pick) => Some(pick),
            Got::Claim(_) => None,
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
        Ok(Inner::claim_or_pick(this, filter, Mode::Claim).await?.and_then(Got::into_claim))
    }

    /// As `claim_next`, but writing nothing: the claim is folded into the first logbook write.
    pub(super) async fn pick_next(this: &Arc<Inner>, filter: &FlowFilter) -> Result<Option<Pick>, Error> {
        Ok(Inner::claim_or_pick(this, filter, Mode::Pick).await?.and_then(Got::into_pick))
    }

    /// Claims (or picks) the best candidate the filter accepts.
    async fn claim_or_pick(this: &Arc<Inner>, filter: &FlowFilter, mode: Mode) -> Result<Option<Got>, Error> {
        this.check_live()?;
        let _in_flight = InFlight::enter(this);
        let mut raced = false;
        // Bounded: each round either wins, or sees every candidate taken by others.
        for _round in 0..8 {
            if this.with_local(|local| local.use_shared(filter)) {
                // Siblings are claiming too: take from the entries one of them read.
                while let Some((id, kv)) = this.with_local(LocalClaims::take_shared) {
                    if let Some(got) = Inner::attempt(this, id, &kv, mode).await? {
                        return Ok(Some(got));
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
                if let Some(got) = Inner::attempt(this, id, &kv, mode).await? {
                    return Ok(Some(got));
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

    /// Tries one reserved queue entry, then releases the reservation (a pick keeps it).
    async fn attempt(this: &Arc<Inner>, id: JobId, kv: &KeyValue, mode: Mode) -> Result<Option<Got>, Error> {
        let QueueEntry { state, spec } = match decode(kv.value(), "queue entry") {
            Ok(entry) => entry,
            Err(e) => {
                this.with_local(|local| local.release(id, None));
                return Err(e);
            }
        };
        if mode == Mode::Pick {
            let picked = Inner::pick_one(this, id, state, spec, kv.mod_revision()).await;
            if !matches!(picked, Ok(Some(_))) {
                this.with_local(|local| local.release(id, None));
            }
            return Ok(picked?.map(Got::Pick));
        }
        let attempt = Inner::try_claim(this, id, state, spec, kv.mod_revision()).await;
        this.with_local(|local| local.release(id, attempt.as_ref().ok().and_then(Attempt::won_at)));
        match attempt? {
            Attempt::Won(claim) => Ok(Some(Got::Claim(*claim))),
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
        // Room for every sibling task of this board that is claiming right now, and for
        // the entries of picks not yet written (reserved until their first write lands),
        // so none runs dry while claimable entries lie past them.
        let (in_flight, contended) = self.with_local(|local| {
            let reserved = local.reservations().min(MAX_RESERVED_ROOM) as i64;
            (local.in_flight as i64 + reserved, local.contended())
        });
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
        let (head, end, known_whole) = self.with_queue_view(|view| {
            view.want(prefix.as_bytes());
            let head = view.first(prefix.as_bytes());
            (head, view.bounded_end(prefix.as_bytes(), limit as usize), view.knows_whole(prefix.as_bytes()))
        });
        if let (Some(head), None, true) = (&head, &end, known_whole) {
            // A short queue the view knows whole: still skip the tombstones before its head.
            let entries = self.around_head(prefix, head.clone(), whole.clone(), limit).await?;
            if !entries.is_empty() {
                return Ok(Page { complete: entries.len() < limit as usize, entries });
            }
        }
        if let Some(end) = end.filter(|end| *end < whole) {
            let entries = match head {
                Some(head) => self.around_head(prefix, head, end, limit).await?,
                None => {
                    let options = GetOptions::new().with_range(end).with_limit(limit);
                    self.get(prefix, Some(options), "listing claimable jobs").await?.take_kvs()
                }
            };
            if !entries.is_empty() {
                // Keys past the bounded end, or between the two ranges, were not looked at.
                return Ok(Page { entries, complete: false });
            }
        }
        let options = GetOptions::new().with_range(whole).with_limit(limit);
        let mut resp = self.get(prefix, Some(options), "listing claimable jobs").await?;
        Ok(Page { complete: !resp.more(), entries: resp.take_kvs() })
    }

    /// The first entries from the view's head: those of every higher priority
    /// than the head's, then the head's own from the head on, in one read.
    ///
    /// Claimed entries of the head's priority sort before it, and etcd 3.4
    /// walks their tombstones until a compaction, so a range from the prefix
    /// cost every job claimed since. Skipping them loses nothing the view could
    /// not know: a job of the head's priority posted since sorts after the head
    /// (ids are time-ordered), and one of a higher priority is in the first range.
    async fn around_head(&self, prefix: &str, head: Vec<u8>, end: Vec<u8>, limit: i64) -> Result<Vec<KeyValue>, Error> {
        let Some(dir) = super::keys::priority_dir(prefix.as_bytes(), &head) else {
            let options = GetOptions::new().with_range(end).with_limit(limit);
            return Ok(self.get(head, Some(options), "listing claimable jobs").await?.take_kvs());
        };
        let higher = GetOptions::new().with_range(dir).with_limit(limit);
        let from_head = GetOptions::new().with_range(end).with_limit(limit);
        let txn = Txn::new().and_then([TxnOp::get(prefix, Some(higher)), TxnOp::get(head, Some(from_head))]);
        let resp = self.txn(txn, "listing claimable jobs").await?;
        let mut entries = Vec::new();
        for op in resp.op_responses() {
            if let etcd_client::TxnOpResponse::Get(mut got) = op {
                entries.extend(got.take_kvs());
            }
        }
        entries.truncate(limit as usize);
        Ok(entries)
    }

    /// Claims `id` if its state is still the one read at `state_rev` and nobody owns it.
    /// `spec` if the queue entry carried it (see `QueueEntry`); else the claim Txn reads it.
    async fn try_claim(
        this: &Arc<Inner>,
        id: JobId,
        state: StateRecord,
        spec: Option<SpecRecord>,
        state_rev: i64,
    ) -> Result<Attempt, Error> {
        if this.quarantine_rule().claim_event(lifecycle::claims_since_retry(state.claims, state.claim_base))
            == Event::Quarantine
        {
            this.quarantine(id, state, state_rev).await?;
            return Ok(Attempt::Lost);
        }
        Inner::claim_txn(this, id, &state, state_rev, Claiming::known_spec(spec)).await
    }

    pub(super) fn quarantine_rule(&self) -> QuarantineRule {
        QuarantineRule::new(self.config.quarantine_after)
    }

    /// Moves a job claimed too often to TRASHED, if it is still unowned and unchanged.
    pub(super) async fn quarantine(&self, id: JobId, state: StateRecord, state_rev: i64) -> Result<bool, Error> {
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
            if let Attempt::Won(claim) = Inner::try_claim(this, id, state, None, state_rev).await? {
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
