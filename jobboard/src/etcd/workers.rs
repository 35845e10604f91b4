//! Worker records on etcd: `P w/<conductor>/<worker-id>` on the session lease, and
//! the worker set kept by one watch over `P w/` (listed first, re-listed after a
//! broken stream or a compaction), started on first use.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{EventType, GetOptions, PutOptions, WatchOptions};
use tokio::sync::watch as tokio_watch;

use super::codec::{decode, encode};
use super::Inner;
use crate::error::Error;
use crate::workers::{check, WorkerRecord, WorkerSet};

/// Delay before re-listing after the watch broke.
const RELIST_DELAY: Duration = Duration::from_millis(300);

impl Inner {
    pub(super) async fn put_worker(&self, worker: &WorkerRecord) -> Result<(), Error> {
        self.check_live()?;
        check(worker)?;
        let (key, value) = (self.keys.worker(&worker.conductor, &worker.id), encode(worker, "worker")?);
        let options = PutOptions::new().with_lease(self.session.lease);
        let put = || {
            let (mut kv, key, value, options) = (self.kv(), key.clone(), value.clone(), options.clone());
            async move { kv.put(key, value, Some(options)).await }
        };
        super::bounded(put, &format!("recording worker {}", worker.id)).await?;
        Ok(())
    }

    pub(super) async fn remove_worker(&self, conductor: &str, id: &str) -> Result<(), Error> {
        let key = self.keys.worker(conductor, id);
        let delete = || {
            let (mut kv, key) = (self.kv(), key.clone());
            async move { kv.delete(key, None).await }
        };
        super::bounded(delete, &format!("removing worker {id}")).await?;
        Ok(())
    }

    /// Lists `P w/` and returns the set with the revision it was read at.
    async fn list_workers(&self) -> Result<(BTreeMap<(String, String), WorkerRecord>, i64), Error> {
        let mut listed =
            self.get(self.keys.worker_prefix(), Some(GetOptions::new().with_prefix()), "listing workers").await?;
        let revision = listed.header().map(|h| h.revision()).unwrap_or_default();
        let mut set = BTreeMap::new();
        for kv in listed.take_kvs() {
            match decode::<WorkerRecord>(kv.value(), "worker") {
                Ok(record) => {
                    set.insert(record.key(), record);
                }
                Err(error) => tracing::warn!(%error, "skipping an unreadable worker record"),
            }
        }
        Ok((set, revision))
    }
}

/// Starts the worker-set watch for `inner`: lists once (so the first answer is complete),
/// then follows changes in the background until the board closes.
pub(super) async fn start(inner: &Arc<Inner>) -> Result<tokio_watch::Receiver<WorkerSet>, Error> {
    let (set, revision) = inner.list_workers().await?;
    let (tx, rx) = tokio_watch::channel(Arc::new(set));
    tokio::spawn(follow(Arc::downgrade(inner), tx, revision + 1));
    Ok(rx)
}

async fn follow(inner: Weak<Inner>, tx: tokio_watch::Sender<WorkerSet>, mut from: i64) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let stop = strong.stop.clone();
        let prefix = strong.keys.worker_prefix();
        let mut client = strong.client.watch_client();
        drop(strong);
        let options = WatchOptions::new().with_prefix().with_start_revision(from).with_prev_key();
        let opened = tokio::select! {
            opened = client.watch(prefix.clone(), Some(options)) => opened,
            () = stop.cancelled() => return,
        };
        if let Ok(mut stream) = opened {
            loop {
                let message = tokio::select! {
                    message = stream.message() => message,
                    () = stop.cancelled() => return,
                };
                let Ok(Some(response)) = message else { break };
                if response.canceled() {
                    break;
                }
                tx.send_modify(|set| {
                    let set = Arc::make_mut(set);
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        from = from.max(kv.mod_revision() + 1);
                        match event.event_type() {
                            EventType::Put => {
                                if let Ok(record) = decode::<WorkerRecord>(kv.value(), "worker") {
                                    set.insert(record.key(), record);
                                }
                            }
                            EventType::Delete => {
                                let key = String::from_utf8_lossy(kv.key()).into_owned();
                                set.retain(|_, r| key_of(&prefix, r) != key);
                            }
                        }
                    }
                });
            }
        }
        // Broken or compacted: re-list (nothing is lost: the listing is the truth).
        tokio::time::sleep(RELIST_DELAY).await;
        let Some(strong) = inner.upgrade() else { return };
        if let Ok((set, revision)) = strong.list_workers().await {
            tx.send_replace(Arc::new(set));
            from = revision + 1;
        }
    }
}

fn key_of(prefix: &str, record: &WorkerRecord) -> String {
    format!("{prefix}{}/{}", record.conductor, record.id)
}
