//! The board watch (one per board, over `P m/`) and per-job watches.
//!
//! The board watch wakes claimers on queue puts and on owner keys deleted by
//! lease expiry (an owner delete with no state put in the same revision: our
//! own consume/abandon/trash always rewrite the state in the same txn), then
//! re-queues those jobs. A state put carrying the cancel flag fires the
//! matching claim's `cancelled` token. After a stream error it re-watches from
//! the revision after the last event seen, which loses nothing; when that
//! revision was compacted (etcd 3.4 says so in a *cancelled response*, not an
//! error) it re-lists what it needs (orphaned claims, cancel flags), wakes
//! everyone and continues from the listing's revision.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse};
use tokio::sync::watch as tokio_watch;
use tokio::time::sleep;

use super::codec::{decode, StateRecord};
use super::keys::{id_at_end, prefix_end, Watched};
use super::{Inner, MAX_DECODE_BYTES};
use crate::board::Wakeups;
use crate::error::Error;
use crate::job::JobId;

/// Delay before re-opening a broken watch; etcd may be restarting.
const REOPEN_DELAY: Duration = Duration::from_millis(300);

/// Keys per page when listing the queue into the view.
const LIST_PAGE: i64 = 5000;

/// Lists orphans once, then runs the board watch in the background from that listing's revision.
pub(super) async fn start_board_watch(inner: &Arc<Inner>) -> Result<(), Error> {
    let start = recover(inner).await?;
    tokio::spawn(board_watch(Arc::downgrade(inner), start));
    Ok(())
}

/// Re-lists after startup or compaction: re-queues jobs whose owner lease
/// expired unseen, refreshes our claims' cancel flags, wakes claimers.
/// Returns the revision to watch from.
async fn recover(inner: &Inner) -> Result<i64, Error> {
    let keys = &inner.keys;
    let held_opts = GetOptions::new().with_prefix().with_keys_only();
    let held = inner.get(keys.held_prefix(), Some(held_opts), "listing claimed jobs").await?;
    let revision = held.header().map(|h| h.revision()).unwrap_or_default();
    let owner_opts = GetOptions::new().with_prefix().with_keys_only().with_revision(revision);
    let owners = inner.get(keys.owner_prefix(), Some(owner_opts), "listing owners").await?;
    let owned: HashSet<JobId> = owners.kvs().iter().filter_map(|kv| id_at_end(kv.key())).collect();
    for id in held.kvs().iter().filter_map(|kv| id_at_end(kv.key())) {
        if !owned.contains(&id) {
            inner.requeue_orphan(id).await?;
        }
    }
    let mut queued = BTreeSet::new();
    for prefix in [keys.queue_prefix(), keys.flow_queue_root()] {
        list_keys(inner, &prefix, revision, &mut queued).await?;
    }
    inner.with_queue_view(|view| view.replace(queued));
    let ours: Vec<JobId> = inner.with_held(|h| h.keys().copied().collect());
    for id in ours {
        match inner.read_state(id).await {
            Ok((state, rev, _)) => note_state(inner, id, state, rev),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    inner.wake_claimers();
    Ok(revision + 1)
}

/// Adds every key under `prefix` at `revision` to `out`, in pages.
async fn list_keys(inner: &Inner, prefix: &str, revision: i64, out: &mut BTreeSet<Vec<u8>>) -> Result<(), Error> {
    let end = prefix_end(prefix);
    let mut from = prefix.as_bytes().to_vec();
    loop {
        let options =
            GetOptions::new().with_range(end.clone()).with_keys_only().with_limit(LIST_PAGE).with_revision(revision);
        let mut resp = inner.get(from.clone(), Some(options), "listing the queue").await?;
        let more = resp.more();
        let kvs = resp.take_kvs();
        let Some(last) = kvs.last() else { return Ok(()) };
        from = last.key().to_vec();
        from.push(0);
        out.extend(kvs.into_iter().map(|kv| kv.into_key_value().0));
        if !more {
            return Ok(());
        }
    }
}

async fn board_watch(board: Weak<Inner>, mut next_rev: i64) {
    loop {
        let Some(inner) = board.upgrade() else { return };
        if inner.stop.is_cancelled() {
            return;
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(next_rev);
        let opened = inner
            .client
            .watch_client()
            .max_decoding_message_size(MAX_DECODE_BYTES)
            .watch(inner.keys.watched(), Some(options))
            .await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open the board watch; retrying");
                drop(inner);
                sleep(REOPEN_DELAY).await;
                continue;
            }
        };
        let stop = inner.stop.clone();
        drop(inner);
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                message = stream.message() => message,
            };
            let Some(inner) = board.upgrade() else { return };
            match message {
                Ok(Some(resp)) if resp.canceled() => {
                    if resp.compact_revision() > 0 {
                        tracing::info!(
                            from = next_rev,
                            compacted = resp.compact_revision(),
                            "board watch fell behind compaction; re-listing"
                        );
                        match recover(&inner).await {
                            Ok(rev) => next_rev = rev,
                            Err(e) => tracing::warn!(error = %e, "re-listing after compaction failed; will retry"),
                        }
                    }
                    break;
                }
                Ok(Some(resp)) => next_rev = handle(&inner, &resp, next_rev),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "board watch broke; resuming from revision {next_rev}");
                    break;
                }
            }
        }
        sleep(REOPEN_DELAY).await;
    }
}

