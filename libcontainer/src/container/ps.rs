//! `ps`: the processes of a container (its cgroup's pids).
//! (Stub until issue 3 lands.)

use super::ContainerError;
use std::path::Path;

pub fn pids(_root: &Path, id: &str) -> Result<Vec<i32>, ContainerError> {
    Err(ContainerError::Setup(format!(
        "container {id}: ps is not implemented yet"
    )))
}
