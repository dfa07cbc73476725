//! `state` and `list`.

use super::ContainerError;
use crate::state::{self, State, StateDir, Status};
use std::path::Path;

/// A container's recorded state and its status now.
pub struct Listed {
    /// What was recorded at create (and by start).
    pub state: State,
    /// The status now, derived from the init and the freezer: use it
    /// rather than `state.status`.
    pub status: Status,
    /// Owner of the state directory (uid), as runc's list shows it.
    pub owner_uid: u32,
}

/// The container's recorded state and its status now. Takes the
/// container's lock for a moment: it waits for an operation in progress
/// on the same container.
pub fn state(root: &Path, id: &str) -> Result<Listed, ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    let owner_uid = owner(&dir.path);
    Ok(Listed {
        state,
        status,
        owner_uid,
    })
}

/// Every rrun container under `root`; other runtimes' directories (dockerd
/// gives every runtime the same root) and half-made ones are skipped.
pub fn list(root: &Path) -> Vec<Listed> {
    state::list_ids(root)
        .iter()
        .filter_map(|id| state(root, id).ok())
        .collect()
}

fn owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.uid()).unwrap_or(0)
}
