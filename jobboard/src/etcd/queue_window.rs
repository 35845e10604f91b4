//! `window_end` and `next_depth`: how far one page of the background queue listing ranges.
//!
//! etcd 3.4 collects every key of a range from its in-memory index, under the index's read
//! lock (which holds off every write meanwhile, claims included), before it applies the
//! limit. A page asked as `[mark, end of root)` with a limit of 5,000 therefore walks every
//! key not yet listed: 100,000 queued keys cost twenty such walks, on average half the queue
//! each, and each stalled etcd's writes for as long as it took. So each page ranges a key
//! *window* `[from, end)`, where `end` is `from` cut to `depth` bytes and incremented (the
//! next prefix at that depth): a deeper window is a narrower one, and etcd walks only the
//! keys inside it. The depth follows the keys' density, which the listing cannot know in
//! advance: a window cut by the limit held more than a page (and was walked whole), so the
//! next is one byte deeper; one that held less than a sixteenth of a page (or nothing: the
//! byte after `9` is `:`, not `a`) is followed by one a byte wider. A step of one byte
//! changes a window by the fan-out of that byte (10 for the priority's digits, 16 for the
//! id's hex), so a widened window holds about a page at most, and under keys of even
//! density the depth settles instead of swinging between too wide and too narrow.

/// The depth of a first window after a page of `first..=last`: one byte past the prefix
/// those keys share, so the window is about as wide as the keys the page held.
pub(crate) fn first_depth(first: &[u8], last: &[u8]) -> usize {
    first.iter().zip(last).take_while(|(a, b)| a == b).count() + 1
}

/// The end (exclusive) of the window that starts at `from`, no further than `root_end`.
/// `template` is a key listed before (the keys' shape): a `from` shorter than `depth` (the
/// end of the last window) is first lengthened with its separators and `0` digits, so that
/// the window is its first child at that depth rather than every key after it.
pub(crate) fn window_end(from: &[u8], depth: usize, root_end: &[u8], template: &[u8]) -> Vec<u8> {
    let mut cut = from[..depth.min(from.len())].to_vec();
    for &byte in template.iter().take(depth).skip(cut.len()) {
        cut.push(if byte.is_ascii_hexdigit() { b'0' } else { byte });
    }
    let end = increment(&cut);
    if end.as_slice() <= from || end.as_slice() > root_end {
        root_end.to_vec()
    } else {
        end
    }
}

/// The next window's depth after one that held `keys` keys from `first` to `last` (`cut`:
/// more than `limit`), never shallower than `root_len + 1` (one byte past the listed root).
/// Cut: at least one byte past what those keys share, so that one window too wide (after
/// a sparse stretch) is not followed by several.
pub(crate) fn next_depth(depth: usize, keys: (usize, &[u8], &[u8]), cut: bool, limit: usize, root_len: usize) -> usize {
    let (count, first, last) = keys;
    let next = if cut {
        (depth + 1).max(first_depth(first, last))
    } else if count < (limit / 16).max(1) {
        depth.saturating_sub(1)
    } else {
        depth
    };
    next.max(root_len + 1)
}

/// The least key after every key that starts with `prefix`, stepping hex digits and
/// priority digits without the gaps between them (`9` to `a`; past `f` or a separator,
/// the byte before), so that a window past a `9` or an `f` is not an empty one.
fn increment(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        match last {
            b'9' => {
                end.push(b'a');
                return end;
            }
            b'0'..=b'8' | b'a'..=b'e' => {
                end.push(last + 1);
                return end;
            }
            // `f`, and the separators every key has at that place (`-`, `/`): carry.
            _ if last == b'f' || last == b'-' || last == b'/' => {}
            _ if last < 0xff => {
                end.push(last + 1);
                return end;
            }
            _ => {}
        }
    }
    vec![0xff]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_next_prefix_at_its_depth() {
        let root_end = b"q0".to_vec();
        let shape = b"q/0190-ab";
        assert_eq!(window_end(b"q/0190-ab\0", 6, &root_end, shape), b"q/0191".to_vec());
        assert_eq!(window_end(b"q/0191", 6, &root_end, shape), b"q/0192".to_vec());
        assert_eq!(window_end(b"q/0191", 3, &root_end, shape), b"q/1".to_vec());
        // No gap after 9 or f: the next digit, or the one before.
        assert_eq!(window_end(b"q/0199-ab", 6, &root_end, shape), b"q/019a".to_vec());
        assert_eq!(window_end(b"q/019f-ab", 6, &root_end, shape), b"q/01a".to_vec());
        // A short `from` (the end of a window) is lengthened the template's way: its first child.
        assert_eq!(window_end(b"q/01a", 6, &root_end, shape), b"q/01a1".to_vec());
        assert_eq!(window_end(b"q/01a0", 8, &root_end, shape), b"q/01a0-1".to_vec());
        // Shallower than the root: the root's end.
        assert_eq!(window_end(b"q/0191", 1, &root_end, shape), root_end);
    }

    #[test]
    fn the_depth_follows_the_density() {
        assert_eq!(first_depth(b"q/0190ab", b"q/0190ff"), 7);
        let keys = |count| (count, &b"q/01900"[..], &b"q/01907"[..]);
        assert_eq!(next_depth(7, keys(1000), true, 1000, 2), 8, "cut by the limit: narrower");
        assert_eq!(next_depth(4, keys(1000), true, 1000, 2), 7, "cut: past what the page's keys share");
        assert_eq!(next_depth(7, keys(600), false, 1000, 2), 7);
        assert_eq!(next_depth(7, keys(100), false, 1000, 2), 7, "a wider one could hold 1,600");
        assert_eq!(next_depth(7, keys(50), false, 1000, 2), 6, "sparse: wider");
        assert_eq!(next_depth(3, keys(0), false, 1000, 2), 3, "never the whole root");
    }
}
