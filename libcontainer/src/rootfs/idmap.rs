//! Id-mapped bind mounts: `mounts[].uidMappings` and `gidMappings`, and the
//! `idmap` and `ridmap` options (without mappings they take the
//! container's own user namespace's), as runc reads them.
//!
//! A file's owner on disk is shown through the mount as the id the
//! mapping gives it: with `{"containerID": 0, "hostID": 1000, "size": 1}`
//! a file of uid 0 appears as uid 1000 (the host side; inside a container
//! user namespace, whatever that id maps to there), and ids outside the
//! mapping appear as the overflow id (65534) and cannot be written.
//!
//! The kernel sets the mapping only on a detached mount, and only for a
//! caller privileged over the mapping's user namespace, whose ids are
//! relative to the host's. So the bootstrap, still in the host's
//! namespaces, makes them ([`IdmappedTrees::prepare`]): per distinct
//! mapping a user namespace (a short-lived child of its own that
//! unshares one), then per mount `open_tree(OPEN_TREE_CLONE)` of the
//! source and `mount_setattr(MOUNT_ATTR_IDMAP)`. The init inherits the
//! fds with its clone and attaches each tree with move_mount in the
//! mount's turn ([`super::mounts::mount_entry`]): in a container user
//! namespace too, where it could not have made them.

use super::mounts::{mount_setattr, open_tree_clone, parse_options, MountAttr};
use super::RootfsError;
use crate::utils::{clone3_fork, Forked};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// What an id-mapped mount maps, and how deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mappings {
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
    /// `ridmap`: every mount of an `rbind` tree, not only its top.
    pub recursive: bool,
}

/// A refused id-mapped mount: the field (below `mounts[i]`) and why.
pub(crate) type Refusal = (&'static str, String);

/// The mappings of `mount`, `None` when it is not id-mapped.
pub(crate) fn mappings(spec: &Spec, mount: &Mount) -> Result<Option<Mappings>, Refusal> {
    let options = mount.options().as_deref().unwrap_or_default();
    let option = options
        .iter()
        .rev()
        .find(|o| *o == "idmap" || *o == "ridmap");
    let explicit = mount.uid_mappings().is_some() || mount.gid_mappings().is_some();
    if option.is_none() && !explicit {
        return Ok(None);
    }
    let bind = mount.typ().as_deref() == Some("bind")
        || options.iter().any(|o| o == "bind" || o == "rbind");
    if !bind {
        return Err((
            "type",
            "id-mapped mounts are bind mounts only (type \"bind\" or option bind/rbind)".into(),
        ));
    }
    let (uid, gid) = if explicit {
        let uid = mount.uid_mappings().clone().unwrap_or_default();
        let gid = mount.gid_mappings().clone().unwrap_or_default();
        (uid, gid)
    } else {
        own_user_namespace_mappings(spec).ok_or((
            "options",
            "idmap/ridmap without uidMappings and gidMappings takes the container's, \
             which needs a new user namespace with both"
                .to_string(),
        ))?
    };
    if uid.is_empty() || gid.is_empty() {
        return Err((
            "uidMappings",
            "an id-mapped mount needs both uidMappings and gidMappings".into(),
        ));
    }
    if uid.iter().chain(&gid).any(|m| m.size() == 0) {
        return Err(("uidMappings", "a mapping of size 0".into()));
    }
    Ok(Some(Mappings {
        uid,
        gid,
        recursive: option.is_some_and(|o| o == "ridmap"),
    }))
}

/// `linux.uidMappings` and `gidMappings` of a container that makes its own
/// user namespace (one joined by path has its maps elsewhere).
fn own_user_namespace_mappings(spec: &Spec) -> Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)> {
    let linux = spec.linux().as_ref()?;
    let new_user_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if !new_user_ns {
        return None;
    }
    let uid = linux.uid_mappings().clone().filter(|m| !m.is_empty())?;
    let gid = linux.gid_mappings().clone().filter(|m| !m.is_empty())?;
    Some((uid, gid))
}

/// The detached, id-mapped trees, by index in `mounts`.
#[derive(Debug, Default)]
pub struct IdmappedTrees(Vec<(usize, OwnedFd)>);

impl IdmappedTrees {
    /// The tree for `mounts[index]`, if it is id-mapped.
    pub fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.0
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }

    /// In the bootstrap, before any namespace is joined: a detached,
    /// id-mapped copy of the source of every id-mapped mount (relative
    /// sources are relative to `bundle`). `proc` is the bootstrap's own
    /// procfs, for the helper's id maps.
    ///
    /// # Safety
    /// The calling process must be single-threaded: the user namespaces
    /// come from forked children.
    pub unsafe fn prepare(
        spec: &Spec,
        bundle: &Path,
        proc: &crate::procfs::ProcfsHandle,
    ) -> Result<Self, RootfsError> {
        let mut trees = Vec::new();
        let mut namespaces: Vec<(Mappings, OwnedFd)> = Vec::new();
        for (index, mount) in spec.mounts().iter().flatten().enumerate() {
            let destination = Path::new("/").join(mount.destination());
            let refused = |(field, why): Refusal| {
                RootfsError::Invalid(format!(
                    "mounts[{index}].{field} ({}): {why}",
                    destination.display()
                ))
            };
            let Some(maps) = mappings(spec, mount).map_err(refused)? else {
                continue;
            };
            let source = bundle.join(mount.source().as_deref().unwrap_or(Path::new("")));
            let failed = |op: &'static str| {
                let (source, destination) = (source.clone(), destination.clone());
                move |errno| RootfsError::Idmap {
                    index,
                    destination: destination.display().to_string(),
                    source_path: source.display().to_string(),
                    op,
                    errno,
                }
            };
            let key = Mappings {
                recursive: false,
                ..maps.clone()
            };
            let known = namespaces.iter().position(|(k, _)| *k == key);
            let slot = match known {
                Some(slot) => slot,
                None => {
                    // SAFETY: single-threaded, as our own caller guarantees.
                    let fd =
                        unsafe { user_namespace(proc, &maps) }.map_err(failed("user namespace"))?;
                    namespaces.push((key, fd));
                    namespaces.len() - 1
                }
            };
            let userns = namespaces[slot].1.as_fd();
            let options = parse_options(mount.options().as_deref().unwrap_or(&[]), &destination)?;
            let tree = open_tree(&source, options.flags & libc::MS_REC != 0)
                .map_err(failed("open_tree"))?;
            set_idmap(tree.as_fd(), userns, maps.recursive)
                .map_err(failed("mount_setattr(MOUNT_ATTR_IDMAP)"))?;
            trees.push((index, tree));
        }
        Ok(IdmappedTrees(trees))
    }
}

