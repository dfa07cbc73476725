//! The /proc files the runtime writes (linux.sysctl, oomScoreAdj) are
//! reached through a procfs handle of our own, never through the
//! container's /proc by path: an image or a config can make that /proc a
//! volume (CVE-2019-16884), a symlink (CVE-2023-27561, CVE-2023-28642),
//! or put a mount over the very file written (CVE-2025-52881).
//!
//! The handle is, in order of preference:
//! 1. a private procfs instance: fsopen("proc") + fsconfig(CMD_CREATE) +
//!    fsmount, a detached mount no other process can see or mount over;
//! 2. a non-recursive clone of /proc (open_tree(OPEN_TREE_CLONE)): the
//!    same procfs without whatever is mounted below it;
//! 3. /proc itself, opened without following symlinks, checked to be the
//!    root of a procfs.
//!
//! Every file is then opened beneath the handle with openat2
//! (RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_SYMLINKS), checked (statfs magic PROC_SUPER_MAGIC, same
//! mount as the handle's root) and written through that fd only.
//!
//! A process opens its handle once ([`handle`]); the container init does
//! it early, in the container's namespaces and before its mounts and the
//! pivot, where a user namespace still sees a fully visible /proc.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

/// Errors of the procfs handle: each names the /proc path and the errno.
#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    /// No way to a procfs: the last attempt's error.
    #[error("no procfs handle: {op}: {errno}")]
    Handle {
        /// What failed last (fsopen, open_tree, open /proc).
        op: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// The container's /proc is not the root of a procfs.
    #[error(
        "/proc is not procfs (statfs magic {magic:#x}, inode {ino}): refusing to write through it"
    )]
    NotProcRoot {
        /// statfs f_type of what /proc is.
        magic: i64,
        /// Its inode number (1 for a procfs root).
        ino: u64,
    },
    /// Opening a file beneath the handle failed (ELOOP: a symlink, EXDEV:
    /// a mount on the way).
    #[error("opening /proc/{path}: {errno}")]
    Open {
        /// The path below /proc.
        path: String,
        /// The errno of openat2.
        errno: Errno,
    },
    /// The file opened is not a procfs file of the handle's mount.
    #[error("/proc/{path} is {what}: refusing to write it")]
    Unsafe {
        /// The path below /proc.
        path: String,
        /// What is wrong with it.
        what: String,
    },
    /// Reading the `self` link of the handle.
    #[error("reading /proc/self: {0}")]
    SelfLink(Errno),
    /// Writing the value.
    #[error("writing {value:?} to /proc/{path}: {errno}")]
    Write {
        /// The path below /proc.
        path: String,
        /// The value written.
        value: String,
        /// The errno of write(2).
        errno: Errno,
    },
}

/// How the handle was obtained, for messages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// fsopen + fsmount: a procfs instance of our own.
    Private,
    /// open_tree(OPEN_TREE_CLONE) of /proc: its mount alone, no submounts.
    Clone,
    /// /proc by path, checked to be a procfs root.
    Path,
}

/// A directory fd on the root of a procfs.
#[derive(Debug)]
pub struct ProcfsHandle {
    root: OwnedFd,
    mnt_id: u64,
    kind: Kind,
}

static HANDLE: OnceLock<ProcfsHandle> = OnceLock::new();

/// This process's handle, opened on first use. The init calls it before
/// its mounts so that the handle comes from its namespaces as created.
pub fn handle() -> Result<&'static ProcfsHandle, ProcfsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let handle = ProcfsHandle::open()?;
    Ok(HANDLE.get_or_init(|| handle))
}

// fsopen(2), fsconfig(2), fsmount(2), open_tree(2) (linux/mount.h).
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
/// The inode number of every procfs root (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

fn owned(ret: libc::c_long, op: &'static str) -> Result<OwnedFd, ProcfsError> {
    let fd = Errno::result(ret).map_err(|errno| ProcfsError::Handle { op, errno })?;
    // SAFETY: the syscall just returned this fd (checked non-negative
    // above) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// A new procfs instance, mounted nowhere.
fn private_instance() -> Result<OwnedFd, ProcfsError> {
    // SAFETY: fsopen takes a NUL-terminated name and flags.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) };
    let context = owned(ret, "fsopen(\"proc\")")?;
    // SAFETY: fsconfig(CMD_CREATE) on the context we own; key and value
    // are NULL and aux 0, as the command requires.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map_err(|errno| ProcfsError::Handle {
        op: "fsconfig(FSCONFIG_CMD_CREATE)",
        errno,
    })?;
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: fsmount on the created context we own; integers only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs,
        )
    };
    owned(ret, "fsmount(proc)")
}

/// The mount of /proc alone (no submounts), detached.
fn cloned_proc() -> Result<OwnedFd, ProcfsError> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree with a NUL-terminated path and integer flags; no
    // AT_RECURSIVE, so nothing mounted below /proc comes along.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc".as_ptr(),
            flags,
        )
    };
    owned(ret, "open_tree(\"/proc\", OPEN_TREE_CLONE)")
}

