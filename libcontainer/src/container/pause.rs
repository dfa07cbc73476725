//! `pause` and `resume`: freeze and thaw the container's cgroup.
//! (Stub until issue 3's freezer work lands.)

use super::ContainerError;
use std::path::Path;

pub fn pause(_root: &Path, id: &str) -> Result<(), ContainerError> {
    Err(ContainerError::Setup(format!(
        "container {id}: pause is not implemented yet"
    )))
}

pub fn resume(_root: &Path, id: &str) -> Result<(), ContainerError> {
    Err(ContainerError::Setup(format!(
        "container {id}: resume is not implemented yet"
    )))
}
