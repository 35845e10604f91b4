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
//!
//! A board starts with one page of each listed root (`m/queue/`, `m/fqueue/`)
//! and lists the rest in the background (`watch::fill_view`), so a long queue
//! does not delay the first claim. Until a root is listed whole, its *mark* is
//! the last key listed: every key at or below it is known, keys above it are
//! known only if the watch saw them put, so only keys up to the mark bound a
//! range. A later page is listed at a later revision than the watch started
//! from; the watch's deletes of keys above the mark are remembered
//! (`deleted`) so that such a page does not bring them back, and a key the
//! page misses because it was put after the page's revision comes from the
//! watch. A new listing (after a compaction) starts a new generation, and pages
//! of an older one are dropped.

use std::collections::BTreeSet;

use super::keys::prefix_end;

/// Queue and per-flow queue keys, as last seen.
#[derive(Debug, Default)]
pub(crate) struct QueueView {
    keys: BTreeSet<Vec<u8>>,
    /// Listed roots not yet listed whole, each with its mark (the last key listed).
    partial: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys above a partial root's mark that the watch saw deleted.
    deleted: BTreeSet<Vec<u8>>,
    /// Bumped by every `start`.
    generation: u64,
}

/// One page of a root's keys, as listed.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) root: Vec<u8>,
    pub(crate) keys: Vec<Vec<u8>>,
    /// More keys may follow the last one listed.
    pub(crate) more: bool,
}

/// How far the view knows the keys under a prefix.
enum Known<'a> {
    /// Every key under it.
    All,
    /// Every key under it up to this mark (included).
    UpTo(&'a [u8]),
    /// Not one: its listing has not reached it.
    Nothing,
}

impl QueueView {
    pub(crate) fn insert(&mut self, key: &[u8]) {
        self.deleted.remove(key);
        self.keys.insert(key.to_vec());
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.keys.remove(key);
        if self.partial.iter().any(|(root, mark)| key.starts_with(root) && key > mark.as_slice()) {
            self.deleted.insert(key.to_vec());
        }
    }

    /// Replaces the whole view with the first page of each root (after a
    /// listing); returns the generation that later pages must name.
    pub(crate) fn start(&mut self, pages: Vec<Listed>) -> u64 {
        self.generation += 1;
        self.keys.clear();
        self.partial.clear();
        self.deleted.clear();
        for page in pages {
            if let (true, Some(last)) = (page.more, page.keys.last()) {
                self.partial.push((page.root.clone(), last.clone()));
            }
            self.keys.extend(page.keys);
        }
        self.generation
    }

    /// Where the next page of a partial root starts, with that root: `None`
    /// once every root is listed whole, or when `generation` is over.
    pub(crate) fn next_page(&self, generation: u64) -> Option<(Vec<u8>, Vec<u8>)> {
        if generation != self.generation {
            return None;
        }
        let (root, mark) = self.partial.first()?;
        let mut from = mark.clone();
        from.push(0);
        Some((root.clone(), from))
    }

    /// Adds a later page of `root` (of this `generation`) and moves its mark.
    pub(crate) fn extend(&mut self, generation: u64, page: Listed) {
        if generation != self.generation {
            return;
        }
        let Some(at) = self.partial.iter().position(|(root, _)| *root == page.root) else { return };
        let last = page.keys.last().cloned();
        for key in page.keys {
            if !self.deleted.contains(&key) {
                self.keys.insert(key);
            }
        }
        let lower = self.partial[at].1.clone();
        let mark = match (page.more, last) {
            (true, Some(last)) => last,
            // Listed whole: every tombstone under the root is below its end.
            _ => {
                self.partial.remove(at);
                prefix_end_bytes(&page.root)
            }
        };
        let passed: Vec<Vec<u8>> = self.deleted.range(lower..=mark.clone()).cloned().collect();
        for key in passed {
            self.deleted.remove(&key);
        }
        if let Some(entry) = self.partial.get_mut(at).filter(|(root, _)| *root == page.root) {
            entry.1 = mark;
        }
    }

    /// Whether every listed root has been listed whole.
    #[cfg(test)]
    fn complete(&self) -> bool {
        self.partial.is_empty()
    }

