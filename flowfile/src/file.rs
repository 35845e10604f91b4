//! `FlowFile`: a parsed, checked flow file, its canonical form and hash, and its factory.

use std::collections::BTreeSet;
use std::sync::Arc;

use flows::{CompileProblem, Flow, FlowFactory};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::build::Builder;
use crate::inputs::{InputType, Inputs};
use crate::kinds::Kinds;
use crate::model::{At, Element, FlowDef, PatternDef};
use crate::prepared::Prepared;
use crate::problems::{Pos, Problems, Sink};
use crate::{parse, yaml};

/// A flow file that passed every check.
#[derive(Debug, Clone)]
pub struct FlowFile {
    def: FlowDef,
    canonical: String,
    hash: String,
}

impl FlowFile {
    /// Parses and checks `text` against every built-in kind; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<FlowFile, Problems> {
        Self::parse_with(file, text, &Kinds::all())
    }

    /// Like [`FlowFile::parse`], checking kinds against `kinds` (a conductor's own set).
    /// A text over [`crate::limits::MAX_FILE_BYTES`] is refused unread.
    pub fn parse_with(file: &str, text: &str, kinds: &Kinds) -> Result<FlowFile, Problems> {
        if text.len() > crate::limits::MAX_FILE_BYTES {
            let mut sink = Sink::default();
            let limit = crate::limits::MAX_FILE_BYTES;
            sink.at(
                Pos { line: 1, column: 1 },
                "",
                format!("the file is {} bytes, over the limit of {limit}", text.len()),
            );
            return Err(sink.into_problems(file));
        }
        let root = yaml::load(text).map_err(|(pos, message)| {
            let mut sink = Sink::default();
            sink.at(pos, "", message);
            sink.into_problems(file)
        })?;
        let (def, mut sink) = parse::file(&root, kinds);
        let def = match def {
            Some(def) if sink.is_empty() => def,
            _ => return Err(sink.into_problems(file)),
        };
        compile_check(&def, kinds, &mut sink);
        if !sink.is_empty() {
            return Err(sink.into_problems(file));
        }
        let canonical = canonical_json(&def);
        let hash = Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Ok(FlowFile { def, canonical, hash })
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Its description.
    pub fn description(&self) -> &str {
        &self.def.description
    }

    /// The declared inputs.
    pub fn inputs(&self) -> &Inputs {
        &self.def.inputs
    }

    /// The default deadline of its jobs (`deadline:`), counted from the post.
    pub fn deadline(&self) -> Option<std::time::Duration> {
        self.def.deadline
    }

    /// Every kind the flow uses anywhere, reverts included: a conductor that lacks
    /// one of them must not claim the flow's jobs (see [`Kinds::missing`]).
    pub fn kinds_used(&self) -> BTreeSet<String> {
        fn walk(p: &PatternDef, out: &mut BTreeSet<String>) {
            for c in &p.children {
                match c {
                    Element::Task(t) => {
                        out.insert(t.kind.clone());
                        out.extend(t.revert.iter().map(|r| r.kind.clone()));
                    }
                    Element::Pattern(inner) => walk(inner, out),
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.def.flow, &mut out);
        out
    }

    /// The canonical JSON form: the parsed model with sorted keys, no comments,
    /// no layout; two files meaning the same have the same form.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The SHA-256 of the canonical form, in hex: the identity of a version.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Builds the flow for one job's store with `kinds` (fails if the file uses a kind not in it).
    pub fn build(&self, store: &Map<String, Value>, kinds: &Kinds) -> Result<Flow, String> {
        Builder::new(&self.def, store, kinds).flow()
    }

    /// A factory building the flow per job store, with the file's typed inputs
    /// (checked at post; inputs without a default are required). The tasks' engine
    /// objects are built once, here; a job's build wires them for its store.
    pub fn factory(&self, kinds: Arc<Kinds>) -> FlowFactory {
        let prepared = Prepared::new(self.def.clone(), &kinds);
        let factory =
            FlowFactory::new(self.def.name.clone(), move |store| Builder::prepared(&prepared, store, &kinds).flow())
                .describe(self.def.description.clone());
        crate::inputs::schema(&self.def.inputs).iter().fold(factory, |f, (name, spec)| f.input(name, spec.clone()))
    }
}

/// Sorted-keys compact JSON of the model (independent of serde_json's map order feature).
fn canonical_json(def: &FlowDef) -> String {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut pairs: Vec<(String, Value)> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(pairs.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let value = serde_json::to_value(def).unwrap_or(Value::Null);
    sorted(value).to_string()
}

/// A store standing for any job's: defaults, else one item for an `each` to copy.
fn sample_store(inputs: &Inputs) -> Map<String, Value> {
    inputs
        .iter()
        .map(|(name, spec)| {
            let value = spec.default.clone().unwrap_or(match spec.kind {
                InputType::Array => Value::Array(vec![Value::Null]),
                InputType::Integer | InputType::Number => Value::from(1),
                _ => Value::Null,
            });
            (name.clone(), value)
        })
        .collect()
}

/// Builds the flow for a sample store and reports what the engine's compiler finds, by task.
fn compile_check(def: &FlowDef, kinds: &Kinds, sink: &mut Sink) {
    let store = sample_store(&def.inputs);
    let mut builder = Builder::recording(def, &store, kinds);
    let flow = match builder.flow() {
        Ok(flow) => flow,
        Err(message) => {
            sink.at(def.flow.at.pos, "flow", message);
            return;
        }
    };
    let Err(err) = flows::compile(&flow, store.keys().cloned()) else { return };
    let origin = |name: &str| -> At {
        let mut key = name;
        loop {
            if let Some(at) = builder.origin(key) {
                return at.clone();
            }
            if let Some(stripped) = key.strip_suffix("_retry") {
                key = stripped;
            } else if let Some(i) = key.rfind('[').filter(|_| key.ends_with(']')) {
                key = &key[..i];
            } else {
                return def.flow.at.clone();
            }
        }
    };
    for problem in &err.problems {
        let name = match problem {
            CompileProblem::Cycle(names) => names.first().cloned().unwrap_or_default(),
            CompileProblem::MissingInput { atom, .. } | CompileProblem::Ambiguous { atom, .. } => atom.clone(),
            CompileProblem::DuplicateName(name) => name.clone(),
            CompileProblem::UnknownLink { flow, .. } | CompileProblem::LinkOutsideGraph(flow) => flow.clone(),
        };
        let at = origin(&name);
        sink.at(at.pos, &at.path, problem.to_string());
    }
}
