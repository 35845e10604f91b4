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
//! where its listing has reached (exclusive): every key below it is known,
//! keys at or above it are known only if the watch saw them put, so only keys
//! below the mark bound a range. A later page, a key window from the mark on
//! (`queue_window`: etcd walks only the window), is listed at a later revision
//! than the watch started from; the watch's deletes of keys at or above the
//! mark are remembered (`deleted`) so that such a page does not bring them
//! back, and a key the page misses because it was put after the page's
//! revision comes from the watch. A new listing (after a compaction) starts a
//! new generation, and pages of an older one are dropped.

use std::collections::BTreeSet;

use super::keys::prefix_end;
use super::queue_window::{first_depth, next_depth};

/// Queue and per-flow queue keys, as last seen.
#[derive(Debug, Default)]
pub(crate) struct QueueView {
    keys: BTreeSet<Vec<u8>>,
    /// Listed roots not yet listed whole.
    partial: Vec<Partial>,
    /// Keys at or above a partial root's mark that the watch saw deleted.
    deleted: BTreeSet<Vec<u8>>,
    /// Bumped by every `start`.
    generation: u64,
}

/// A root listed only up to its mark.
#[derive(Debug)]
struct Partial {
    root: Vec<u8>,
    /// Every key of the root below it is known (exclusive).
    mark: Vec<u8>,
    /// The depth of its next page's key window (`queue_window`).
    depth: usize,
}

/// One page of a root's keys, as listed.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) root: Vec<u8>,
    pub(crate) keys: Vec<Vec<u8>>,
    /// The range's end (exclusive): every key below it from the page's start was listed,
    /// unless `more`.
    pub(crate) end: Vec<u8>,
    /// Cut by its limit: more keys may follow the last one listed before `end`.
    pub(crate) more: bool,
}

/// Where the next page of a partial root starts, and its window's depth.
#[derive(Debug, PartialEq)]
pub(crate) struct NextPage {
    pub(crate) root: Vec<u8>,
    pub(crate) from: Vec<u8>,
    pub(crate) depth: usize,
    /// The last key known below `from` (the keys' shape, for `queue_window::window_end`).
    pub(crate) template: Vec<u8>,
}

