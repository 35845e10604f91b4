//! Problems found in a flow file, each saying where: `FILE:LINE:COLUMN: path: what`.
//!
//! A file with any problem is refused whole, with every problem listed, so the
//! checks collect into a `Sink` instead of stopping at the first.

use std::fmt;

use crate::limits::{capped, MAX_PROBLEMS, MAX_PROBLEM_BYTES};

/// A place in the file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One thing wrong with a flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub pos: Pos,
    /// The field, as `flow.linear[0].retry.times` (empty for the whole file).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem of one file: why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    /// The name the file was given for messages (usually its path).
    pub file: String,
    /// The problems, ordered by position.
    pub list: Vec<Problem>,
}

impl Problems {
    /// One line per problem: `FILE:LINE:COLUMN: path: message`.
    pub fn lines(&self) -> Vec<String> {
        self.list
            .iter()
            .map(|p| {
                let path = if p.path.is_empty() { String::new() } else { format!("{}: ", p.path) };
                format!("{}:{}:{}: {path}{}", self.file, p.pos.line, p.pos.column, p.message)
            })
            .collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Collects problems while a file is read.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) list: Vec<Problem>,
}

impl Sink {
    /// Records a problem at `pos` on field `path`.
    pub(crate) fn at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.list.push(Problem { pos, path: path.to_owned(), message: message.into() });
    }

    /// True if nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems as the error of `file`, ordered by position (stable for equal ones).
    /// At most [`MAX_PROBLEMS`] are kept, each cut to [`MAX_PROBLEM_BYTES`] (they go
    /// back to clients in a header that has a size limit); a last one counts the rest.
    pub(crate) fn into_problems(mut self, file: &str) -> Problems {
        self.list.sort_by_key(|p| p.pos);
        self.list.dedup();
        let more = self.list.len().saturating_sub(MAX_PROBLEMS);
        self.list.truncate(MAX_PROBLEMS);
        for problem in &mut self.list {
            problem.path = capped(std::mem::take(&mut problem.path), MAX_PROBLEM_BYTES / 4);
            problem.message = capped(std::mem::take(&mut problem.message), MAX_PROBLEM_BYTES);
        }
        if more > 0 {
            let pos = self.list.last().map(|p| p.pos).unwrap_or_default();
            let message = format!("and {more} more problem(s) not listed; fix these first");
            self.list.push(Problem { pos, path: String::new(), message });
        }
        Problems { file: capped(file.to_owned(), MAX_PROBLEM_BYTES / 4), list: self.list }
    }
}

/// `; did you mean "x"?` for the closest candidate, or nothing if none is close.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d > 0 && *d <= c.len().max(word.len()) / 3)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(did_you_mean("provide", ["provides", "requires"]), "; did you mean \"provides\"?");
        assert_eq!(did_you_mean("zzzz", ["provides", "requires"]), "");
    }
}
