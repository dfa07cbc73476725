//! `kill`: signal the init through a pidfd (a reused pid is never
//! signalled), or with `all`, every process of the container's cgroup.

use super::ContainerError;
use crate::cgroups::freezer::{freezer_for, Freezer};
use crate::cgroups::{self, Cgroup, CgroupError};
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

/// Send `signal` to the container's init through a pidfd (a reused pid is
/// never signalled), or with `all` to every process of its cgroup. A
/// stopped container is [`ContainerError::WrongStatus`] unless `all`. A
/// paused container gets SIGKILL at once (it is thawed for it); other
/// signals wait for [`super::resume`]. Does not wait for the process to
/// exit.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    crate::fault_point!("kill:state-loaded");
    if all {
        return kill_all(&state, status, signal);
    }
    if status == Status::Stopped {
        return Err(ContainerError::WrongStatus {
            id: id.to_string(),
            status,
            message: "container not running".to_string(),
        });
    }
    signal_init(&state, signal)?;
    crate::fault_point!("kill:signalled");
    // A frozen process gets its signals when thawed. runc thaws a paused
    // container for SIGKILL only (the kill must land); other signals
    // wait for `resume`.
    if status == Status::Paused && signal == libc::SIGKILL {
        thaw(&state.cgroup_path)?;
    }
    Ok(())
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

/// `kill --all`: signal every process of the container's cgroup. As runc
/// does, the cgroup is frozen while its pids are read and signalled (no
/// process can fork a child that would be missed, nor exit and have its
/// pid reused), then thawed, so that the signals are delivered. That
/// thaw is runc 1.1's behaviour for a paused container too.
pub(crate) fn kill_all(state: &State, status: Status, signal: i32) -> Result<(), ContainerError> {
    let path = &state.cgroup_path;
    if status == Status::Stopped && !cgroups::exists(path) {
        return Ok(());
    }
    let cgroup = Cgroup::open(path)?;
    let freezer = freezer_for(path).map_err(CgroupError::from)?;
    if signal == libc::SIGKILL && kill_through_cgroup_kill(&freezer) {
        return Ok(());
    }
    if let Err(e) = freezer.freeze() {
        tracing::warn!("container {}: {e}", state.id);
    }
    crate::fault_point!("kill:all-frozen");
    let pids = cgroup.pids();
    if let Ok(pids) = &pids {
        signal_pids(pids, signal);
    }
    crate::fault_point!("kill:all-signalled");
    if let Err(e) = freezer.thaw() {
        tracing::warn!("container {}: {e}", state.id);
    }
    match pids {
        Ok(pids) if pids.is_empty() => signal_init(state, signal),
        Ok(_) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn signal_pids(pids: &[i32], signal: i32) {
    let signal = Signal::try_from(signal).ok();
    for &pid in pids {
        // ESRCH: it exited before it was frozen (or no freezer).
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// cgroup2's `cgroup.kill` SIGKILLs the whole subtree in the kernel, forks
/// in flight included: no freeze needed. False where the kernel or the
/// layout has no such file (v1, or a kernel before 5.14).
fn kill_through_cgroup_kill(freezer: &Freezer) -> bool {
    match freezer {
        Freezer::V2(dir) => std::fs::write(dir.join("cgroup.kill"), "1").is_ok(),
        Freezer::V1(_) => false,
    }
}

/// Thaw the container's cgroup (a paused container being killed).
pub(crate) fn thaw(cgroup_path: &Path) -> Result<(), ContainerError> {
    freezer_for(cgroup_path)
        .and_then(|f| f.thaw())
        .map_err(|e| CgroupError::from(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v2 SIGKILL path on what the cgroup2 tree offers without
    /// controllers: a frozen sleep in a cgroup of the test's own dies.
    #[test]
    fn cgroup_kill_kills_a_frozen_v2_cgroup() {
        let Ok(root) = libcgroups::v2::util::get_unified_mount_point() else {
            eprintln!("no cgroup2 mount: skipped");
            return;
        };
        let dir = root.join(format!("rrun-test-kill-v2-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        if !dir.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&dir);
            eprintln!("no cgroup.kill (kernel before 5.14): skipped");
            return;
        }
        let mut child = std::process::Command::new("/bin/busybox")
            .args(["sleep", "1000"])
            .spawn()
            .unwrap();
        let cleanup = |child: &mut std::process::Child| {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir(&dir);
        };
        let freezer = Freezer::V2(dir.clone());
        let setup = std::fs::write(dir.join("cgroup.procs"), child.id().to_string())
            .map_err(|e| e.to_string())
            .and_then(|()| freezer.freeze().map_err(|e| e.to_string()));
        if let Err(e) = setup {
            cleanup(&mut child);
            panic!("{e}");
        }
        let killed = kill_through_cgroup_kill(&freezer);
        let status = child.wait().unwrap();
        cleanup(&mut child);
        assert!(killed, "cgroup.kill was not written");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
