//! `pause` and `resume`: freeze and thaw the container's cgroup. The status
//! `paused` is not recorded: `current_status` reads it from the freezer, so
//! a thaw by anyone else shows at once.

use super::ContainerError;
use crate::cgroups::freezer::freezer_for;
use crate::cgroups::CgroupError;
use crate::state::{StateDir, Status};
use std::path::Path;

/// Freeze a running (or created) container, as runc 1.1 allows.
pub fn pause(root: &Path, id: &str) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(wrong_status(id, status, "container not running"));
    }
    freezer_for(&state.cgroup_path)
        .and_then(|f| f.freeze())
        .map_err(CgroupError::from)?;
    Ok(())
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    if status != Status::Paused {
        return Err(wrong_status(id, status, "container not paused"));
    }
    freezer_for(&state.cgroup_path)
        .and_then(|f| f.thaw())
        .map_err(CgroupError::from)?;
    Ok(())
}

fn wrong_status(id: &str, status: Status, message: &str) -> ContainerError {
    ContainerError::WrongStatus {
        id: id.to_string(),
        status,
        message: message.to_string(),
    }
}
