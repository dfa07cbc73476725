//! OCI hooks: run one hook list with the state JSON on stdin, honouring
//! args, env and timeout.
//!
//! The state is given on stdin as a sealed memfd, not a pipe: the hook may
//! read it or not, at any pace, and we never write to a process that may
//! have gone. So there is no SIGPIPE/EPIPE to handle (SIGPIPE is at its
//! default in the init), no pipe-buffer deadlock with a large state and a
//! hook that does not read, and the timeout covers the whole hook. The hook
//! is waited for through a pidfd: poll() with the time left, then
//! waitid(P_PIDFD); on timeout it gets SIGKILL through the same pidfd, so a
//! reused pid can never be hit.

use std::ffi::CStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {path:?}: timeout must be greater than zero, got {timeout}")]
    InvalidTimeout {
        phase: String,
        path: PathBuf,
        timeout: i64,
    },
    #[error("{phase} hook {path:?}: {what}: {errno}")]
    Setup {
        phase: String,
        path: PathBuf,
        what: &'static str,
        errno: Errno,
    },
    #[error("{phase} hook {path:?}: cannot start it: {source}")]
    Spawn {
        phase: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{phase} hook {path:?} failed: exit status {code}")]
    Exited {
        phase: String,
        path: PathBuf,
        code: i32,
    },
    #[error("{phase} hook {path:?} failed: killed by signal {signal}")]
    Signaled {
        phase: String,
        path: PathBuf,
        signal: Signal,
    },
    #[error("{phase} hook {path:?} timed out after {seconds}s and was killed with SIGKILL")]
    TimedOut {
        phase: String,
        path: PathBuf,
        seconds: i64,
    },
}

/// Runs `hooks` in order, each with `state_json` on stdin; stops at the
/// first one that fails, times out or cannot be started. `phase` (e.g.
/// "prestart", "startContainer") is only used in error messages.
pub fn run(hooks: &[Hook], state_json: &[u8], phase: &str) -> Result<(), HookError> {
    hooks
        .iter()
        .try_for_each(|hook| run_one(hook, state_json, phase))
}

/// How a hook ended.
enum Outcome {
    Finished(WaitStatus),
    TimedOut,
}

fn run_one(hook: &Hook, state_json: &[u8], phase: &str) -> Result<(), HookError> {
    let path = hook.path().clone();
    let setup = |what, errno| HookError::Setup {
        phase: phase.into(),
        path: path.clone(),
        what,
        errno,
    };
    let timeout = timeout_of(hook, phase)?;
    let stdin = state_file(state_json).map_err(|errno| setup("state for stdin", errno))?;
    let mut child = command(hook, stdin)
        .spawn()
        .map_err(|source| HookError::Spawn {
            phase: phase.into(),
            path: path.clone(),
            source,
        })?;
    // The child is ours and not reaped yet, so its pid cannot be reused
    // before pidfd_open.
    let pidfd = match pidfd_open(child.id()) {
        Ok(pidfd) => pidfd,
        Err(errno) => {
            // Best effort: we are already failing with the pidfd_open error.
            let _ = child.kill();
            let _ = child.wait();
            return Err(setup("pidfd_open", errno));
        }
    };
    match wait(&pidfd, timeout).map_err(|errno| setup("waiting for it", errno))? {
        Outcome::Finished(WaitStatus::Exited(_, 0)) => Ok(()),
        Outcome::Finished(WaitStatus::Exited(_, code)) => Err(HookError::Exited {
            phase: phase.into(),
            path,
            code,
        }),
        Outcome::Finished(WaitStatus::Signaled(_, signal, _)) => Err(HookError::Signaled {
            phase: phase.into(),
            path,
            signal,
        }),
        Outcome::Finished(_) => Err(setup("unexpected wait status", Errno::EINVAL)),
        Outcome::TimedOut => Err(HookError::TimedOut {
            phase: phase.into(),
            path,
            seconds: hook.timeout().unwrap_or_default(),
        }),
    }
}

fn timeout_of(hook: &Hook, phase: &str) -> Result<Option<Duration>, HookError> {
    match hook.timeout() {
        None => Ok(None),
        Some(seconds) if seconds > 0 => Ok(Some(Duration::from_secs(seconds.unsigned_abs()))),
        Some(timeout) => Err(HookError::InvalidTimeout {
            phase: phase.into(),
            path: hook.path().clone(),
            timeout,
        }),
    }
}

/// path with argv = args (args[0] is argv[0]; no args: argv[0] = path),
/// exactly env, state on stdin, our stdout and stderr.
fn command(hook: &Hook, stdin: OwnedFd) -> Command {
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        match entry.split_once('=') {
            Some((key, value)) => cmd.env(key, value),
            None => {
                tracing::warn!(path = ?hook.path(), entry, "hook env entry without '=': skipped");
                continue;
            }
        };
    }
    cmd.stdin(Stdio::from(stdin));
    cmd
}

/// A sealed memfd holding the state, positioned at its start.
fn state_file(state_json: &[u8]) -> Result<OwnedFd, Errno> {
    const NAME: &CStr = c"rrun-hook-state";
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let mut file = std::fs::File::from(memfd_create(NAME, flags)?);
    file.write_all(state_json).map_err(|e| errno_of(&e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| errno_of(&e))?;
    // The hook gets a read-write fd; the seals make the state read-only.
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(OwnedFd::from(file))
}

fn errno_of(err: &std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd (O_CLOEXEC is implied for
    // pidfds) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Waits for the hook's exit, event-driven: poll() on the pidfd (readable
/// when the process exits) with the time left, then waitid reaps it.
fn wait(pidfd: &OwnedFd, timeout: Option<Duration>) -> Result<Outcome, Errno> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(deadline)) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => {
                kill(pidfd)?;
                reap(pidfd)?;
                return Ok(Outcome::TimedOut);
            }
            // Woken early (a clamped timeout): wait for the time left.
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return reap(pidfd).map(Outcome::Finished),
            Err(errno) => {
                // Best effort: never leave a hook running behind us.
                let _ = kill(pidfd).and_then(|()| reap(pidfd));
                return Err(errno);
            }
        }
    }
}

/// Milliseconds left until the deadline, rounded up so that poll never
/// returns before it; clamped to what poll accepts.
fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    let Some(deadline) = deadline else {
        return PollTimeout::NONE;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let millis = left.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
}

fn kill(pidfd: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal takes our pidfd, a signal number, a null
    // siginfo (meaning "as kill(2)") and flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match Errno::result(ret) {
        // ESRCH: it exited on its own meanwhile; reap() will collect it.
        Ok(_) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno),
    }
}

fn reap(pidfd: &OwnedFd) -> Result<WaitStatus, Errno> {
    loop {
        match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED) {
            Err(Errno::EINTR) => continue,
            result => return result,
        }
    }
}
