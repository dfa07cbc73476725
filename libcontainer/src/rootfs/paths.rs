//! Path resolution that never leaves the container's rootfs (CVE-2021-30465).
//!
//! A mount destination comes from the config and the rootfs is controlled by
//! the image: any component may be a symlink (`/evil -> /etc`). Resolving it
//! with the host's view would let a container mount over host files. So every
//! lookup goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
//! relative to an fd of the rootfs: absolute symlinks and `..` are clamped to
//! the rootfs. Missing components are created with mkdirat/openat relative to
//! the fd of their (already resolved) parent, and callers mount onto
//! `/proc/self/fd/N` of the resolved fd, so the kernel never re-walks the path.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// How many symlinks [`mkdir_all_in_root`] follows by hand before giving up
/// (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// An O_PATH directory fd of `rootfs`, the anchor of every in-root lookup.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd, Errno> {
    open_host(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// Opens a host path (not resolved in any root) with O_CLOEXEC added.
pub fn open_host(path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let raw = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open(2) just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` (absolute or relative: both are taken from the root) inside
/// `root`, so symlinks and `..` can never resolve outside of it. Magic links
/// (/proc/self/fd/..., /proc/self/root) are refused: they jump anywhere.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let relative = in_root_relative(path);
    let c_path = CString::new(relative.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `c_path` is a valid NUL-terminated string and `how` a valid
        // open_how whose size we pass; the kernel only reads both.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c_path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: openat2 returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) });
        }
        match Errno::last() {
            // openat2 fails with EAGAIN when a rename raced the lookup.
            Errno::EAGAIN | Errno::EINTR => continue,
            errno => return Err(errno),
        }
    }
}

/// `path` as a relative path: the root itself is ".".
fn in_root_relative(path: &Path) -> PathBuf {
    let relative: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    }
}

/// Creates every missing directory of `path` inside `root` (mode `mode`) and
/// returns an O_PATH fd of the final directory. Symlinks met on the way are
/// followed inside the root, including dangling ones: their target is created.
pub fn mkdir_all_in_root(root: BorrowedFd, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    // The walk starts at the deepest ancestor that exists (most often the
    // path itself or its parent), not at the root: a component-by-component
    // walk from "/" costs two system calls per level for every mount target.
    let (mut done, mut current) = deepest_existing(root, path, dir_flags)?;
    if done.as_path() == path {
        return Ok(current);
    }
    let mut pending: Vec<PathBuf> = Vec::new();
    let rest = path.strip_prefix(&done).unwrap_or(path);
    push_components_reversed(&mut pending, rest);
    let mut symlinks_followed = 0;
    while let Some(name) = pending.pop() {
        let next = done.join(&name);
        match open_in_root(root, &next, dir_flags) {
            Ok(fd) => {
                current = fd;
                done = next;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
        match nix::sys::stat::mkdirat(Some(current.as_raw_fd()), &name, mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // Something exists but does not resolve: a dangling symlink.
                // Follow it by hand, still inside the root.
                symlinks_followed += 1;
                if symlinks_followed > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = nix::fcntl::readlinkat(Some(current.as_raw_fd()), &name)?;
                let target = Path::new(&target);
                if target.is_absolute() {
                    done = PathBuf::from("/");
                    current = open_in_root(root, &done, dir_flags)?;
                }
                push_components_reversed(&mut pending, target);
                continue;
            }
            Err(errno) => return Err(errno),
        }
        current = open_in_root(root, &next, dir_flags)?;
        done = next;
    }
    Ok(current)
}

/// The deepest of `path` and its ancestors (lexical: `..` stays a
/// component, resolved inside the root) that opens as a directory, and an
/// O_PATH fd of it. Any error but ENOENT ends the search.
fn deepest_existing(
    root: BorrowedFd,
    path: &Path,
    dir_flags: OFlag,
) -> Result<(PathBuf, OwnedFd), Errno> {
    for ancestor in path.ancestors() {
        let candidate = if ancestor.as_os_str().is_empty() {
            Path::new("/")
        } else {
            ancestor
        };
        match open_in_root(root, candidate, dir_flags) {
            Ok(fd) => return Ok((candidate.to_path_buf(), fd)),
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno),
        }
    }
    let root_path = PathBuf::from("/");
    let fd = open_in_root(root, &root_path, dir_flags)?;
    Ok((root_path, fd))
}

/// Pushes the components of `path` so that popping yields them in order.
fn push_components_reversed(pending: &mut Vec<PathBuf>, path: &Path) {
    let names: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

/// Splits `path` into its parent (in the root) and final name. `None` for the
/// root itself.
pub fn split_parent(path: &Path) -> Option<(PathBuf, &OsStr)> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let name = relative.file_name()?;
    let parent = Path::new("/").join(relative.parent().unwrap_or(Path::new("")));
    Some((parent, name))
}

/// Makes sure `path` exists inside `root` as a regular file (an empty one if
/// it was missing; parents are created with `dir_mode`) and returns an O_PATH
/// fd of it. An existing path of any type is returned as is.
pub fn mkfile_in_root(root: BorrowedFd, path: &Path, dir_mode: Mode) -> Result<OwnedFd, Errno> {
    match open_in_root(root, path, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let (parent, name) = split_parent(path).ok_or(Errno::EISDIR)?;
    let parent_fd = mkdir_all_in_root(root, &parent, dir_mode)?;
    // O_EXCL never follows a symlink, so a dangling one cannot redirect the
    // creation outside of the root.
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(
        Some(parent_fd.as_raw_fd()),
        name,
        flags,
        Mode::from_bits_truncate(0o644),
    ) {
        // SAFETY: openat just returned this fd and nothing else owns it.
        Ok(raw) => drop(unsafe { OwnedFd::from_raw_fd(raw) }),
        Err(Errno::EEXIST) => {}
        Err(errno) => return Err(errno),
    }
    open_in_root(root, path, OFlag::O_PATH)
}

/// The magic link through which the kernel reaches the object behind `fd`:
/// mounting onto it mounts onto exactly that object.
pub fn proc_fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Joins a container path onto `base` lexically (`..` cannot climb above
/// `base`). Only for display and for host paths we own.
pub fn join_clamped(base: &Path, path: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Normal(name) => {
                out.push(name);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_root() {
        assert_eq!(in_root_relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(in_root_relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(in_root_relative(Path::new("a/b")), PathBuf::from("a/b"));
    }

    #[test]
    fn split_parent_of_nested_and_top_level() {
        let (parent, name) = split_parent(Path::new("/dev/net/tun")).unwrap();
        assert_eq!(
            (parent.as_path(), name),
            (Path::new("/dev/net"), OsStr::new("tun"))
        );
        let (parent, name) = split_parent(Path::new("x")).unwrap();
        assert_eq!((parent.as_path(), name), (Path::new("/"), OsStr::new("x")));
        assert!(split_parent(Path::new("/")).is_none());
    }

    #[test]
    fn join_clamped_never_climbs_above_base() {
        assert_eq!(
            join_clamped(Path::new("/r"), Path::new("/../../etc")),
            PathBuf::from("/r/etc")
        );
        assert_eq!(
            join_clamped(Path::new("/r"), Path::new("a/../b")),
            PathBuf::from("/r/b")
        );
    }
}
