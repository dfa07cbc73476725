//! `mounts` of the spec: option parsing (runc's table), bind mounts,
//! filesystem mounts, the cgroup mount, propagation and recursive attributes.
//! Every destination is resolved inside the rootfs (see [`super::paths`]).

use super::paths::{mkdir_all_in_root, mkfile_in_root, open_in_root, proc_fd_path};
use super::{RootfsContext, RootfsError};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::sys::statvfs::FsFlags;
use oci_spec::runtime::Mount;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Mode of the directories we create on the way to a destination.
pub(crate) const DIR_MODE: u32 = 0o755;

// mount_setattr(2) attributes (linux/mount.h); libc does not have them yet.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// Options that exist in the wild but that rrun does not implement: an
/// error, never silently ignored.
const UNSUPPORTED_OPTIONS: &[&str] = &["tmpcopyup"];

/// Read by [`super::idmap`], not by mount(2).
const IDMAP_OPTIONS: &[&str] = &["idmap", "ridmap"];

/// The options of one mount, parsed as runc does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags to set.
    pub flags: libc::c_ulong,
    /// Flags the options explicitly cleared (`rw`, `suid`, `dev`, ...): never
    /// re-added from the source's locked flags.
    pub cleared: libc::c_ulong,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<libc::c_ulong>,
    /// mount_setattr(AT_RECURSIVE) attributes to set and to clear.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Everything else, comma-joined for the data argument.
    pub data: String,
}

impl MountOptions {
    /// `bind` or `rbind` was given.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    fn has_recursive_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clr != 0
    }
}

/// (set?, flag) for each mount(2) flag option.
fn flag_option(option: &str) -> Option<(bool, libc::c_ulong)> {
    let entry = match option {
        "defaults" => (true, 0),
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "nosuid" => (true, libc::MS_NOSUID),
        "suid" => (false, libc::MS_NOSUID),
        "nodev" => (true, libc::MS_NODEV),
        "dev" => (false, libc::MS_NODEV),
        "noexec" => (true, libc::MS_NOEXEC),
        "exec" => (false, libc::MS_NOEXEC),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        "async" => (false, libc::MS_SYNCHRONOUS),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "remount" => (true, libc::MS_REMOUNT),
        "mand" => (true, libc::MS_MANDLOCK),
        "nomand" => (false, libc::MS_MANDLOCK),
        "noatime" => (true, libc::MS_NOATIME),
        "atime" => (false, libc::MS_NOATIME),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "diratime" => (false, libc::MS_NODIRATIME),
        "relatime" => (true, libc::MS_RELATIME),
        "norelatime" => (false, libc::MS_RELATIME),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "lazytime" => (true, libc::MS_LAZYTIME),
        "nolazytime" => (false, libc::MS_LAZYTIME),
        "silent" => (true, libc::MS_SILENT),
        "loud" => (false, libc::MS_SILENT),
        "iversion" => (true, libc::MS_I_VERSION),
        "noiversion" => (false, libc::MS_I_VERSION),
        "nosymfollow" => (true, libc::MS_NOSYMFOLLOW),
        "symfollow" => (false, libc::MS_NOSYMFOLLOW),
        // runc's names for MS_POSIXACL (a filesystem that takes ACLs).
        "acl" => (true, libc::MS_POSIXACL),
        "noacl" => (false, libc::MS_POSIXACL),
        "bind" => (true, libc::MS_BIND),
        "rbind" => (true, libc::MS_BIND | libc::MS_REC),
        _ => return None,
    };
    Some(entry)
}

fn propagation_option(option: &str) -> Option<libc::c_ulong> {
    let flag = match option {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    };
    Some(flag)
}

