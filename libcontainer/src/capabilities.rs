//! process.capabilities: bounding, effective, permitted, inheritable and
//! ambient sets. A capability the runtime itself does not hold is skipped
//! with a warning, as the spec allows.
