//! The processes that set up a container: see ARCHITECTURE.md.
pub mod entry;