/// (attr_set, attr_clr) for each recursive attribute option. The atime
/// attributes are one setting: changing it needs the whole mask cleared, and
/// the "no" forms fall back to the kernel's default (relatime), except
/// `rnorelatime` which means strictatime as in mount(8).
fn recursive_option(option: &str) -> Option<(u64, u64)> {
    let atime = |mode| (mode, MOUNT_ATTR_ATIME_MASK);
    let entry = match option {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        "rrelatime" | "ratime" | "rnostrictatime" => atime(MOUNT_ATTR_RELATIME),
        "rnoatime" => atime(MOUNT_ATTR_NOATIME),
        "rstrictatime" | "rnorelatime" => atime(MOUNT_ATTR_STRICTATIME),
        _ => return None,
    };
    Some(entry)
}

/// Parses the options of the mount at `destination` (named in errors).
pub fn parse_options(options: &[String], destination: &Path) -> Result<MountOptions, RootfsError> {
    let mut parsed = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for option in options {
        let option = option.as_str();
        if UNSUPPORTED_OPTIONS.contains(&option) {
            return Err(RootfsError::UnsupportedOption {
                option: option.to_string(),
                destination: destination.display().to_string(),
            });
        }
        if IDMAP_OPTIONS.contains(&option) {
            continue;
        }
        if let Some((set, flag)) = flag_option(option) {
            apply_flag(&mut parsed, set, flag);
        } else if let Some(flag) = propagation_option(option) {
            parsed.propagation.push(flag);
        } else if let Some((set, clr)) = recursive_option(option) {
            parsed.attr_set = (parsed.attr_set & !clr) | set;
            parsed.attr_clr = (parsed.attr_clr & !set) | clr;
        } else {
            data.push(option);
        }
    }
    parsed.data = data.join(",");
    Ok(parsed)
}

fn apply_flag(parsed: &mut MountOptions, set: bool, flag: libc::c_ulong) {
    if set {
        parsed.flags |= flag;
        parsed.cleared &= !flag;
    } else {
        parsed.flags &= !flag;
        parsed.cleared |= flag;
    }
}

/// Performs `spec.mounts()[index]` inside the rootfs.
pub fn mount_entry(
    ctx: &RootfsContext,
    root: BorrowedFd,
    index: usize,
    mount: &Mount,
) -> Result<(), RootfsError> {
    let destination = Path::new("/").join(mount.destination());
    let options = parse_options(mount.options().as_deref().unwrap_or(&[]), &destination)?;
    let fstype = mount.typ().as_deref().unwrap_or("none");
    check_proc_destination(ctx, mount, &destination, fstype, &options)?;
    if let Some(tree) = ctx.idmapped.get(index) {
        return idmapped_bind_mount(ctx, root, tree, &destination, &options);
    }
    if fstype == "cgroup" || fstype == "cgroup2" {
        return cgroup::mount_cgroup(ctx, root, &destination, &options);
    }
    if fstype == "bind" || options.is_bind() {
        let source = bind_source(ctx, mount, &destination)?;
        return bind_mount(ctx, root, &source, &destination, &options);
    }
    let source = mount.source().as_deref().map(Path::to_path_buf);
    let source = source.unwrap_or_else(|| PathBuf::from(fstype));
    fs_mount(ctx, root, &source, fstype, &destination, &options)
}

/// Files below /proc that a mount may cover: what lxcfs emulates (runc's
/// list). Anything else below /proc is refused.
const PROC_FILES_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// `path` with `.` and `..` resolved lexically (`..` stops at `/`).
fn lexical_clean(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            std::path::Component::Normal(part) => clean.push(part),
            std::path::Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    clean
}

