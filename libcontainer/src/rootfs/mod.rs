//! The container's root filesystem, set up by the container init inside its
//! new mount namespace: propagation, the rootfs bind mount, `mounts`, the
//! default and configured devices, pivot_root, masked and read-only paths.
//!
//! Order (called by `init::container`):
//! 1. [`prepare`]: before pivot_root, while host paths are still visible
//!    (bind mount sources are host paths).
//! 2. (createRuntime and createContainer hooks run here)
//! 3. [`pivot`]: pivot_root (or MS_MOVE + chroot with `no_pivot`); cwd is `/`.
//! 4. (the console, if any, is bound onto /dev/console here)
//! 5. [`finalize`]: maskedPaths, readonlyPaths, `root.readonly`.

pub mod devices;
pub mod idmap;
pub mod mounts;
pub mod paths;

use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// What the rootfs steps need to know besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of the rootfs (root.path resolved
    /// against the bundle).
    pub rootfs: &'a Path,
    /// Absolute host path of the bundle; relative bind sources are relative to it.
    pub bundle: &'a Path,
    /// The init is in a new or joined user namespace: devices are bind mounted
    /// from the host instead of created with mknod.
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace (cgroup mounts differ).
    pub in_cgroup_ns: bool,
    /// `--no-pivot`: use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The id-mapped bind mounts' trees, made by the bootstrap.
    pub idmapped: &'a idmap::IdmappedTrees,
}

/// Errors of the rootfs steps. Every message names the path or the mount and
/// carries the errno.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs {path}: {op}: {errno}")]
    Sys {
        op: &'static str,
        path: String,
        errno: nix::errno::Errno,
    },
    #[error("mount {source_path} on {destination} (type {fstype}): {errno}")]
    Mount {
        source_path: String,
        destination: String,
        fstype: String,
        errno: nix::errno::Errno,
    },
    #[error("mount {destination}: option {option:?} is not supported by rrun")]
    UnsupportedOption { option: String, destination: String },
    #[error("{0}")]
    Invalid(String),
    #[error("mounts[{index}] ({destination}): id-mapped bind of {source_path}: {op}: {errno}")]
    Idmap {
        index: usize,
        destination: String,
        source_path: String,
        op: &'static str,
        errno: nix::errno::Errno,
    },
}

impl RootfsError {
    /// A failed system call `op` on `path`.
    pub fn sys(op: &'static str, path: impl AsRef<Path>, errno: nix::errno::Errno) -> Self {
        RootfsError::Sys {
            op,
            path: path.as_ref().display().to_string(),
            errno,
        }
    }
}

/// Before pivot_root: propagation, the rootfs bind mount, every mount of
/// the spec in order, then the devices.
pub fn prepare(ctx: &RootfsContext) -> Result<(), RootfsError> {
    // An unbindable root could not be bind mounted onto itself below: until
    // pivot (which applies the configured propagation) keep it a slave.
    let propagation = match root_propagation(ctx.spec)? {
        Some(flag) if flag & libc::MS_UNBINDABLE == 0 => flag,
        _ => libc::MS_SLAVE | libc::MS_REC,
    };
    mounts::raw_mount(None, Path::new("/"), None, propagation, "")
        .map_err(|e| RootfsError::sys("set propagation", "/", e))?;
    make_parent_mount_private(ctx.rootfs)?;
    // pivot_root needs the new root to be a mount point.
    mounts::raw_mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        "",
    )
    .map_err(|e| RootfsError::sys("bind mount rootfs onto itself", ctx.rootfs, e))?;
    crate::trace::step("init:rootfs-bound");
    // Opened after the bind: the fd must be the new mount, not what is under it.
    let root =
        paths::open_root(ctx.rootfs).map_err(|e| RootfsError::sys("open rootfs", ctx.rootfs, e))?;
    for (index, mount) in ctx.spec.mounts().iter().flatten().enumerate() {
        mounts::mount_entry(ctx, root.as_fd(), index, mount)?;
    }
    crate::trace::step("init:spec-mounts-made");
    devices::setup_dev(ctx, root.as_fd())
}

/// `linux.rootfsPropagation` as mount(2) flags, always recursive; `None`
/// when unset.
pub fn root_propagation(spec: &Spec) -> Result<Option<libc::c_ulong>, RootfsError> {
    let Some(value) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    let flag = match value.trim_start_matches('r') {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => {
            return Err(RootfsError::Invalid(format!(
                "linux.rootfsPropagation: unknown value {value:?}"
            )))
        }
    };
    Ok(Some(flag | libc::MS_REC))
}

