//! `QueueView`: this board's copy of the queue keys, kept by the board watch.
//!
//! etcd 3.4 visits every key of a range in its index before applying the
//! limit, so a claim's `range(queue/, limit 16)` costs O(queued jobs). The view
//! bounds that range: its end is just past the N-th queue key the board knows
//! of. The range still reads etcd itself, so the answer is exact: every real
//! key below that end is returned in order, and the view only decides how far
//! etcd must look. If the bounded range comes back empty (the view was stale),
//! the claimer falls back to the whole prefix.
//!
//! Deleted keys stay in etcd's index until compaction, and claimed queue
//! entries sort *before* the head, so under load every range from the prefix
//! would also walk the tombstones of every job claimed since the last
//! compaction. While several tasks of a board claim at once (order is then
//! approximate anyway), the range starts at the first key the view knows;
//! a lone claimer always starts at the prefix, so its order is exact.

use std::collections::BTreeSet;

/// Queue and per-flow queue keys, as last seen.
#[derive(Debug, Default)]
pub(crate) struct QueueView {
    keys: BTreeSet<Vec<u8>>,
}

impl QueueView {
    pub(crate) fn insert(&mut self, key: &[u8]) {
        self.keys.insert(key.to_vec());
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.keys.remove(key);
    }

    /// Replaces the whole view (after a listing).
    pub(crate) fn replace(&mut self, keys: BTreeSet<Vec<u8>>) {
        self.keys = keys;
    }

    /// The first known key under `prefix`.
    pub(crate) fn first(&self, prefix: &[u8]) -> Option<Vec<u8>> {
        self.keys.range(prefix.to_vec()..).next().filter(|k| k.starts_with(prefix)).cloned()
    }

    /// The end (exclusive) of a range that holds the first `n` known keys under
    /// `prefix`; `None` if fewer are known (then range the whole prefix).
    pub(crate) fn bounded_end(&self, prefix: &[u8], n: usize) -> Option<Vec<u8>> {
        let nth = self.keys.range(prefix.to_vec()..).take_while(|k| k.starts_with(prefix)).nth(n.checked_sub(1)?)?;
        let mut end = nth.clone();
        end.push(0);
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_the_range_after_the_nth_key_of_the_prefix() {
        let mut view = QueueView::default();
        for key in ["q/a/1", "q/a/2", "q/a/3", "q/b/1"] {
            view.insert(key.as_bytes());
        }
        assert_eq!(view.bounded_end(b"q/a/", 2), Some(b"q/a/2\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/a/", 4), None, "fewer known than asked: whole prefix");
        view.remove(b"q/a/1");
        assert_eq!(view.bounded_end(b"q/a/", 2), Some(b"q/a/3\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 0), None);
    }
}
