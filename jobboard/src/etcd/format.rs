//! The board's format version on etcd: `P format`, read by every session when it starts.
//!
//! - **Absent** on a board with no key at all: a new board. The first session creates it
//!   at [`FORMAT`] (a conditional create: of racing sessions, one writes it and the rest
//!   read it).
//! - **Absent** on a board with keys: written by a release from before the format was
//!   recorded, format 0. It is migrated.
//! - **Older** than [`FORMAT`]: migrated, one step at a time. Each step is idempotent
//!   (sessions of a fleet may run it at once) and ends with a conditional write of the next
//!   version (compare: the version it started from), so the key only moves forward.
//! - **Newer** (or not a number): [`Error::UnsupportedFormat`], naming what was found and
//!   what this build reads; the session does not start and nothing is written.
//!
//! A format version marks a change older code cannot read safely. Adding a field older
//! code ignores (a job's `requires`, a conductor's `features`) keeps the format: old and
//! new conductors share such a board during a rolling update, and required features keep
//! each job on a conductor that understands it (`crate::features`).

use std::future::Future;
use std::pin::Pin;

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};

use super::keys::Keys;
use super::owner::get_kv;
use super::send_txn;
use crate::error::Error;

/// The newest format this build reads and writes.
pub(crate) const FORMAT: u32 = STEPS.len() as u32;

/// A migration step: brings a board at version `i` (its index in [`STEPS`]) to `i + 1`,
/// except for writing the format key, which the caller does. Must be idempotent.
type Step = for<'a> fn(&'a KvClient, &'a Keys) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Every step, oldest first. A change of format appends its step; a released step is never edited.
const STEPS: &[Step] = &[record_only];

/// 0 → 1: the layout of format 1 is the one boards had before the format was recorded;
/// only the key is new.
fn record_only<'a>(_: &'a KvClient, _: &'a Keys) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
    Box::pin(async { Ok(()) })
}

/// Bounds the loop below: each round moves the key at least one version forward, or
/// finds it moved by another session.
const MAX_ROUNDS: usize = 64;

/// Reads the board's format, creating or migrating it; see the module doc.
pub(crate) async fn read_or_migrate(kv: &KvClient, keys: &Keys) -> Result<u32, Error> {
    let key = keys.format();
    for _ in 0..MAX_ROUNDS {
        let found = read(kv, keys).await?;
        let version = match found {
            Found::Version(version) if version == FORMAT => return Ok(version),
            Found::Version(version) if version < FORMAT => version,
            Found::Version(version) => return Err(unsupported(keys, version.to_string())),
            Found::Unreadable(text) => return Err(unsupported(keys, format!("{text:?}"))),
            Found::NewBoard => {
                let create = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), FORMAT.to_string(), None)]);
                if send_txn(kv, &create, "recording the board format").await?.succeeded() {
                    tracing::info!(prefix = keys.root(), format = FORMAT, "new board: format recorded");
                    return Ok(FORMAT);
                }
                continue;
            }
            Found::Legacy => 0,
        };
        let step = STEPS[version as usize];
        step(kv, keys).await?;
        let moved = match version {
            0 => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
            v => Compare::value(key.clone(), CompareOp::Equal, v.to_string()),
        };
        let next = version + 1;
        let write = Txn::new().when([moved]).and_then([TxnOp::put(key.clone(), next.to_string(), None)]);
        if send_txn(kv, &write, "migrating the board format").await?.succeeded() {
            tracing::info!(prefix = keys.root(), from = version, to = next, "board format migrated");
        }
    }
    Err(Error::Backend {
        message: format!("the board format at {key} kept changing while it was migrated"),
        source: None,
    })
}

/// What `P format` says.
enum Found {
    Version(u32),
    Unreadable(String),
    /// No format key, no other key either.
    NewBoard,
    /// No format key, but other keys: a board from before formats were recorded.
    Legacy,
}

async fn read(kv: &KvClient, keys: &Keys) -> Result<Found, Error> {
    let key = keys.format();
    let txn = Txn::new().and_then([
        TxnOp::get(key.clone(), None),
        TxnOp::get(keys.root(), Some(GetOptions::new().with_prefix().with_keys_only().with_limit(1))),
    ]);
    let resp = send_txn(kv, &txn, "reading the board format").await?;
    if let Some(kv) = get_kv(&resp, 0) {
        let text = String::from_utf8_lossy(kv.value()).into_owned();
        return Ok(match text.trim().parse::<u32>() {
            Ok(version) => Found::Version(version),
            Err(_) => Found::Unreadable(text),
        });
    }
    Ok(if get_kv(&resp, 1).is_some() { Found::Legacy } else { Found::NewBoard })
}

fn unsupported(keys: &Keys, found: String) -> Error {
    Error::UnsupportedFormat {
        board: format!("the etcd board under prefix {:?} ({})", keys.root(), keys.format()),
        found,
        supported: FORMAT.to_string(),
    }
}
