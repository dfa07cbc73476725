//! Device nodes in the container's /dev: the default devices, `linux.devices`,
//! the /dev symlinks and /dev/ptmx. Inside a user namespace mknod is refused,
//! so the host's node is bind mounted onto an empty file instead (runc).

use super::mounts::{raw_mount, DIR_MODE};
use super::paths::{mkdir_all_in_root, mkfile_in_root, open_in_root, proc_fd_path, split_parent};
use super::{RootfsContext, RootfsError};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The default devices of config-linux.md "Default Devices".
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(name, major, minor)| DeviceNode {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major: *major,
        minor: *minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The symlinks of config-linux.md "Default Devices" (/dev/core only when
/// the host has /proc/kcore, as runc).
fn default_symlinks() -> Vec<(&'static str, &'static str)> {
    let mut links = vec![
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/dev/core", "/proc/kcore"));
    }
    links
}

/// /dev is the host's (a bind mount) when a mount says so: then nothing is
/// created in it.
pub fn dev_is_bind_mounted(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        let is_bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        is_bind && Path::new("/").join(m.destination()) == Path::new("/dev")
    })
}

/// Converts a `linux.devices` entry (fileMode defaults to 0666, owner to root).
pub fn from_spec(device: &LinuxDevice) -> Result<DeviceNode, RootfsError> {
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RootfsError::Invalid(format!(
                "linux.devices {}: type \"a\" is not a device node type",
                device.path().display()
            )))
        }
    };
    let number = |n: i64, what: &str| {
        u64::try_from(n).map_err(|_| {
            RootfsError::Invalid(format!(
                "linux.devices {}: negative {what} {n}",
                device.path().display()
            ))
        })
    };
    Ok(DeviceNode {
        path: Path::new("/").join(device.path()),
        kind,
        major: number(device.major(), "major")?,
        minor: number(device.minor(), "minor")?,
        mode: device.file_mode().unwrap_or(0o666) & 0o7777,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    })
}

/// Every device to create: the configured ones, then the defaults the
/// configuration does not override.
pub fn all_devices(spec: &Spec) -> Result<Vec<DeviceNode>, RootfsError> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let mut nodes = configured
        .iter()
        .map(from_spec)
        .collect::<Result<Vec<_>, _>>()?;
    for default in default_devices() {
        if !nodes.iter().any(|n| n.path == default.path) {
            nodes.push(default);
        }
    }
    Ok(nodes)
}

/// Creates the devices, the /dev symlinks and /dev/ptmx, unless /dev is a
/// bind mount of the host's.
pub fn setup_dev(ctx: &RootfsContext, root: BorrowedFd) -> Result<(), RootfsError> {
    if dev_is_bind_mounted(ctx.spec) {
        return Ok(());
    }
    for node in all_devices(ctx.spec)? {
        create_device(ctx, root, &node)?;
    }
    for (link, target) in default_symlinks() {
        create_symlink(root, Path::new(link), Path::new(target))?;
    }
    setup_ptmx(root)
}

/// Creates one device node: mknod, or a bind of the host's node in a user
/// namespace. An existing node is left alone (runc).
pub fn create_device(
    ctx: &RootfsContext,
    root: BorrowedFd,
    node: &DeviceNode,
) -> Result<(), RootfsError> {
    if ctx.in_user_ns {
        return bind_host_device(root, node);
    }
    let (parent, name) = split_parent(&node.path)
        .ok_or_else(|| RootfsError::Invalid(format!("device path {}", node.path.display())))?;
    let dir = mkdir_all_in_root(root, &parent, Mode::from_bits_truncate(DIR_MODE))
        .map_err(|e| RootfsError::sys("mkdir", &parent, e))?;
    let dev = nix::sys::stat::makedev(node.major, node.minor);
    // The umask must not narrow the mode: chmod after mknod.
    match nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, node.kind, Mode::empty(), dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return check_existing(dir.as_raw_fd(), name, node, dev),
        // Without CAP_MKNOD (a user namespace the caller did not tell us
        // about, or a restricted bounding set) the host node still works.
        Err(Errno::EPERM) => return bind_host_device(root, node),
        Err(e) => return Err(RootfsError::sys("mknod", &node.path, e)),
    }
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        Mode::from_bits_truncate(node.mode),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| RootfsError::sys("chmod", &node.path, e))?;
    let (uid, gid) = (Some(Uid::from_raw(node.uid)), Some(Gid::from_raw(node.gid)));
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        uid,
        gid,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| RootfsError::sys("chown", &node.path, e))
}