    fn known(&self, prefix: &[u8]) -> Known<'_> {
        let Some((_, mark)) = self.partial.iter().find(|(root, _)| prefix.starts_with(root)) else {
            return Known::All;
        };
        if mark.starts_with(prefix) {
            Known::UpTo(mark)
        } else if mark.as_slice() > prefix {
            Known::All
        } else {
            Known::Nothing
        }
    }

    /// The known keys under `prefix` that bound a range, in order.
    fn bounding<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        let known = self.known(prefix);
        self.keys.range(prefix.to_vec()..).take_while(move |k| {
            k.starts_with(prefix)
                && match known {
                    Known::All => true,
                    Known::UpTo(mark) => k.as_slice() <= mark,
                    Known::Nothing => false,
                }
        })
    }

    /// The first known key under `prefix`.
    pub(crate) fn first(&self, prefix: &[u8]) -> Option<Vec<u8>> {
        self.bounding(prefix).next().cloned()
    }

    /// The end (exclusive) of a range that holds the first `n` keys under
    /// `prefix`, or, while the prefix is listed only up to a mark and fewer are
    /// known, every key up to the mark; `None` if the view cannot bound it
    /// (then range the whole prefix).
    pub(crate) fn bounded_end(&self, prefix: &[u8], n: usize) -> Option<Vec<u8>> {
        let index = n.checked_sub(1)?;
        let bound = match self.bounding(prefix).nth(index) {
            Some(nth) => nth.clone(),
            None => match self.known(prefix) {
                Known::UpTo(mark) => mark.to_vec(),
                Known::All | Known::Nothing => return None,
            },
        };
        let mut end = bound;
        end.push(0);
        Some(end)
    }
}

fn prefix_end_bytes(root: &[u8]) -> Vec<u8> {
    prefix_end(&String::from_utf8_lossy(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(root: &str, keys: &[&str], more: bool) -> Listed {
        Listed { root: root.into(), keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(), more }
    }

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

    #[test]
    fn a_partly_listed_root_bounds_ranges_by_its_mark_only() {
        let mut view = QueueView::default();
        let generation = view.start(vec![page("q/", &["q/1", "q/2"], true), page("f/", &["f/a/1", "f/a/2"], true)]);
        // Put by a post after the listing: known, but keys between the mark and it are not.
        view.insert(b"q/9");
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/2\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 3), Some(b"q/2\0".to_vec()), "fewer known: up to the mark");
        assert_eq!(view.bounded_end(b"f/a/", 1), Some(b"f/a/1\0".to_vec()));
        assert_eq!(view.bounded_end(b"f/b/", 1), None, "not listed that far: whole prefix");
        assert_eq!(view.first(b"f/b/"), None);
        // Claimed meanwhile: a page listed later must not bring it back.
        view.remove(b"q/5");
        view.remove(b"q/1");
        assert_eq!(view.next_page(generation), Some((b"q/".to_vec(), b"q/2\0".to_vec())));
        view.extend(generation, page("q/", &["q/3", "q/5"], true));
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/3\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 3), Some(b"q/5\0".to_vec()), "q/5 is gone; up to the mark");
        view.extend(generation, page("q/", &["q/7", "q/9"], false));
        assert_eq!(view.bounded_end(b"q/", 5), None, "listed whole, fewer known: whole prefix");
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/9\0".to_vec()));
        view.extend(generation, page("f/", &["f/b/1"], false));
        assert!(view.complete());
        assert_eq!(view.next_page(generation), None);
        assert_eq!(view.bounded_end(b"f/b/", 1), Some(b"f/b/1\0".to_vec()));
    }

    #[test]
    fn pages_of_an_older_listing_are_dropped() {
        let mut view = QueueView::default();
        let old = view.start(vec![page("q/", &["q/1"], true)]);
        let new = view.start(vec![page("q/", &["q/4"], true)]);
        assert_eq!(view.next_page(old), None);
        view.extend(old, page("q/", &["q/2"], false));
        assert_eq!(view.first(b"q/"), Some(b"q/4".to_vec()));
        assert!(view.next_page(new).is_some());
    }

    #[test]
    fn a_key_put_again_after_its_delete_is_kept() {
        let mut view = QueueView::default();
        let generation = view.start(vec![page("q/", &["q/1"], true)]);
        // Claimed, then given back (abandon re-queues the same key).
        view.remove(b"q/3");
        view.insert(b"q/3");
        view.extend(generation, page("q/", &["q/3"], false));
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/3\0".to_vec()));
    }
}