/// How far the view knows the keys under a prefix.
enum Known<'a> {
    /// Every key under it.
    All,
    /// Every key under it below this mark.
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
        if self.partial.iter().any(|p| key.starts_with(&p.root) && key >= p.mark.as_slice()) {
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
            if let Some(mark) = page.mark() {
                let first = page.keys.first().map_or(&[][..], |k| k.as_slice());
                let depth = first_depth(first, &mark).max(page.root.len() + 1);
                self.partial.push(Partial { root: page.root.clone(), mark, depth });
            }
            self.keys.extend(page.keys);
        }
        self.generation
    }

    /// Where the next page of a partial root starts: `None` once every root is
    /// listed whole, or when `generation` is over.
    pub(crate) fn next_page(&self, generation: u64) -> Option<NextPage> {
        if generation != self.generation {
            return None;
        }
        let p = self.partial.first()?;
        let template = self.keys.range(..p.mark.clone()).next_back().filter(|k| k.starts_with(&p.root));
        let template = template.cloned().unwrap_or_else(|| p.mark.clone());
        Some(NextPage { root: p.root.clone(), from: p.mark.clone(), depth: p.depth, template })
    }

    /// Adds a later page of `root` (of this `generation`, starting at its mark), moves the
    /// mark and sizes the next window from how many keys this one held.
    pub(crate) fn extend(&mut self, generation: u64, page: Listed, limit: usize) {
        if generation != self.generation {
            return;
        }
        let Some(at) = self.partial.iter().position(|p| p.root == page.root) else { return };
        let (count, mark) = (page.keys.len(), page.mark());
        let span = (page.keys.first().cloned().unwrap_or_default(), page.keys.last().cloned().unwrap_or_default());
        for key in page.keys {
            if !self.deleted.contains(&key) {
                self.keys.insert(key);
            }
        }
        let root_end = prefix_end_bytes(&page.root);
        // Listed whole: every tombstone under the root is below its end.
        let mark = mark.unwrap_or_else(|| root_end.clone());
        let lower = std::mem::replace(&mut self.partial[at].mark, mark.clone());
        let passed: Vec<Vec<u8>> = self.deleted.range(lower..mark.clone()).cloned().collect();
        for key in passed {
            self.deleted.remove(&key);
        }
        if mark >= root_end {
            self.partial.remove(at);
        } else {
            let p = &mut self.partial[at];
            p.depth = next_depth(p.depth, (count, &span.0, &span.1), page.more, limit, p.root.len());
        }
    }

    /// Whether every listed root has been listed whole.
    #[cfg(test)]
    fn complete(&self) -> bool {
        self.partial.is_empty()
    }

    fn known(&self, prefix: &[u8]) -> Known<'_> {
        let Some(p) = self.partial.iter().find(|p| prefix.starts_with(&p.root)) else {
            return Known::All;
        };
        if p.mark.as_slice() <= prefix {
            Known::Nothing
        } else if p.mark >= prefix_end_bytes(prefix) {
            Known::All
        } else {
            Known::UpTo(&p.mark)
        }
    }

    /// The known keys under `prefix` that bound a range, in order.
    fn bounding<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        let known = self.known(prefix);
        self.keys.range(prefix.to_vec()..).take_while(move |k| {
            k.starts_with(prefix)
                && match known {
                    Known::All => true,
                    Known::UpTo(mark) => k.as_slice() < mark,
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
    /// known, every key below the mark; `None` if the view cannot bound it
    /// (then range the whole prefix).
    pub(crate) fn bounded_end(&self, prefix: &[u8], n: usize) -> Option<Vec<u8>> {
        let index = n.checked_sub(1)?;
        match self.bounding(prefix).nth(index) {
            Some(nth) => {
                let mut end = nth.clone();
                end.push(0);
                Some(end)
            }
            None => match self.known(prefix) {
                Known::UpTo(mark) => Some(mark.to_vec()),
                Known::All | Known::Nothing => None,
            },
        }
    }
}

/// What the view can tell of the keys under a prefix (for `list_live`).
#[derive(Debug, PartialEq)]
pub(crate) enum Under {
    /// Every key under it (no more than the most asked for).
    All(Vec<Vec<u8>>),
    /// More keys than the most asked for.
    More,
    /// Not every key is known: its listing has not passed it yet.
    Unknown,
}

impl QueueView {
    /// The keys under `prefix`, if the view knows each of them and there are at most `max`.
    pub(crate) fn keys_under(&self, prefix: &[u8], max: usize) -> Under {
        let keys: Vec<Vec<u8>> = self.bounding(prefix).take(max.saturating_add(1)).cloned().collect();
        if keys.len() > max {
            return Under::More;
        }
        match self.known(prefix) {
            Known::All => Under::All(keys),
            Known::UpTo(_) | Known::Nothing => Under::Unknown,
        }
    }
}

impl Listed {
    /// Where the root's listing reaches after this page (exclusive); `None` if it reaches
    /// the root's end.
    fn mark(&self) -> Option<Vec<u8>> {
        if self.more {
            // Cut by the limit: known up to the last key listed.
            let mut mark = self.keys.last()?.clone();
            mark.push(0);
            Some(mark)
        } else {
            Some(self.end.clone()).filter(|end| *end < prefix_end_bytes(&self.root))
        }
    }
}

fn prefix_end_bytes(root: &[u8]) -> Vec<u8> {
    prefix_end(&String::from_utf8_lossy(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 2;

    /// A page to the root's end.
    fn page(root: &str, keys: &[&str], more: bool) -> Listed {
        window(root, keys, &prefix_end(root), more)
    }

    fn window(root: &str, keys: &[&str], end: &[u8], more: bool) -> Listed {
        let keys = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        Listed { root: root.into(), keys, end: end.to_vec(), more }
    }

    fn from(view: &QueueView, generation: u64) -> Option<(Vec<u8>, Vec<u8>)> {
        view.next_page(generation).map(|next| (next.root, next.from))
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
        assert_eq!(from(&view, generation), Some((b"q/".to_vec(), b"q/2\0".to_vec())));
        view.extend(generation, page("q/", &["q/3", "q/5"], true), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/3\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 3), Some(b"q/5\0".to_vec()), "q/5 is gone; up to the mark");
        view.extend(generation, page("q/", &["q/7", "q/9"], false), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 5), None, "listed whole, fewer known: whole prefix");
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/9\0".to_vec()));
        view.extend(generation, page("f/", &["f/b/1"], false), LIMIT);
        assert!(view.complete());
        assert_eq!(from(&view, generation), None);
        assert_eq!(view.bounded_end(b"f/b/", 1), Some(b"f/b/1\0".to_vec()));
    }

    #[test]
    fn pages_of_an_older_listing_are_dropped() {
        let mut view = QueueView::default();
        let old = view.start(vec![page("q/", &["q/1"], true)]);
        let new = view.start(vec![page("q/", &["q/4"], true)]);
        assert_eq!(view.next_page(old), None);
        view.extend(old, page("q/", &["q/2"], false), LIMIT);
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
        view.extend(generation, page("q/", &["q/3"], false), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/3\0".to_vec()));
    }
    #[test]
    fn a_window_listed_whole_moves_the_mark_to_its_end() {
        let mut view = QueueView::default();
        let generation = view.start(vec![page("q/", &["q/10", "q/11"], true)]);
        let next = view.next_page(generation).expect("a next page");
        assert_eq!(
            (next.from.as_slice(), next.depth),
            (&b"q/11\0"[..], 4),
            "one byte past the first page's shared prefix"
        );
        // Claimed meanwhile, in the window and past it.
        view.remove(b"q/13");
        view.remove(b"q/31");
        // The window [q/11\0, q/2) held one key (q/13 was gone by then): every key below q/2 is known.
        view.extend(generation, window("q/", &["q/12"], b"q/2", false), LIMIT);
        assert_eq!(from(&view, generation), Some((b"q/".to_vec(), b"q/2".to_vec())));
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/2".to_vec()), "fewer known: below the mark");
        // A put above the mark is known but does not bound a range yet.
        view.insert(b"q/25");
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/2".to_vec()));
        // The next window, listed before the watch's delete of q/31 reached it, does not bring it back.
        view.extend(generation, window("q/", &["q/25", "q/31"], b"q/4", false), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/25\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 5), Some(b"q/4".to_vec()));
        view.extend(generation, window("q/", &[], &prefix_end("q/"), false), LIMIT);
        assert!(view.complete());
        assert_eq!(view.bounded_end(b"q/", 5), None, "listed whole, fewer known: whole prefix");
    }

    #[test]
    fn keys_under_a_prefix_are_told_once_it_is_listed_whole() {
        let mut view = QueueView::default();
        let generation = view.start(vec![page("q/", &["q/1", "q/2"], true), page("f/", &["f/a/1"], false)]);
        let keys = |list: &[&str]| Under::All(list.iter().map(|k| k.as_bytes().to_vec()).collect());
        assert_eq!(view.keys_under(b"f/a/", 10), keys(&["f/a/1"]));
        assert_eq!(view.keys_under(b"f/b/", 10), keys(&[]));
        assert_eq!(view.keys_under(b"q/", 10), Under::Unknown, "listed up to its mark only");
        assert_eq!(view.keys_under(b"q/", 1), Under::More, "more known than asked for, listed whole or not");
        view.insert(b"q/9");
        view.remove(b"q/1");
        view.extend(generation, page("q/", &["q/5"], false), LIMIT);
        assert_eq!(view.keys_under(b"q/", 3), keys(&["q/2", "q/5", "q/9"]));
        assert_eq!(view.keys_under(b"q/", 2), Under::More);
    }

    #[test]
    fn a_window_cut_by_its_limit_marks_its_last_key() {
        let mut view = QueueView::default();
        let generation = view.start(vec![page("q/", &["q/10", "q/11"], true)]);
        view.extend(generation, window("q/", &["q/12", "q/13"], b"q/2", true), LIMIT);
        let next = view.next_page(generation).expect("a next page");
        assert_eq!((next.from.as_slice(), next.depth), (&b"q/13\0"[..], 5), "cut: a narrower window");
        assert_eq!(view.bounded_end(b"q/", 5), Some(b"q/13\0".to_vec()));
    }
}