/// The spec: a file already at a device's path that is not that device is
/// an error (never silently replaced, never silently kept).
fn check_existing(
    dir: std::os::fd::RawFd,
    name: &std::ffi::OsStr,
    node: &DeviceNode,
    dev: libc::dev_t,
) -> Result<(), RootfsError> {
    let st = nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| RootfsError::sys("stat", &node.path, e))?;
    let kind =
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT;
    let same_node =
        kind == node.kind && (kind == nix::sys::stat::SFlag::S_IFIFO || st.st_rdev == dev);
    if same_node {
        return Ok(());
    }
    Err(RootfsError::Invalid(format!(
        "linux.devices: {} exists and is not the requested device {}:{}",
        node.path.display(),
        node.major,
        node.minor
    )))
}

/// The host's node at the same path, bound onto an empty file.
fn bind_host_device(root: BorrowedFd, node: &DeviceNode) -> Result<(), RootfsError> {
    let target = mkfile_in_root(root, &node.path, Mode::from_bits_truncate(DIR_MODE))
        .map_err(|e| RootfsError::sys("create device bind target", &node.path, e))?;
    raw_mount(
        Some(&node.path),
        &proc_fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        "",
    )
    .map_err(|e| RootfsError::sys("bind host device", &node.path, e))
}

/// `link` -> `target` inside the root; an existing entry is kept.
fn create_symlink(root: BorrowedFd, link: &Path, target: &Path) -> Result<(), RootfsError> {
    let (parent, name) = split_parent(link)
        .ok_or_else(|| RootfsError::Invalid(format!("symlink {}", link.display())))?;
    let dir = mkdir_all_in_root(root, &parent, Mode::from_bits_truncate(DIR_MODE))
        .map_err(|e| RootfsError::sys("mkdir", &parent, e))?;
    match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(RootfsError::sys("symlink", link, e)),
    }
}

/// With a devpts on /dev/pts, /dev/ptmx must be its ptmx (newinstance).
fn setup_ptmx(root: BorrowedFd) -> Result<(), RootfsError> {
    let pts = match open_in_root(
        root,
        Path::new("/dev/pts"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::sys("open", "/dev/pts", e)),
    };
    let stat = nix::sys::statfs::fstatfs(pts.as_fd())
        .map_err(|e| RootfsError::sys("statfs", "/dev/pts", e))?;
    if stat.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Ok(());
    }
    let dev = open_in_root(root, Path::new("/dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| RootfsError::sys("open", "/dev", e))?;
    match nix::unistd::unlinkat(Some(dev.as_raw_fd()), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(RootfsError::sys("unlink", "/dev/ptmx", e)),
    }
    nix::unistd::symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .map_err(|e| RootfsError::sys("symlink", "/dev/ptmx", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn configured_devices_override_defaults() {
        let spec = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "linux": {"devices": [
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
            ]}
        }));
        let nodes = all_devices(&spec).unwrap();
        assert_eq!(nodes.len(), 7);
        assert_eq!(
            nodes
                .iter()
                .find(|n| n.path == Path::new("/dev/null"))
                .unwrap()
                .mode,
            0o600
        );
        assert_eq!(
            nodes
                .iter()
                .find(|n| n.path == Path::new("/dev/fuse"))
                .unwrap()
                .mode,
            0o666
        );
    }

    #[test]
    fn dev_bind_is_detected() {
        let spec = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "mounts": [{"destination": "/dev", "type": "none", "source": "/dev", "options": ["rbind"]}]
        }));
        assert!(dev_is_bind_mounted(&spec));
    }
}