/// A user namespace with `maps`: a child unshares it (clone3 with
/// CLONE_NEWUSER), we write its maps and open its namespace, and it exits.
///
/// # Safety
/// The calling process must be single-threaded.
unsafe fn user_namespace(
    proc: &crate::procfs::ProcfsHandle,
    maps: &Mappings,
) -> Result<OwnedFd, Errno> {
    let (done_r, done_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the caller guarantees a single thread; the child only reads a
    // pipe and exits.
    match unsafe { clone3_fork(libc::CLONE_NEWUSER as u64, None) }? {
        Forked::Child => {
            drop(done_w);
            let mut byte = [0u8; 1];
            while let Err(Errno::EINTR) = nix::unistd::read(done_r.as_raw_fd(), &mut byte) {}
            // SAFETY: _exit ends this forked child without running the
            // parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { pid, pidfd } => {
            drop(done_r);
            let opened = write_maps(proc, pid, maps).and_then(|()| {
                proc.open_namespace(pid, "user").map_err(|e| match e {
                    crate::procfs::ProcfsError::Open { errno, .. } => errno,
                    _ => Errno::EINVAL,
                })
            });
            drop(done_w);
            let _ = crate::utils::wait_pidfd_exit_code(&pidfd);
            opened
        }
    }
}

fn write_maps(proc: &crate::procfs::ProcfsHandle, pid: i32, maps: &Mappings) -> Result<(), Errno> {
    for (file, maps) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let text = crate::namespaces::format_map(maps);
        proc.write(&format!("{pid}/{file}"), &text)
            .map_err(|e| match e {
                crate::procfs::ProcfsError::Write { errno, .. }
                | crate::procfs::ProcfsError::Open { errno, .. } => errno,
                _ => Errno::EINVAL,
            })?;
    }
    Ok(())
}

fn open_tree(source: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    let path =
        std::ffi::CString::new(source.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    open_tree_clone(&path, recursive)
}

fn set_idmap(tree: BorrowedFd, userns: BorrowedFd, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(tree, if recursive { libc::AT_RECURSIVE } else { 0 }, &attr)
}

/// Puts the detached `tree` on `target` (an O_PATH fd in the rootfs).
pub(crate) fn attach(tree: BorrowedFd, target: BorrowedFd) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two fds and static empty C strings; the kernel reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn mount_of(spec: &Spec) -> Mount {
        spec.mounts().as_ref().unwrap()[0].clone()
    }

    #[test]
    fn explicit_mappings_of_a_bind_mount() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"bind","source":"/s",
            "options":["rbind","ridmap"],
            "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
            "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}]}"#,
        );
        let maps = mappings(&s, &mount_of(&s)).unwrap().unwrap();
        assert!(maps.recursive);
        assert_eq!(maps.uid[0].host_id(), 1000);
    }

    #[test]
    fn not_id_mapped_without_option_or_mappings() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"bind","source":"/s"}]}"#,
        );
        assert!(mappings(&s, &mount_of(&s)).unwrap().is_none());
    }

    #[test]
    fn refusals_name_the_field() {
        let not_bind = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"tmpfs","source":"t",
            "uidMappings":[{"containerID":0,"hostID":1,"size":1}],
            "gidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#,
        );
        assert_eq!(
            mappings(&not_bind, &mount_of(&not_bind)).unwrap_err().0,
            "type"
        );
        let uid_only = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"bind","source":"/s",
            "uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#,
        );
        assert_eq!(
            mappings(&uid_only, &mount_of(&uid_only)).unwrap_err().0,
            "uidMappings"
        );
        let no_userns = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"bind","source":"/s",
            "options":["idmap"]}]}"#,
        );
        assert_eq!(
            mappings(&no_userns, &mount_of(&no_userns)).unwrap_err().0,
            "options"
        );
    }

    #[test]
    fn idmap_alone_takes_the_containers_user_namespace() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/d","type":"bind","source":"/s",
            "options":["bind","idmap"]}],
            "linux":{"namespaces":[{"type":"user"},{"type":"mount"}],
            "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
            "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
        );
        let maps = mappings(&s, &mount_of(&s)).unwrap().unwrap();
        assert!(!maps.recursive);
        assert_eq!(maps.gid[0].host_id(), 100000);
    }
}
