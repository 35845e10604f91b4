//! `EmbeddedBoard`: the job board in one SQLite file, for a single machine.
