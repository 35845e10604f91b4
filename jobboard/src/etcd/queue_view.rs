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
//! compaction. So a claim reads two ranges in one request: every higher
//! priority than the head's (few entries, few tombstones), and the head's
//! priority from the first key the view knows (`claim::around_head`). What it
//! skips holds only tombstones and, within the watch's lag, a job of the
//! head's priority posted by a clock behind the head's id.
//!
//! A board starts with one page of each listed root (`m/queue/`, `m/fqueue/`)
//! and lists the rest in the background (`watch::fill_view`), so a long queue
//! does not delay the first claim. Until a root is listed whole, its *mark* is
//! where its listing has reached (exclusive): every key below it is known,
//! keys at or above it are known only if the watch saw them put, so only keys
//! below the mark bound a range. A later page, a key window from the mark on
//! (`queue_window`: etcd walks only the window), is listed at a later revision
//! than the watch started from; the watch's deletes of keys at or above the
//! mark while a page is in flight are remembered (`deleted`) so that the page
//! does not bring them back (a page asked after the watch saw a delete is at a
//! later revision, without that key), and a key the page misses because it was
//! put after the page's revision comes from the watch. A new listing (after a compaction) starts a
//! new generation, and pages of an older one are dropped.
//!
//! The listing runs only as far ahead of the claims as they need: each claim
//! says which prefix it ranges (`want`), and while fewer than `AHEAD` keys
//! under it are known below its root's mark, the root is *wanted* and its next
//! window is listed (`listing`); once enough are known again, the listing
//! waits for the next claim that finds them running low. A page costs etcd a
//! walk of its window, during which claims wait (`queue_window`): listed ahead
//! of need, a 100,000-job queue's pages came while claims were running and
//! made their tail; listed on need, there is one page per some hundreds of
//! claims, and a queue nobody claims from is not listed at all.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Notify;

use super::keys::prefix_end;
use super::queue_window::{first_depth, next_depth};

/// Keys known below a partial root's mark, under a prefix claims range, that the listing
/// keeps ahead of the claims: more than a claim's range (`claim::CANDIDATES`, 16 to 64 plus
/// the claimers in flight), and enough that the claims do not run past the mark while the
/// next window is listed (a page takes some milliseconds; a conductor claims about one job
/// a millisecond at most).
const AHEAD: usize = 250;

/// Queue and per-flow queue keys, as last seen.
#[derive(Debug)]
pub(crate) struct QueueView {
    keys: BTreeSet<Vec<u8>>,
    /// Listed roots not yet listed whole.
    partial: Vec<Partial>,
    /// Keys at or above a partial root's mark that the watch saw deleted while a page was
    /// in flight (`paging`): only that page could bring them back.
    deleted: BTreeSet<Vec<u8>>,
    /// A page has been handed out by `listing` and not yet added by `extend`.
    paging: bool,
    /// Bumped by every `start`.
    generation: u64,
    /// How many keys to keep known ahead of the claims (`AHEAD`; fewer in tests).
    ahead: usize,
    /// Wakes this generation's listing when a root becomes wanted (or the generation ends).
    wake: Arc<Notify>,
}

impl Default for QueueView {
    fn default() -> Self {
        QueueView {
            keys: BTreeSet::new(),
            partial: Vec::new(),
            deleted: BTreeSet::new(),
            paging: false,
            generation: 0,
            ahead: AHEAD,
            wake: Arc::default(),
        }
    }
}

/// A root listed only up to its mark.
#[derive(Debug)]
struct Partial {
    root: Vec<u8>,
    /// Every key of the root below it is known (exclusive).
    mark: Vec<u8>,
    /// The depth of its next page's key window (`queue_window`).
    depth: usize,
    /// Prefixes under the root that claims range and that have fewer than `ahead` keys
    /// known below the mark: while there are any, the root's next window is listed.
    wanted: BTreeSet<Vec<u8>>,
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

/// What the background listing of a generation does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Listing {
    /// List this window.
    Page(NextPage),
    /// Nothing wanted: wait for `QueueView::wakeup`.
    Idle,
    /// Every root is listed whole, or a newer listing took over.
    Over,
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
        if self.paging && self.partial.iter().any(|p| key.starts_with(&p.root) && key >= p.mark.as_slice()) {
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
        self.paging = false;
        // The older generation's listing wakes, finds itself over and ends.
        std::mem::take(&mut self.wake).notify_one();
        for page in pages {
            if let Some(mark) = page.mark() {
                let first = page.keys.first().map_or(&[][..], |k| k.as_slice());
                let depth = first_depth(first, &mark).max(page.root.len() + 1);
                self.partial.push(Partial { root: page.root.clone(), mark, depth, wanted: BTreeSet::new() });
            }
            self.keys.extend(page.keys);
        }
        self.generation
    }

