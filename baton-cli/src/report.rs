//! Errors for people: one line on stderr, `baton: <what failed>: <cause in words>`.
//!
//! An error chain names what failed first (the CLI's context) and the deepest cause last;
//! the links between are wrappers (`transport error`, `error trying to connect`) that a
//! person does not need, and library errors often repeat their source in their own text.
//! So a person sees the first and the last link; `--verbose` (or `RUST_LOG=debug`) shows
//! every link. Either way a link whose text is already on the line is left out.

use std::error::Error;

/// The line to print for `error`: `baton: ...`, never more than one line.
pub fn render(error: &anyhow::Error, verbose: bool) -> String {
    let links: Vec<String> = error.chain().map(words).collect();
    let line = match links.as_slice() {
        [first, .., last] if !verbose => chain_line(&[first.clone(), last.clone()]),
        all => chain_line(all),
    };
    format!("baton: {line}")
}

/// Messages joined with `: `, each left out when the line already holds its text.
pub fn chain_line(messages: &[String]) -> String {
    distinct(messages).join(": ")
}

/// The messages on one line each, without those another kept message already contains
/// (case aside: `connection refused` is in `Connection refused (os error 111)`).
fn distinct(messages: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for message in messages {
        let message = one_line(message);
        let lower = message.to_lowercase();
        if message.is_empty() || kept.iter().any(|k| k.to_lowercase().contains(&lower)) {
            continue;
        }
        kept.push(message);
    }
    kept
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One link of a chain in words: an OS error without its number.
fn words(error: &(dyn Error + 'static)) -> String {
    match error.downcast_ref::<std::io::Error>() {
        Some(io) => io_words(io),
        None => error.to_string(),
    }
}

/// `Connection refused (os error 111)` as `connection refused`.
pub fn io_words(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use anyhow::{anyhow, Context};

    use super::*;

    /// An error whose text repeats its source's, as hyper's and tonic's do.
    #[derive(Debug, thiserror::Error)]
    #[error("tcp connect error: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Wrapper(#[source] Repeats);

    fn refused() -> anyhow::Error {
        let io = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        anyhow!(Wrapper(Repeats(io))).context("cannot list jobs")
    }

    #[test]
    fn a_person_sees_what_failed_and_the_cause_on_one_line() {
        assert_eq!(render(&refused(), false), "baton: cannot list jobs: connection refused");
    }

    #[test]
    fn verbose_shows_every_link_once() {
        let line = render(&refused(), true);
        assert_eq!(
            line,
            "baton: cannot list jobs: transport error: tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(line.matches("onnection refused").count(), 1, "{line}");
    }

    #[test]
    fn one_link_is_printed_as_it_is() {
        assert_eq!(render(&anyhow!("no endpoint given"), false), "baton: no endpoint given");
    }

    #[test]
    fn messages_with_newlines_stay_on_one_line() {
        let error = Err::<(), _>(anyhow!("line one\nline two")).context("store file s.yaml").unwrap_err();
        let line = render(&error, false);
        assert_eq!(line, "baton: store file s.yaml: line one line two");
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn a_repeated_message_is_printed_once() {
        let error = anyhow!("job 7 not found").context("job 7 not found").context("cannot get job 7");
        assert_eq!(render(&error, true), "baton: cannot get job 7: job 7 not found");
        assert_eq!(chain_line(&["a: b".into(), "b".into(), "c".into()]), "a: b: c");
    }

    #[test]
    fn os_errors_lose_their_numbers() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_words(&io), "no such file or directory");
        assert_eq!(io_words(&std::io::Error::other("Custom")), "custom");
    }
}
