//! Typed job inputs: a [`Schema`] of named [`InputSpec`]s, checked when a job is posted.
//!
//! A flow factory declares its inputs here (the Rust builder, or a flow file's
//! `inputs:` block mapped onto these types); the API checks a job's store with
//! [`Schema::check`] before anything is written, and gets the store back with
//! every default filled in, which is what the job keeps. Every problem is
//! reported at once, each naming the field (`steps`, `nodes[2]`) and the rule.
//!
//! Choices worth knowing:
//! - An input with no default is required; one with a default is optional.
//! - Store keys the schema does not declare are allowed and kept: a flow may read
//!   extra keys through the engine's lookup (a task's `requires` met by the store),
//!   and refusing them would make every such flow declare them twice.
//! - `null` is a value: it meets only an `any` input, never a typed one, and a
//!   default is filled in only for an absent key.
//! - `integer` accepts a JSON number with no fraction (`3` or `3.0`); the checked
//!   store holds it as an integer. Bounds compare as `f64`.
//! - `pattern` is the `regex` crate's syntax (linear time, no backtracking) and,
//!   as in JSON Schema, matches anywhere in the text unless anchored (`^...$`).
//! - [`InputType::Any`] is for Rust factories that declare only a name
//!   ([`crate::FlowFactory::requires`]); it accepts every value.

use std::fmt;

use serde_json::{Map, Value};

mod spec;

pub use spec::InputSpec;

/// The JSON type an input must have (serialized as its name: `integer`, `array`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Any JSON value, `null` included (an undeclared type).
    Any,
    /// A JSON string.
    String,
    /// A JSON number with no fraction.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
}

impl InputType {
    /// Every type, in the order of [`InputType::NAMES`].
    pub const ALL: [InputType; 7] = [
        InputType::Any,
        InputType::String,
        InputType::Integer,
        InputType::Number,
        InputType::Boolean,
        InputType::Object,
        InputType::Array,
    ];
    /// Every type's name, as written in a flow file and on the wire.
    pub const NAMES: [&'static str; 7] = ["any", "string", "integer", "number", "boolean", "object", "array"];

    /// The type's name: `integer`, `array`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Any => "any",
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Object => "object",
            InputType::Array => "array",
        }
    }

    /// The type named `name` (exactly as in [`InputType::NAMES`]).
    pub fn from_name(name: &str) -> Option<InputType> {
        InputType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// `an integer`, `a string`: the type in a sentence.
    fn article(self) -> &'static str {
        match self {
            InputType::Any => "any value",
            InputType::String => "a string",
            InputType::Integer => "an integer",
            InputType::Number => "a number",
            InputType::Boolean => "a boolean",
            InputType::Object => "an object",
            InputType::Array => "an array",
        }
    }

    /// The value as this type, if it is one (an integral float becomes an integer).
    fn accept(self, value: &Value) -> Option<Value> {
        match (self, value) {
            (InputType::Any, v) => Some(v.clone()),
            (InputType::String, Value::String(_))
            | (InputType::Number, Value::Number(_))
            | (InputType::Boolean, Value::Bool(_))
            | (InputType::Object, Value::Object(_))
            | (InputType::Array, Value::Array(_)) => Some(value.clone()),
            (InputType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(value.clone()),
            (InputType::Integer, Value::Number(n)) => {
                let f = n.as_f64()?;
                // `i64::MAX as f64` is 2^63, the first float that no longer fits an i64.
                (f.fract() == 0.0 && f.abs() < i64::MAX as f64).then(|| Value::from(f as i64))
            }
            _ => None,
        }
    }
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled `pattern` rule: a regular expression a string input must match.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

/// A `pattern` that is not a valid regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {message}")]
pub struct PatternError {
    /// The text given.
    pub pattern: String,
    /// The regex compiler's reason.
    pub message: String,
}

impl Pattern {
    /// Compiles `text` (the `regex` crate's syntax).
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        regex::Regex::new(text)
            .map(Pattern)
            .map_err(|e| PatternError { pattern: text.to_owned(), message: e.to_string() })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `text` matches (anywhere, unless the pattern is anchored).
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

/// The rule an [`InputProblem`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A required input (one with no default) is absent.
    Required,
    /// The value is not of the declared type (or, from text, cannot be read as it).
    Type,
    /// The value is not one of the `enum` values.
    Enum,
    /// The number is below `minimum`.
    Minimum,
    /// The number is above `maximum`.
    Maximum,
    /// The array has fewer than `min_items` items.
    MinItems,
    /// The string does not match `pattern`.
    Pattern,
    /// The declaration itself is wrong (see [`Schema::lint`]).
    Declaration,
}

/// One thing wrong with a store: where, which rule, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputProblem {
    /// The field: `steps`, `nodes[2]`, `matrix[0][1]`.
    pub path: String,
    /// The rule broken.
    pub rule: Rule,
    /// The rule and the value found: `must be an integer >= 1, got -1`.
    pub message: String,
}

