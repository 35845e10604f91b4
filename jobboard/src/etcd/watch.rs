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

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse};
use tokio::sync::watch as tokio_watch;
use tokio::time::sleep;

use super::codec::{decode, StateRecord};
use super::keys::{id_at_end, prefix_end, Watched};
use super::queue_view::{Listed, Listing};
use super::queue_window::window_end;
use super::{bounded, Inner, MAX_DECODE_BYTES};
use crate::board::Wakeups;
use crate::error::Error;
use crate::job::{JobId, JobState};

/// Delay before re-opening a broken watch; etcd may be restarting.
const REOPEN_DELAY: Duration = Duration::from_millis(300);

/// Keys listed of each queue root before the first claim.
const FIRST_PAGE: i64 = 1000;
/// Keys per page when listing the rest of the queue into the view: each page's key window
/// (`queue_window`) holds about this many, which is what etcd walks for it.
const LIST_PAGE: i64 = 1000;
/// The longest pause between two pages of that listing.
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// The tracing target of the background listing's events.
pub const LISTING: &str = "jobboard::queue_listing";

/// Lists orphans once, then runs the board watch in the background from that listing's revision.
pub(super) async fn start_board_watch(inner: &Arc<Inner>) -> Result<(), Error> {
    let start = recover(inner).await?;
    tokio::spawn(board_watch(Arc::downgrade(inner), start));
    Ok(())
}

/// Re-lists after startup or compaction: re-queues jobs whose owner lease
/// expired unseen, refreshes our claims' cancel flags, wakes claimers.
/// Returns the revision to watch from.
async fn recover(inner: &Arc<Inner>) -> Result<i64, Error> {
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
    // One page of each root before the first claim; the rest as claims near it (`queue_view`).
    let mut pages = Vec::new();
    for root in [keys.queue_prefix(), keys.flow_queue_root()] {
        let (from, end) = (root.as_bytes().to_vec(), prefix_end(&root));
        pages.push(list_page(inner, root.as_bytes(), from, end, FIRST_PAGE, Some(revision)).await?);
    }
    let generation = inner.with_queue_view(|view| view.start(pages));
    // After the view: a listing that sees this revision applied must see the new view.
    inner.live.restart(held.kvs().iter().filter_map(|kv| id_at_end(kv.key())), owned.iter().copied(), revision);
    tokio::spawn(fill_view(Arc::downgrade(inner), generation));
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

/// One page of the keys under `root` in `[from, end)`, at `revision` (`None`: now).
async fn list_page(
    inner: &Inner,
    root: &[u8],
    from: Vec<u8>,
    end: Vec<u8>,
    limit: i64,
    revision: Option<i64>,
) -> Result<Listed, Error> {
    let mut options = GetOptions::new().with_range(end.clone()).with_keys_only().with_limit(limit);
    if let Some(revision) = revision {
        options = options.with_revision(revision);
    }
    let mut resp = inner.get(from, Some(options), "listing the queue").await?;
    let more = resp.more();
    let keys = resp.take_kvs().into_iter().map(|kv| kv.into_key_value().0).collect();
    Ok(Listed { root: root.to_vec(), keys, end, more })
}

/// Lists the rest of the queue into the view, one key window after another
/// (`queue_window`), whenever claims near what it knows of a root (`QueueView::want`),
/// until every root is listed whole or a newer listing (`generation`) takes over.
async fn fill_view(board: Weak<Inner>, generation: u64) {
    let mut failures = 0;
    let (started, mut pages, mut listed) = (Instant::now(), 0u64, 0usize);
    loop {
        let Some(inner) = board.upgrade() else { return };
        if inner.stop.is_cancelled() {
            return;
        }
        let (listing, wakeup) = inner.with_queue_view(|view| (view.listing(generation), view.wakeup()));
        let next = match listing {
            Listing::Page(next) => next,
            Listing::Idle => {
                let stop = inner.stop.clone();
                drop(inner);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = wakeup.notified() => continue,
                }
            }
            Listing::Over => {
                tracing::debug!(target: LISTING, pages, listed, elapsed_ms = ms(started.elapsed()), "queue listed whole");
                return;
            }
        };
        // At the current revision: a page asked now is past every delete the watch has passed on
        // so far, and the view remembers those during its flight (`QueueView::remove`).
        let asked = Instant::now();
        let root_end = prefix_end(&String::from_utf8_lossy(&next.root));
        let end = window_end(&next.from, next.depth, &root_end, &next.template);
        match list_page(&inner, &next.root, next.from, end, LIST_PAGE, None).await {
            Ok(page) => {
                failures = 0;
                pages += 1;
                listed += page.keys.len();
                // The bench times claims against these (`tests/benches/scale`).
                tracing::debug!(target: LISTING, keys = page.keys.len(), elapsed_ms = ms(asked.elapsed()), "listed a page of the queue");
                inner.with_queue_view(|view| view.extend(generation, page, LIST_PAGE as usize));
                drop(inner);
                // Paced: at most about half of etcd's time, the rest for claims and posts.
                sleep(asked.elapsed().min(MAX_PAUSE)).await;
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, failures, "listing the queue failed; retrying");
                drop(inner);
                // Claims still work meanwhile: they range past what the view knows.
                sleep(REOPEN_DELAY * failures.min(10)).await;
            }
        }
    }
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
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
                        inner.live.invalidate();
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
    inner.session.revisions.note(resp.header().map_or(0, |h| h.revision()));
    let mut state_puts = HashSet::new();
    let mut owner_deletes = Vec::new();
    let mut wake = false;
    let queue_prefix = inner.keys.queue_prefix();
    for event in resp.events() {
        let Some(kv) = event.kv() else { continue };
        next_rev = next_rev.max(kv.mod_revision() + 1);
        let put = event.event_type() == EventType::Put;
        let watched = inner.keys.classify(kv.key());
        inner.live.note(watched, put);
        match watched {
            Some(Watched::Queue) => {
                inner.with_queue_view(|view| if put { view.insert(kv.key()) } else { view.remove(kv.key()) });
                // A per-flow entry is put in the same txn as its all-flows one, and only
                // the latter compares with the shared entries (`m/fqueue` sorts before `m/queue`).
                if kv.key().starts_with(queue_prefix.as_bytes()) {
                    inner
                        .with_local(|local| if put { local.queue_put(kv.key()) } else { local.queue_delete(kv.key()) });
                }
                wake |= put;
            }
            Some(Watched::Owner(id)) if !put => owner_deletes.push((id, kv.mod_revision())),
            Some(Watched::Epoch) if !put || inner.epoch.is_left_by(kv.value()) => {
                tracing::error!(
                    epoch = %inner.epoch.value(), now = %String::from_utf8_lossy(kv.value()),
                    "the board epoch moved on (etcd was restored): this session's claims are void; fencing it"
                );
                inner.session.lost.cancel();
            }
            Some(Watched::Park(id)) if put => inner.park_settled(id),
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
        tokio::spawn(super::claim::requeue_released(Arc::downgrade(inner), id));
    }
    if wake {
        inner.wake_claimers();
    }
    inner.live.applied_through(next_rev - 1);
    next_rev
}