/// /proc is where the container's LSM labels, sysctls and oom score are
/// read and written (CVE-2019-16884): a mount on /proc must be procfs (a
/// `proc` mount, or a bind of a procfs), and below /proc only the files
/// lxcfs emulates may be covered (a mount over a /proc file redirects
/// whatever reads or writes it, CVE-2025-52881).
fn check_proc_destination(
    ctx: &RootfsContext,
    mount: &Mount,
    destination: &Path,
    fstype: &str,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    let clean = lexical_clean(destination);
    if clean == Path::new("/proc") {
        let is_bind = fstype == "bind" || options.is_bind();
        if !is_bind && fstype == "proc" {
            return Ok(());
        }
        if is_bind {
            let source = bind_source(ctx, mount, destination)?;
            let fs = nix::sys::statfs::statfs(&source)
                .map_err(|e| RootfsError::sys("statfs bind source", &source, e))?;
            if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC {
                return Ok(());
            }
        }
        let source = mount.source().as_deref().unwrap_or(Path::new(""));
        return Err(RootfsError::Invalid(format!(
            "mount {} (type {fstype}) on /proc: refused, /proc must be procfs",
            source.display()
        )));
    }
    if clean.starts_with("/proc") && !PROC_FILES_MOUNTABLE.iter().any(|f| clean == Path::new(f)) {
        return Err(RootfsError::Invalid(format!(
            "mount on {}: refused, nothing below /proc may be mounted over but the files \
             lxcfs emulates",
            destination.display()
        )));
    }
    Ok(())
}

/// A mount target that resolved into a procfs (through a symlink of the
/// image: "/x" -> "/proc/self") is refused as a destination below /proc.
fn check_not_in_procfs(target: BorrowedFd, destination: &Path) -> Result<(), RootfsError> {
    let clean = lexical_clean(destination);
    let fs = nix::sys::statfs::fstatfs(target)
        .map_err(|e| RootfsError::sys("statfs mount target", destination, e))?;
    let allowed =
        clean == Path::new("/proc") || PROC_FILES_MOUNTABLE.iter().any(|f| clean == Path::new(f));
    if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC && !allowed {
        return Err(RootfsError::Invalid(format!(
            "mount on {}: refused, it resolves into procfs",
            destination.display()
        )));
    }
    Ok(())
}

/// procfs and sysfs are mounted on an ordinary directory of the rootfs,
/// reached without any symlink (CVE-2023-27561, CVE-2023-28642: a /proc
/// that is a symlink, maybe into a volume another container swaps). The
/// directory is created if missing; the fd returned is the mount target,
/// so nothing can swap it after the check.
fn ordinary_directory(
    root: BorrowedFd,
    destination: &Path,
    fstype: &str,
) -> Result<OwnedFd, RootfsError> {
    let relative = destination.strip_prefix("/").unwrap_or(destination);
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let open = || nix::fcntl::openat2(root.as_raw_fd(), relative, how);
    let raw = match open() {
        Err(Errno::ENOENT) => {
            mkdir_all_in_root(root, destination, Mode::from_bits_truncate(DIR_MODE))
                .map_err(|e| RootfsError::sys("mkdir", destination, e))?;
            open()
        }
        other => other,
    };
    let refuse = |what: String| {
        RootfsError::Invalid(format!(
            "{fstype} must be mounted on an ordinary directory: {} {what}",
            destination.display()
        ))
    };
    let raw = raw.map_err(|errno| match errno {
        Errno::ELOOP | Errno::ENOTDIR => refuse(format!("is reached through a symlink ({errno})")),
        errno => RootfsError::sys("open mount target", destination, errno),
    })?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| RootfsError::sys("stat mount target", destination, e))?;
    match nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT {
        nix::sys::stat::SFlag::S_IFDIR => Ok(fd),
        nix::sys::stat::SFlag::S_IFLNK => Err(refuse("is a symlink".into())),
        _ => Err(refuse("is not a directory".into())),
    }
}

/// The host path of a bind mount's source: relative ones are relative to
/// the bundle.
fn bind_source(
    ctx: &RootfsContext,
    mount: &Mount,
    destination: &Path,
) -> Result<PathBuf, RootfsError> {
    let source = mount.source().as_deref().ok_or_else(|| {
        RootfsError::Invalid(format!("bind mount {}: no source", destination.display()))
    })?;
    Ok(ctx.bundle.join(source))
}

