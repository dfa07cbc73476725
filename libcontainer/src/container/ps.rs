//! `ps`: the processes of a container, that is the pids (in the caller's
//! pid namespace) of its cgroup and the cgroups below it.

use super::ContainerError;
use crate::cgroups::{self, Cgroup};
use crate::state::{StateDir, Status};
use std::path::Path;

/// Every pid of the container's cgroup, as runc's `Processes()` gives them
/// (the order cgroup.procs lists them in). A stopped container whose
/// cgroup is gone has none.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>, ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    if dir.current_status(&state) == Status::Stopped && !cgroups::exists(&state.cgroup_path) {
        return Ok(Vec::new());
    }
    Ok(Cgroup::open(&state.cgroup_path)?.pids()?)
}
