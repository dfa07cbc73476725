//! `rrun run` of a container with `process.terminal` and no
//! `--console-socket`: like runc, receive the pty master ourselves and
//! copy between it and our own stdio, with our terminal in raw mode and
//! window size changes passed on.

use anyhow::{Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Our end of the console socketpair, and the end the container gets.
pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("console socketpair")
}

/// The pty master the container init sent, checked to be one.
pub fn receive_master(socket: &OwnedFd) -> Result<OwnedFd> {
    Ok(libcontainer::terminal::receive_master(socket, true)?)
}

/// Our stdin in raw mode while the container owns the terminal; restored
/// on drop.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Our terminal's size (of stdout), when it is a terminal.
pub fn our_window_size() -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to a valid pointer.
    (unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

/// Give the pty our terminal's size.
pub fn copy_window_size(master: &OwnedFd) {
    if let Some(ws) = our_window_size() {
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// Copy what is readable on `from` to `to`; false at end of input.
pub fn pump(from: RawFd, to: RawFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => write_all(to, &buf[..n]),
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: `fd` stays open for the call; BorrowedFd only lends it.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}
