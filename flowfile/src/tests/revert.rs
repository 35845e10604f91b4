//! revert
