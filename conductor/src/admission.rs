//! Admission: posts are refused with RESOURCE_EXHAUSTED, naming the limit, before the board
//! is in trouble, so that the jobs already running keep room to write their logbooks.
//!
//! Two limits: a maximum of queued jobs (`--max-queued`), and the storage quota of etcd
//! (`--etcd-quota-bytes`, etcd's `--quota-backend-bytes`): posts stop while etcd has an alarm
//! raised (NOSPACE: etcd then refuses every write but deletes) and once its database reaches
//! [`STORAGE_FRACTION`] of the quota; claims, logbook writes and consumes are never checked,
//! so running jobs have the rest.
//!
//! Checking is cheap: the board's `capacity` is read at most once per [`REFRESH`] (one
//! count-only range when a queue limit is set, one Status and one Alarm call on etcd), and
//! what this conductor posted since is added to that reading. Storage is also read again as
//! soon as what was posted since may have grown the database by 1% of the quota. Posts through
//! other conductors are seen at the next reading, so a fleet may overshoot the queue limit by
//! what it posts in one interval; the storage threshold leaves room for that.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jobboard::{Capacity, JobBoard};
use tonic::Status;

/// How old a reading may be before a post reads the board again.
const REFRESH: Duration = Duration::from_secs(1);
/// Posts are refused once etcd's database reaches this share of its quota.
pub const STORAGE_FRACTION: f64 = 0.9;
/// What a post may add to etcd's database per byte of store, with a fixed cost per job
/// (keys, state, indexes), taken high: bbolt pages are rarely full and old revisions stay
/// until compaction.
const GROWTH_PER_BYTE: u64 = 2;
const GROWTH_PER_JOB: u64 = 2048;

/// The limits posts are checked against; 0 turns one off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Refuse posts while this many jobs or more are queued.
    pub max_queued: u64,
    /// etcd's storage quota in bytes (`--quota-backend-bytes`).
    pub storage_quota: u64,
}

/// The post check of one conductor. Shared by the API's handlers.
#[derive(Debug, Default)]
pub struct Admission {
    limits: Limits,
    /// One refresh at a time; posts behind it wait for its reading.
    refreshing: tokio::sync::Mutex<()>,
    reading: Mutex<Option<Reading>>,
}

#[derive(Debug)]
struct Reading {
    capacity: Capacity,
    at: Instant,
    /// Posts accepted here since the reading, and what they may have added to the database.
    posted: u64,
    growth: u64,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission { limits, ..Admission::default() }
    }

    /// Whether a post of a store of `store_bytes` may go ahead; RESOURCE_EXHAUSTED naming the
    /// limit if not. A board that cannot be read does not refuse (the post will say why).
    pub async fn admit(&self, board: &dyn JobBoard, store_bytes: usize) -> Result<(), Status> {
        if self.limits == Limits::default() {
            return Ok(());
        }
        if self.stale() {
            let _one = self.refreshing.lock().await;
            if self.stale() {
                match board.capacity(self.limits.max_queued > 0).await {
                    Ok(capacity) => {
                        let reading = Reading { capacity, at: Instant::now(), posted: 0, growth: 0 };
                        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the board's capacity; not refusing posts for it")
                    }
                }
            }
        }
        let guard = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let Some(reading) = guard.as_ref() else { return Ok(()) };
        match self.refusal(reading, growth(store_bytes)) {
            Some(why) => Err(Status::resource_exhausted(why)),
            None => Ok(()),
        }
    }

    /// A post of a store of `store_bytes` was accepted.
    pub fn posted(&self, store_bytes: usize) {
        if let Some(reading) = self.reading.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            reading.posted += 1;
            reading.growth += growth(store_bytes);
        }
    }

    fn stale(&self) -> bool {
        let guard = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let Some(reading) = guard.as_ref() else { return true };
        let grown_enough = self.limits.storage_quota > 0 && reading.growth >= self.limits.storage_quota / 100;
        reading.at.elapsed() >= REFRESH || grown_enough
    }

    /// Why a post that may add `growth` bytes is refused, if it is.
    fn refusal(&self, reading: &Reading, growth: u64) -> Option<String> {
        let Limits { max_queued, storage_quota } = self.limits;
        if let (Some(storage), true) = (&reading.capacity.storage, storage_quota > 0) {
            if let Some(alarm) = &storage.alarm {
                return Some(format!(
                    "etcd has the alarm {alarm} raised (its storage quota is exceeded): posts are refused until \
                     an operator frees space (compact, defragment) and disarms it"
                ));
            }
            let expected = storage.db_bytes + reading.growth + growth;
            let threshold = (storage_quota as f64 * STORAGE_FRACTION) as u64;
            if expected >= threshold {
                return Some(format!(
                    "etcd's database is at {} of {} bytes (--etcd-quota-bytes, etcd's --quota-backend-bytes): posts are \
                     refused from {:.0}% of the quota on, so that running jobs keep room to finish",
                    storage.db_bytes + reading.growth,
                    storage_quota,
                    STORAGE_FRACTION * 100.0
                ));
            }
        }
        if let (Some(queued), true) = (reading.capacity.queued, max_queued > 0) {
            let queued = queued + reading.posted;
            if queued >= max_queued {
                return Some(format!("{queued} jobs are queued, the limit is {max_queued} (--max-queued)"));
            }
        }
        None
    }
}

fn growth(store_bytes: usize) -> u64 {
    u64::try_from(store_bytes).unwrap_or(u64::MAX).saturating_mul(GROWTH_PER_BYTE).saturating_add(GROWTH_PER_JOB)
}

#[cfg(test)]
mod tests {
    use jobboard::StorageUse;

    use super::*;

    fn reading(queued: Option<u64>, db_bytes: u64, alarm: Option<&str>) -> Reading {
        let storage = Some(StorageUse { db_bytes, alarm: alarm.map(str::to_owned) });
        Reading { capacity: Capacity { queued, storage }, at: Instant::now(), posted: 0, growth: 0 }
    }

    #[test]
    fn refuses_at_the_queue_limit_counting_its_own_posts_since_the_reading() {
        let admission = Admission::new(Limits { max_queued: 10, storage_quota: 0 });
        let mut now = reading(Some(8), 0, None);
        assert_eq!(admission.refusal(&now, 0), None);
        now.posted = 2;
        let why = admission.refusal(&now, 0).expect("refused at 10 queued");
        assert!(why.contains("10 jobs are queued, the limit is 10 (--max-queued)"), "{why}");
    }

    #[test]
    fn refuses_near_the_storage_quota_and_while_an_alarm_is_raised() {
        let admission = Admission::new(Limits { max_queued: 0, storage_quota: 1_000_000 });
        assert_eq!(admission.refusal(&reading(None, 800_000, None), growth(0)), None);
        let why = admission.refusal(&reading(None, 800_000, None), growth(60_000)).expect("over 90% with this post");
        assert!(why.contains("--etcd-quota-bytes") && why.contains("90%"), "{why}");
        let why = admission.refusal(&reading(None, 10, Some("NOSPACE")), 0).expect("alarm raised");
        assert!(why.contains("NOSPACE"), "{why}");
        // Without a quota the size is not judged; a queue limit of 0 is none.
        let off = Admission::new(Limits::default());
        assert_eq!(off.refusal(&reading(Some(u64::MAX), u64::MAX / 2, Some("NOSPACE")), 0), None);
    }
}
