//! Random and mutated flow files (issue 12, "Bad input and abuse"): the parser
//! never panics, and a refused file always says where (a line and column inside
//! the text) and what, in a bounded report.
//!
//! Mutations start from the example flow files, so most inputs get deep into the
//! checks instead of failing at the first byte. Cases are bounded to keep
//! `cargo test` fast.

use proptest::prelude::*;

use crate::limits::{MAX_PROBLEMS, MAX_PROBLEM_BYTES};
use crate::{FlowFile, Kinds};

const EXAMPLES: &[&str] = &[
    include_str!("../../../examples/flows/chain.yaml"),
    include_str!("../../../examples/flows/provision-cluster.yaml"),
    include_str!("../../../examples/flows/provision-servers.yaml"),
    include_str!("../../../examples/flows/bake-cake.yaml"),
    include_str!("../../../examples/flows/http-check.yaml"),
];

/// Pieces of flow-file syntax a mutation splices in: keys, references, YAML structure.
const PIECES: &[&str] = &[
    "name: ",
    "task: ",
    "kind: ",
    "linear:",
    "graph:",
    "unordered:",
    "each: {in: x, as: n}",
    "after: [",
    "]",
    "${",
    "}",
    "${secret.",
    "$.",
    "- ",
    "  ",
    "\n",
    ":",
    "{",
    "[",
    "'",
    "\"",
    "&a",
    "*a",
    "!!map",
    "---",
    "...",
    "?",
    "|",
    ">",
    "#",
    "\t",
    "retry: {times: ",
    "with: {",
    "requires: [",
    "provides: ",
    "when: ",
    "timeout: 1s",
    "inputs:",
    "type: integer",
    "default: ",
    "\u{feff}",
    "\u{0}",
    "é",
    "9999999999999999999999",
    "-1",
    "1e400",
    "null",
    "~",
];

/// One edit of a text: replace a byte range with random text, or with a syntax
/// piece, delete a range, or duplicate one.
#[derive(Debug, Clone)]
enum Edit {
    Replace { at: usize, len: usize, with: String },
    Piece { at: usize, piece: usize },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..8, ".{0,8}").prop_map(|(at, len, with)| Edit::Replace { at, len, with }),
        (any::<usize>(), 0..PIECES.len()).prop_map(|(at, piece)| Edit::Piece { at, piece }),
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0usize..80).prop_map(|(at, len)| Edit::Duplicate { at, len }),
    ]
}

/// The nearest character boundary at or before `at` (taken modulo the length + 1).
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, edit: &Edit) {
    let range = |at: usize, len: usize, text: &str| {
        let start = boundary(text, at);
        (start, boundary(text, start.saturating_add(len).min(text.len())).max(start))
    };
    match edit {
        Edit::Replace { at, len, with } => {
            let (start, end) = range(*at, *len, text);
            text.replace_range(start..end, with);
        }
        Edit::Piece { at, piece } => {
            let at = boundary(text, *at);
            text.insert_str(at, PIECES[*piece]);
        }
        Edit::Delete { at, len } => {
            let (start, end) = range(*at, *len, text);
            text.replace_range(start..end, "");
        }
        Edit::Duplicate { at, len } => {
            let (start, end) = range(*at, *len, text);
            let copy = text[start..end].to_owned();
            text.insert_str(end, &copy);
        }
    }
}

/// Every built-in kind, made once (the `http` kind reads the system's certificates).
fn kinds() -> &'static Kinds {
    static KINDS: std::sync::OnceLock<Kinds> = std::sync::OnceLock::new();
    KINDS.get_or_init(Kinds::all)
}

/// Parses `text` and checks what a refusal says.
fn check(text: &str) -> Result<(), TestCaseError> {
    // YAML breaks lines at `\r` as well as `\n`; a problem may sit just past the end.
    let lines = text.chars().filter(|c| matches!(c, '\n' | '\r')).count() + 2;
    match FlowFile::parse_with("fuzz.yaml", text, kinds()) {
        Ok(file) => {
            prop_assert!(!file.name().is_empty());
            // What an accepted file offers must not panic either.
            let _ = file.kinds_used();
            let _ = file.hash();
        }
        Err(problems) => {
            prop_assert!(!problems.list.is_empty(), "refused with no problem");
            prop_assert!(problems.list.len() <= MAX_PROBLEMS + 1, "{} problems", problems.list.len());
            for problem in &problems.list {
                prop_assert!(!problem.message.trim().is_empty(), "a problem without a message: {problem:?}");
                prop_assert!(problem.message.len() <= MAX_PROBLEM_BYTES, "{} bytes", problem.message.len());
                prop_assert!(problem.pos.line >= 1 && problem.pos.column >= 1, "no position: {problem:?}");
                prop_assert!(
                    problem.pos.line <= lines,
                    "line {} of a {lines}-line text: {problem:?}",
                    problem.pos.line
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic_and_refusals_say_where(
        example in 0..EXAMPLES.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut text = EXAMPLES[example].to_owned();
        for edit in &edits {
            apply(&mut text, edit);
        }
        check(&text)?;
    }

    #[test]
    fn random_text_never_panics(text in ".{0,400}") {
        check(&text)?;
    }

    #[test]
    fn random_yaml_shapes_never_panic(
        pieces in proptest::collection::vec((0..PIECES.len(), "[a-z0-9 ]{0,6}"), 0..60),
    ) {
        let text: String = pieces.iter().map(|(piece, word)| format!("{}{word}", PIECES[*piece])).collect();
        check(&text)?;
    }
}

#[test]
fn the_examples_themselves_parse() {
    for text in EXAMPLES {
        FlowFile::parse_with("example.yaml", text, kinds()).unwrap_or_else(|p| panic!("{p}"));
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for open in ["[", "{a: ", "- "] {
        // Under the file size limit, so the depth is what is refused.
        let text = format!("name: deep\nflow:\n  {}x", open.repeat(60_000));
        let refused = FlowFile::parse_with("deep.yaml", &text, kinds()).expect_err("refused");
        let message = refused.to_string();
        assert!(message.contains("deeper than 64 levels") || message.contains("recursion limit"), "{message}");
    }
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("name: bomb\nx0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        text.push_str(&format!("x{level}: &a{level} [{refs}]\n"));
    }
    let refused = FlowFile::parse_with("bomb.yaml", &text, kinds()).expect_err("refused");
    assert!(refused.to_string().contains("over 200000 nodes"), "{refused}");
    let refused = crate::document_to_json("bomb.yaml", &text).expect_err("refused");
    assert!(refused.to_string().contains("over 200000 nodes"), "{refused}");
}
