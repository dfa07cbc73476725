//! linux.namespaces: which namespaces the init gets new (clone flags), which
//! it joins by path (setns in the bootstrap, before the clone), the time
//! namespace (unshare + offsets, since clone cannot set offsets first), and
//! the uid/gid maps of a new user namespace.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("linux.namespaces: {op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("linux.namespaces: {0}")]
    Procfs(#[from] crate::procfs::ProcfsError),
}

fn sys<'a>(op: &'static str, path: &'a Path) -> impl Fn(Errno) -> NamespaceError + 'a {
    move |errno| NamespaceError::Sys {
        op,
        path: path.to_path_buf(),
        errno,
    }
}

pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// What the config asks of namespaces.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces the clone creates (never the time namespace).
    pub clone_flags: CloneFlags,
    /// A new time namespace, made by unshare in the bootstrap.
    pub new_time: bool,
    /// Namespaces to join, in the order to join them.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn new(spec: &Spec) -> Plan {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            new_time: false,
            join: Vec::new(),
        };
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
        for ns in namespaces.unwrap_or_default() {
            match (ns.typ(), ns.path()) {
                (typ, Some(path)) => plan.join.push((typ, path.clone())),
                (LinuxNamespaceType::Time, None) => plan.new_time = true,
                (typ, None) => plan.clone_flags |= clone_flag(typ),
            }
        }
        // The user namespace first: it grants the rights to join the others.
        // The mount namespace last: after it, paths resolve in another tree.
        plan.join.sort_by_key(|(typ, _)| match typ {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        plan
    }

    pub fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }

    pub fn in_user_ns(&self) -> bool {
        self.new_user() || self.joins(LinuxNamespaceType::User)
    }

    pub fn joins(&self, typ: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(t, _)| *t == typ)
    }

    /// setns() into every namespace given by path. All files are opened
    /// before the first setns so that every path resolves on the host.
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        let mut fds = Vec::with_capacity(self.join.len());
        for (typ, path) in &self.join {
            let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(sys("open", path))?;
            // SAFETY: open just returned this fd to us.
            fds.push((*typ, path, unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        for (typ, path, fd) in &fds {
            nix::sched::setns(fd.as_fd(), clone_flag(*typ)).map_err(sys("setns", path))?;
        }
        Ok(())
    }
}

/// Whether the container shares the caller's mount namespace: no `mount`
/// entry in `linux.namespaces`, or one whose path is the caller's own
/// mount namespace or that of pid 1 (the host's). Such a container gets no
/// mount, no pivot_root and no propagation change of rrun's: those would
/// land in a mount namespace rrun did not make for it (the host's `/`).
pub fn shares_callers_mounts(spec: &Spec) -> Result<bool, NamespaceError> {
    let mount = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|list| list.iter().find(|ns| ns.typ() == LinuxNamespaceType::Mount));
    let Some(mount) = mount else {
        return Ok(true);
    };
    let Some(path) = mount.path() else {
        return Ok(false);
    };
    let joined = ns_identity(path)?;
    Ok(["/proc/self/ns/mnt", "/proc/1/ns/mnt"]
        .iter()
        .any(|own| ns_identity(Path::new(own)).is_ok_and(|id| id == joined)))
}

/// A namespace file's (device, inode): equal for the same namespace.
fn ns_identity(path: &Path) -> Result<(u64, u64), NamespaceError> {
    let st = nix::sys::stat::stat(path).map_err(sys("stat", path))?;
    Ok((st.st_dev, st.st_ino))
}

/// Make a new time namespace for our future children and set its offsets;
/// offsets can only be written before any process is in it. They are
/// written through `proc`, a procfs handle opened before any namespace was
/// joined (a joined mount namespace's /proc is not ours to trust).
pub fn unshare_time(
    proc: &crate::procfs::ProcfsHandle,
    linux: Option<&Linux>,
) -> Result<(), NamespaceError> {
    let path = Path::new("/proc/self/timens_offsets");
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .map_err(sys("unshare(CLONE_NEWTIME)", path))?;
    let offsets = linux
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    let mut text = String::new();
    for (clock, off) in &offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        proc.write_self("timens_offsets", &text)?;
    }
    Ok(())
}

/// Write uid_map and gid_map of `pid` (a pid of our own pid namespace), a
/// process in a new user namespace, through `proc`, a procfs handle of our
/// pid namespace opened before any namespace was joined.
pub fn write_id_maps(
    proc: &crate::procfs::ProcfsHandle,
    pid: i32,
    linux: &Linux,
) -> Result<(), NamespaceError> {
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text = format_map(maps.as_deref().unwrap_or_default());
        proc.write(&format!("{pid}/{file}"), &text)?;
    }
    Ok(())
}

/// `maps` as uid_map and gid_map take them: a line per range.
pub(crate) fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}
