//! Tidy: repository rules checked mechanically by `cargo test`.
