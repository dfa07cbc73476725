//! `kill`: signal the init through a pidfd (a reused pid is never
//! signalled), or with `all`, every process of the container's cgroup.

use super::ContainerError;
use crate::cgroups::Cgroup;
use crate::state::{State, StateDir, Status};
use crate::utils::{pidfd_open, pidfd_send_signal, process_start_time};
use nix::sys::signal::Signal;
use std::path::Path;
use std::str::FromStr;

/// A signal by name (`KILL`, `SIGKILL`, any case) or number.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ContainerError::BadSignal(s.to_string()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| ContainerError::BadSignal(s.to_string()))
}

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    if status == Status::Stopped && !all {
        return Err(ContainerError::WrongStatus {
            id: id.to_string(),
            status,
            message: "container not running".to_string(),
        });
    }
    if all {
        return kill_all(&state, signal);
    }
    signal_init(&state, signal)
}

/// Signal the init only if it is still the process recorded at create.
pub(crate) fn signal_init(state: &State, signal: i32) -> Result<(), ContainerError> {
    let id = &state.id;
    let pidfd = match pidfd_open(state.pid) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(ContainerError::sys(id, "pidfd_open", state.pid)(e)),
    };
    // The pidfd pins the process; check it is ours before signalling.
    match process_start_time(state.pid) {
        Some((start, _)) if start == state.init_start_time => {}
        _ => return Ok(()),
    }
    match pidfd_send_signal(&pidfd, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(ContainerError::sys(id, "pidfd_send_signal", state.pid)(e)),
    }
}

fn kill_all(state: &State, signal: i32) -> Result<(), ContainerError> {
    let cgroup = Cgroup::open(&state.cgroup_path)?;
    let pids = cgroup.pids().unwrap_or_default();
    if pids.is_empty() {
        return signal_init(state, signal);
    }
    for pid in pids {
        // Processes of the cgroup: a pid here cannot be reused by a
        // process outside the cgroup while we read and signal.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            Signal::try_from(signal).ok(),
        );
    }
    Ok(())
}
