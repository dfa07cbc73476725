//! `events`: statistics and OOM notifications of a container's cgroup.
//! (Stub until issue 3 lands.)

use super::ContainerError;
use std::path::Path;

/// One `events --stats` object, in runc's JSON format.
pub fn stats(_root: &Path, id: &str) -> Result<serde_json::Value, ContainerError> {
    Err(ContainerError::Setup(format!(
        "container {id}: events is not implemented yet"
    )))
}
