//! `list`: one page of jobs in creation (= id) order, filtered by state and flow.
//!
//! Without a state filter, or for the finished states (which are most of a
//! board that keeps jobs for retention, so few records are skipped), it pages
//! through `P m/state/` and filters as it goes: from the list floor (or the page
//! token) in id-time windows (`windows`), so that each request costs the keys of
//! its window rather than every job after the page's start. CLAIMED and UNCLAIMED come from
//! the indexes instead, so that they cost the page and the open jobs, not every
//! job kept: every `P m/owner/<id>` is a claimed job, in id order; the unclaimed
//! ones are the queue entries (`P m/queue/`, or one flow's `P m/fqueue/`) plus
//! the orphans (`P m/held/<id>` without an owner key, claimable before they are
//! re-queued). For those two, a candidate's state is then decided from its state
//! and owner records, read together in one txn, exactly as the scan decides it: a
//! job that moved between the index read and that txn is left out, never
//! mislisted. The queue is in claim order, not id order, so an UNCLAIMED page
//! reads every queue key; past [`QUEUE_INDEX_MAX`] queued jobs (a backlog) the
//! scan, which stops at a page of matches, is cheaper, and is used instead.
//! While the board watch runs, the index keys come from what it keeps instead of
//! those ranges (`list_live`); the ranges remain for when it cannot say.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use etcd_client::{GetOptions, Txn, TxnOp, TxnOpResponse};

use super::codec::{assemble, decode, SpecRecord, StateRecord};
use super::floor;
use super::keys::{id_at_end, prefix_end};
use super::list_live::Live;
use super::owner::owner_name;
use super::windows::{id_at, id_ms, Windows};
use super::Inner;
use crate::error::Error;
use crate::job::{Job, JobId, JobPage, JobState, ListQuery};

/// The page size of a query that asks for none.
const DEFAULT_LIMIT: usize = 100;
/// The largest page served, whatever the query asks.
const MAX_LIMIT: usize = 1000;
/// Gets per txn: etcd refuses a txn of more than 128 operations (`--max-txn-ops`).
const TXN_OPS: usize = 120;
/// Owner keys ranged at a time when a flow filter may skip many of them.
const FILTERED_BATCH: usize = 40;
/// Queued jobs up to which an UNCLAIMED listing reads the queue index (every key
/// of it, per page); beyond, it scans the state records like the other states.
pub(super) const QUEUE_INDEX_MAX: usize = 2000;

/// A candidate's records, as one txn read them.
struct Found {
    id: JobId,
    state: StateRecord,
    owner: Option<String>,
    /// Read with the state for the jobs likely to be listed; fetched later for the others.
    spec: Option<SpecRecord>,
}

/// Where the candidates of an indexed listing come from, in id order.
enum IndexSource {
    /// Owner keys, ranged on demand from `from` (exclusive of earlier keys).
    Owners { from: Vec<u8>, end: Vec<u8>, exhausted: bool },
    /// Every candidate, known up front (unclaimed jobs; claimed ones from the watch's sets).
    Known(VecDeque<JobId>),
}

impl IndexSource {
    /// Up to `n` more candidate ids, ascending; empty at the end.
    async fn next_batch(&mut self, inner: &Inner, n: usize) -> Result<Vec<JobId>, Error> {
        match self {
            IndexSource::Known(ids) => Ok(ids.drain(..n.min(ids.len())).collect()),
            IndexSource::Owners { exhausted: true, .. } => Ok(Vec::new()),
            IndexSource::Owners { from, end, exhausted } => {
                let options = GetOptions::new().with_range(end.clone()).with_limit(n as i64).with_keys_only();
                let mut resp = inner.get(from.clone(), Some(options), "listing claimed jobs").await?;
                *exhausted = !resp.more();
                let kvs = resp.take_kvs();
                if let Some(last) = kvs.last() {
                    *from = after_key(last.key());
                }
                Ok(kvs.iter().filter_map(|kv| id_at_end(kv.key())).collect())
            }
        }
    }
}

