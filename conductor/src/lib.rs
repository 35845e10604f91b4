//! The conductor daemon: claims jobs from the board and runs them with the flows engine.
