//! `FlowRegistry`: flows by name, built from a store by factories.
//!
//! A job names a flow and carries a store; the API checks the store against
//! the factory's typed inputs (a [`Schema`]) before the job is written, and the
//! conductor builds the flow from the checked store. Factories are plain
//! closures, so nothing needs importing by path as TaskFlow's dotted factory
//! names did.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::inputs::{join_problems, InputProblem, InputSpec, Schema};
use crate::pattern::Flow;

type Build = dyn Fn(&Map<String, Value>) -> Result<Flow, String> + Send + Sync;

/// Builds one named flow from a store.
#[derive(Clone)]
pub struct FlowFactory {
    name: String,
    build: Arc<Build>,
    schema: Schema,
    description: String,
}

impl FlowFactory {
    /// A factory named `name`; `build` gets the job's store.
    pub fn new<F>(name: impl Into<String>, build: F) -> Self
    where
        F: Fn(&Map<String, Value>) -> Result<Flow, String> + Send + Sync + 'static,
    {
        FlowFactory { name: name.into(), build: Arc::new(build), schema: Schema::new(), description: String::new() }
    }

    /// Declares the typed input `name` (required unless `spec` has a default).
    #[must_use]
    pub fn input(mut self, name: impl Into<String>, spec: InputSpec) -> Self {
        self.schema.insert(name, spec);
        self
    }

    /// Declares required inputs of any type (names only): shorthand for
    /// `.input(name, InputSpec::any())` for each.
    #[must_use]
    pub fn requires<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        for name in names {
            self.schema.insert(name, InputSpec::any());
        }
        self
    }

    /// A one-line description for listings.
    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared inputs.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// `store` checked against the inputs, with defaults filled in.
    pub fn complete(&self, store: &Map<String, Value>) -> Result<Map<String, Value>, RegistryError> {
        self.schema.check(store).map_err(|problems| RegistryError::InvalidInputs { flow: self.name.clone(), problems })
    }

    /// Builds the flow from `store`, checked and completed first (so the build
    /// closure sees typed values and every default, even for a job written to
    /// the board without passing the API's check).
    pub fn build(&self, store: &Map<String, Value>) -> Result<Flow, RegistryError> {
        let store = self.complete(store)?;
        (self.build)(&store).map_err(|message| RegistryError::Build { flow: self.name.clone(), message })
    }
}

impl fmt::Debug for FlowFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowFactory").field("name", &self.name).field("schema", &self.schema).finish_non_exhaustive()
    }
}

/// Why a flow cannot be had from the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No factory of that name.
    #[error("unknown flow {name:?}; known flows: {}", .known.join(", "))]
    UnknownFlow {
        /// The name asked for.
        name: String,
        /// Every registered name.
        known: Vec<String>,
    },
    /// The store breaks the factory's input rules (every problem, in declaration order).
    #[error("flow {flow:?} refuses its inputs: {}", join_problems(.problems))]
    InvalidInputs {
        /// The flow.
        flow: String,
        /// Each field and the rule it breaks.
        problems: Vec<InputProblem>,
    },
    /// The factory refused the store.
    #[error("flow {flow:?} cannot be built: {message}")]
    Build {
        /// The flow.
        flow: String,
        /// The factory's reason.
        message: String,
    },
}

/// Flow factories by name.
#[derive(Debug, Clone, Default)]
pub struct FlowRegistry {
    factories: BTreeMap<String, FlowFactory>,
}

impl FlowRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a factory.
    pub fn register(&mut self, factory: FlowFactory) -> &mut Self {
        self.factories.insert(factory.name.clone(), factory);
        self
    }

    /// The factory named `name`.
    pub fn get(&self, name: &str) -> Option<&FlowFactory> {
        self.factories.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Checks that `name` is known and `store` meets its inputs.
    pub fn validate(&self, name: &str, store: &Map<String, Value>) -> Result<(), RegistryError> {
        self.complete(name, store).map(drop)
    }

    /// [`FlowRegistry::validate`], returning the store as a job should keep it:
    /// every absent default filled in.
    pub fn complete(&self, name: &str, store: &Map<String, Value>) -> Result<Map<String, Value>, RegistryError> {
        self.lookup(name)?.complete(store)
    }

    /// Builds the flow `name` from `store`.
    pub fn build(&self, name: &str, store: &Map<String, Value>) -> Result<Flow, RegistryError> {
        self.lookup(name)?.build(store)
    }

    fn lookup(&self, name: &str) -> Result<&FlowFactory, RegistryError> {
        self.factories.get(name).ok_or_else(|| RegistryError::UnknownFlow {
            name: name.to_owned(),
            known: self.factories.keys().cloned().collect(),
        })
    }
}
