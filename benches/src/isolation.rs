//! The private world the benchmark runs in: a mount namespace where a hybrid
//! host looks like pure cgroup v1, and the cgroup parent directories that
//! the runtimes create on our behalf.

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
use std::fs;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

/// Leading directory of every container's cgroupsPath.
pub const CGROUP_PARENT: &str = "rrun-bench";

/// How the cgroups looked once we were inside our namespace.
#[derive(Clone, Copy)]
pub enum CgroupView {
    /// The host was hybrid; its empty cgroup2 mount is hidden from us.
    HybridShownAsV1,
    /// A v1 layout whose `/sys/fs/cgroup/unified` holds something else than
    /// cgroup2 (a tmpfs someone mounted over it, a bare directory): covered
    /// all the same, since crun writes there.
    V1UnifiedCovered,
    /// Nothing to hide (pure v1 without `unified`, or pure v2).
    AsHost,
}

/// Moves this (still single-threaded) process into a private mount
/// namespace and, on a hybrid host, hides the cgroup2 mount there.
pub fn enter_private_mount_namespace() -> Result<CgroupView> {
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private (mount MS_REC|MS_PRIVATE)")?;
    hide_hybrid_cgroup2()
}

/// On a hybrid host, hides the cgroup2 mount of the current mount
/// namespace, which must be a private one (the caller's duty: on the
/// host's own namespace this would unmount the host's cgroup2).
///
/// crun 1.8 refuses hybrid hosts, so every runtime is measured in the same
/// v1-only view for a fair comparison. The cgroup2 mount is replaced by an
/// empty tmpfs rather than just unmounted: crun still writes a `cgroup.procs`
/// file there, and that must land in a throwaway filesystem, not in the
/// host's /sys/fs/cgroup tmpfs under the hidden mount.
///
/// Where `/sys/fs/cgroup/unified` is there but holds no cgroup2 (a host
/// whose cgroup2 someone covered, say with a tmpfs of their own), the
/// stand-in goes on top all the same: crun's `cgroup.procs` files must not
/// land in the host's filesystem, whatever it is.
pub fn hide_hybrid_cgroup2() -> Result<CgroupView> {
    let view = match unified()? {
        Unified::Absent => return Ok(CgroupView::AsHost),
        Unified::Cgroup2 => {
            umount2(HYBRID_UNIFIED, MntFlags::MNT_DETACH)
                .with_context(|| format!("umount {HYBRID_UNIFIED}"))?;
            CgroupView::HybridShownAsV1
        }
        Unified::Other => CgroupView::V1UnifiedCovered,
    };
    mount_stand_in()?;
    Ok(view)
}

/// An empty tmpfs on the hidden cgroup2 mount point.
fn mount_stand_in() -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("rrun-bench"),
        HYBRID_UNIFIED,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .with_context(|| format!("mount tmpfs on {HYBRID_UNIFIED}"))
}

/// After [`hide_hybrid_cgroup2`] hid it: a fresh, empty tmpfs on top of the
/// stand-in. What crun wrote there (a directory and a `cgroup.procs` file
/// per container) is no cgroup, but a cleanup that walks every hierarchy
/// for the engines' cgroup parents would wait for it to go.
pub fn fresh_cgroup2_stand_in(view: &CgroupView) -> Result<()> {
    match view {
        CgroupView::HybridShownAsV1 | CgroupView::V1UnifiedCovered => mount_stand_in(),
        CgroupView::AsHost => Ok(()),
    }
}

/// What `/sys/fs/cgroup/unified` is on a v1 layout (a tmpfs at
/// /sys/fs/cgroup).
enum Unified {
    /// Not a v1 layout, or no `unified` there.
    Absent,
    /// A hybrid host's cgroup2 mount.
    Cgroup2,
    /// A directory holding anything else.
    Other,
}

fn unified() -> Result<Unified> {
    let root = statfs(CGROUP_ROOT).with_context(|| format!("statfs {CGROUP_ROOT}"))?;
    if root.filesystem_type() != TMPFS_MAGIC {
        return Ok(Unified::Absent);
    }
    match statfs(HYBRID_UNIFIED) {
        Ok(fs) if fs.filesystem_type() == CGROUP2_SUPER_MAGIC => Ok(Unified::Cgroup2),
        Ok(_) => Ok(Unified::Other),
        Err(nix::errno::Errno::ENOENT) => Ok(Unified::Absent),
        Err(e) => bail!("statfs {HYBRID_UNIFIED}: {e}"),
    }
}

/// The `<hierarchy>/rrun-bench` directories that did not exist before the
/// benchmark; only those are removed at the end.
pub struct CgroupParents {
    ours: Vec<PathBuf>,
}

impl CgroupParents {
    pub fn record() -> Result<Self> {
        let ours = parent_candidates()?
            .into_iter()
            .filter(|p| !p.exists())
            .collect();
        Ok(Self { ours })
    }

    /// rmdir (never recursive: a non-empty cgroup is a leak to report).
    pub fn remove(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for dir in self.ours.iter().filter(|p| p.exists()) {
            if let Err(e) = fs::remove_dir(dir) {
                problems.push(format!("rmdir {}: {e}", dir.display()));
            }
        }
        problems
    }
}

/// `/sys/fs/cgroup/rrun-bench` on cgroup v2, `/sys/fs/cgroup/<hierarchy>/rrun-bench`
/// for every mounted cgroup (v1) hierarchy otherwise.
fn parent_candidates() -> Result<Vec<PathBuf>> {
    let root = Path::new(CGROUP_ROOT);
    if is_cgroup_fs(root) {
        return Ok(vec![root.join(CGROUP_PARENT)]);
    }
    let entries = fs::read_dir(root).with_context(|| format!("read_dir {CGROUP_ROOT}"))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("read_dir {CGROUP_ROOT}"))?
            .path();
        if is_cgroup_fs(&path) {
            found.push(path.join(CGROUP_PARENT));
        }
    }
    Ok(found)
}

fn is_cgroup_fs(path: &Path) -> bool {
    statfs(path).is_ok_and(|fs| {
        let kind = fs.filesystem_type();
        kind == CGROUP_SUPER_MAGIC || kind == CGROUP2_SUPER_MAGIC
    })
}

/// What every mode that makes containers sets up first and undoes last:
/// root checked, a private mount namespace (a hybrid host shown as v1), the
/// subreaper, the load average at the start, a temporary directory and the
/// cgroup parents as they were.
pub struct Session {
    pub view: CgroupView,
    pub load_at_start: String,
    pub tmp: PathBuf,
    pub parents: CgroupParents,
}

impl Session {
    /// Call first, while the process is single-threaded (unshare and the
    /// subreaper need it). `mode` names the temporary directory.
    pub fn begin(mode: &str) -> Result<Session> {
        if !nix::unistd::geteuid().is_root() {
            bail!("rrun-bench must run as root (it creates real containers)");
        }
        let view = enter_private_mount_namespace()?;
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
        Ok(Session {
            view,
            load_at_start: crate::report::load_average(),
            tmp: std::env::temp_dir().join(format!("rrun-bench-{mode}-{}", std::process::id())),
            parents: CgroupParents::record()?,
        })
    }

    /// After the containers are deleted: reaps, removes the cgroup parents
    /// we caused and the temporary directory. What could not be removed.
    pub fn end(&self) -> Vec<String> {
        crate::runtime::reap_exited_children();
        let mut problems = self.parents.remove();
        if self.tmp.exists() {
            if let Err(e) = fs::remove_dir_all(&self.tmp) {
                problems.push(format!("rm -r {}: {e}", self.tmp.display()));
            }
        }
        problems
    }
}
