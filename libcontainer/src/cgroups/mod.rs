//! The container's cgroup: resolving `linux.cgroupsPath`, creating it and
//! applying `linux.resources` through the `libcgroups` crate, and removing
//! it.
//!
//! Safety rule: libcgroups given an empty path manages the *caller's own*
//! cgroup, and its remove() SIGKILLs every process in it. Every path that
//! reaches libcgroups here went through [`resolve_path`], which refuses
//! anything without a real component; and rrun removes only cgroups it
//! created itself.

pub mod freezer;
pub mod resources;
pub mod stats;

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, CgroupSetup,
    ControllerOpt,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use std::path::{Component, Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// v1 hierarchies probed, in order, to see whether a cgroup exists.
const PROBE_HIERARCHIES: &[&str] = &["pids", "memory", "cpu", "devices", "freezer"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("linux.cgroupsPath {path:?}: {why}")]
    BadPath { path: PathBuf, why: &'static str },
    #[error("cgroup {path}: {why}")]
    Manager { path: PathBuf, why: String },
}

fn manager_err(path: &Path) -> impl Fn(String) -> CgroupError + '_ {
    move |why| CgroupError::Manager {
        path: path.to_path_buf(),
        why,
    }
}

/// The absolute cgroup path (relative to each hierarchy's root) for a
/// container. A missing cgroupsPath gets `/rrun/<id>`: a cgroup of its own,
/// never the caller's. A relative path is taken under the caller's own
/// cgroup on a unified host, as runc does; on v1 and hybrid hosts libcgroups
/// takes one path for every hierarchy, so there it is taken from the
/// hierarchies' roots.
pub fn resolve_path(spec: &Spec, id: &str) -> Result<PathBuf, CgroupError> {
    let configured = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let path = match configured {
        None => PathBuf::from("/rrun").join(id),
        Some(p) if p.as_os_str().is_empty() => PathBuf::from("/rrun").join(id),
        Some(p) if p.is_absolute() => p,
        Some(p) if is_unified() => own_v2_cgroup().join(p),
        Some(p) => Path::new("/").join(p),
    };
    check_path(&path)?;
    Ok(path)
}

/// Refuse the root, `..`, and anything that would make libcgroups manage a
/// cgroup other than the container's own.
fn check_path(path: &Path) -> Result<(), CgroupError> {
    let bad = |why| {
        Err(CgroupError::BadPath {
            path: path.to_path_buf(),
            why,
        })
    };
    if path.components().any(|c| c == Component::ParentDir) {
        return bad("must not contain '..'");
    }
    if !path.components().any(|c| matches!(c, Component::Normal(_))) {
        return bad("resolves to the root cgroup");
    }
    if path.to_str().is_some_and(|s| s.contains(':')) {
        return bad("systemd slice:prefix:name paths need --systemd-cgroup (not supported yet)");
    }
    Ok(())
}

fn is_unified() -> bool {
    matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(CgroupSetup::Unified)
    )
}

