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
///
/// Unlike [`state`], without the containers' locks (runc's `list` takes
/// none either): state.json is only ever replaced whole (see
/// `utils::write_atomic`), so each is read as it was before or after an
/// operation in progress, and a list never waits for one. Per container:
/// state.json opened, its size and owner from that fd, one read; the
/// freezer, the init's stat and the exec FIFO as `state` reads them.
pub fn list(root: &Path) -> Vec<Listed> {
    state::list_ids(root)
        .iter()
        .filter_map(|id| peek(&root.join(id)))
        .collect()
}

/// The container in state directory `dir`, if it is one of ours.
fn peek(dir: &Path) -> Option<Listed> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut file = crate::utils::open_read_only(&dir.join(state::STATE_FILE)).ok()?;
    let meta = file.metadata().ok()?;
    // The file is never written in place (a new one replaces it), so the
    // size of the one opened holds: read that much and stop (std's
    // read_to_end would stat it again and read once more to see the end).
    let mut data = vec![0u8; meta.len() as usize];
    file.read_exact(&mut data).ok()?;
    let state: State = serde_json::from_slice(&data).ok()?;
    let status = state::status_now(dir, &state);
    Some(Listed {
        state,
        status,
        owner_uid: meta.uid(),
    })
}

fn owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.uid()).unwrap_or(0)
}