impl Inner {
    pub(super) async fn list(&self, query: &ListQuery) -> Result<JobPage, Error> {
        let limit = if query.limit == 0 { DEFAULT_LIMIT } else { query.limit.min(MAX_LIMIT) };
        let after = match &query.page_token {
            None => None,
            Some(token) => {
                Some(token.parse::<JobId>().map_err(|_| Error::InvalidInput(format!("bad page token {token:?}")))?)
            }
        };
        match query.state {
            Some(JobState::Claimed) => {
                if let Live::Candidates(owned) = self.live_claimed(after).await? {
                    return self.list_indexed(query, limit, IndexSource::Known(owned)).await;
                }
                let prefix = self.keys.owner_prefix();
                let from = match after {
                    Some(id) => after_key(self.keys.owner(id).as_bytes()),
                    None => prefix.clone().into_bytes(),
                };
                let owners = IndexSource::Owners { from, end: prefix_end(&prefix), exhausted: false };
                self.list_indexed(query, limit, owners).await
            }
            Some(JobState::Unclaimed) => {
                let candidates = match self.live_unclaimed(query.flow.as_deref(), after).await? {
                    Live::Candidates(candidates) => Some(candidates),
                    Live::Backlog => None,
                    Live::Unknown => self.unclaimed_candidates(query.flow.as_deref(), after).await?,
                };
                match candidates {
                    Some(candidates) => self.list_indexed(query, limit, IndexSource::Known(candidates)).await,
                    None => self.list_scan(query, limit, after).await,
                }
            }
            _ => self.list_scan(query, limit, after).await,
        }
    }

    /// Lists the candidates that are in the query's state (decided from their
    /// records) and flow, up to `limit`; one more match means there is a next page.
    async fn list_indexed(&self, query: &ListQuery, limit: usize, mut source: IndexSource) -> Result<JobPage, Error> {
        // Claimed jobs of other flows may be most of the owner keys: range more
        // of them per round, and read specs only for the matches.
        let sparse = query.flow.is_some() && query.state == Some(JobState::Claimed);
        let mut picked: Vec<Found> = Vec::new();
        while picked.len() <= limit {
            let need = limit + 1 - picked.len();
            let ids = source.next_batch(self, if sparse { need.max(FILTERED_BATCH) } else { need }).await?;
            if ids.is_empty() {
                break;
            }
            let with_spec = if sparse { 0 } else { limit.saturating_sub(picked.len()) };
            for found in self.read_records(&ids, with_spec).await? {
                if picked.len() > limit {
                    break;
                }
                if wanted(query, &found.state, found.owner.as_ref()) {
                    picked.push(found);
                }
            }
        }
        let next = if picked.len() > limit {
            picked.truncate(limit);
            picked.last().map(|found| found.id.to_string())
        } else {
            None
        };
        Ok(JobPage { jobs: self.complete_page(picked).await?, next })
    }

    /// The state and owner records of `ids` (and the specs of the first
    /// `with_spec`), each job's read in one txn; purged jobs are left out.
    async fn read_records(&self, ids: &[JobId], with_spec: usize) -> Result<Vec<Found>, Error> {
        let keys = &self.keys;
        let mut found = Vec::with_capacity(ids.len());
        let mut rest: Vec<(JobId, bool)> = ids.iter().enumerate().map(|(i, id)| (*id, i < with_spec)).collect();
        while !rest.is_empty() {
            let mut ops = Vec::new();
            let mut chunk = 0;
            for (id, spec) in &rest {
                let width = if *spec { 3 } else { 2 };
                if ops.len() + width > TXN_OPS {
                    break;
                }
                ops.push(TxnOp::get(keys.state(*id), None));
                ops.push(TxnOp::get(keys.owner(*id), None));
                if *spec {
                    ops.push(TxnOp::get(keys.spec(*id), None));
                }
                chunk += 1;
            }
            let resp = self.txn(Txn::new().and_then(ops), "reading listed jobs").await?;
            let mut kvs = resp.op_responses().into_iter().map(|op| match op {
                TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
                _ => None,
            });
            for (id, spec) in rest.drain(..chunk) {
                let state = kvs.next().flatten();
                let owner = kvs.next().flatten();
                let spec = if spec { kvs.next().flatten() } else { None };
                // No state record: purged since the index was read.
                let Some(state) = state else { continue };
                found.push(Found {
                    id,
                    state: decode(state.value(), "job state")?,
                    owner: owner.map(|kv| owner_name(&kv)),
                    spec: spec.map(|kv| decode(kv.value(), "job spec")).transpose()?,
                });
            }
        }
        Ok(found)
    }

