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

use serde_json::{Map, Number, Value};

/// The JSON type an input must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// One input's type and rules. Build with [`InputSpec::new`] (or [`InputSpec::integer`], ...)
/// and the chained setters; every field is public for code that maps a file onto it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The JSON type the value must have.
    pub ty: InputType,
    /// The value used when the store lacks the input; `None` makes the input required.
    pub default: Option<Value>,
    /// The values allowed; empty allows any value of the type.
    pub enum_values: Vec<Value>,
    /// The least number allowed (`integer`, `number`).
    pub minimum: Option<f64>,
    /// The greatest number allowed (`integer`, `number`).
    pub maximum: Option<f64>,
    /// The fewest items an `array` may have.
    pub min_items: Option<usize>,
    /// The spec every item of an `array` must meet.
    pub items: Option<Box<InputSpec>>,
    /// A regular expression a `string` must match.
    pub pattern: Option<Pattern>,
    /// What the input is for, for listings.
    pub description: String,
}

impl InputSpec {
    /// A required input of type `ty` with no other rule.
    pub fn new(ty: InputType) -> InputSpec {
        InputSpec {
            ty,
            default: None,
            enum_values: Vec::new(),
            minimum: None,
            maximum: None,
            min_items: None,
            items: None,
            pattern: None,
            description: String::new(),
        }
    }

    /// Any value.
    pub fn any() -> InputSpec {
        InputSpec::new(InputType::Any)
    }

    /// A string.
    pub fn string() -> InputSpec {
        InputSpec::new(InputType::String)
    }

    /// An integer.
    pub fn integer() -> InputSpec {
        InputSpec::new(InputType::Integer)
    }

    /// A number.
    pub fn number() -> InputSpec {
        InputSpec::new(InputType::Number)
    }

    /// A boolean.
    pub fn boolean() -> InputSpec {
        InputSpec::new(InputType::Boolean)
    }

    /// An object.
    pub fn object() -> InputSpec {
        InputSpec::new(InputType::Object)
    }

    /// An array whose every item meets `items`.
    pub fn array(items: InputSpec) -> InputSpec {
        InputSpec::new(InputType::Array).items(items)
    }

    /// Makes the input optional, `value` standing in when it is absent.
    #[must_use]
    pub fn default(mut self, value: Value) -> InputSpec {
        self.default = Some(value);
        self
    }

    /// Allows only these values.
    #[must_use]
    pub fn one_of<I: IntoIterator<Item = Value>>(mut self, values: I) -> InputSpec {
        self.enum_values = values.into_iter().collect();
        self
    }

    /// The least number allowed.
    #[must_use]
    pub fn minimum(mut self, least: f64) -> InputSpec {
        self.minimum = Some(least);
        self
    }

    /// The greatest number allowed.
    #[must_use]
    pub fn maximum(mut self, greatest: f64) -> InputSpec {
        self.maximum = Some(greatest);
        self
    }

    /// The fewest items allowed.
    #[must_use]
    pub fn min_items(mut self, fewest: usize) -> InputSpec {
        self.min_items = Some(fewest);
        self
    }

    /// The spec of every item.
    #[must_use]
    pub fn items(mut self, items: InputSpec) -> InputSpec {
        self.items = Some(Box::new(items));
        self
    }

    /// A pattern a string must match.
    #[must_use]
    pub fn pattern(mut self, pattern: Pattern) -> InputSpec {
        self.pattern = Some(pattern);
        self
    }

    /// What the input is for.
    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> InputSpec {
        self.description = text.into();
        self
    }

    /// Whether the store must hold the input (it has no default).
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// The type and its rules in a few words: `integer from 1 to 1000`,
    /// `array of string, at least 1 item`, `string, one of "a", "b"`.
    pub fn summary(&self) -> String {
        let mut text = self.ty.as_str().to_owned();
        if let Some(items) = &self.items {
            text = format!("{text} of {}", items.summary());
        }
        let bounds = match (self.minimum, self.maximum) {
            (Some(lo), Some(hi)) => Some(format!("from {lo} to {hi}")),
            (Some(lo), None) => Some(format!(">= {lo}")),
            (None, Some(hi)) => Some(format!("<= {hi}")),
            (None, None) => None,
        };
        text.extend(bounds.map(|b| format!(" {b}")));
        if let Some(n) = self.min_items {
            text.push_str(&format!(", at least {n} {}", plural(n, "item")));
        }
        if let Some(p) = &self.pattern {
            text.push_str(&format!(", matching {}", p.as_str()));
        }
        if !self.enum_values.is_empty() {
            text.push_str(&format!(", one of {}", list(&self.enum_values)));
        }
        text
    }

