//! Id-time windows: how `list` ranges an id-ordered prefix (`P m/state/<id>`) without
//! making etcd walk every key after the start.
//!
//! etcd 3.4 walks the whole of a range in its in-memory index (live keys, and deleted ones
//! until a compaction) before it applies the limit (3.5 still counts them), so a range from
//! a page's start to the prefix's end costs every job kept after it, whatever the page.
//! Job ids begin with their creation time (48 bits of ms), so the range
//! `[<prefix><id at t>, <prefix><id at t+w>)` holds exactly the jobs created in `[t, t+w)`:
//! each request ranges one such window and costs the keys in it. Windows start where the
//! caller says (the board's list floor, or a page token) and their width follows the
//! density met: doubled across empty time, narrowed where a window held more keys than
//! asked for. Past the lister's clock plus [`HORIZON_MS`] one last range runs to the
//! prefix's end, so that ids from a clock ahead of ours are listed too (it costs only them).

use etcd_client::{GetOptions, KeyValue};

use super::keys::{id_at_end, prefix_end};
use super::Inner;
use crate::error::Error;
use crate::job::JobId;

/// The first window's width: a page of a busy board, a few requests on a quiet one.
const FIRST_WIDTH_MS: u64 = 256;
/// How far past the lister's clock windows go before the last, unbounded range.
const HORIZON_MS: u64 = 60_000;
/// Requests per batch before the rest is read in one unbounded range (which is always right, only slower).
const MAX_REQUESTS: usize = 96;

/// The milliseconds an id begins with (its creation time).
pub(crate) fn id_ms(id: JobId) -> u64 {
    (id.as_u128() >> 80) as u64
}

/// The smallest id of millisecond `ms`: below every job id created then or later.
pub(crate) fn id_at(ms: u64) -> JobId {
    JobId::from_u128(u128::from(ms.min((1 << 48) - 1)) << 80)
}

/// A walk through one id-ordered prefix, window by window.
pub(super) struct Windows {
    prefix: String,
    /// The next key to read.
    from: Vec<u8>,
    /// The current window's start.
    start_ms: u64,
    width_ms: u64,
    horizon_ms: u64,
    keys_only: bool,
    done: bool,
}

impl Windows {
    /// From id `floor` (included) on.
    pub(super) fn from(prefix: String, floor: JobId, keys_only: bool) -> Self {
        let from = format!("{prefix}{floor}").into_bytes();
        Self::new(prefix, from, id_ms(floor), keys_only)
    }

    /// After id `after` (excluded).
    pub(super) fn after(prefix: String, after: JobId, keys_only: bool) -> Self {
        let mut from = format!("{prefix}{after}").into_bytes();
        from.push(0);
        Self::new(prefix, from, id_ms(after), keys_only)
    }

    /// The whole prefix in one range: for a board with no floor yet.
    pub(super) fn unbounded(prefix: String, keys_only: bool) -> Self {
        let from = prefix.clone().into_bytes();
        let mut windows = Self::new(prefix, from, 0, keys_only);
        windows.horizon_ms = 0;
        windows
    }

    fn new(prefix: String, from: Vec<u8>, start_ms: u64, keys_only: bool) -> Self {
        let horizon_ms = flows::logbook::now_millis().saturating_add(HORIZON_MS);
        Windows { prefix, from, start_ms, width_ms: FIRST_WIDTH_MS, horizon_ms, keys_only, done: false }
    }

    /// The next keys in order, up to `limit` (also the number of keys a window aims at),
    /// from the first window that holds any; empty at the prefix's end.
    pub(super) async fn next(&mut self, inner: &Inner, limit: usize) -> Result<Vec<KeyValue>, Error> {
        let limit = limit.max(1);
        for request in 0..=MAX_REQUESTS {
            if self.done {
                break;
            }
            let window_end_ms = self.start_ms.saturating_add(self.width_ms);
            let last = self.start_ms >= self.horizon_ms || request == MAX_REQUESTS || window_end_ms >= 1 << 48;
            let end = if last { prefix_end(&self.prefix) } else { self.key_at(window_end_ms) };
            let mut options = GetOptions::new().with_range(end).with_limit(limit as i64);
            if self.keys_only {
                options = options.with_keys_only();
            }
            let mut resp = inner.get(self.from.clone(), Some(options), "listing jobs").await?;
            let more = resp.more();
            let kvs = resp.take_kvs();
            if let (true, Some(kv)) = (more, kvs.last()) {
                // A window denser than asked for: go on after its last key, in windows
                // as wide as the one that held `limit` keys.
                let last_ms = id_at_end(kv.key()).map_or(self.start_ms, id_ms).max(self.start_ms);
                self.width_ms = (last_ms - self.start_ms).max(1);
                self.start_ms = last_ms;
                self.from = kv.key().to_vec();
                self.from.push(0);
                return Ok(kvs);
            }
            if last {
                self.done = true;
                return Ok(kvs);
            }
            self.from = self.key_at(window_end_ms);
            self.start_ms = window_end_ms;
            self.width_ms = next_width(self.width_ms, kvs.len(), limit);
            if !kvs.is_empty() {
                return Ok(kvs);
            }
        }
        Ok(Vec::new())
    }

    fn key_at(&self, ms: u64) -> Vec<u8> {
        format!("{}{}", self.prefix, id_at(ms)).into_bytes()
    }
}

/// The next window's width after one of `width` held `seen` keys, aiming at `want`:
/// doubled across empty time, else scaled to the density seen (at most doubled, at
/// least a quarter, so that one odd window does not throw it far).
fn next_width(width: u64, seen: usize, want: usize) -> u64 {
    if seen == 0 {
        return width.saturating_mul(2);
    }
    let scaled = (u128::from(width) * want as u128 / seen as u128).min(u128::from(u64::MAX)) as u64;
    scaled.clamp((width / 4).max(1), width.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_a_millisecond_sort_after_its_floor_and_before_the_next() {
        let (id, ms) = super::super::codec::new_job_id_from(0);
        assert_eq!(id_ms(id), ms);
        assert!(id_at(ms).to_string() < id.to_string());
        assert!(id.to_string() < id_at(ms + 1).to_string());
        assert_eq!(id_ms(id_at(ms)), ms);
    }

    #[test]
    fn widths_follow_the_density() {
        assert_eq!(next_width(256, 0, 100), 512);
        assert_eq!(next_width(256, 100, 100), 256);
        assert_eq!(next_width(256, 10, 100), 512);
        assert_eq!(next_width(256, 10_000, 100), 64);
        assert_eq!(next_width(1, 10_000, 100), 1);
    }
}