/// /proc itself, not through a symlink.
fn proc_by_path() -> Result<OwnedFd, ProcfsError> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let raw = openat2(libc::AT_FDCWD, "/proc", how).map_err(|errno| ProcfsError::Handle {
        op: "open(\"/proc\") without symlinks",
        errno,
    })?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The mount id of what `fd` is on (statx STATX_MNT_ID).
fn mount_id(fd: BorrowedFd) -> Result<u64, Errno> {
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on our fd with an empty path fills `stx`, which lives
    // on our stack for the duration of the call.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID | libc::STATX_INO,
            &mut stx,
        )
    };
    Errno::result(ret)?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

fn inode(fd: BorrowedFd) -> Result<u64, Errno> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map(|st| st.st_ino)
}

impl ProcfsHandle {
    /// A new handle: a private instance, else a clone of /proc's mount,
    /// else /proc by path; in every case checked to be a procfs root.
    pub fn open() -> Result<ProcfsHandle, ProcfsError> {
        let (root, kind) = match private_instance() {
            Ok(fd) => (fd, Kind::Private),
            Err(private) => match cloned_proc() {
                Ok(fd) => (fd, Kind::Clone),
                Err(clone) => {
                    tracing::debug!("procfs handle: {private}; {clone}; using /proc by path");
                    (proc_by_path()?, Kind::Path)
                }
            },
        };
        ProcfsHandle::checked(root, kind)
    }

    fn checked(root: OwnedFd, kind: Kind) -> Result<ProcfsHandle, ProcfsError> {
        let handle_error = |op| move |errno| ProcfsError::Handle { op, errno };
        let fs = fstatfs(root.as_fd()).map_err(handle_error("statfs /proc"))?;
        let ino = inode(root.as_fd()).map_err(handle_error("stat /proc"))?;
        if fs.filesystem_type() != PROC_SUPER_MAGIC || ino != PROC_ROOT_INO {
            return Err(ProcfsError::NotProcRoot {
                magic: fs.filesystem_type().0 as i64,
                ino,
            });
        }
        let mnt_id = mount_id(root.as_fd()).map_err(handle_error("statx /proc"))?;
        Ok(ProcfsHandle { root, mnt_id, kind })
    }