impl InputProblem {
    fn new(path: &str, rule: Rule, message: impl Into<String>) -> InputProblem {
        InputProblem { path: path.to_owned(), rule, message: message.into() }
    }
}

/// A flow's inputs, by name, in declaration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    inputs: Vec<(String, InputSpec)>,
}

impl Schema {
    /// No inputs: every store passes.
    pub fn new() -> Schema {
        Schema::default()
    }

    /// Declares (or redeclares, keeping its place) the input `name`.
    pub fn insert(&mut self, name: impl Into<String>, spec: InputSpec) {
        let name = name.into();
        match self.inputs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = spec,
            None => self.inputs.push((name, spec)),
        }
    }

    /// [`Schema::insert`], chained.
    #[must_use]
    pub fn input(mut self, name: impl Into<String>, spec: InputSpec) -> Schema {
        self.insert(name, spec);
        self
    }

    /// The spec of `name`.
    pub fn get(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, spec)| spec)
    }

    /// Every input, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &InputSpec)> + '_ {
        self.inputs.iter().map(|(name, spec)| (name.as_str(), spec))
    }

    /// The names of the required inputs (those with no default), in order.
    pub fn required(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().filter(|(_, spec)| spec.is_required()).map(|(name, _)| name)
    }

    /// How many inputs are declared.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether no input is declared.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Checks `store`: returns it with every absent default filled in (and
    /// integral floats of integer inputs as integers), or every problem, in
    /// declaration order. Undeclared keys pass through untouched.
    pub fn check(&self, store: &Map<String, Value>) -> Result<Map<String, Value>, Vec<InputProblem>> {
        let mut completed = store.clone();
        let mut problems = Vec::new();
        for (name, spec) in &self.inputs {
            match (store.get(name), &spec.default) {
                (Some(value), _) => {
                    let checked = spec.check_into(name, value, &mut problems);
                    completed.insert(name.clone(), checked);
                }
                (None, Some(default)) => {
                    completed.insert(name.clone(), default.clone());
                }
                (None, None) => {
                    let message = format!("is required ({}) and was not given", spec.summary());
                    problems.push(InputProblem::new(name, Rule::Required, message));
                }
            }
        }
        if problems.is_empty() {
            Ok(completed)
        } else {
            Err(problems)
        }
    }

    /// Reads a `--store NAME=TEXT` text as the declared type of `name` (see
    /// [`InputSpec::coerce_text`]); an undeclared name is read as `any`.
    pub fn coerce_text(&self, name: &str, text: &str) -> Result<Value, InputProblem> {
        match self.get(name) {
            Some(spec) => spec.coerce_text(name, text),
            None => InputSpec::any().coerce_text(name, text),
        }
    }

    /// Problems with the declarations (see [`InputSpec::lint`]); empty when sound.
    pub fn lint(&self) -> Vec<InputProblem> {
        self.iter().flat_map(|(name, spec)| spec.lint(name)).collect()
    }
}

/// Problems joined for one line: `steps: must be ...; step_ms: ...`.
pub fn join_problems(problems: &[InputProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

fn list(values: &[Value]) -> String {
    values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A value for a message: compact JSON, cut short if long.
fn shown(value: &Value) -> String {
    const MOST: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MOST {
        text
    } else {
        format!("{}...", text.chars().take(MOST).collect::<String>())
    }
}
