//! The list floor, `P floor`: an id that no job's id is below, where `list` starts its
//! id-time windows (see `windows`) instead of at the first key of `P m/state/` (which
//! etcd 3.4 could only find by walking every key after it).
//!
//! Its value is the smallest id of a millisecond (`windows::id_at`), so text order against
//! job ids is id order. The invariant "no job id below the floor" holds because:
//! - it is created by a board's first session (of this release) at the oldest job's
//!   millisecond, or at the session's clock on a board with no job, by a conditional create
//!   that also compares that no `P m/state/` key lies below it;
//! - it only moves up, by a conditional write that compares the value it moves from and
//!   that no state key lies between the two (a range compare);
//! - every post compares its id above it in the post txn ([`admits`]): a poster whose clock
//!   is behind the floor is refused and posts again with an id at the floor's millisecond
//!   (its `created_at` is then that millisecond too), so clock skew between posting
//!   conductors never hides a job.
//!
//! A low floor is safe, only slower (windows walk the empty time, and the tombstones of
//! purged jobs until a compaction). The retention purge raises it to the oldest job left
//! (or to its clock when none is left), and so does a listing that finds the oldest job
//! more than [`GAP_MS`] above it. A board without the key (older code created it) gets one
//! at the first session of this release; older conductors ignore it (they post without the
//! compare, so in a mixed fleet only their clock keeps their ids above it).

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, KvClient, Txn, TxnOp};

use super::keys::{id_at_end, prefix_end, Keys};
use super::windows::{id_at, id_ms, Windows};
use super::{send_get, send_txn, Inner};
use crate::error::Error;
use crate::job::JobId;

/// A listing that finds the oldest job this far above the floor raises it.
pub(super) const GAP_MS: u64 = 1_000;
/// Bounds the create loop: each round finds the key, or loses a race to whoever wrote it.
const ROUNDS: usize = 8;

/// The post txn's compare: the floor is below `id`.
pub(super) fn admits(keys: &Keys, id: JobId) -> Compare {
    Compare::value(keys.floor(), CompareOp::Less, id.to_string())
}

/// The compare of a floor move from `from` to `to`: no job between them.
fn none_between(keys: &Keys, from: JobId, to: JobId) -> Compare {
    Compare::create_revision(keys.state(from), CompareOp::Equal, 0).with_range(keys.state(to))
}

/// Creates the floor if the board has none (at the oldest job, or now on a board without jobs).
pub(crate) async fn ensure(kv: &KvClient, keys: &Keys) -> Result<(), Error> {
    for _ in 0..ROUNDS {
        if !send_get(kv, keys.floor().as_bytes(), None, "reading the list floor").await?.kvs().is_empty() {
            return Ok(());
        }
        // Once in a board's life: one walk over its state keys for the oldest.
        let prefix = keys.state_prefix();
        let options = GetOptions::new().with_range(prefix_end(&prefix)).with_keys_only().with_limit(1);
        let oldest = send_get(kv, prefix.as_bytes(), Some(&options), "finding the oldest job").await?;
        let oldest = oldest.kvs().first().and_then(|kv| id_at_end(kv.key()));
        let at = id_at(oldest.map_or_else(flows::logbook::now_millis, id_ms));
        let create = Txn::new()
            .when([Compare::create_revision(keys.floor(), CompareOp::Equal, 0), none_between(keys, JobId::nil(), at)])
            .and_then([TxnOp::put(keys.floor(), at.to_string(), None)]);
        if send_txn(kv, &create, "creating the list floor").await?.succeeded() {
            tracing::info!(prefix = keys.root(), floor = %at, "list floor created");
            return Ok(());
        }
    }
    Err(Error::Backend { message: format!("the list floor at {} kept changing", keys.floor()), source: None })
}

/// The floor a post txn's refusal read: `Ok(None)` when the key is missing.
pub(super) fn refused_at(kv: Option<&KeyValue>) -> Result<Option<JobId>, Error> {
    kv.map(|kv| parse(kv.value())).transpose()
}

fn parse(value: &[u8]) -> Result<JobId, Error> {
    std::str::from_utf8(value).ok().and_then(|text| text.parse().ok()).ok_or_else(|| Error::Backend {
        message: format!("the list floor holds {:?}, not an id", String::from_utf8_lossy(value)),
        source: None,
    })
}

impl Inner {
    /// The board's floor; `None` if it has none.
    pub(super) async fn floor(&self) -> Result<Option<JobId>, Error> {
        let mut resp = self.get(self.keys.floor(), None, "reading the list floor").await?;
        resp.take_kvs().first().map(|kv| parse(kv.value())).transpose()
    }

    /// Recreates a missing floor (a post was refused for want of it).
    pub(super) async fn ensure_floor(&self) -> Result<(), Error> {
        ensure(&self.kv, &self.keys).await
    }

    /// Moves the floor from `from` up to `to`, if it still is at `from` and no job lies between.
    pub(super) async fn raise_floor(&self, from: JobId, to: JobId) -> Result<bool, Error> {
        if to <= from {
            return Ok(false);
        }
        let keys = &self.keys;
        let txn = Txn::new()
            .when([Compare::value(keys.floor(), CompareOp::Equal, from.to_string()), none_between(keys, from, to)])
            .and_then([TxnOp::put(keys.floor(), to.to_string(), None)]);
        let raised = self.txn(txn, "raising the list floor").await?.succeeded();
        if raised {
            tracing::debug!(%from, %to, "list floor raised");
        }
        Ok(raised)
    }

    /// Raises the floor to the oldest job (or to now, without jobs): after a purge.
    pub(super) async fn tighten_floor(&self) -> Result<(), Error> {
        let Some(floor) = self.floor().await? else { return self.ensure_floor().await };
        let mut windows = Windows::from(self.keys.state_prefix(), floor, true);
        let oldest = windows.next(self, 1).await?.first().and_then(|kv| id_at_end(kv.key()));
        let to = id_at(oldest.map_or_else(flows::logbook::now_millis, id_ms));
        self.raise_floor(floor, to).await.map(|_| ())
    }
}
