//! The image of our own binary that enters containers (runc's
//! CVE-2019-5736).
//!
//! A process running inside the container's namespaces can open
//! `/proc/<pid>/exe` of any process there that runs our binary, keep that
//! handle, and write the host binary through it once it stops running.
//! So the image we execute for the bootstrap and init is never the host file
//! itself but:
//! 1. the same file seen through a detached, read-only bind mount
//!    (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`):
//!    `/proc/<pid>/exe` then resolves to that mount and any open for writing
//!    fails with EROFS. It is never attached anywhere, so no mount event
//!    reaches the host, and it costs three syscalls, not a copy; or
//! 2. when the kernel or our privileges do not allow that, a sealed memfd
//!    copy (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_SEAL).
//!
//! Only `create` and `exec` pay for this, once per process: the guarded
//! image is made on first use and kept (an embedder creating many
//! containers makes one detached mount or one memfd copy, not one each).
//! No other command pays for it.

use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, thiserror::Error)]
pub enum ExeGuardError {
    #[error("guarding /proc/self/exe: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
}

/// How the image was guarded, for tests and debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    ReadOnlyMount,
    SealedMemfd,
}

/// An fd of the guarded image; execute it through `/proc/self/fd/N`.
pub struct GuardedExe {
    pub fd: OwnedFd,
    pub kind: GuardKind,
}

/// This process's guarded image, made once.
static GUARDED: std::sync::OnceLock<GuardedExe> = std::sync::OnceLock::new();

impl GuardedExe {
    /// The process's guarded image, made on first use. Sealed or read-only,
    /// it can be shared by every container this process starts.
    pub fn get() -> Result<&'static GuardedExe, ExeGuardError> {
        if let Some(exe) = GUARDED.get() {
            return Ok(exe);
        }
        let made = GuardedExe::new()?;
        crate::trace::step("exe-guard:made");
        // Two threads may race here: one image is kept, the other dropped.
        let _ = GUARDED.set(made);
        Ok(GUARDED.get().expect("set just above"))
    }

    /// A new guarded image (see [`GuardedExe::get`] for the shared one).
    pub fn new() -> Result<GuardedExe, ExeGuardError> {
        let mut guarded = GuardedExe::make()?;
        guarded.fd = above_the_fds_spawns_use(guarded.fd)?;
        Ok(guarded)
    }

    fn make() -> Result<GuardedExe, ExeGuardError> {
        match read_only_mount_of_self() {
            Ok(fd) => Ok(GuardedExe {
                fd,
                kind: GuardKind::ReadOnlyMount,
            }),
            Err(e) => {
                tracing::debug!("read-only mount of our binary failed ({e}); using a sealed memfd");
                Ok(GuardedExe {
                    fd: sealed_memfd()?,
                    kind: GuardKind::SealedMemfd,
                })
            }
        }
    }

    /// The path to hand to execve(2).
    pub fn exec_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

/// A spawned helper gets its stdio and the channel on fds 0-3 (dup2 in
/// the child before execve of this image): the image's own fd must not be
/// one of them, or the child would execute its channel.
fn above_the_fds_spawns_use(fd: OwnedFd) -> Result<OwnedFd, ExeGuardError> {
    const FIRST_FREE: RawFd = crate::init::entry::CHANNEL_FD + 1;
    if fd.as_raw_fd() >= FIRST_FREE {
        return Ok(fd);
    }
    let moved = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_FREE),
    )
    .map_err(sys("F_DUPFD_CLOEXEC"))?;
    // SAFETY: fcntl just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

fn sys(op: &'static str) -> impl Fn(Errno) -> ExeGuardError {
    move |errno| ExeGuardError::Sys { op, errno }
}

fn check(ret: libc::c_long, op: &'static str) -> Result<libc::c_long, ExeGuardError> {
    if ret < 0 {
        return Err(sys(op)(Errno::last()));
    }
    Ok(ret)
}

/// Our binary through a detached read-only mount. open_tree clones only a
/// mount of the caller's own mount namespace: a process that entered a new
/// one after it started (a test harness that isolates itself) holds its
/// executable on a mount of the old namespace (EINVAL). Then the binary's
/// path is looked up in the current namespace and used if it is the same
/// file (device and inode) as the running image.
fn read_only_mount_of_self() -> Result<OwnedFd, ExeGuardError> {
    match read_only_mount(c"/proc/self/exe") {
        Err(ExeGuardError::Sys {
            op: "open_tree",
            errno: Errno::EINVAL,
        }) => {}
        other => return other,
    }
    let path = std::fs::read_link("/proc/self/exe")
        .map_err(|e| sys("readlink /proc/self/exe")(crate::utils::io_errno(&e)))?;
    let c_path = std::ffi::CString::new(path.into_os_string().into_encoded_bytes())
        .map_err(|_| sys("readlink /proc/self/exe")(Errno::EINVAL))?;
    let fd = read_only_mount(&c_path)?;
    let same = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    };
    let running = nix::sys::stat::stat("/proc/self/exe").map_err(sys("stat /proc/self/exe"))?;
    let found = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("fstat"))?;
    if !same(&running, &found) {
        return Err(sys("open_tree: the binary's path is another file now")(
            Errno::ESTALE,
        ));
    }
    Ok(fd)
}

/// `path` seen through a detached read-only bind mount of itself.
fn read_only_mount(path: &std::ffi::CStr) -> Result<OwnedFd, ExeGuardError> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let fd = crate::rootfs::mounts::open_tree_clone(path, false).map_err(sys("open_tree"))?;
    // The clone is a single file mount: recursive or not is the same.
    crate::rootfs::mounts::set_recursive_attrs(fd.as_fd(), MOUNT_ATTR_RDONLY, 0)
        .map_err(sys("mount_setattr"))?;
    Ok(fd)
}

fn sealed_memfd() -> Result<OwnedFd, ExeGuardError> {
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| sys("open /proc/self/exe")(crate::utils::io_errno(&e)))?;
    // SAFETY: a NUL-terminated name and flags; returns a new fd or -1.
    let ret = unsafe {
        libc::memfd_create(
            c"rrun".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    let fd = check(ret as libc::c_long, "memfd_create")?;
    // SAFETY: memfd_create just returned this fd to us.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    loop {
        // SAFETY: two valid fds; the kernel copies between them.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
            )
        };
        match n {
            0 => break,
            n if n > 0 => continue,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(sys("sendfile")(Errno::last())),
        }
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own fd with an integer argument.
    let ret = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    check(ret as libc::c_long, "F_ADD_SEALS")?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_not_writable(fd: &OwnedFd) {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let res = std::fs::OpenOptions::new().write(true).open(&path);
        match res {
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EPERM)),
                "{e}"
            ),
            Ok(mut f) => {
                use std::io::Write;
                assert!(f.write_all(b"x").is_err(), "guarded image was writable");
            }
        }
    }

    #[test]
    fn read_only_mount_refuses_writes() {
        // A file nobody executes (our own image would answer ETXTBSY first).
        let path = std::env::temp_dir().join(format!("rrun-exe-guard-{}", std::process::id()));
        std::fs::write(&path, b"not running").unwrap();
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let fd = read_only_mount(&c_path).expect("open_tree needs root");
        let res = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EROFS));
    }

    #[test]
    fn sealed_memfd_refuses_writes() {
        let fd = sealed_memfd().unwrap();
        assert_not_writable(&fd);
    }
}
