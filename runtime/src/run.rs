//! `rrun run`: create, start, and in the foreground forward signals to the
//! container's init, wait for it, delete the container and exit with its
//! exit code (128 + signal when it was killed), as runc does.

use crate::console;
use anyhow::{Context, Result};
use libcontainer::container::{self, CreateOptions};
use libcontainer::utils::{pidfd_send_signal, wait_pidfd_exit_code};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Signals a foreground `run` passes on to the container instead of dying.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

pub fn run(mut opts: CreateOptions, detach: bool) -> Result<i32> {
    // Block before create so that no signal is lost in between; the
    // container's processes start with an empty mask (std resets it).
    let signals = forwarded_signals()?;
    let config = libcontainer::config::Config::load(&opts.bundle)?;
    let terminal = config
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = if !detach && opts.console_socket.is_none() && terminal {
        Some(console::pair()?)
    } else {
        None
    };
    opts.console_socket_fd = console.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
    let created = container::create_from(&opts, &config)?;
    // Our terminal goes raw and the pty gets its size before the process
    // starts: a process that asks for the size at once (`stty size`) must
    // not see 0x0.
    let mut raw = None;
    let started = receive_master(console).and_then(|master| {
        if let Some(master) = &master {
            raw = Some(console::RawMode::enter());
            console::copy_window_size(master);
        }
        container::start(&opts.root, &opts.id)?;
        Ok(master)
    });
    let master = match started {
        Ok(master) => master,
        Err(e) => {
            drop(raw);
            let _ = container::delete(&opts.root, &opts.id, true);
            return Err(e);
        }
    };
    if detach {
        return Ok(0);
    }
    let code = wait_and_forward(&signals, &created.pidfd, master.as_ref())?;
    drop(raw);
    container::delete(&opts.root, &opts.id, true)?;
    Ok(code)
}

pub(crate) fn receive_master(console: Option<(OwnedFd, OwnedFd)>) -> Result<Option<OwnedFd>> {
    match console {
        Some((ours, theirs)) => {
            drop(theirs);
            Ok(Some(console::receive_master(&ours)?))
        }
        None => Ok(None),
    }
}

pub(crate) fn forwarded_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Wait for the init, event-driven: poll on its pidfd and the signalfd,
/// and with a pty, copy stdin to it and it to stdout. A negative fd in a
/// pollfd is ignored by poll(): a closed stream is set to -1.
pub(crate) fn wait_and_forward(
    signals: &SignalFd,
    pidfd: &OwnedFd,
    master: Option<&OwnedFd>,
) -> Result<i32> {
    let master_fd = master.map_or(-1, |m| m.as_raw_fd());
    let stdin_fd = if master.is_some() {
        libc::STDIN_FILENO
    } else {
        -1
    };
    let mut fds = [
        pollfd(pidfd.as_raw_fd()),
        pollfd(signals.as_fd().as_raw_fd()),
        pollfd(stdin_fd),
        pollfd(master_fd),
    ];
    loop {
        // SAFETY: four valid pollfds on our stack.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ret < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(nix::errno::Errno::last()).context("poll");
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = signals.read_signal() {
                match master {
                    Some(m) if info.ssi_signo == libc::SIGWINCH as u32 => {
                        console::copy_window_size(m)
                    }
                    _ => {
                        let _ = pidfd_send_signal(pidfd, info.ssi_signo as i32);
                    }
                }
            }
        }
        if fds[2].revents != 0 && !console::pump(stdin_fd, master_fd) {
            fds[2].fd = -1;
        }
        if fds[3].revents != 0 && !console::pump(master_fd, libc::STDOUT_FILENO) {
            fds[3].fd = -1;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Some(m) = master {
                drain(m);
            }
            return wait_pidfd_exit_code(pidfd).context("waiting for the container");
        }
    }
}

/// What the process wrote just before it exited, without blocking on
/// processes of the container that may still hold the pty.
fn drain(master: &OwnedFd) {
    let fd = master.as_raw_fd();
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = nix::unistd::read(fd, &mut buf) {
        let _ = nix::unistd::write(std::io::stdout(), &buf[..n]);
    }
}
