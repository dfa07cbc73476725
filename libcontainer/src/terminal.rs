//! `process.terminal`: the init opens a pty in the container's own devpts,
//! binds the slave onto /dev/console, sends the master to `--console-socket`
//! with SCM_RIGHTS (as runc does: the message's data is the master's name),
//! and makes the slave its controlling terminal and stdio.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("process.terminal: {op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: String,
        errno: Errno,
    },
}

fn sys<'a>(op: &'static str, path: &'a str) -> impl Fn(Errno) -> TerminalError + 'a {
    move |errno| TerminalError::Sys {
        op,
        path: path.to_string(),
        errno,
    }
}

/// Runs in the init after pivot_root. `socket` is the connected
/// `--console-socket`. `bind_dev_console` is false for a container without
/// a mount namespace of its own (its /dev is the caller's to leave alone).
pub fn setup_console(
    socket: &OwnedFd,
    process: &Process,
    bind_dev_console: bool,
) -> Result<(), TerminalError> {
    let master = open_master()?;
    let slave_path = slave_path(&master)?;
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(sys("TIOCSWINSZ", "/dev/ptmx")(Errno::last()));
        }
    }
    if bind_dev_console {
        bind_console(&slave_path)?;
    }
    send_master(socket, &master)?;
    drop(master);
    make_controlling_stdio(&slave_path)
}

fn open_master() -> Result<OwnedFd, TerminalError> {
    let fd = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", "/dev/ptmx"))?;
    // SAFETY: open just returned this fd to us.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(sys("unlockpt", "/dev/ptmx")(Errno::last()));
    }
    Ok(master)
}

fn slave_path(master: &OwnedFd) -> Result<String, TerminalError> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(sys("TIOCGPTN", "/dev/ptmx")(Errno::last()));
    }
    Ok(format!("/dev/pts/{n}"))
}

fn bind_console(slave: &str) -> Result<(), TerminalError> {
    let console = PathBuf::from("/dev/console");
    if !console.exists() {
        std::fs::File::create(&console)
            .map_err(|e| sys("create", "/dev/console")(crate::utils::io_errno(&e)))?;
    }
    nix::mount::mount(
        Some(slave),
        &console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("bind mount onto", "/dev/console"))
}

fn send_master(socket: &OwnedFd, master: &OwnedFd) -> Result<(), TerminalError> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(sys("send to --console-socket", "/dev/ptmx"))?;
    Ok(())
}

fn make_controlling_stdio(slave: &str) -> Result<(), TerminalError> {
    let fd = nix::fcntl::open(slave, OFlag::O_RDWR, Mode::empty()).map_err(sys("open", slave))?;
    nix::unistd::setsid().map_err(sys("setsid", slave))?;
    // SAFETY: TIOCSCTTY with argument 0 on a terminal fd we own.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(sys("TIOCSCTTY", slave)(Errno::last()));
    }
    for target in 0..=2 {
        nix::unistd::dup2(fd, target).map_err(sys("dup2", slave))?;
    }
    if fd > 2 {
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}
