//! `FlowRegistry`: flows by name, built from a store by factories.
//!
//! A job names a flow and carries a store; the conductor looks the factory
//! up here, checks the store has what the factory declares, and builds the
//! flow. Factories are plain closures, so nothing needs importing by path
//! as TaskFlow's dotted factory names did.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::pattern::Flow;

type Build = dyn Fn(&Map<String, Value>) -> Result<Flow, String> + Send + Sync;

/// Builds one named flow from a store.
#[derive(Clone)]
pub struct FlowFactory {
    name: String,
    build: Arc<Build>,
    requires: Vec<String>,
    optional: Vec<String>,
    description: String,
}

impl FlowFactory {
    /// A factory named `name`; `build` gets the job's store.
    pub fn new<F>(name: impl Into<String>, build: F) -> Self
    where
        F: Fn(&Map<String, Value>) -> Result<Flow, String> + Send + Sync + 'static,
    {
        FlowFactory {
            name: name.into(),
            build: Arc::new(build),
            requires: Vec::new(),
            optional: Vec::new(),
            description: String::new(),
        }
    }

    /// Store keys the flow cannot run without.
    #[must_use]
    pub fn requires<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.requires.extend(names.into_iter().map(Into::into));
        self
    }

    /// Store keys the flow reads if present.
    #[must_use]
    pub fn optional<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.optional.extend(names.into_iter().map(Into::into));
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

    /// Required store keys.
    pub fn required_inputs(&self) -> &[String] {
        &self.requires
    }

    /// Optional store keys.
    pub fn optional_inputs(&self) -> &[String] {
        &self.optional
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Builds the flow from `store` (after checking the required keys).
    pub fn build(&self, store: &Map<String, Value>) -> Result<Flow, RegistryError> {
        let missing: Vec<String> = self.requires.iter().filter(|k| !store.contains_key(*k)).cloned().collect();
        if !missing.is_empty() {
            return Err(RegistryError::MissingInputs { flow: self.name.clone(), missing });
        }
        (self.build)(store).map_err(|message| RegistryError::Build { flow: self.name.clone(), message })
    }
}

impl fmt::Debug for FlowFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowFactory")
            .field("name", &self.name)
            .field("requires", &self.requires)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
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
    /// The store lacks inputs the factory requires.
    #[error("flow {flow:?} is missing required inputs: {}", .missing.join(", "))]
    MissingInputs {
        /// The flow.
        flow: String,
        /// The absent keys.
        missing: Vec<String>,
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

    /// Checks that `name` is known and `store` has its required inputs.
    pub fn validate(&self, name: &str, store: &Map<String, Value>) -> Result<(), RegistryError> {
        let factory = self.lookup(name)?;
        let missing: Vec<String> = factory.requires.iter().filter(|k| !store.contains_key(*k)).cloned().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::MissingInputs { flow: name.to_owned(), missing })
        }
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
