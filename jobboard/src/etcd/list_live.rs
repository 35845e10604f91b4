//! CLAIMED and UNCLAIMED listing candidates from what the board watch keeps (the queue
//! view, `queue_view`, and the held and owner sets, `live_index`) instead of etcd ranges
//! over `P m/queue/` (or a flow's `P m/fqueue/`), `P m/held/` and `P m/owner/`: between
//! two compactions those prefixes hold a deleted key for every job claimed since, and
//! etcd 3.4 walks them all, under its index lock, before it applies a range's limit.
//!
//! Read-your-writes, as Kubernetes' consistent reads from its watch cache: a listing
//! first reads etcd's current revision (one single-key read); if the watch has not
//! applied every event through it, the listing writes `P m/sync` and waits (at most
//! [`CATCH_UP`]) for the watch to apply that put, which it sees like any key under
//! `P m/`, after every earlier event. (A progress notification would spare the write, but
//! etcd before 3.4.25 may send it ahead of queued events, etcd#15220.) Every job written
//! before the listing began is then in the sets. Candidates are checked against their
//! records as before (`list`), so a job that moved meanwhile is left out, never mislisted.
//!
//! Whenever the sets cannot be trusted — not listed yet, a compaction cut the watch and
//! it is re-listing, the queue view has not listed the prefix whole, the barrier cannot
//! be written or the watch does not apply it in time — the listing ranges etcd as before.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{GetOptions, Txn, TxnOp};

use super::keys::id_at_end;
use super::list::{unclaimed_of, QUEUE_INDEX_MAX};
use super::queue_view::Under;
use super::Inner;
use crate::error::Error;
use crate::job::JobId;

/// How long a listing waits for the board watch to apply its barrier before ranging etcd instead.
const CATCH_UP: Duration = Duration::from_millis(500);

/// Where a listing's candidates come from.
pub(super) enum Live {
    /// The jobs that may be in the state asked for, ascending.
    Candidates(VecDeque<JobId>),
    /// More than [`QUEUE_INDEX_MAX`] queued: scan the state records instead.
    Backlog,
    /// The sets cannot say: range etcd.
    Unknown,
}

impl Inner {
    /// The CLAIMED candidates after `after`: every job with an owner key.
    pub(super) async fn live_claimed(&self, after: Option<JobId>) -> Result<Live, Error> {
        if !self.watch_caught_up().await? {
            return Ok(Live::Unknown);
        }
        Ok(Live::Candidates(self.live.with_sets(|sets| sets.owners_after(after).collect())))
    }

    /// The UNCLAIMED candidates after `after`: the queued jobs (of `flow` only, if given)
    /// and the orphans.
    pub(super) async fn live_unclaimed(&self, flow: Option<&str>, after: Option<JobId>) -> Result<Live, Error> {
        let prefix = match flow {
            Some(flow) => self.keys.flow_queue_prefix(flow),
            None => self.keys.queue_prefix(),
        };
        // No need to wait for the watch to know that the view cannot say, or that the
        // queue is a backlog (the scan is exact whatever the view holds).
        match self.with_queue_view(|view| view.keys_under(prefix.as_bytes(), QUEUE_INDEX_MAX)) {
            Under::Unknown => return Ok(Live::Unknown),
            Under::More => return Ok(Live::Backlog),
            Under::All(_) => {}
        }
        if !self.watch_caught_up().await? {
            return Ok(Live::Unknown);
        }
        let queued = match self.with_queue_view(|view| view.keys_under(prefix.as_bytes(), QUEUE_INDEX_MAX)) {
            Under::All(keys) => keys,
            Under::More => return Ok(Live::Backlog),
            Under::Unknown => return Ok(Live::Unknown),
        };
        let queued = queued.iter().filter_map(|key| id_at_end(key));
        let candidates =
            self.live.with_sets(|sets| unclaimed_of(queued, sets.held_after(after), |id| sets.is_owned(id), after));
        Ok(Live::Candidates(candidates))
    }

    /// Whether the board watch has applied every write acknowledged before this call
    /// (waiting for it if need be, see the module doc); `false` if it cannot tell soon.
    async fn watch_caught_up(&self) -> Result<bool, Error> {
        let Some(applied) = self.live.applied() else { return Ok(false) };
        let options = GetOptions::new().with_keys_only();
        let now = self.get(self.keys.epoch(), Some(options), "reading the board's revision").await?;
        let revision = now.header().map_or(i64::MAX, |h| h.revision());
        if applied >= revision {
            return Ok(true);
        }
        // Writes to other prefixes (logbooks, specs) move the revision without an event for
        // the watch: a write of our own under `P m/` gives it one.
        let barrier = Txn::new().and_then([TxnOp::put(self.keys.list_sync(), Vec::new(), None)]);
        let written = match self.txn(barrier, "writing a listing barrier").await {
            Ok(resp) => resp.header().map_or(i64::MAX, |h| h.revision()),
            Err(error) => {
                tracing::debug!(%error, "cannot write a listing barrier; listing from etcd ranges");
                return Ok(false);
            }
        };
        let caught_up = self.live.wait_applied(written, CATCH_UP).await;
        if !caught_up {
            tracing::debug!(revision = written, "the board watch is behind; listing from etcd ranges");
        }
        Ok(caught_up)
    }
}