/// pivot_root refuses a new root whose parent mount is shared (runc's
/// rootfsParentMountPrivate): make just that mount private.
fn make_parent_mount_private(rootfs: &Path) -> Result<(), RootfsError> {
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mountinfo = crate::utils::read_proc_text("/proc/self/mountinfo").map_err(|e| {
        RootfsError::sys("read", "/proc/self/mountinfo", crate::utils::io_errno(&e))
    })?;
    let Some((mount_point, shared)) = containing_mount(&mountinfo, parent) else {
        return Ok(());
    };
    if !shared {
        return Ok(());
    }
    mounts::raw_mount(None, &mount_point, None, libc::MS_PRIVATE, "")
        .map_err(|e| RootfsError::sys("make parent mount private", &mount_point, e))
}

/// The mount point containing `path` (longest prefix) and whether it is
/// shared.
fn containing_mount(mountinfo: &str, path: &Path) -> Option<(std::path::PathBuf, bool)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (fields, _) = line.split_once(" - ")?;
            let fields: Vec<&str> = fields.split(' ').collect();
            let mount_point = Path::new(fields.get(4)?);
            let shared = fields.iter().skip(6).any(|f| f.starts_with("shared:"));
            path.starts_with(mount_point)
                .then(|| (mount_point.to_path_buf(), shared))
        })
        .max_by_key(|(mount_point, _)| mount_point.components().count())
}

/// Makes the rootfs the process's `/`: pivot_root(".", ".") then a lazy
/// unmount of the old root stacked on it (no temporary directory), or
/// MS_MOVE + chroot with `no_pivot`. Ends with cwd `/`.
pub fn pivot(ctx: &RootfsContext) -> Result<(), RootfsError> {
    if ctx.no_pivot {
        move_root(ctx.rootfs)?;
    } else {
        pivot_root(ctx.rootfs)?;
    }
    nix::unistd::chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))?;
    // Mounts made by hooks or the lead after pivot must not reach the host
    // either: re-apply the configured propagation on the new root (runc).
    // Unbindable waits for `finalize`: readonlyPaths are bind mounts.
    match root_propagation(ctx.spec)? {
        Some(flag) if flag & libc::MS_UNBINDABLE == 0 => set_root_propagation(flag),
        _ => Ok(()),
    }
}

fn set_root_propagation(flag: libc::c_ulong) -> Result<(), RootfsError> {
    mounts::raw_mount(None, Path::new("/"), None, flag, "")
        .map_err(|e| RootfsError::sys("set propagation", "/", e))
}

fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let dir = nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY;
    let old_root =
        paths::open_host(Path::new("/"), dir).map_err(|e| RootfsError::sys("open", "/", e))?;
    nix::unistd::chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| RootfsError::sys("pivot_root", rootfs, e))?;
    // The old root is now mounted on top of the new one, at ".": detach it,
    // without letting the unmount propagate to the host.
    nix::unistd::fchdir(old_root.as_raw_fd())
        .map_err(|e| RootfsError::sys("fchdir", "old root", e))?;
    mounts::raw_mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        "",
    )
    .map_err(|e| RootfsError::sys("make old root rslave", "old root", e))?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| RootfsError::sys("umount old root", "old root", e))
}

/// Without a mount namespace of the container's own: chroot into the
/// rootfs, changing nothing in the (shared) mount namespace. Ends with cwd
/// `/`.
pub fn chroot(rootfs: &Path) -> Result<(), RootfsError> {
    nix::unistd::chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    nix::unistd::chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
}

/// For a rootfs on ramfs/initramfs, where pivot_root is refused.
fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    nix::unistd::chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    mounts::raw_mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, "")
        .map_err(|e| RootfsError::sys("move rootfs onto /", rootfs, e))?;
    nix::unistd::chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))
}