    /// What wakes the current generation's listing.
    pub(crate) fn wakeup(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// A claim is about to range `prefix`: if its root is listed only up to a mark and fewer
    /// than `ahead` keys under it are known below that mark, the root is wanted (its listing
    /// wakes) until they are.
    pub(crate) fn want(&mut self, prefix: &[u8]) {
        let Some(at) = self.partial.iter().position(|p| prefix.starts_with(&p.root)) else { return };
        if self.partial[at].wanted.contains(prefix) || !self.short(prefix) {
            return;
        }
        self.partial[at].wanted.insert(prefix.to_vec());
        self.wake.notify_one();
    }

    /// Whether fewer than `ahead` keys under `prefix` are known below its root's mark (and
    /// the mark is not past the prefix).
    fn short(&self, prefix: &[u8]) -> bool {
        !matches!(self.known(prefix), Known::All) && self.bounding(prefix).nth(self.ahead.saturating_sub(1)).is_none()
    }

    /// The next window of the first wanted root; from now until its `extend`, the watch's
    /// deletes past the mark are remembered.
    pub(crate) fn listing(&mut self, generation: u64) -> Listing {
        if generation != self.generation || self.partial.is_empty() {
            return Listing::Over;
        }
        let Some(p) = self.partial.iter().find(|p| !p.wanted.is_empty()) else { return Listing::Idle };
        let template = self.keys.range(..p.mark.clone()).next_back().filter(|k| k.starts_with(&p.root));
        let template = template.cloned().unwrap_or_else(|| p.mark.clone());
        let next = NextPage { root: p.root.clone(), from: p.mark.clone(), depth: p.depth, template };
        self.paging = true;
        Listing::Page(next)
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
        // Listed whole: the mark is the root's end.
        let mark = mark.unwrap_or_else(|| root_end.clone());
        self.partial[at].mark = mark.clone();
        // The next page is asked after every delete the watch has passed on so far.
        self.deleted.clear();
        self.paging = false;
        if mark >= root_end {
            self.partial.remove(at);
        } else {
            let p = &mut self.partial[at];
            p.depth = next_depth(p.depth, (count, &span.0, &span.1), page.more, limit, p.root.len());
            let wanted = std::mem::take(&mut p.wanted);
            let still: BTreeSet<Vec<u8>> = wanted.into_iter().filter(|prefix| self.short(prefix)).collect();
            self.partial[at].wanted = still;
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

    /// Whether every key under `prefix` is known (its root was listed whole).
    pub(crate) fn knows_whole(&self, prefix: &[u8]) -> bool {
        matches!(self.known(prefix), Known::All)
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
    use futures::FutureExt;

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

    /// The next window's root and start, if one is to be listed.
    fn from(view: &mut QueueView, generation: u64) -> Option<(Vec<u8>, Vec<u8>)> {
        match view.listing(generation) {
            Listing::Page(next) => Some((next.root, next.from)),
            Listing::Idle | Listing::Over => None,
        }
    }

    fn next(view: &mut QueueView, generation: u64) -> NextPage {
        match view.listing(generation) {
            Listing::Page(next) => next,
            other => panic!("expected a page to list, got {other:?}"),
        }
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
        view.want(b"q/");
        assert_eq!(from(&mut view, generation), Some((b"q/".to_vec(), b"q/2\0".to_vec())));
        // Claimed while that page is in flight: the page must not bring it back.
        view.remove(b"q/5");
        view.remove(b"q/1");
        view.extend(generation, page("q/", &["q/3", "q/5"], true), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 2), Some(b"q/3\0".to_vec()));
        assert_eq!(view.bounded_end(b"q/", 3), Some(b"q/5\0".to_vec()), "q/5 is gone; up to the mark");
        view.extend(generation, page("q/", &["q/7", "q/9"], false), LIMIT);
        assert_eq!(view.bounded_end(b"q/", 5), None, "listed whole, fewer known: whole prefix");
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/9\0".to_vec()));
        view.extend(generation, page("f/", &["f/b/1"], false), LIMIT);
        assert!(view.complete());
        assert_eq!(from(&mut view, generation), None);
        assert_eq!(view.bounded_end(b"f/b/", 1), Some(b"f/b/1\0".to_vec()));
    }

    #[test]
    fn pages_of_an_older_listing_are_dropped() {
        let mut view = QueueView::default();
        let old = view.start(vec![page("q/", &["q/1"], true)]);
        let new = view.start(vec![page("q/", &["q/4"], true)]);
        assert_eq!(view.listing(old), Listing::Over);
        view.extend(old, page("q/", &["q/2"], false), LIMIT);
        assert_eq!(view.first(b"q/"), Some(b"q/4".to_vec()));
        view.want(b"q/");
        assert!(from(&mut view, new).is_some());
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
        view.want(b"q/");
        let next = next(&mut view, generation);
        assert_eq!(
            (next.from.as_slice(), next.depth),
            (&b"q/11\0"[..], 4),
            "one byte past the first page's shared prefix"
        );
        // Claimed while it is in flight.
        view.remove(b"q/13");
        // The window [q/11\0, q/2) held one key (q/13 was gone by then): every key below q/2 is known.
        view.extend(generation, window("q/", &["q/12"], b"q/2", false), LIMIT);
        // Deleted while no page is in flight: the next page, asked later, cannot hold it.
        view.remove(b"q/37");
        assert!(view.deleted.is_empty(), "nothing to remember");
        assert_eq!(from(&mut view, generation), Some((b"q/".to_vec(), b"q/2".to_vec())));
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/2".to_vec()), "fewer known: below the mark");
        // A put above the mark is known but does not bound a range yet.
        view.insert(b"q/25");
        assert_eq!(view.bounded_end(b"q/", 4), Some(b"q/2".to_vec()));
        // The next window, listed before the watch's delete of q/31 reached it, does not bring it back.
        view.remove(b"q/31");
        view.extend(generation, window("q/", &["q/25", "q/31"], b"q/4", false), LIMIT);
        assert!(view.deleted.is_empty(), "forgotten once the page is in");
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
        view.want(b"q/");
        view.extend(generation, window("q/", &["q/12", "q/13"], b"q/2", true), LIMIT);
        let next = next(&mut view, generation);
        assert_eq!((next.from.as_slice(), next.depth), (&b"q/13\0"[..], 5), "cut: a narrower window");
        assert_eq!(view.bounded_end(b"q/", 5), Some(b"q/13\0".to_vec()));
    }

    #[test]
    fn the_listing_waits_until_claims_near_its_mark() {
        let mut view = QueueView { ahead: 3, ..QueueView::default() };
        let generation = view.start(vec![page("q/", &["q/10", "q/11", "q/12", "q/13", "q/14", "q/15"], true)]);
        let wakeup = view.wakeup();
        view.want(b"q/");
        assert_eq!(view.listing(generation), Listing::Idle, "six known ahead of the claims");
        assert!(wakeup.notified().now_or_never().is_none());
        // Claimed: two left below the mark.
        for key in ["q/10", "q/11", "q/12", "q/13"] {
            view.remove(key.as_bytes());
        }
        assert_eq!(view.listing(generation), Listing::Idle, "wanted only once a claim finds them few");
        view.want(b"q/");
        assert!(wakeup.notified().now_or_never().is_some(), "the listing is woken");
        assert_eq!(from(&mut view, generation), Some((b"q/".to_vec(), b"q/15\0".to_vec())));
        // One window that brings too few: still wanted; the next brings enough.
        view.extend(generation, window("q/", &[], b"q/16", false), LIMIT);
        assert_eq!(from(&mut view, generation), Some((b"q/".to_vec(), b"q/16".to_vec())));
        view.extend(generation, window("q/", &["q/16", "q/17"], b"q/2", false), LIMIT);
        assert_eq!(view.listing(generation), Listing::Idle, "four known ahead again");
        // A prefix past the mark (a flow's queue, say) is wanted until listed past its end.
        view.want(b"q/3");
        assert_eq!(from(&mut view, generation), Some((b"q/".to_vec(), b"q/2".to_vec())));
        view.extend(generation, window("q/", &["q/31"], b"q/4", false), LIMIT);
        assert_eq!(view.bounded_end(b"q/3", 2), None, "every key of q/3 known: whole prefix");
        assert_eq!(view.listing(generation), Listing::Idle);
        view.extend(generation, window("q/", &[], &prefix_end("q/"), false), LIMIT);
        assert_eq!(view.listing(generation), Listing::Over);
    }

    #[test]
    fn a_new_listing_wakes_the_older_one_to_end() {
        let mut view = QueueView::default();
        let old = view.start(vec![page("q/", &["q/1"], true)]);
        let wakeup = view.wakeup();
        let new = view.start(vec![page("q/", &["q/1"], true)]);
        assert!(wakeup.notified().now_or_never().is_some());
        assert_eq!(view.listing(old), Listing::Over);
        assert_eq!(view.listing(new), Listing::Idle);
        view.want(b"q/");
        assert!(view.wakeup().notified().now_or_never().is_some());
    }
}
