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
pub mod mounts;
pub mod paths;

use oci_spec::runtime::Spec;
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
    #[error("{0}")]
    Invalid(String),
}

pub fn prepare(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    todo!("rootfs::prepare")
}

pub fn pivot(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    todo!("rootfs::pivot")
}

pub fn finalize(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    todo!("rootfs::finalize")
}
