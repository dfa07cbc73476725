//! The re-exec entry point.

/// Call first thing in `main`, before any thread starts. Returns only when
/// this process is not a container helper.
pub fn run_if_requested() {}