    /// How this handle was obtained.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Opens `path` (relative, below /proc) with `flags`: no symlink, no
    /// magic link, no mount crossed; the result must be a procfs file on
    /// the handle's own mount.
    pub fn open_file(&self, path: &str, flags: OFlag) -> Result<OwnedFd, ProcfsError> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        let open_error = |errno| ProcfsError::Open {
            path: path.to_string(),
            errno,
        };
        let raw = openat2(self.root.as_raw_fd(), path, how).map_err(open_error)?;
        // SAFETY: openat2 just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let unsafe_file = |what: String| ProcfsError::Unsafe {
            path: path.to_string(),
            what,
        };
        let fs = fstatfs(fd.as_fd()).map_err(open_error)?;
        if fs.filesystem_type() != PROC_SUPER_MAGIC {
            return Err(unsafe_file(format!(
                "not on procfs (statfs magic {:#x})",
                fs.filesystem_type().0
            )));
        }
        let mnt_id = mount_id(fd.as_fd()).map_err(open_error)?;
        if mnt_id != self.mnt_id {
            return Err(unsafe_file(format!(
                "on another mount (id {mnt_id}, /proc is {}): overmounted",
                self.mnt_id
            )));
        }
        Ok(fd)
    }

    /// The directory of this process in the handle's pid namespace
    /// ("<pid>", what its `self` link says; the link itself is not
    /// followed by [`ProcfsHandle::open_file`]).
    pub fn self_dir(&self) -> Result<String, ProcfsError> {
        let target = nix::fcntl::readlinkat(Some(self.root.as_raw_fd()), "self")
            .map_err(ProcfsError::SelfLink)?;
        let target = target.to_string_lossy().into_owned();
        if target.is_empty() || !target.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProcfsError::Unsafe {
                path: "self".into(),
                what: format!("a link to {target:?}, not to a pid"),
            });
        }
        Ok(target)
    }

    /// `/proc/<pid>/ns/<kind>` of a process of the handle's pid namespace:
    /// the directory is opened as [`ProcfsHandle::open_file`] does, then
    /// its magic link, which must lead to a namespace (nsfs).
    pub fn open_namespace(&self, pid: i32, kind: &str) -> Result<OwnedFd, ProcfsError> {
        const NSFS_MAGIC: i64 = 0x6e73_6673;
        let dir_path = format!("{pid}/ns");
        let dir = self.open_file(&dir_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let path = format!("{dir_path}/{kind}");
        let open_error = |errno| ProcfsError::Open {
            path: path.clone(),
            errno,
        };
        let raw = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            kind,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(open_error)?;
        // SAFETY: openat just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let magic = fstatfs(fd.as_fd()).map_err(open_error)?.filesystem_type().0 as i64;
        if magic != NSFS_MAGIC {
            return Err(ProcfsError::Unsafe {
                path,
                what: format!("not a namespace (statfs magic {magic:#x})"),
            });
        }
        Ok(fd)
    }

    /// Writes `value` in one write(2) to `path` below /proc, opened as
    /// [`ProcfsHandle::open_file`] does.
    pub fn write(&self, path: &str, value: &str) -> Result<(), ProcfsError> {
        let fd = self.open_file(path, OFlag::O_WRONLY)?;
        let write_error = |errno| ProcfsError::Write {
            path: path.to_string(),
            value: value.to_string(),
            errno,
        };
        let mut file = std::fs::File::from(fd);
        file.write_all(value.as_bytes())
            .map_err(|e| write_error(crate::utils::io_errno(&e)))
    }

    /// Reads `file` of this process (`/proc/<pid>/<file>`).
    pub fn read_self(&self, file: &str) -> Result<String, ProcfsError> {
        let path = format!("{}/{file}", self.self_dir()?);
        let fd = self.open_file(&path, OFlag::O_RDONLY)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).map_err(|e| {
            ProcfsError::Open {
                path,
                errno: crate::utils::io_errno(&e),
            }
        })?;
        Ok(text)
    }

    /// Writes `value` to `file` of this process (`/proc/<pid>/<file>`).
    pub fn write_self(&self, file: &str, value: &str) -> Result<(), ProcfsError> {
        let path = format!("{}/{file}", self.self_dir()?);
        self.write(&path, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn reads_own_files_beneath_the_handle() {
        let handle = ProcfsHandle::open().unwrap();
        let me = handle.self_dir().unwrap();
        assert_eq!(me, std::process::id().to_string(), "{:?}", handle.kind());
        let fd = handle
            .open_file(&format!("{me}/oom_score_adj"), OFlag::O_RDONLY)
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
        assert!(text.trim().parse::<i32>().is_ok(), "{text:?}");
    }

    #[test]
    fn symlinks_and_escapes_are_refused() {
        let handle = ProcfsHandle::open().unwrap();
        for path in [
            "self/oom_score_adj",
            "thread-self/comm",
            "../etc/passwd",
            "/etc/passwd",
        ] {
            let err = handle.open_file(path, OFlag::O_RDONLY).unwrap_err();
            assert!(matches!(err, ProcfsError::Open { .. }), "{path}: {err}");
        }
    }

    #[test]
    fn a_root_process_gets_a_private_instance() {
        if !root() {
            return;
        }
        let handle = ProcfsHandle::open().unwrap();
        assert_eq!(handle.kind(), Kind::Private);
    }

    #[test]
    fn writes_go_through_the_handle() {
        let handle = ProcfsHandle::open().unwrap();
        let me = handle.self_dir().unwrap();
        let path = format!("{me}/oom_score_adj");
        let fd = handle.open_file(&path, OFlag::O_RDONLY).unwrap();
        let mut now = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut now).unwrap();
        // Writing the current value back needs no privilege.
        handle.write(&path, now.trim()).unwrap();
        let err = handle
            .write(&format!("{me}/no-such-file"), "1")
            .unwrap_err();
        assert!(err.to_string().contains("no-such-file"), "{err}");
    }

    /// In a mount namespace of its own, a file of /proc covered by a bind
    /// of another /proc file: the private instance writes the real file,
    /// and /proc by path refuses to cross the mount (EXDEV).
    #[test]
    fn an_overmounted_file_is_never_written_through() {
        if !root() {
            return;
        }
        let check = || -> Result<(), String> {
            nix::sched::unshare(
                nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_NEWUTS,
            )
            .map_err(|e| format!("unshare: {e}"))?;
            let private = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
            nix::mount::mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
                .map_err(|e| format!("rprivate: {e}"))?;
            let bind = nix::mount::MsFlags::MS_BIND;
            let (covered, cover) = ("/proc/sys/kernel/domainname", "/proc/sys/kernel/hostname");
            nix::mount::mount(Some(cover), covered, None::<&str>, bind, None::<&str>)
                .map_err(|e| format!("bind: {e}"))?;
            nix::unistd::sethostname("host-name").map_err(|e| format!("sethostname: {e}"))?;
            let by_path =
                ProcfsHandle::checked(proc_by_path().map_err(|e| e.to_string())?, Kind::Path)
                    .map_err(|e| e.to_string())?;
            match by_path.open_file("sys/kernel/domainname", OFlag::O_WRONLY) {
                Err(ProcfsError::Open {
                    errno: Errno::EXDEV,
                    ..
                }) => {}
                other => return Err(format!("by path: {other:?}")),
            }
            let own = ProcfsHandle::open().map_err(|e| e.to_string())?;
            own.write("sys/kernel/domainname", "dom")
                .map_err(|e| e.to_string())?;
            let host = nix::sys::utsname::uname().map_err(|e| e.to_string())?;
            if host.nodename() != "host-name" {
                return Err(format!("hostname became {:?}", host.nodename()));
            }
            Ok(())
        };
        // SAFETY: the child only makes system calls and small allocations
        // before it exits; the parent waits for it.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = match check() {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                };
                // SAFETY: leaves the forked child without running the
                // parent's atexit handlers or destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
