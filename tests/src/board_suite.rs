//! The `JobBoard` conformance suite, run against every backend.
