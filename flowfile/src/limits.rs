//! How large a flow file, its names and its problem reports may be.
//!
//! A flow file arrives from a client (`ApplyFlows`) and its problems go back in a
//! gRPC status message, which travels in a header (`grpc-message`): a client
//! refuses a header list over 16 KiB as RESOURCE_EXHAUSTED, hiding the real
//! answer. So a problem never repeats more than [`ECHO_CHARS`] characters of
//! what it quotes ([`shown`]), one problem's text is capped at
//! [`MAX_PROBLEM_BYTES`], and a report lists at most [`MAX_PROBLEMS`].

/// The largest flow file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The longest name of a flow, a task or an input, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The deepest nesting of YAML collections accepted (the reader and the builder
/// recurse on it, so a deeper one could overflow the stack).
pub const MAX_DEPTH: usize = 64;
/// The most YAML nodes a text may hold, every node an alias copies counted again:
/// a few aliases of aliases would otherwise copy billions ("billion laughs").
pub const MAX_NODES: usize = 200_000;
/// At most this many problems are listed for one file; a last line counts the rest.
pub const MAX_PROBLEMS: usize = 50;
/// The longest text of one problem (its path and message), in bytes.
pub const MAX_PROBLEM_BYTES: usize = 512;
/// How many characters of a quoted value an error message repeats.
pub const ECHO_CHARS: usize = 64;

/// `text` as an error message quotes it: `"text"` when short, else its first
/// [`ECHO_CHARS`] characters quoted and its size, as `"aaaa…"…(100000 bytes)`.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…({} bytes)", &text[..cut], text.len()),
    }
}

/// `text` cut to at most `limit` bytes (at a character boundary), with `…` when cut.
pub fn capped(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(shown("chain"), "\"chain\"");
        assert_eq!(shown(&"a".repeat(ECHO_CHARS)), format!("{:?}", "a".repeat(ECHO_CHARS)));
    }

    #[test]
    fn long_values_are_cut_and_sized() {
        let long = "é".repeat(100_000);
        let echoed = shown(&long);
        assert_eq!(echoed, format!("{:?}…(200000 bytes)", "é".repeat(ECHO_CHARS)));
    }

    #[test]
    fn capped_cuts_at_a_char_boundary() {
        assert_eq!(capped("short".into(), 10), "short");
        let cut = capped("é".repeat(10), 6);
        assert!(cut.len() <= 6 && cut.ends_with('…'), "{cut}");
    }
}