/// A mount of a filesystem (proc, sysfs, tmpfs, devpts, mqueue, ...).
fn fs_mount(
    ctx: &RootfsContext,
    root: BorrowedFd,
    source: &Path,
    fstype: &str,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    let target = if fstype == "proc" || fstype == "sysfs" {
        ordinary_directory(root, destination, fstype)?
    } else {
        mkdir_all_in_root(root, destination, Mode::from_bits_truncate(DIR_MODE))
            .map_err(|e| RootfsError::sys("mkdir", destination, e))?
    };
    check_not_in_procfs(target.as_fd(), destination)?;
    let flags = options.flags & !libc::MS_REMOUNT;
    let result = raw_mount(
        Some(source),
        &proc_fd_path(target.as_fd()),
        Some(fstype),
        flags,
        &options.data,
    );
    match result {
        Ok(()) => {}
        Err(Errno::EPERM) if ctx.in_user_ns && host_fallback(fstype).is_some() => {
            // sysfs needs a netns and mqueue an ipcns owned by our user
            // namespace; without them, show the host's, as runc does.
            let host = host_fallback(fstype).unwrap_or("/");
            let mut rbind = options.clone();
            rbind.flags |= libc::MS_BIND | libc::MS_REC;
            return bind_mount(ctx, root, Path::new(host), destination, &rbind);
        }
        Err(errno) => return Err(mount_error(source, destination, fstype, errno)),
    }
    finish_mount(root, destination, options)
}

fn host_fallback(fstype: &str) -> Option<&'static str> {
    match fstype {
        "sysfs" => Some("/sys"),
        "mqueue" => Some("/dev/mqueue"),
        _ => None,
    }
}

fn mount_error(source: &Path, destination: &Path, fstype: &str, errno: Errno) -> RootfsError {
    RootfsError::Mount {
        source_path: source.display().to_string(),
        destination: destination.display().to_string(),
        fstype: fstype.to_string(),
        errno,
    }
}

/// A bind mount of the host path `source` onto `destination` in the rootfs:
/// the target is a file when the source is one, a directory otherwise.
pub fn bind_mount(
    ctx: &RootfsContext,
    root: BorrowedFd,
    source: &Path,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    let source_is_dir = std::fs::metadata(source)
        .map_err(|e| RootfsError::sys("stat bind source", source, crate::utils::io_errno(&e)))?
        .is_dir();
    let target = bind_target(root, destination, source_is_dir)?;
    let bind_flags = libc::MS_BIND | (options.flags & libc::MS_REC);
    raw_mount(
        Some(source),
        &proc_fd_path(target.as_fd()),
        None,
        bind_flags,
        "",
    )
    .map_err(|e| mount_error(source, destination, "bind", e))?;
    finish_bind(ctx, root, destination, options)
}

/// An id-mapped bind mount: the bootstrap's detached `tree` (see
/// [`super::idmap`]) moved onto `destination`, then the flags and
/// propagation of any bind mount.
fn idmapped_bind_mount(
    ctx: &RootfsContext,
    root: BorrowedFd,
    tree: BorrowedFd,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    let source_is_dir = nix::sys::stat::fstat(tree.as_raw_fd())
        .map_err(|e| RootfsError::sys("fstat id-mapped tree", destination, e))?
        .st_mode
        & libc::S_IFMT
        == libc::S_IFDIR;
    let target = bind_target(root, destination, source_is_dir)?;
    super::idmap::attach(tree, target.as_fd())
        .map_err(|e| RootfsError::sys("move_mount of the id-mapped tree", destination, e))?;
    finish_bind(ctx, root, destination, options)
}

/// The target of a bind mount in the rootfs: a directory for a directory,
/// a file for anything else; never in a procfs.
fn bind_target(
    root: BorrowedFd,
    destination: &Path,
    source_is_dir: bool,
) -> Result<OwnedFd, RootfsError> {
    let dir_mode = Mode::from_bits_truncate(DIR_MODE);
    let target = if source_is_dir {
        mkdir_all_in_root(root, destination, dir_mode)
    } else {
        mkfile_in_root(root, destination, dir_mode)
    }
    .map_err(|e| RootfsError::sys("create bind target", destination, e))?;
    check_not_in_procfs(target.as_fd(), destination)?;
    Ok(target)
}