/// Applies one watch response; returns the next revision to watch from.
fn handle(inner: &Arc<Inner>, resp: &WatchResponse, mut next_rev: i64) -> i64 {
    let mut state_puts = HashSet::new();
    let mut owner_deletes = Vec::new();
    let mut wake = false;
    for event in resp.events() {
        let Some(kv) = event.kv() else { continue };
        next_rev = next_rev.max(kv.mod_revision() + 1);
        let put = event.event_type() == EventType::Put;
        match inner.keys.classify(kv.key()) {
            Some(Watched::Queue) => {
                inner.with_queue_view(|view| if put { view.insert(kv.key()) } else { view.remove(kv.key()) });
                if put {
                    inner.with_local(|local| local.queue_put(kv.key()));
                }
                wake |= put;
            }
            Some(Watched::Owner(id)) if !put => owner_deletes.push((id, kv.mod_revision())),
            Some(Watched::State(id)) if put => {
                state_puts.insert((id, kv.mod_revision()));
                if let Ok(state) = decode::<StateRecord>(kv.value(), "job state") {
                    note_state(inner, id, state, kv.mod_revision());
                }
            }
            _ => {}
        }
    }
    for (id, rev) in owner_deletes {
        if state_puts.contains(&(id, rev)) {
            continue; // consume / abandon / trash: not a lease expiry
        }
        wake = true;
        let token = inner.with_held(|h| h.get(&id).map(|h| h.token as u64));
        if let Some(token) = token {
            inner.lose(id, token);
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.requeue_orphan(id).await {
                tracing::warn!(job = %id, error = %e, "cannot re-queue a job released by lease expiry; the next re-list will");
            }
        });
    }
    if wake {
        inner.wake_claimers();
    }
    next_rev
}

/// Keeps a held claim's cached state fresh and fires its `cancelled` token when asked.
fn note_state(inner: &Inner, id: JobId, state: StateRecord, rev: i64) {
    inner.with_held(|held| {
        if let Some(h) = held.get_mut(&id) {
            if rev > h.state_rev {
                if state.cancel_requested {
                    h.cancelled.cancel();
                }
                h.state = state;
                h.state_rev = rev;
            }
        }
    });
}

/// A wake-up stream for one job: its state, owner and logbook keys.
pub(super) async fn watch_job(inner: &Arc<Inner>, id: JobId) -> Result<Wakeups, Error> {
    // Existence check, and the revision to start from so nothing after it is missed.
    let resp = inner.get(inner.keys.spec(id), Some(GetOptions::new().with_count_only()), "reading a job").await?;
    if resp.count() == 0 {
        return Err(Error::NotFound(id));
    }
    let start = resp.header().map(|h| h.revision()).unwrap_or_default() + 1;
    let (tx, rx) = tokio_watch::channel(0u64);
    tokio::spawn(job_watch(Arc::downgrade(inner), id, start, tx));
    Ok(Wakeups::new(rx))
}

async fn job_watch(board: Weak<Inner>, id: JobId, mut next_rev: i64, tx: tokio_watch::Sender<u64>) {
    let bump = |tx: &tokio_watch::Sender<u64>| tx.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let Some(inner) = board.upgrade() else { return };
        let keys = inner.keys.clone();
        let (client, stop) = (inner.client.clone(), inner.stop.clone());
        drop(inner);
        let from = || WatchOptions::new().with_start_revision(next_rev);
        let opened = async {
            let mut watch_client = client.watch_client().max_decoding_message_size(MAX_DECODE_BYTES);
            let mut stream = watch_client.watch(keys.state(id), Some(from())).await?;
            stream.watch(keys.owner(id), Some(from())).await?;
            stream.watch(keys.book_prefix(id), Some(from().with_prefix())).await?;
            Ok::<_, etcd_client::Error>(stream)
        };
        let mut stream = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            opened = opened => match opened {
                Ok(stream) => stream,
                Err(_) => { sleep(REOPEN_DELAY).await; continue; }
            },
        };
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
                message = stream.message() => message,
            };
            match message {
                Ok(Some(resp)) if resp.canceled() => {
                    // Compacted past our revision: something may have changed; say so and go on from now.
                    bump(&tx);
                    next_rev = resp.header().map(|h| h.revision()).unwrap_or(next_rev) + 1;
                    break;
                }
                Ok(Some(resp)) => {
                    if let Some(last) = resp.events().iter().filter_map(|e| e.kv()).map(|kv| kv.mod_revision()).max() {
                        next_rev = next_rev.max(last + 1);
                        bump(&tx);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        sleep(REOPEN_DELAY).await;
    }
}
