//! Spawning the bootstrap: our own binary, guarded (`exe_guard`), with the
//! channel on fd 3 and the stage in its environment only.
//!
//! Through posix_spawn(3), which glibc does with clone(CLONE_VM |
//! CLONE_VFORK): the caller's page tables are not copied (std's Command
//! forks as soon as a pre_exec hook is set, and a fork of a large or
//! multi-threaded embedder costs more than the exec), and between clone
//! and execve only glibc's own async-signal-safe code runs: the fd moves
//! below, a clean signal mask and default signal dispositions.

use super::{ContainerError, StdioFds};
use crate::channel::Channel;
use crate::exe_guard::GuardedExe;
use crate::init::entry::{CHANNEL_FD, STAGE_BOOTSTRAP, STAGE_ENV};
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// A spawned bootstrap: a child of the caller until it exits, which it
/// does right after handing over the init (or the exec'd process).
pub(super) struct Bootstrap {
    pid: i32,
}

impl Bootstrap {
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// Reap it (only when the library reaps its own helpers: an
    /// embedder's SIGCHLD reaper may have taken it already).
    pub fn wait(&self) {
        let mut status = 0;
        // SAFETY: waitpid writes only the status we own.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// Spawn the bootstrap with `channel` as its fd 3 and, when given, `stdio`
/// as its fds 0-2 (else the caller's own).
pub(super) fn spawn_bootstrap(
    id: &str,
    channel: &Channel,
    stdio: Option<&StdioFds>,
) -> Result<Bootstrap, ContainerError> {
    let exe = GuardedExe::get()?;
    let exec_path = exe.exec_path();
    let path = CString::new(exec_path.as_str())
        .map_err(|_| ContainerError::Setup("guarded binary path has a NUL byte".into()))?;
    let fail = |what: &'static str| {
        let exec_path = &exec_path;
        move |errno: nix::errno::Errno| ContainerError::sys(id, what, exec_path)(errno)
    };
    // Every fd the child moves into place is first copied above the
    // targets (0-3), so that no move overwrites the source of another.
    let channel_copy = copy_above_targets(channel.as_raw_fd()).map_err(fail("dup channel"))?;
    let stdio_copies = match stdio {
        Some(s) => Some(
            [s.stdin, s.stdout, s.stderr]
                .map(copy_above_targets)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail("dup stdio fd"))?,
        ),
        None => None,
    };
    let mut moves: Vec<(RawFd, RawFd)> = vec![(channel_copy.as_raw_fd(), CHANNEL_FD)];
    if let Some(copies) = &stdio_copies {
        moves.extend(copies.iter().zip(0..).map(|(fd, to)| (fd.as_raw_fd(), to)));
    }
    let argv = [c"rrun-init".as_ptr(), std::ptr::null()];
    let env = environment();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let pid = posix_spawn(&path, &moves, &argv, &envp).map_err(fail("spawn bootstrap"))?;
    Ok(Bootstrap { pid })
}

/// The caller's environment, untouched, plus the stage.
fn environment() -> Vec<CString> {
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != STAGE_ENV)
        .filter_map(|(k, v)| {
            let mut entry = OsString::with_capacity(k.len() + v.len() + 1);
            entry.push(&k);
            entry.push("=");
            entry.push(&v);
            CString::new(entry.as_bytes()).ok()
        })
        .collect();
    env.push(CString::new(format!("{STAGE_ENV}={STAGE_BOOTSTRAP}")).expect("no NUL in the stage"));
    env
}

/// A close-on-exec copy of `fd` numbered above the fds the child fills.
fn copy_above_targets(fd: RawFd) -> Result<OwnedFd, nix::errno::Errno> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(CHANNEL_FD + 1))?;
    // SAFETY: F_DUPFD_CLOEXEC just made this fd for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// posix_spawn of `path` with each `(from, to)` dup2'ed in the child (dup2
/// clears close-on-exec on `to`; `from`, close-on-exec, goes at execve),
/// an empty signal mask and every signal's default disposition.
fn posix_spawn(
    path: &CString,
    moves: &[(RawFd, RawFd)],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Result<i32, nix::errno::Errno> {
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        errno => Err(nix::errno::Errno::from_raw(errno)),
    };
    // SAFETY: every pointer given to posix_spawn* is valid for the call:
    // the attribute and file-action objects live on this stack frame and
    // are initialised before use and destroyed after; `path`, `argv` and
    // `envp` are NUL-terminated and outlive the call; the signal sets are
    // initialised by sigemptyset/sigfillset before they are read.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        if let Err(e) = check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| {
            for &(from, to) in moves {
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut actions,
                    from,
                    to,
                ))?;
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            check(libc::posix_spawnattr_setsigmask(&mut attr, &none))?;
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            check(libc::posix_spawnattr_setsigdefault(&mut attr, &all))?;
            check(libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            ))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            ))?;
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}
