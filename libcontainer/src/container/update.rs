//! `update`: change a running container's resources.
//! (Stub until issue 3 lands.)

use super::ContainerError;
use oci_spec::runtime::LinuxResources;
use std::path::Path;

pub fn update(_root: &Path, id: &str, _resources: &LinuxResources) -> Result<(), ContainerError> {
    Err(ContainerError::Setup(format!(
        "container {id}: update is not implemented yet"
    )))
}
