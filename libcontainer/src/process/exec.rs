//! Finding `process.args[0]` and the final execve.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{stat, SFlag};
use nix::unistd::chdir;
use oci_spec::runtime::Process;

use super::ProcessError;

/// Finds `args[0]` as execve will need it: a name without a slash is looked
/// up in the PATH of process.env (not ours), like Go's exec.LookPath that
/// runc uses; a name with a slash is taken as is. Relative names and PATH
/// entries are relative to process.cwd, where [`prepare_exec`] will be.
pub fn resolve_executable(process: &Process) -> Result<CString, ProcessError> {
    let name = arg0(process)?;
    let cwd = process.cwd();
    if name.contains('/') {
        let path = PathBuf::from(name);
        check_executable(&cwd.join(&path)).map_err(|errno| ProcessError::ExecutableUnusable {
            name: name.to_string(),
            path: path.clone(),
            errno,
        })?;
        return to_cstring("args", path.as_os_str().as_bytes());
    }
    let found = search_path(path_variable(process), name, cwd)
        .ok_or_else(|| ProcessError::ExecutableNotFound { name: name.into() })?;
    to_cstring("args", found.as_os_str().as_bytes())
}

fn arg0(process: &Process) -> Result<&str, ProcessError> {
    process
        .args()
        .as_ref()
        .and_then(|args| args.first())
        .filter(|arg0| !arg0.is_empty())
        .map(String::as_str)
        .ok_or(ProcessError::NoArgs)
}

/// The last PATH= of process.env wins, as it would with setenv in order.
fn path_variable(process: &Process) -> &str {
    process
        .env()
        .iter()
        .flatten()
        .filter_map(|entry| entry.strip_prefix("PATH="))
        .next_back()
        .unwrap_or("")
}

fn search_path(path_variable: &str, name: &str, cwd: &Path) -> Option<PathBuf> {
    if path_variable.is_empty() {
        return None;
    }
    path_variable
        .split(':')
        // An empty PATH entry means the current directory (POSIX).
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|candidate| check_executable(&cwd.join(candidate)).is_ok())
}

/// A regular file with some execute bit, as exec.LookPath checks; execve
/// itself will judge the permissions of the container user.
fn check_executable(path: &Path) -> Result<(), Errno> {
    let st = stat(path)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if st.st_mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// An execve with everything in memory: [`Execve::run`] makes the one
/// call and nothing else (no allocation), so that it can follow the
/// seccomp filter.
pub struct Execve {
    executable: CString,
    arg0: String,
    // Owned strings that `argv` and `envp` point into.
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

/// chdir(cwd); make fds 3 .. 3 + preserve_fds inheritable and mark every fd
/// above them close-on-exec, so that no fd of the runtime reaches the
/// container (CVE-2024-21626: a leaked host directory fd is a way out of
/// the rootfs); then argv and envp for [`Execve::run`].
pub fn prepare_exec(
    process: &Process,
    executable: CString,
    preserve_fds: u32,
) -> Result<Execve, ProcessError> {
    let cwd = process.cwd();
    match chdir(cwd) {
        Ok(()) => {}
        // The init went there as root before dropping privileges (runc
        // does the same): a cwd the user may not walk to still works.
        Err(Errno::EACCES | Errno::EPERM)
            if nix::unistd::getcwd().is_ok_and(|here| here == *cwd) => {}
        Err(errno) => {
            return Err(ProcessError::Cwd {
                cwd: cwd.to_path_buf(),
                reason: format!("chdir: {errno}"),
            })
        }
    }
    // A cwd such as /proc/self/fd/N reaches whatever fd N of ours is at
    // this moment, a directory outside the container's root included
    // (CVE-2024-21626). getcwd(3) fails with ENOENT for a cwd that is not
    // under the root: refuse it, whatever fds are open.
    if let Err(errno) = nix::unistd::getcwd() {
        return Err(ProcessError::Cwd {
            cwd: cwd.to_path_buf(),
            reason: format!("not under the container's root (getcwd: {errno})"),
        });
    }
    let first_closed = 3u32.saturating_add(preserve_fds);
    keep_open_across_exec(3..first_closed);
    mark_cloexec_from(first_closed)?;
    let args = to_cstrings("args", process.args().as_deref().unwrap_or_default())?;
    let env = to_cstrings("env", process.env().as_deref().unwrap_or_default())?;
    Ok(Execve {
        executable,
        arg0: arg0(process)?.to_string(),
        argv: crate::utils::null_terminated(&args),
        envp: crate::utils::null_terminated(&env),
        _args: args,
        _env: env,
    })
}

impl Execve {
    /// execve(2); returns only on failure.
    pub fn run(&self) -> ProcessError {
        // SAFETY: `executable` is NUL-terminated; `argv` and `envp` are
        // NULL-terminated arrays of pointers into `_args` and `_env`, which
        // `self` owns and keeps alive for the call.
        unsafe {
            libc::execve(
                self.executable.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            )
        };
        let errno = Errno::last();
        ProcessError::Exec {
            arg0: self.arg0.clone(),
            executable: self.executable.to_string_lossy().into_owned(),
            errno,
        }
    }
}

/// The --preserve-fds fds may have come to us O_CLOEXEC (every fd rrun
/// opens is); the container must get them. A hole in the range (EBADF) is
/// not ours to fill, so errors are ignored.
fn keep_open_across_exec(fds: std::ops::Range<u32>) {
    for fd in fds {
        // SAFETY: F_SETFD only changes the close-on-exec flag of one of our
        // descriptor numbers; on a number that is not open it fails with EBADF.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, 0) };
    }
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): closing them outright would
/// break an fd we still need until execve (the exec.fifo, a log pipe);
/// close-on-exec drops them at exactly the right moment.
fn mark_cloexec_from(first: u32) -> Result<(), ProcessError> {
    crate::utils::cloexec_from(first).map_err(|errno| ProcessError::CloseRange { first, errno })
}

fn to_cstrings(field: &'static str, values: &[String]) -> Result<Vec<CString>, ProcessError> {
    values
        .iter()
        .map(|value| to_cstring(field, value.as_bytes()))
        .collect()
}

fn to_cstring(field: &'static str, bytes: &[u8]) -> Result<CString, ProcessError> {
    CString::new(bytes).map_err(|_| ProcessError::NulByte {
        field,
        value: String::from_utf8_lossy(bytes).into_owned(),
    })
}
