//! Finding process.args[0] and the final execve.

use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{stat, SFlag};
use nix::unistd::{chdir, execve};
use oci_spec::runtime::Process;

use super::ProcessError;

/// Finds args[0] as execve will need it: a name without a slash is looked
/// up in the PATH of process.env (not ours), like Go's exec.LookPath that
/// runc uses; a name with a slash is taken as is. Relative names and PATH
/// entries are relative to process.cwd, where [`exec`] will be.
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

/// chdir(cwd); make fds 3 .. 3 + preserve_fds inheritable and mark every fd
/// above them close-on-exec, so that no fd of the runtime reaches the
/// container (CVE-2024-21626: a leaked host directory fd is a way out of
/// the rootfs); then execve.
pub fn exec(
    process: &Process,
    executable: &CStr,
    preserve_fds: u32,
) -> Result<Infallible, ProcessError> {
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
    let first_closed = 3u32.saturating_add(preserve_fds);
    keep_open_across_exec(3..first_closed);
    mark_cloexec_from(first_closed)?;
    let args = to_cstrings("args", process.args().as_deref().unwrap_or_default())?;
    let env = to_cstrings("env", process.env().as_deref().unwrap_or_default())?;
    let Err(errno) = execve(executable, &args, &env);
    Err(ProcessError::Exec {
        arg0: arg0(process)?.to_string(),
        executable: executable.to_string_lossy().into_owned(),
        errno,
    })
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
