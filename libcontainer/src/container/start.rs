//! `start`: release a created container's init, which is blocked on
//! exec.fifo, then run the poststart hooks.

use super::ContainerError;
use crate::init::hook_runner;
use crate::state::{StateDir, Status};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Start a created container: its init runs `process.args`. Blocks until
/// the init has exec'd it (or died), then runs the poststart hooks, whose
/// failures are logged, not returned. Fails with
/// [`ContainerError::WrongStatus`] unless the container is `created`.
pub fn start(root: &Path, id: &str) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let mut state = dir.load()?;
    let status = dir.current_status(&state);
    let refuse = |message: &str| ContainerError::WrongStatus {
        id: id.to_string(),
        status,
        message: message.to_string(),
    };
    match status {
        Status::Created => {}
        Status::Stopped => return Err(refuse("cannot start a container that has stopped")),
        Status::Running => return Err(refuse("cannot start an already running container")),
        other => {
            return Err(refuse(&format!(
                "cannot start a container in the {other} state"
            )))
        }
    }
    let fifo_path = dir.fifo_path();
    let fifo = open_fifo_writer(id, &fifo_path)?;
    crate::fault_point!("start:fifo-opened");
    // exec.fifo goes and `running` is recorded before the byte is written:
    // a start that fails or is killed before the write leaves an init
    // whose writer went away without a byte, which exits (`stopped`),
    // never a running process behind `created` or behind a start that
    // reported failure (state.json on a full --root, say).
    let _ = std::fs::remove_file(&fifo_path);
    crate::fault_point!("start:fifo-removed");
    state.status = Status::Running;
    dir.save(&state)?;
    crate::fault_point!("start:state-saved");
    nix::unistd::write(&fifo, b"0").map_err(ContainerError::sys(
        id,
        "write",
        fifo_path.display(),
    ))?;
    crate::fault_point!("start:fifo-written");
    // The init closes its end when it execs the process (close-on-exec) or
    // dies: poststart runs after the process started, as the spec says.
    wait_reader_gone(&fifo);
    drop(fifo);
    if let Some(hooks) = state.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        let json = state.hook_json(Status::Running);
        if let Err(e) = hook_runner::run_all_hooks(&hooks, &json, "poststart") {
            for line in e.lines() {
                tracing::warn!("container {id}: {line}");
            }
        }
    }
    Ok(())
}

/// Open exec.fifo for writing without blocking: ENXIO means no init is
/// waiting on the other end any more.
fn open_fifo_writer(id: &str, path: &Path) -> Result<OwnedFd, ContainerError> {
    match nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: open just returned this fd to us.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::ENXIO) | Err(Errno::ENOENT) => Err(ContainerError::WrongStatus {
            id: id.to_string(),
            status: Status::Stopped,
            message: "cannot start a container that has stopped".to_string(),
        }),
        Err(e) => Err(ContainerError::sys(id, "open", path.display())(e)),
    }
}

/// poll() reports POLLERR on a FIFO's write end once it has no reader.
fn wait_reader_gone(fifo: &OwnedFd) {
    let mut pfd = libc::pollfd {
        fd: fifo.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack.
    while unsafe { libc::poll(&mut pfd, 1, -1) } < 0 && Errno::last() == Errno::EINTR {}
}
