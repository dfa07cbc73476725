//! `process.terminal`: the init opens a pty in the container's own devpts,
//! binds the slave onto /dev/console, sends the master to `--console-socket`
//! with SCM_RIGHTS (as runc does: the message's data is the master's name),
//! and makes the slave its controlling terminal and stdio.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("process.terminal: {op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: String,
        errno: Errno,
    },
    /// What came over the console socket was not one pty master.
    #[error("process.terminal: the container sent {0} instead of a pty master")]
    NotAMaster(&'static str),
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

/// The caller's side of `--console-socket` when it is the caller's own
/// socketpair (`rrun run -t`, `rrun exec -t`, the shim): the pty master
/// the container's process sent. That fd comes from inside the container,
/// so it is checked to be a pty master (TIOCGPTN answers only on one)
/// before anyone copies from it: a container that sends `/dev/zero` or a
/// host file would otherwise have the caller copy from it forever. Extra
/// fds in the message are closed. `wait` false: the message must already
/// be there (the library call that made the process has returned).
pub fn receive_master(socket: &OwnedFd, wait: bool) -> Result<OwnedFd, TerminalError> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg = loop {
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(sys("receive from the console socket", "/dev/ptmx"))?,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg
        .cmsgs()
        .map_err(sys("receive from the console socket", "/dev/ptmx"))?
    {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: SCM_RIGHTS installed these fds in our table just now.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if fds.len() != 1 {
        return Err(TerminalError::NotAMaster(if fds.is_empty() {
            "no fd"
        } else {
            "several fds"
        }));
    }
    let master = fds.pop().expect("one fd");
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to a valid pointer; on an fd
    // that is not a pty master it fails with ENOTTY or EINVAL.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(TerminalError::NotAMaster("an fd that is not one"));
    }
    Ok(master)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    fn send(fds: &[RawFd]) -> Result<OwnedFd, TerminalError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let iov = [IoSlice::new(b"/dev/ptmx")];
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
        sendmsg::<()>(theirs.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).unwrap();
        receive_master(&ours, false)
    }

    #[test]
    fn only_one_pty_master_is_taken_from_the_console_socket() {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let e = send(&[zero.as_raw_fd()]).unwrap_err().to_string();
        assert!(e.contains("instead of a pty master"), "{e}");
        let e = send(&[]).unwrap_err().to_string();
        assert!(e.contains("no fd instead"), "{e}");
        let master = open_master().unwrap();
        let e = send(&[master.as_raw_fd(), zero.as_raw_fd()]).unwrap_err();
        assert!(e.to_string().contains("several fds"), "{e}");
        send(&[master.as_raw_fd()]).unwrap();
    }
}
