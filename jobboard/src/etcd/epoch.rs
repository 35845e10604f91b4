//! The board epoch: no claim from before an etcd restore is accepted after it.
//!
//! Fencing tokens are etcd revisions (an owner key's mod revision), and
//! restoring a snapshot takes the revision back: a claim made after the
//! snapshot could find its token reused by a claim made after the restore. So
//! every board keeps an epoch at `P m/epoch` (a number, created as `1` by the
//! first session), each session reads it when it starts, and every claim and
//! owner write compares it in the same transaction: a write from an older
//! epoch changes nothing.
//!
//! The epoch moves on a restore, two ways:
//! - automatically: a session that sees etcd's revision go backwards
//!   (confirmed by a linearizable read, since a lagging member's replies may
//!   trail) knows etcd was restored, bumps the epoch and fences itself; every
//!   other session of the old epoch sees the bump through its watch and
//!   fences itself too;
//! - by the operator, as the last step of a restore (`etcdctl put P m/epoch N+1`),
//!   which also covers sessions that were cut off during the restore.

use etcd_client::{Compare, CompareOp, KeyValue, KvClient, Txn, TxnOp};

use super::bounded;
use super::keys::Keys;
use super::owner::get_kv;
use crate::error::Error;

/// The epoch a session started in.
#[derive(Debug, Clone)]
pub(crate) struct BoardEpoch {
    key: String,
    value: String,
}

impl BoardEpoch {
    /// Reads the board's epoch, creating it (`1`) on a board that has none.
    pub(crate) async fn read_or_create(kv: &KvClient, keys: &Keys) -> Result<BoardEpoch, Error> {
        let key = keys.epoch();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), "1", None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = bounded(kv.clone().txn(txn), "reading the board epoch").await?;
        let value = if resp.succeeded() {
            "1".to_owned()
        } else {
            let kv = get_kv(&resp, 0).ok_or_else(|| Error::Backend {
                message: format!("the board epoch {key} vanished while it was read"),
                source: None,
            })?;
            String::from_utf8_lossy(kv.value()).into_owned()
        };
        Ok(BoardEpoch { key, value })
    }

    /// "The board is still in this epoch", for a transaction's compares.
    pub(crate) fn compare(&self) -> Compare {
        Compare::value(self.key.clone(), CompareOp::Equal, self.value.as_str())
    }

    /// Reads the epoch key, for a transaction's failure branch.
    pub(crate) fn get(&self) -> TxnOp {
        TxnOp::get(self.key.clone(), None)
    }

    /// Whether `kv` (the epoch key as read, if present) is this epoch.
    pub(crate) fn is_current(&self, kv: Option<&KeyValue>) -> bool {
        kv.is_some_and(|kv| kv.value() == self.value.as_bytes())
    }

    /// Whether a watched put of the epoch key leaves this epoch.
    pub(crate) fn is_left_by(&self, value: &[u8]) -> bool {
        value != self.value.as_bytes()
    }

    /// The epoch as stored.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    /// etcd's revision `seen` went back to `now`: confirms it with a
    /// linearizable read (a lagging member may answer with an older revision;
    /// a linearizable read never trails what was committed), and if etcd was
    /// indeed restored, moves the board to the next epoch. Returns whether it was.
    pub(crate) async fn check_restore(&self, kv: &KvClient, seen: i64) -> bool {
        let read = match bounded(kv.clone().get(self.key.clone(), None), "confirming an etcd restore").await {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(%error, "cannot confirm whether etcd was restored; will look again");
                return false;
            }
        };
        let now = read.header().map_or(i64::MAX, |h| h.revision());
        if now >= seen {
            return false;
        }
        let next = self.value.parse::<u64>().map_or_else(|_| uuid::Uuid::new_v4().to_string(), |n| (n + 1).to_string());
        tracing::error!(
            seen, now, epoch = %self.value, next = %next,
            "etcd's revision went back: it was restored from a snapshot; moving the board to a new epoch"
        );
        let bump = Txn::new().when([self.compare()]).and_then([TxnOp::put(self.key.clone(), next, None)]);
        if let Err(error) = bounded(kv.clone().txn(bump), "moving the board to a new epoch").await {
            tracing::warn!(%error, "cannot move the board to a new epoch; this session fences itself all the same");
        }
        true
    }
}
