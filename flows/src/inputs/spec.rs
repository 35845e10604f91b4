//! [`InputSpec`]: one input's type and rules, how a value is checked against
//! them, how a command-line text is read as the type, and what makes a
//! declaration unsound.

use serde_json::{Number, Value};

use super::{list, plural, shown, InputProblem, InputType, Pattern, Rule};

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

    pub(super) fn check_into(&self, path: &str, value: &Value, problems: &mut Vec<InputProblem>) -> Value {
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