/// After a bind mount: its own flags (a remount), propagation, recursive
/// attributes.
fn finish_bind(
    ctx: &RootfsContext,
    root: BorrowedFd,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    let remount_flags = options.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if remount_flags != 0 {
        let mounted = reopen(root, destination)?;
        remount_bind(ctx, &mounted, destination, remount_flags, options.cleared)?;
    }
    finish_mount(root, destination, options)
}

/// A bind mount takes the flags of its source; changing them needs a
/// MS_REMOUNT|MS_BIND pass. In a user namespace the source's nosuid, nodev,
/// noexec and ro are locked: keep them unless the options cleared them (then
/// the kernel's EPERM is the honest answer).
fn remount_bind(
    ctx: &RootfsContext,
    mounted: &OwnedFd,
    destination: &Path,
    flags: libc::c_ulong,
    cleared: libc::c_ulong,
) -> Result<(), RootfsError> {
    let locked = if ctx.in_user_ns {
        locked_flags(mounted.as_fd())? & !cleared
    } else {
        0
    };
    let flags = libc::MS_BIND | libc::MS_REMOUNT | flags | locked;
    raw_mount(None, &proc_fd_path(mounted.as_fd()), None, flags, "")
        .map_err(|e| RootfsError::sys("remount bind", destination, e))
}

/// The per-mount flags of the mount behind `fd` that an unprivileged remount
/// may not drop.
pub(crate) fn locked_flags(fd: BorrowedFd) -> Result<libc::c_ulong, RootfsError> {
    let stat = nix::sys::statvfs::fstatvfs(fd)
        .map_err(|e| RootfsError::sys("statvfs", proc_fd_path(fd), e))?;
    let pairs = [
        (FsFlags::ST_RDONLY, libc::MS_RDONLY),
        (FsFlags::ST_NOSUID, libc::MS_NOSUID),
        (FsFlags::ST_NODEV, libc::MS_NODEV),
        (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
    ];
    let flags = stat.flags();
    Ok(pairs
        .iter()
        .filter(|(st, _)| flags.contains(*st))
        .fold(0, |acc, (_, ms)| acc | ms))
}

/// Opens the mount now sitting on `destination` (the fd taken before the
/// mount still points to the directory underneath).
fn reopen(root: BorrowedFd, destination: &Path) -> Result<OwnedFd, RootfsError> {
    open_in_root(root, destination, OFlag::O_PATH)
        .map_err(|e| RootfsError::sys("open mount", destination, e))
}

/// After the mount: propagation changes, then recursive attributes.
fn finish_mount(
    root: BorrowedFd,
    destination: &Path,
    options: &MountOptions,
) -> Result<(), RootfsError> {
    if options.propagation.is_empty() && !options.has_recursive_attrs() {
        return Ok(());
    }
    let mounted = reopen(root, destination)?;
    for flag in &options.propagation {
        raw_mount(None, &proc_fd_path(mounted.as_fd()), None, *flag, "")
            .map_err(|e| RootfsError::sys("set mount propagation", destination, e))?;
    }
    if options.has_recursive_attrs() {
        set_recursive_attrs(mounted.as_fd(), options.attr_set, options.attr_clr)
            .map_err(|e| RootfsError::sys("mount_setattr", destination, e))?;
    }
    Ok(())
}

/// mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE): the attributes
/// apply to the whole mount tree, unlike a MS_REMOUNT.
pub fn set_recursive_attrs(fd: BorrowedFd, attr_set: u64, attr_clr: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(fd, libc::AT_RECURSIVE, &attr)
}

/// mount_setattr(fd, "", AT_EMPTY_PATH | `at_flags`, `attr`).
pub(crate) fn mount_setattr(
    fd: BorrowedFd,
    at_flags: libc::c_int,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: the path is a static empty C string, `attr` is a valid
    // mount_attr whose size we pass; the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | at_flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// open_tree(path, OPEN_TREE_CLONE): a detached copy of the mount at
/// `path` (with its submounts when `recursive`), close-on-exec.
pub(crate) fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a NUL-terminated path and flags; returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(ret)?;
    // SAFETY: open_tree just returned this fd to us.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as std::os::fd::RawFd) })
}

/// mount(2) with raw flags (nix's MsFlags lacks a few, e.g. MS_NOSYMFOLLOW).
pub fn raw_mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), Errno> {
    let data = (!data.is_empty()).then_some(data);
    nix::mount::mount(
        source,
        target,
        fstype,
        MsFlags::from_bits_retain(flags),
        data,
    )
}