    /// Checks `value` (found at `path`) against this spec; returns it as stored
    /// (an integral float as an integer) or every problem found.
    pub fn check_value(&self, path: &str, value: &Value) -> Result<Value, Vec<InputProblem>> {
        let mut problems = Vec::new();
        let value = self.check_into(path, value, &mut problems);
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(problems)
        }
    }

    fn check_into(&self, path: &str, value: &Value, problems: &mut Vec<InputProblem>) -> Value {
        let Some(mut value) = self.ty.accept(value) else {
            problems.push(InputProblem::new(
                path,
                Rule::Type,
                format!("must be {}, got {}", self.ty.article(), shown(value)),
            ));
            return value.clone();
        };
        if !self.enum_values.is_empty() && !self.enum_values.contains(&value) {
            let message = format!("must be one of {}, got {}", list(&self.enum_values), shown(&value));
            problems.push(InputProblem::new(path, Rule::Enum, message));
        }
        if let Some(n) = value.as_f64().filter(|_| matches!(self.ty, InputType::Integer | InputType::Number)) {
            let article = self.ty.article();
            if let Some(lo) = self.minimum.filter(|lo| n < *lo) {
                problems.push(InputProblem::new(
                    path,
                    Rule::Minimum,
                    format!("must be {article} >= {lo}, got {value}"),
                ));
            }
            if let Some(hi) = self.maximum.filter(|hi| n > *hi) {
                problems.push(InputProblem::new(
                    path,
                    Rule::Maximum,
                    format!("must be {article} <= {hi}, got {value}"),
                ));
            }
        }
        if let (Some(pattern), Value::String(text)) = (&self.pattern, &value) {
            if !pattern.is_match(text) {
                let message = format!("must match the pattern {}, got {}", pattern.as_str(), shown(&value));
                problems.push(InputProblem::new(path, Rule::Pattern, message));
            }
        }
        if let Value::Array(items) = &mut value {
            if let Some(fewest) = self.min_items.filter(|n| items.len() < *n) {
                let message = format!("must have at least {fewest} {}, got {}", plural(fewest, "item"), items.len());
                problems.push(InputProblem::new(path, Rule::MinItems, message));
            }
            if let Some(spec) = &self.items {
                for (i, item) in items.iter_mut().enumerate() {
                    *item = spec.check_into(&format!("{path}[{i}]"), item, problems);
                }
            }
        }
        value
    }

    /// Reads a command-line text as this type: a `string` keeps the text as it is
    /// (`1.10`, `yes`, `007` stay text); `integer` and `number` read a JSON number;
    /// `boolean` reads only `true` or `false`; `object` and `array` read JSON;
    /// `any` reads JSON when the text is JSON, else keeps the text.
    /// Only the type is judged here; [`Schema::check`] judges the rest.
    pub fn coerce_text(&self, path: &str, text: &str) -> Result<Value, InputProblem> {
        let trimmed = text.trim();
        let parsed = match self.ty {
            InputType::String => return Ok(Value::String(text.to_owned())),
            InputType::Any => {
                return Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())));
            }
            InputType::Boolean => match trimmed {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            InputType::Integer | InputType::Number => {
                serde_json::from_str::<Number>(trimmed).ok().and_then(|n| self.ty.accept(&Value::Number(n)))
            }
            InputType::Object | InputType::Array => {
                serde_json::from_str::<Value>(trimmed).ok().filter(|v| self.ty.accept(v).is_some())
            }
        };
        parsed.ok_or_else(|| {
            let hint = match self.ty {
                InputType::Boolean => " (true or false)",
                InputType::Object | InputType::Array => " in JSON",
                _ => "",
            };
            InputProblem::new(path, Rule::Type, format!("must be {}{hint}, got the text {text:?}", self.ty.article()))
        })
    }

    /// Problems with the declaration itself: a rule the type cannot have, bounds
    /// the wrong way round, enum values or a default that break the spec.
    pub fn lint(&self, path: &str) -> Vec<InputProblem> {
        let mut problems = Vec::new();
        let mut wrong = |rule: &str, applies: bool| {
            if !applies {
                let message = format!("{rule} does not apply to type {}", self.ty);
                problems.push(InputProblem::new(path, Rule::Declaration, message));
            }
        };
        let numeric = matches!(self.ty, InputType::Integer | InputType::Number);
        wrong("minimum", self.minimum.is_none() || numeric);
        wrong("maximum", self.maximum.is_none() || numeric);
        wrong("min_items", self.min_items.is_none() || self.ty == InputType::Array);
        wrong("items", self.items.is_none() || self.ty == InputType::Array);
        wrong("pattern", self.pattern.is_none() || self.ty == InputType::String);
        if let (Some(lo), Some(hi)) = (self.minimum, self.maximum) {
            if lo > hi {
                problems.push(InputProblem::new(
                    path,
                    Rule::Declaration,
                    format!("minimum {lo} is above maximum {hi}"),
                ));
            }
        }
        let bare = InputSpec { enum_values: Vec::new(), default: None, ..self.clone() };
        for (i, value) in self.enum_values.iter().enumerate() {
            for p in bare.check_value(&format!("{path}.enum[{i}]"), value).err().unwrap_or_default() {
                problems.push(InputProblem { rule: Rule::Declaration, ..p });
            }
        }
        if let Some(default) = &self.default {
            for p in self.check_value(&format!("{path}.default"), default).err().unwrap_or_default() {
                problems.push(InputProblem { rule: Rule::Declaration, ..p });
            }
        }
        if let Some(items) = &self.items {
            problems.extend(items.lint(&format!("{path}.items")));
        }
        problems
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
