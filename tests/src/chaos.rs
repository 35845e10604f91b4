//! What the chaos suite (`tests/chaos/`) shares with its own conductor binary
//! (`src/bin/chaos_conductor.rs`): the flow whose steps record themselves.

pub mod flow;
