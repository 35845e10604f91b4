//! Flow files: flows declared in YAML and the built-in task kinds they use.

pub mod kinds;
