//! `rrun run`: create, start, and in the foreground forward signals to the
//! container's init, wait for it, delete the container and exit with its
//! exit code (128 + signal when it was killed), as runc does.

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

pub fn run(opts: CreateOptions, detach: bool) -> Result<i32> {
    // Block before create so that no signal is lost in between; the
    // container's processes start with an empty mask (std resets it).
    let signals = forwarded_signals()?;
    let created = container::create(&opts)?;
    if let Err(e) = container::start(&opts.root, &opts.id) {
        let _ = container::delete(&opts.root, &opts.id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = forward_until_exit(&signals, &created.pidfd)?;
    container::delete(&opts.root, &opts.id, true)?;
    Ok(code)
}

fn forwarded_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.thread_block().context("blocking signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")
}

/// Wait for the init (event-driven: poll on its pidfd and the signalfd).
fn forward_until_exit(signals: &SignalFd, pidfd: &OwnedFd) -> Result<i32> {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds on our stack.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ret < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(nix::errno::Errno::last()).context("poll");
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = signals.read_signal() {
                let _ = pidfd_send_signal(pidfd, info.ssi_signo as i32);
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            return wait_pidfd_exit_code(pidfd).context("waiting for the container");
        }
    }
}