fn own_v2_cgroup() -> PathBuf {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(PathBuf::from))
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Whether the cgroup directory exists already (then rrun did not create
/// it and will not remove it).
pub fn exists(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if is_unified() {
        return Path::new(CGROUP_ROOT).join(rel).is_dir();
    }
    PROBE_HIERARCHIES
        .iter()
        .map(|h| Path::new(CGROUP_ROOT).join(h))
        .find(|h| h.is_dir())
        .is_some_and(|h| h.join(rel).is_dir())
}

/// A container's cgroup.
pub struct Cgroup {
    pub path: PathBuf,
    pub(crate) manager: AnyCgroupManager,
}

impl Cgroup {
    pub fn open(path: &Path) -> Result<Cgroup, CgroupError> {
        check_path(path)?;
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: false,
            container_name: String::new(),
        })
        .map_err(|e| manager_err(path)(e.to_string()))?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            manager,
        })
    }

    /// Put `pid` in the cgroup (creating it), then apply the limits.
    pub fn join_and_apply(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        self.manager
            .add_task(Pid::from_raw(pid))
            .map_err(|e| manager_err(&self.path)(format!("adding pid {pid}: {e}")))?;
        if let Some(unified) = self.hybrid_unified_dir() {
            join_unified(&unified, pid)
                .map_err(|e| manager_err(&unified)(format!("adding pid {pid}: {e}")))?;
        }
        if let Some(resources) = resources {
            let opt = ControllerOpt {
                resources,
                disable_oom_killer: resources
                    .memory()
                    .as_ref()
                    .and_then(|m| m.disable_oom_killer())
                    .unwrap_or(false),
                oom_score_adj: None,
                freezer_state: None,
            };
            self.manager
                .apply(&opt)
                .map_err(|e| manager_err(&self.path)(format!("linux.resources: {e}")))?;
        }
        Ok(())
    }

    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.manager
            .get_all_pids()
            .map(|p| p.into_iter().map(|p| p.as_raw()).collect())
            .map_err(|e| manager_err(&self.path)(e.to_string()))
    }

    /// Remove the cgroup; libcgroups SIGKILLs what is left in it first.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.manager
            .remove()
            .map_err(|e| manager_err(&self.path)(format!("remove: {e}")))?;
        if let Some(unified) = self.hybrid_unified_dir() {
            match std::fs::remove_dir(&unified) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(manager_err(&unified)(format!("remove: {e}")))
                }
                _ => {}
            }
        }
        self.remove_empty_default_parent();
        Ok(())
    }

    /// On a hybrid host the container also gets its own directory in the
    /// cgroup2 tree at /sys/fs/cgroup/unified (as runc does): that is what
    /// its cgroup mount shows there, never the caller's.
    fn hybrid_unified_dir(&self) -> Option<PathBuf> {
        matches!(
            libcgroups::common::get_cgroup_setup(),
            Ok(CgroupSetup::Hybrid)
        )
        .then(|| {
            Path::new(CGROUP_ROOT)
                .join("unified")
                .join(self.path.strip_prefix("/").unwrap_or(&self.path))
        })
    }

    /// `/rrun`, the parent of default paths, goes when its last child does.
    fn remove_empty_default_parent(&self) {
        if self.path.parent() != Some(Path::new("/rrun")) {
            return;
        }
        for h in PROBE_HIERARCHIES.iter().chain(
            [
                "cpuacct",
                "cpuset",
                "blkio",
                "net_cls",
                "perf_event",
                "hugetlb",
            ]
            .iter(),
        ) {
            // Fails harmlessly with ENOTEMPTY/EBUSY while other containers use it.
            let _ = std::fs::remove_dir(Path::new(CGROUP_ROOT).join(h).join("rrun"));
        }
        let _ = std::fs::remove_dir(Path::new(CGROUP_ROOT).join("rrun"));
    }
}

fn join_unified(dir: &Path, pid: i32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(path: Option<&str>) -> Spec {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_cgroups_path(path.map(PathBuf::from));
        spec.set_linux(Some(linux));
        spec
    }

    #[test]
    fn default_path_is_never_the_callers_cgroup() {
        let p = resolve_path(&spec_with(None), "abc").unwrap();
        assert_eq!(p, PathBuf::from("/rrun/abc"));
        let p = resolve_path(&spec_with(Some("")), "abc").unwrap();
        assert_eq!(p, PathBuf::from("/rrun/abc"));
    }

    #[test]
    fn root_and_parent_paths_are_refused() {
        for bad in ["/", "/..", "/a/../.."] {
            assert!(resolve_path(&spec_with(Some(bad)), "x").is_err(), "{bad}");
        }
        assert!(Cgroup::open(Path::new("")).is_err());
        assert!(Cgroup::open(Path::new("/")).is_err());
    }
}
