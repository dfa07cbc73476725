//! `delete`: remove a stopped (or created) container: its cgroup (if rrun
//! made it), its state directory, then the poststop hooks. `force` kills a
//! running or paused one first, and also ends a container whose state.json
//! is missing (a create killed half-way) or corrupt, from what `owned.json`
//! recorded.

use super::kill::{kill_all, signal_init};
use super::ContainerError;
use crate::cgroups::{self, Cgroup};
use crate::init::hook_runner;
use crate::state::{State, StateDir, StateError, Status};
use crate::utils::{pidfd_open, pidfd_wait_exit};
use std::path::Path;

/// Delete a stopped or created container: kill a created one's init,
/// remove the cgroup (when rrun made it) and `<root>/<id>/`, then run the
/// poststop hooks (their failures are logged). A running or paused
/// container is refused unless `force`, which SIGKILLs it first and waits
/// up to 10 s for the init to exit; `force` also cleans up what a killed
/// `create` left and succeeds for an id that does not exist.
///
/// The init's exit status is not collected here: it goes to the caller's
/// reaper, as ever.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), ContainerError> {
    if force {
        crate::state::remove_stale_claims(root, id);
    }
    let dir = match StateDir::open(root, id) {
        Err(StateError::NotExist { .. }) if force => match StateDir::open_half_made(root, id)? {
            Some(dir) => return delete_from_owned(dir, "no state.json"),
            None => return Ok(()),
        },
        other => other?,
    };
    let state = match dir.load() {
        Ok(state) => state,
        Err(e @ StateError::Corrupt { .. }) if force => {
            return delete_from_owned(dir, &e.to_string());
        }
        Err(e) => return Err(e.into()),
    };
    remove(dir, &state, force)
}

/// `delete --force` without a usable state.json: end what `owned.json`
/// says the container owns (its init, the cgroup rrun made), or say what
/// could not be found. The poststop hooks were in state.json and are lost.
fn delete_from_owned(dir: StateDir, why: &str) -> Result<(), ContainerError> {
    match dir.load_owned() {
        Ok(owned) => {
            let state = owned.into_state(&dir.id);
            if state.pid == 0 && !state.cgroup_created {
                return Ok(dir.remove()?);
            }
            remove(dir, &state, true)
        }
        Err(e) => {
            tracing::warn!(
                "container {}: {why}, and {e}: its init and cgroup, if any, are not known \
                 and were left alone",
                dir.id
            );
            Ok(dir.remove()?)
        }
    }
}

/// Kill (created, or with `force`) and remove the container `state` describes.
fn remove(dir: StateDir, state: &State, force: bool) -> Result<(), ContainerError> {
    let id = &dir.id;
    let status = dir.current_status(state);
    crate::fault_point!("delete:state-loaded");
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(state, status)?,
        _ if force => kill_and_wait(state, status)?,
        _ => {
            return Err(ContainerError::WrongStatus {
                id: id.to_string(),
                status,
                message: format!("cannot delete container {id} that is not stopped: {status}"),
            })
        }
    }
    crate::fault_point!("delete:killed");
    if state.cgroup_created && !cgroups::remove_if_empty(&state.cgroup_path) {
        Cgroup::open(&state.cgroup_path)?.remove()?;
    }
    crate::fault_point!("delete:cgroup-removed");
    dir.remove()?;
    crate::fault_point!("delete:state-dir-removed");
    run_poststop(state);
    Ok(())
}

/// SIGKILL the init and wait for it to exit (its pidfd becomes readable).
/// A paused container is killed whole while still frozen and then thawed,
/// since a frozen process dies only once thawed; what else is left in the
/// cgroup is killed by its removal, which retries while they exit.
fn kill_and_wait(state: &State, status: Status) -> Result<(), ContainerError> {
    let pidfd = pidfd_open(state.pid).ok();
    signal_init(state, libc::SIGKILL)?;
    if status == Status::Paused {
        kill_all(state, status, libc::SIGKILL)?;
    }
    if let Some(pidfd) = pidfd {
        if state.init_alive() {
            // Bounded: an init that cannot die (stuck in the kernel, or
            // still frozen by someone else) must not hang delete; the
            // cgroup removal below then reports it.
            let _ = pidfd_wait_exit(&pidfd, INIT_EXIT_TIMEOUT_MS);
        }
    }
    Ok(())
}

/// How long delete waits for a SIGKILLed init to exit (runc: 10 s too).
const INIT_EXIT_TIMEOUT_MS: i32 = 10_000;

fn run_poststop(state: &State) {
    let Some(hooks) = state.hooks.as_ref().and_then(|h| h.poststop().clone()) else {
        return;
    };
    let json = state.hook_json(Status::Stopped);
    if let Err(e) = hook_runner::run_all_hooks(&hooks, &json, "poststop") {
        for line in e.lines() {
            tracing::warn!("container {}: {line}", state.id);
        }
    }
}
