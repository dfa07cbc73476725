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

use crate::utils::{pidfd_open, pidfd_send_signal};
use std::ffi::{CStr, CString};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::signal::{SigSet, Signal};
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
    #[error("{phase} hook {path:?}: cannot start it: {errno}")]
    Spawn {
        phase: String,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{phase} hook {path:?}: its {field} contain a NUL byte")]
    NulByte {
        phase: String,
        path: PathBuf,
        field: &'static str,
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
    let pid = spawn(hook, &stdin).map_err(|err| match err {
        SpawnError::Nul(field) => HookError::NulByte {
            phase: phase.into(),
            path: path.clone(),
            field,
        },
        SpawnError::Errno(errno) => HookError::Spawn {
            phase: phase.into(),
            path: path.clone(),
            errno,
        },
    })?;
    drop(stdin);
    // The child is ours and not reaped yet, so its pid cannot be reused
    // before pidfd_open.
    let pidfd = match pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(errno) => {
            kill_and_reap_pid(pid);
            return Err(setup("pidfd_open", errno));
        }
    };
    let outcome = wait(&pidfd, timeout).map_err(|errno| setup("waiting for it", errno))?;
    verdict(outcome, hook, phase)
}

/// Only a zero exit status is a success.
fn verdict(outcome: Outcome, hook: &Hook, phase: &str) -> Result<(), HookError> {
    let (phase, path) = (phase.to_string(), hook.path().clone());
    match outcome {
        Outcome::Finished(WaitStatus::Exited(_, 0)) => Ok(()),
        Outcome::Finished(WaitStatus::Exited(_, code)) => {
            Err(HookError::Exited { phase, path, code })
        }
        Outcome::Finished(WaitStatus::Signaled(_, signal, _)) => Err(HookError::Signaled {
            phase,
            path,
            signal,
        }),
        Outcome::Finished(_) => Err(HookError::Setup {
            phase,
            path,
            what: "unexpected wait status",
            errno: Errno::EINVAL,
        }),
        Outcome::TimedOut => Err(HookError::TimedOut {
            phase,
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

/// Starts path with argv = args (`args[0]` is `argv[0]`; no args: `argv[0]` =
/// path), exactly env in its order, the state on stdin, our stdout and
/// stderr. posix_spawn rather than std's Command: Command keeps the
/// environment in a sorted map, and a hook must see env as written.
fn spawn(hook: &Hook, stdin: &OwnedFd) -> Result<libc::pid_t, SpawnError> {
    let path = c_string(hook.path().as_os_str().as_bytes(), "path")?;
    let argv = match hook.args().as_deref() {
        Some(args) if !args.is_empty() => c_strings(args, "args")?,
        _ => vec![path.clone()],
    };
    let envp = c_strings(hook.env().as_deref().unwrap_or_default(), "env")?;
    let actions = FileActions::dup_to_stdin(stdin)?;
    let attr = SpawnAttr::default_signals()?;
    let argv_ptrs = crate::utils::null_terminated(&argv);
    let envp_ptrs = crate::utils::null_terminated(&envp);
    let mut pid: libc::pid_t = 0;
    // SAFETY: path, argv and envp are NUL-terminated C strings kept alive by
    // `path`, `argv` and `envp` until after the call, and both pointer
    // arrays end with NULL; actions and attr are initialised. posix_spawn
    // does not write through argv/envp despite their `*mut` type.
    let ret = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attr.0,
            argv_ptrs.as_ptr() as *const *mut libc::c_char,
            envp_ptrs.as_ptr() as *const *mut libc::c_char,
        )
    };
    if ret != 0 {
        return Err(SpawnError::Errno(Errno::from_raw(ret)));
    }
    Ok(pid)
}

enum SpawnError {
    Nul(&'static str),
    Errno(Errno),
}

impl From<Errno> for SpawnError {
    fn from(errno: Errno) -> Self {
        SpawnError::Errno(errno)
    }
}

fn c_string(bytes: &[u8], field: &'static str) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::Nul(field))
}

fn c_strings(values: &[String], field: &'static str) -> Result<Vec<CString>, SpawnError> {
    values
        .iter()
        .map(|value| c_string(value.as_bytes(), field))
        .collect()
}

/// posix_spawn_file_actions_t, destroyed on drop.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    /// dup2(fd, 0) in the child; dup2 clears close-on-exec on the copy.
    fn dup_to_stdin(fd: &OwnedFd) -> Result<Self, Errno> {
        // SAFETY: an all-zero posix_spawn_file_actions_t is a valid argument
        // for posix_spawn_file_actions_init, which initialises it.
        let mut actions = FileActions(unsafe { std::mem::zeroed() });
        // SAFETY: actions.0 is a live, writable posix_spawn_file_actions_t.
        let ret = unsafe { libc::posix_spawn_file_actions_init(&mut actions.0) };
        if ret != 0 {
            return Err(Errno::from_raw(ret));
        }
        // SAFETY: actions.0 was initialised above; fd stays open until the
        // spawn, since the caller holds `fd` across it.
        let ret =
            unsafe { libc::posix_spawn_file_actions_adddup2(&mut actions.0, fd.as_raw_fd(), 0) };
        if ret != 0 {
            return Err(Errno::from_raw(ret));
        }
        Ok(actions)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: self.0 was initialised by posix_spawn_file_actions_init
        // (destroy on a zeroed, never-initialised value is also harmless in
        // glibc, which only frees a NULL action list).
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// posix_spawnattr_t, destroyed on drop.
struct SpawnAttr(libc::posix_spawnattr_t);

impl SpawnAttr {
    /// An empty signal mask and every signal at its default disposition in
    /// the hook, whatever the runtime blocks or ignores (e.g. SIGPIPE).
    fn default_signals() -> Result<Self, Errno> {
        // SAFETY: an all-zero posix_spawnattr_t is a valid argument for
        // posix_spawnattr_init, which initialises it.
        let mut attr = SpawnAttr(unsafe { std::mem::zeroed() });
        // SAFETY: attr.0 is a live, writable posix_spawnattr_t.
        let ret = unsafe { libc::posix_spawnattr_init(&mut attr.0) };
        if ret != 0 {
            return Err(Errno::from_raw(ret));
        }
        let empty = SigSet::empty();
        let all = SigSet::all();
        let flags = (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
        // SAFETY: attr.0 was initialised above; the sigset_t pointers refer
        // to live values that the calls only read.
        let rets = unsafe {
            [
                libc::posix_spawnattr_setsigmask(&mut attr.0, empty.as_ref()),
                libc::posix_spawnattr_setsigdefault(&mut attr.0, all.as_ref()),
                libc::posix_spawnattr_setflags(&mut attr.0, flags),
            ]
        };
        match rets.into_iter().find(|ret| *ret != 0) {
            Some(ret) => Err(Errno::from_raw(ret)),
            None => Ok(attr),
        }
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: self.0 was initialised by posix_spawnattr_init (destroy is
        // a no-op in glibc either way).
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// A sealed memfd holding the state, positioned at its start.
fn state_file(state_json: &[u8]) -> Result<OwnedFd, Errno> {
    const NAME: &CStr = c"rrun-hook-state";
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let mut file = std::fs::File::from(memfd_create(NAME, flags)?);
    file.write_all(state_json)
        .map_err(|e| crate::utils::io_errno(&e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| crate::utils::io_errno(&e))?;
    // The hook gets a read-write fd; the seals make the state read-only.
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(OwnedFd::from(file))
}

/// Best effort, when there is no pidfd: the pid is still our unreaped
/// child, so it cannot have been reused.
fn kill_and_reap_pid(pid: libc::pid_t) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
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
    match pidfd_send_signal(pidfd, libc::SIGKILL) {
        // ESRCH: it exited on its own meanwhile; reap() will collect it.
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
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