    /// Reads the specs still missing and assembles the jobs; a job purged meanwhile is left out.
    async fn complete_page(&self, picked: Vec<Found>) -> Result<Vec<Job>, Error> {
        let missing: Vec<JobId> = picked.iter().filter(|f| f.spec.is_none()).map(|f| f.id).collect();
        let mut fetched = HashMap::new();
        for chunk in missing.chunks(TXN_OPS) {
            let txn =
                Txn::new().and_then(chunk.iter().map(|id| TxnOp::get(self.keys.spec(*id), None)).collect::<Vec<_>>());
            let resp = self.txn(txn, "reading job specs").await?;
            // `op_responses` copies the whole response: walk one copy, not one per spec.
            for (id, op) in chunk.iter().zip(resp.op_responses()) {
                let TxnOpResponse::Get(mut get) = op else { continue };
                if let Some(kv) = get.take_kvs().into_iter().next() {
                    fetched.insert(*id, decode::<SpecRecord>(kv.value(), "job spec")?);
                }
            }
        }
        Ok(picked
            .into_iter()
            .filter_map(|found| {
                let spec = found.spec.or_else(|| fetched.remove(&found.id))?;
                Some(assemble(found.id, spec, found.state, found.owner))
            })
            .collect())
    }

    /// The ids after `after` that may be UNCLAIMED, ascending: the queue entries
    /// (of `flow` only, if given) and the orphans, from one txn of keys-only ranges.
    /// `None` when more than [`QUEUE_INDEX_MAX`] jobs are queued.
    async fn unclaimed_candidates(
        &self,
        flow: Option<&str>,
        after: Option<JobId>,
    ) -> Result<Option<VecDeque<JobId>>, Error> {
        let keys = &self.keys;
        let queue = match flow {
            Some(flow) => keys.flow_queue_prefix(flow),
            None => keys.queue_prefix(),
        };
        // Keys only. Held and owner keys are in id order: start after the page token.
        // Only the queue can be a backlog (held and owner keys are the claimed jobs).
        let range = |prefix: String, skip_to: Option<String>, limit: i64| {
            let options = GetOptions::new().with_range(prefix_end(&prefix)).with_keys_only().with_limit(limit);
            TxnOp::get(skip_to.map_or_else(|| prefix.into_bytes(), |key| after_key(key.as_bytes())), Some(options))
        };
        let ops = [
            range(queue, None, QUEUE_INDEX_MAX as i64),
            range(keys.held_prefix(), after.map(|id| keys.held(id)), 0),
            range(keys.owner_prefix(), after.map(|id| keys.owner(id)), 0),
        ];
        let resp = self.txn(Txn::new().and_then(ops), "listing unclaimed jobs").await?;
        let responses = resp.op_responses();
        if matches!(responses.first(), Some(TxnOpResponse::Get(queue)) if queue.more()) {
            return Ok(None);
        }
        let mut lists = responses.into_iter().map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().iter().filter_map(|kv| id_at_end(kv.key())).collect(),
            _ => Vec::new(),
        });
        let (queued, held, owned): (Vec<JobId>, Vec<JobId>, Vec<JobId>) =
            (lists.next().unwrap_or_default(), lists.next().unwrap_or_default(), lists.next().unwrap_or_default());
        let owned: HashSet<JobId> = owned.into_iter().collect();
        Ok(Some(unclaimed_of(queued, held, |id| owned.contains(id), after)))
    }

    /// Pages through `m/state/` (small records, in creation order) in id-time windows
    /// from the list floor or the page token (see `windows`), filtering as it goes.
    async fn list_scan(&self, query: &ListQuery, limit: usize, after: Option<JobId>) -> Result<JobPage, Error> {
        let prefix = self.keys.state_prefix();
        let floor = self.floor().await?;
        let mut windows = match (floor, after) {
            (Some(floor), Some(after)) if after >= floor => Windows::after(prefix, after, false),
            (Some(floor), _) => Windows::from(prefix, floor, false),
            (None, Some(after)) => Windows::after(prefix, after, false),
            (None, None) => Windows::unbounded(prefix, false),
        };
        let mut picked: Vec<Found> = Vec::new();
        let mut next = None;
        let mut first = true;
        'pages: loop {
            let batch = (limit * 2).max(64);
            let kvs = windows.next(self, batch).await?;
            let Some(last) = kvs.last() else { break };
            let (first_id, last_id) = (id_at_end(kvs[0].key()), id_at_end(last.key()));
            if let (true, Some(floor), Some(oldest)) = (first && after.is_none(), floor, first_id) {
                self.close_floor_gap(floor, oldest).await;
            }
            first = false;
            let owners = self.owners_between(first_id, last_id).await?;
            for kv in &kvs {
                let Some(id) = id_at_end(kv.key()) else { continue };
                let state: StateRecord = decode(kv.value(), "job state")?;
                let owner = owners.iter().find(|(o, _)| *o == id).map(|(_, name)| name.clone());
                if wanted(query, &state, owner.as_ref()) {
                    if picked.len() == limit {
                        next = picked.last().map(|found| found.id.to_string());
                        break 'pages;
                    }
                    picked.push(Found { id, state, owner, spec: None });
                }
            }
        }
        Ok(JobPage { jobs: self.complete_page(picked).await?, next })
    }

    /// Raises the floor to the oldest job when a first page found it [`floor::GAP_MS`] above
    /// (the next listings then skip that time); a failure only leaves it where it was.
    async fn close_floor_gap(&self, floor: JobId, oldest: JobId) {
        if id_ms(oldest) < id_ms(floor).saturating_add(floor::GAP_MS) {
            return;
        }
        if let Err(error) = self.raise_floor(floor, id_at(id_ms(oldest))).await {
            tracing::debug!(%error, "raising the list floor failed");
        }
    }

    /// Owner keys of jobs with ids in `[first, last]`.
    async fn owners_between(&self, first: Option<JobId>, last: Option<JobId>) -> Result<Vec<(JobId, String)>, Error> {
        let (Some(first), Some(last)) = (first, last) else { return Ok(Vec::new()) };
        let end = after_key(self.keys.owner(last).as_bytes());
        let mut resp =
            self.get(self.keys.owner(first), Some(GetOptions::new().with_range(end)), "listing owners").await?;
        Ok(resp.take_kvs().into_iter().filter_map(|kv| Some((id_at_end(kv.key())?, owner_name(&kv)))).collect())
    }
}

