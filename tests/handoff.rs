//! Handoff: a job moves to another conductor after kill -9 and after SIGTERM.
