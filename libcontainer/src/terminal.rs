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
use std::path::Path;

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
///
/// Paths in the container's /dev are the image's (and, with a shared
/// volume, a racing process's) to swap: the slave is reached from the
/// master (TIOCGPTPEER), never by its /dev/pts name, the master is checked
/// to be one, and /dev/console is bound over only when it is a file or a
/// character device, through an fd, never through a symlink
/// (CVE-2025-52565).
pub fn setup_console(
    socket: &OwnedFd,
    process: &Process,
    bind_dev_console: bool,
) -> Result<(), TerminalError> {
    let master = open_master()?;
    let slave = open_slave(&master)?;
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
        bind_console(&slave)?;
    }
    send_master(socket, &master)?;
    drop(master);
    make_controlling_stdio(slave)
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
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to a valid pointer; it
    // answers only on a pty master, whatever /dev/ptmx turned out to be.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(sys("not a pty master: TIOCGPTN", "/dev/ptmx")(Errno::last()));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(sys("unlockpt", "/dev/ptmx")(Errno::last()));
    }
    Ok(master)
}

/// The master's slave, opened through the master itself.
fn open_slave(master: &OwnedFd) -> Result<OwnedFd, TerminalError> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(sys("TIOCGPTPEER", "/dev/ptmx")(Errno::last()));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind_console(slave: &OwnedFd) -> Result<(), TerminalError> {
    use crate::rootfs::paths;
    use std::os::fd::AsFd;
    let console = Path::new("/dev/console");
    let root = paths::open_root(Path::new("/")).map_err(sys("open", "/"))?;
    let target = match paths::open_in_root(root.as_fd(), console, OFlag::O_PATH | OFlag::O_NOFOLLOW)
    {
        Err(Errno::ENOENT) => {
            paths::mkfile_in_root(root.as_fd(), console, Mode::from_bits_truncate(0o755))
                .map_err(sys("create", "/dev/console"))?
        }
        other => other.map_err(sys("open", "/dev/console"))?,
    };
    let stat = nix::sys::stat::fstat(target.as_raw_fd()).map_err(sys("stat", "/dev/console"))?;
    let kind = stat.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(sys(
            "bind mount onto (not a file or a character device)",
            "/dev/console",
        )(Errno::EINVAL));
    }
    nix::mount::mount(
        Some(&paths::proc_fd_path(slave.as_fd())),
        &paths::proc_fd_path(target.as_fd()),
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

fn make_controlling_stdio(slave: OwnedFd) -> Result<(), TerminalError> {
    nix::unistd::setsid().map_err(sys("setsid", "the pty slave"))?;
    // SAFETY: TIOCSCTTY with argument 0 on a terminal fd we own.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(sys("TIOCSCTTY", "the pty slave")(Errno::last()));
    }
    for target in 0..=2 {
        if target == slave.as_raw_fd() {
            // dup2 onto itself would keep close-on-exec.
            nix::fcntl::fcntl(
                target,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(sys("fcntl", "the pty slave"))?;
        } else {
            nix::unistd::dup2(slave.as_raw_fd(), target).map_err(sys("dup2", "the pty slave"))?;
        }
    }
    // Dropping `slave` closes it unless it is one of 0..=2 already.
    if slave.as_raw_fd() <= 2 {
        std::mem::forget(slave);
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