/// Keeps a held claim's cached state fresh and fires its `cancelled` token when a cancel or suspend is asked.
fn note_state(inner: &Inner, id: JobId, state: StateRecord, rev: i64) {
    inner.with_held(|held| match held.get_mut(&id) {
        Some(h) if rev > h.state_rev => {
            if state.cancel_requested || state.suspend_requested {
                h.cancelled.cancel();
            }
            h.state = state;
            h.state_rev = rev;
        }
        Some(_) => {}
        // Perhaps our claim of it is landing right now: `try_claim` looks here.
        None if (state.cancel_requested || state.suspend_requested) && state.state == JobState::Claimed => {
            inner.note_unheld_cancel(id, rev)
        }
        None => {}
    });
}

/// A wake-up stream for one job: its state, owner and logbook keys.
///
/// The watches are opened "from now" and confirmed by etcd before the existence
/// check: etcd delivers events to such a *synced* watcher as they commit,
/// whereas a watcher opened at a past revision waits for etcd's catch-up loop,
/// which runs every 100 ms (that alone made post-to-complete p99 100 ms). A
/// change before the watches' creation is in the caller's first read, which
/// follows; every change after it is an event.
pub(super) async fn watch_job(inner: &Arc<Inner>, id: JobId) -> Result<Wakeups, Error> {
    let (tx, rx) = tokio_watch::channel(0u64);
    let stream = bounded(|| open_job_watch(&inner.client, &inner.keys, id, &tx), &format!("watching job {id}")).await?;
    let resp = inner.get(inner.keys.spec(id), Some(GetOptions::new().with_count_only()), "reading a job").await?;
    if resp.count() == 0 {
        return Err(Error::NotFound(id));
    }
    tokio::spawn(job_watch(Arc::downgrade(inner), id, stream, tx));
    Ok(Wakeups::new(rx))
}

fn bump(tx: &tokio_watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

/// Opens one stream with the job's three watches, from now, and waits for etcd
/// to confirm each. Events that arrive meanwhile bump `tx`.
async fn open_job_watch(
    client: &etcd_client::Client,
    keys: &super::keys::Keys,
    id: JobId,
    tx: &tokio_watch::Sender<u64>,
) -> Result<etcd_client::WatchStream, etcd_client::Error> {
    let mut watch_client = client.watch_client().max_decoding_message_size(MAX_DECODE_BYTES);
    let mut stream = watch_client.watch(keys.state(id), None).await?;
    stream.watch(keys.owner(id), None).await?;
    stream.watch(keys.book_prefix(id), Some(WatchOptions::new().with_prefix())).await?;
    let mut created = 0;
    while created < 3 {
        let Some(resp) = stream.message().await? else {
            return Err(etcd_client::Error::WatchError("watch stream ended while opening".into()));
        };
        if resp.canceled() {
            return Err(etcd_client::Error::WatchError(format!("watch refused: {}", resp.cancel_reason())));
        }
        if resp.created() {
            created += 1;
        }
        if !resp.events().is_empty() {
            bump(tx);
        }
    }
    Ok(stream)
}

/// Forwards events as wake-ups until the receiver or the board goes away.
async fn job_watch(board: Weak<Inner>, id: JobId, stream: etcd_client::WatchStream, tx: tokio_watch::Sender<u64>) {
    let mut opened = Some(stream);
    loop {
        let Some(inner) = board.upgrade() else { return };
        let (client, keys, stop) = (inner.client.clone(), inner.keys.clone(), inner.stop.clone());
        drop(inner);
        let mut stream = match opened.take() {
            Some(stream) => stream,
            // Re-opened from now, then a wake-up: the re-read it causes sees every
            // change made while no watch was open, and later ones are events.
            None => tokio::select! {
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
                reopened = open_job_watch(&client, &keys, id, &tx) => match reopened {
                    Ok(stream) => {
                        bump(&tx);
                        stream
                    }
                    Err(_) => {
                        sleep(REOPEN_DELAY).await;
                        continue;
                    }
                },
            },
        };
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
                message = stream.message() => message,
            };
            match message {
                // Cancelled by etcd (compaction): re-open below.
                Ok(Some(resp)) if resp.canceled() => break,
                Ok(Some(resp)) => {
                    if !resp.events().is_empty() {
                        bump(&tx);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        sleep(REOPEN_DELAY).await;
    }
}
