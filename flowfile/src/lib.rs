//! # flowfile: flows declared in YAML, built from task kinds
//!
//! A flow file declares one flow factory: a `name`, typed `inputs` and a `flow`
//! pattern of tasks whose `kind` names code the conductor ships (`noop`,
//! `sleep`, `fail`, and the kinds plugged in at [`kinds`]).
//! [`FlowFile::parse`] checks the whole file and reports every problem as
//! `FILE:LINE:COLUMN: path.to.field: what is wrong`; [`FlowFile::factory`]
//! turns it into a [`flows::FlowFactory`] that builds the job's flow from its
//! store. The file format is described in this crate's `README.md`.
//!
//! ## Layout
//! - `yaml`: YAML text to a tree with positions (saphyr-parser); [`document_to_json`]
//!   reads other YAML (a job's store file) the same way.
//! - `reader`, `parse`: the tree to the model (`model`), collecting problems ([`problems`]).
//! - [`inputs`]: typed input declarations (to be mapped onto `flows::inputs`).
//! - `refs`: `${name}` references; [`secrets`]: `${secret.NAME}` and redaction.
//! - `condition`: conditions on graph links and `$.path`s into results.
//! - [`duration`]: the workspace's one duration parser (flow files, conductor, CLI).
//! - [`kinds`]: the `Kind` trait, `Kinds` (what a conductor allows), built-in kinds.
//! - `build`: the model to a `flows::Flow` for one store (`each` copies, fan-in);
//!   `task`: the `flows::Task` that runs a file task through its kind.
//! - `file`: [`FlowFile`], the public face.
//! - [`limits`]: how large a file, a name and a problem report may be.

mod build;
mod condition;
pub mod duration;
mod file;
pub mod inputs;
pub mod kinds;
pub mod limits;
mod model;
mod parse;
mod prepared;
pub mod problems;
mod reader;
mod refs;
pub mod secrets;
mod task;
mod yaml;

#[cfg(test)]
mod tests;

pub use file::FlowFile;
pub use kinds::{remote, Call, Kind, Kinds, QuickCall};
pub use problems::{Pos, Problem, Problems};
pub use secrets::{DirSecrets, NoSecrets, SecretError, Secrets};
pub use yaml::document_to_json;
