//! `ConductorProcess`: a real `conductor` binary started and killed by tests.