/// In the container's view: readonlyPaths, maskedPaths, `root.readonly`.
pub fn finalize(ctx: &RootfsContext) -> Result<(), RootfsError> {
    let linux = ctx.spec.linux().as_ref();
    let root = paths::open_root(Path::new("/")).map_err(|e| RootfsError::sys("open", "/", e))?;
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        make_readonly(root.as_fd(), Path::new(path))?;
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_ref())
        .filter(|paths| !paths.is_empty());
    if let Some(masked) = masked {
        let null = open_null_device(root.as_fd())?;
        for path in masked {
            mask(root.as_fd(), null.as_fd(), Path::new(path))?;
        }
    }
    if ctx
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_readonly(root.as_fd(), Path::new("/"))?;
    }
    if let Some(flag) = root_propagation(ctx.spec)?.filter(|f| f & libc::MS_UNBINDABLE != 0) {
        set_root_propagation(flag)?;
    }
    Ok(())
}

/// Opens `path` in the container; `None` when it does not exist (skipped).
fn open_existing(root: BorrowedFd, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match paths::open_in_root(root, path, nix::fcntl::OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(RootfsError::sys("open", path, e)),
    }
}

/// Bind `path` onto itself, then remount that bind read-only.
fn make_readonly(root: BorrowedFd, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let target = paths::proc_fd_path(fd.as_fd());
    mounts::raw_mount(
        Some(&target),
        &target,
        None,
        libc::MS_BIND | libc::MS_REC,
        "",
    )
    .map_err(|e| RootfsError::sys("bind readonly path", path, e))?;
    remount_readonly(root, path)
}

/// MS_BIND|MS_REMOUNT|MS_RDONLY on the mount at `path`, keeping its nosuid,
/// nodev and noexec (dropping them would fail in a user namespace and
/// weaken the mount elsewhere).
fn remount_readonly(root: BorrowedFd, path: &Path) -> Result<(), RootfsError> {
    let fd = paths::open_in_root(root, path, nix::fcntl::OFlag::O_PATH)
        .map_err(|e| RootfsError::sys("open", path, e))?;
    let kept = mounts::locked_flags(fd.as_fd())?;
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | kept;
    mounts::raw_mount(None, &paths::proc_fd_path(fd.as_fd()), None, flags, "")
        .map_err(|e| RootfsError::sys("remount read-only", path, e))
}

/// The container's /dev/null, opened once and checked to be the null
/// device (char 1:3) before anything is bound from it: an image (or a
/// process racing in a shared volume) that makes /dev/null a symlink or a
/// file would otherwise have that file bound over every masked path, and
/// /proc files left readable or writable (CVE-2025-31133). Binding from
/// the fd, not the path, leaves no window to swap it afterwards.
fn open_null_device(root: BorrowedFd) -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = paths::open_in_root(root, path, nix::fcntl::OFlag::O_PATH)
        .map_err(|e| RootfsError::sys("open for maskedPaths", path, e))?;
    let stat = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| RootfsError::sys("stat for maskedPaths", path, e))?;
    let is_null = stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(stat.st_rdev) == 1
        && libc::minor(stat.st_rdev) == 3;
    if !is_null {
        return Err(RootfsError::sys(
            "maskedPaths: not the null device (char 1:3)",
            path,
            nix::errno::Errno::ENODEV,
        ));
    }
    Ok(fd)
}

/// Directories get a read-only empty tmpfs, everything else `null` (the
/// checked /dev/null) bound over them.
fn mask(root: BorrowedFd, null: BorrowedFd, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let stat =
        nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| RootfsError::sys("stat", path, e))?;
    let target = paths::proc_fd_path(fd.as_fd());
    let is_dir = stat.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let result = if is_dir {
        mounts::raw_mount(
            Some(Path::new("tmpfs")),
            &target,
            Some("tmpfs"),
            libc::MS_RDONLY,
            "",
        )
    } else {
        mounts::raw_mount(
            Some(&paths::proc_fd_path(null)),
            &target,
            None,
            libc::MS_BIND,
            "",
        )
    };
    result.map_err(|e| RootfsError::sys("mask", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containing_mount_is_the_longest_prefix() {
        let info = "1 0 8:1 / / rw shared:1 - ext4 /dev/vda rw\n\
                    2 1 0:5 / /tmp rw - tmpfs tmpfs rw\n\
                    3 1 0:6 / /tmpx rw shared:3 - tmpfs tmpfs rw\n";
        assert_eq!(
            containing_mount(info, Path::new("/tmp/a")),
            Some(("/tmp".into(), false))
        );
        assert_eq!(
            containing_mount(info, Path::new("/var")),
            Some(("/".into(), true))
        );
    }
}