/// The `cgroup` mount type. On a v1 or hybrid host runc's layout is emulated:
/// a tmpfs with one mount per hierarchy, the container's own cgroup directory
/// bound on it (or, with a cgroup namespace, the hierarchy mounted directly).
mod cgroup {
    use super::*;

    const CGROUP_ROOT: &str = "/sys/fs/cgroup";

    /// A cgroup hierarchy mounted under /sys/fs/cgroup, from mountinfo.
    struct Hierarchy {
        /// The directory of the hierarchy that is the root of the mount.
        root: PathBuf,
        mount_point: PathBuf,
        fstype: String,
        super_options: Vec<String>,
    }

    /// One line of /proc/self/cgroup.
    struct Membership {
        controllers: Vec<String>,
        path: PathBuf,
    }

    pub(super) fn mount_cgroup(
        ctx: &RootfsContext,
        root: BorrowedFd,
        destination: &Path,
        options: &MountOptions,
    ) -> Result<(), RootfsError> {
        let host = nix::sys::statfs::statfs(CGROUP_ROOT)
            .map_err(|e| RootfsError::sys("statfs", CGROUP_ROOT, e))?;
        if host.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            mount_v2(ctx, root, destination, options)
        } else {
            mount_v1(ctx, root, destination, options)
        }
    }

    /// Pure v2: cgroup2 itself in a cgroup namespace, else a bind of our
    /// own cgroup directory (runc).
    fn mount_v2(
        ctx: &RootfsContext,
        root: BorrowedFd,
        destination: &Path,
        options: &MountOptions,
    ) -> Result<(), RootfsError> {
        if ctx.in_cgroup_ns {
            return fs_mount(
                ctx,
                root,
                Path::new("cgroup"),
                "cgroup2",
                destination,
                options,
            );
        }
        let memberships = read_memberships()?;
        let own = memberships
            .iter()
            .find(|m| m.controllers.is_empty())
            .ok_or_else(|| {
                RootfsError::Invalid("/proc/self/cgroup: no cgroup2 (0::) line".into())
            })?;
        let source = super::super::paths::join_clamped(Path::new(CGROUP_ROOT), &own.path);
        bind_mount(ctx, root, &source, destination, &bind_options(options))
    }

    /// The options of each per-hierarchy bind: the cgroup mount's own flags.
    fn bind_options(options: &MountOptions) -> MountOptions {
        let mut bind = options.clone();
        bind.flags |= libc::MS_BIND | libc::MS_REC;
        bind
    }

    fn mount_v1(
        ctx: &RootfsContext,
        root: BorrowedFd,
        destination: &Path,
        options: &MountOptions,
    ) -> Result<(), RootfsError> {
        let tmpfs = MountOptions {
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: "mode=755".into(),
            ..MountOptions::default()
        };
        fs_mount(ctx, root, Path::new("tmpfs"), "tmpfs", destination, &tmpfs)?;
        let memberships = read_memberships()?;
        for hierarchy in read_hierarchies()? {
            let Some(name) = hierarchy.mount_point.file_name() else {
                continue;
            };
            let target = destination.join(name);
            if ctx.in_cgroup_ns {
                mount_hierarchy(root, &hierarchy, &target, options)?;
            } else {
                let source = own_directory(&hierarchy, &memberships)?;
                bind_mount(ctx, root, &source, &target, &bind_options(options))?;
            }
            link_comounted(root, destination, &name.to_string_lossy())?;
        }
        if options.flags & libc::MS_RDONLY != 0 {
            let mounted = reopen(root, destination)?;
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | tmpfs.flags;
            raw_mount(None, &proc_fd_path(mounted.as_fd()), None, flags, "")
                .map_err(|e| RootfsError::sys("remount cgroup tmpfs read-only", destination, e))?;
        }
        Ok(())
    }

    /// With a cgroup namespace, the hierarchy's root is our own cgroup.
    fn mount_hierarchy(
        root: BorrowedFd,
        hierarchy: &Hierarchy,
        target: &Path,
        options: &MountOptions,
    ) -> Result<(), RootfsError> {
        let dir = mkdir_all_in_root(root, target, Mode::from_bits_truncate(DIR_MODE))
            .map_err(|e| RootfsError::sys("mkdir", target, e))?;
        let data = if hierarchy.fstype == "cgroup" {
            let kept: Vec<&str> = hierarchy
                .super_options
                .iter()
                .map(String::as_str)
                .filter(|o| *o != "rw" && *o != "ro")
                .collect();
            kept.join(",")
        } else {
            String::new()
        };
        let flags = options.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        raw_mount(
            Some(Path::new("cgroup")),
            &proc_fd_path(dir.as_fd()),
            Some(&hierarchy.fstype),
            flags,
            &data,
        )
        .map_err(|e| mount_error(Path::new("cgroup"), target, &hierarchy.fstype, e))
    }

    /// The host directory of our own cgroup in `hierarchy`.
    fn own_directory(
        hierarchy: &Hierarchy,
        memberships: &[Membership],
    ) -> Result<PathBuf, RootfsError> {
        let membership = memberships
            .iter()
            .find(|m| belongs_to(m, hierarchy))
            .ok_or_else(|| {
                RootfsError::Invalid(format!(
                    "/proc/self/cgroup: no line for {}",
                    hierarchy.mount_point.display()
                ))
            })?;
        // The mount may show a sub-tree only (nested containers).
        let relative = membership
            .path
            .strip_prefix(&hierarchy.root)
            .unwrap_or(&membership.path);
        Ok(super::super::paths::join_clamped(
            &hierarchy.mount_point,
            relative,
        ))
    }

    fn belongs_to(membership: &Membership, hierarchy: &Hierarchy) -> bool {
        if hierarchy.fstype == "cgroup2" {
            return membership.controllers.is_empty();
        }
        !membership.controllers.is_empty()
            && membership
                .controllers
                .iter()
                .all(|c| hierarchy.super_options.contains(c))
    }

    /// cpu,cpuacct is reachable as cpu and as cpuacct, as on the host.
    fn link_comounted(root: BorrowedFd, destination: &Path, name: &str) -> Result<(), RootfsError> {
        if !name.contains(',') {
            return Ok(());
        }
        let dir = open_in_root(root, destination, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| RootfsError::sys("open", destination, e))?;
        for alias in name.split(',').filter(|alias| *alias != name) {
            match nix::unistd::symlinkat(name, Some(dir.as_raw_fd()), alias) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(RootfsError::sys("symlink", destination.join(alias), e)),
            }
        }
        Ok(())
    }

    fn read_memberships() -> Result<Vec<Membership>, RootfsError> {
        let text = read_proc("/proc/self/cgroup")?;
        Ok(text.lines().filter_map(parse_membership).collect())
    }

    fn parse_membership(line: &str) -> Option<Membership> {
        let mut fields = line.splitn(3, ':');
        let _id = fields.next()?;
        let controllers = fields.next()?;
        let path = fields.next()?;
        let controllers = controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        Some(Membership {
            controllers,
            path: PathBuf::from(path),
        })
    }

    fn read_hierarchies() -> Result<Vec<Hierarchy>, RootfsError> {
        let text = read_proc("/proc/self/mountinfo")?;
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for hierarchy in text.lines().filter_map(parse_hierarchy) {
            // A path mounted twice keeps its last (visible) mount.
            hierarchies.retain(|h| h.mount_point != hierarchy.mount_point);
            hierarchies.push(hierarchy);
        }
        Ok(hierarchies)
    }

    /// A mountinfo line of a cgroup or cgroup2 mount directly under
    /// /sys/fs/cgroup.
    fn parse_hierarchy(line: &str) -> Option<Hierarchy> {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let (root, mount_point) = (fields.get(3)?, fields.get(4)?);
        let after: Vec<&str> = after.split(' ').collect();
        let (fstype, super_options) = (after.first()?, after.get(2)?);
        let mount_point = PathBuf::from(mount_point);
        let is_cgroup = *fstype == "cgroup" || *fstype == "cgroup2";
        if !is_cgroup || mount_point.parent() != Some(Path::new(CGROUP_ROOT)) {
            return None;
        }
        Some(Hierarchy {
            root: PathBuf::from(root),
            mount_point,
            fstype: fstype.to_string(),
            super_options: super_options.split(',').map(String::from).collect(),
        })
    }

    fn read_proc(path: &str) -> Result<String, RootfsError> {
        crate::utils::read_proc_text(path)
            .map_err(|e| RootfsError::sys("read", path, crate::utils::io_errno(&e)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn hybrid_hierarchies_are_found() {
            let line =
                "35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct";
            let h = parse_hierarchy(line).unwrap();
            assert_eq!(h.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
            let m = parse_membership("3:cpu,cpuacct:/a/b").unwrap();
            assert!(belongs_to(&m, &h));
            assert_eq!(
                own_directory(&h, &[m]).unwrap(),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b")
            );
            assert!(parse_hierarchy("36 25 0:31 / /sys/fs/cgroup rw - tmpfs tmpfs rw").is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Result<MountOptions, RootfsError> {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        parse_options(&options, Path::new("/dst"))
    }

    #[test]
    fn flags_propagation_attrs_and_data_are_split() {
        let parsed = parse(&[
            "rbind",
            "ro",
            "nosuid",
            "rslave",
            "rnoexec",
            "mode=755",
            "size=65536k",
        ])
        .unwrap();
        assert_eq!(
            parsed.flags,
            libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID
        );
        assert_eq!(parsed.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert_eq!((parsed.attr_set, parsed.attr_clr), (MOUNT_ATTR_NOEXEC, 0));
        assert_eq!(parsed.data, "mode=755,size=65536k");
    }

    #[test]
    fn later_options_win() {
        let parsed = parse(&["ro", "rw", "noexec", "exec", "nodev"]).unwrap();
        assert_eq!(parsed.flags, libc::MS_NODEV);
        assert_eq!(parsed.cleared, libc::MS_RDONLY | libc::MS_NOEXEC);
    }

    #[test]
    fn recursive_atime_clears_the_whole_mask() {
        let parsed = parse(&["rnoatime"]).unwrap();
        assert_eq!(
            (parsed.attr_set, parsed.attr_clr),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK)
        );
    }

    #[test]
    fn destinations_are_cleaned_lexically() {
        for (raw, clean) in [
            ("/proc", "/proc"),
            ("/x/../proc/./sys", "/proc/sys"),
            ("/../../proc", "/proc"),
            ("/procfoo", "/procfoo"),
        ] {
            assert_eq!(lexical_clean(Path::new(raw)), PathBuf::from(clean));
        }
        assert!(!lexical_clean(Path::new("/procfoo")).starts_with("/proc"));
    }

    #[test]
    fn unsupported_options_name_option_and_mount() {
        let err = parse(&["rw", "tmpcopyup"]).unwrap_err().to_string();
        assert!(err.contains("tmpcopyup") && err.contains("/dst"), "{err}");
        assert_eq!(parse(&["rbind", "ridmap"]).unwrap().data, "");
        assert!(parse(&["tmpcopyup"]).is_err());
    }
}