/// Whether a job with these records passes the query's filters; its state is
/// decided as [`assemble`] decides it (an owner key makes it CLAIMED, a CLAIMED
/// record without one is an orphan and so UNCLAIMED).
fn wanted(query: &ListQuery, state: &StateRecord, owner: Option<&String>) -> bool {
    let current = match (owner, state.state) {
        (Some(_), _) => JobState::Claimed,
        (None, JobState::Claimed) => JobState::Unclaimed,
        (None, other) => other,
    };
    query.state.is_none_or(|s| s == current) && query.flow.as_ref().is_none_or(|f| *f == state.flow)
}

/// The UNCLAIMED candidates after `after`, ascending, from the index keys: the queued
/// jobs, and the orphans (a `held` key without an owner key: released by a lease expiry,
/// claimable before they are re-queued).
pub(super) fn unclaimed_of(
    queued: impl IntoIterator<Item = JobId>,
    held: impl IntoIterator<Item = JobId>,
    owned: impl Fn(&JobId) -> bool,
    after: Option<JobId>,
) -> VecDeque<JobId> {
    let orphans = held.into_iter().filter(|id| !owned(id));
    let candidates: BTreeSet<JobId> =
        queued.into_iter().chain(orphans).filter(|id| after.is_none_or(|after| *id > after)).collect();
    candidates.into_iter().collect()
}

/// The first key after `key` (a range start that skips it).
fn after_key(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}
