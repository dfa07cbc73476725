//! The container's cgroup: resolving `linux.cgroupsPath`, creating it,
//! applying `linux.resources` and removing it. On v1 and hybrid hosts rrun
//! writes the v1 files itself ([`v1`]: what libcgroups' v1 controllers
//! write, without the cost of building its manager); on cgroup v2 hosts
//! and with the systemd driver it goes through the `libcgroups` crate.
//!
//! Safety rule: libcgroups given an empty path manages the *caller's own*
//! cgroup, and its remove() SIGKILLs every process in it; a v1 directory
//! joined from an empty path is a hierarchy's root. Every path used here
//! went through `resolve_path`/`check_path`, which refuse anything without
//! a real component; and rrun removes only cgroups it created itself.
//!
//! For embedders: [`stats`] (what [`crate::container::stats`] reports) and
//! [`CgroupError`]; the rest is the library's.

#[doc(hidden)] // building block, pub for the project's tests only
pub mod devices_bpf;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod freezer;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod resources;
pub mod stats;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod systemd;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod v1;

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, CgroupSetup,
    ControllerOpt,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// v1 hierarchies probed, in order, to see whether a cgroup exists.
const PROBE_HIERARCHIES: &[&str] = &["pids", "memory", "cpu", "devices", "freezer"];

/// Why the container's cgroup could not be made, changed or removed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `linux.cgroupsPath` is refused (the root cgroup, `..`, a systemd
    /// path without `systemd_cgroup`...): nothing was made.
    #[error("linux.cgroupsPath {path:?}: {why}")]
    BadPath {
        /// The path as configured or resolved.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// libcgroups (or a direct write to the cgroup's files) failed.
    #[error("cgroup {path}: {why}")]
    Manager {
        /// The cgroup, or the file.
        path: PathBuf,
        /// libcgroups' words, or the errno.
        why: String,
    },
    /// `linux.resources` asks for what this host cannot do, or its
    /// controllers cannot be read.
    #[error(transparent)]
    Resources(#[from] resources::ResourceError),
    /// The systemd cgroup driver (`systemd_cgroup`) needs a cgroup v2 host
    /// with systemd as init, and this is not one.
    #[error("--systemd-cgroup: {0}")]
    Systemd(String),
    /// The cgroup v2 device filter (eBPF) could not be loaded or attached.
    #[error(transparent)]
    Devices(#[from] devices_bpf::DeviceFilterError),
}

fn manager_err(path: &Path) -> impl Fn(String) -> CgroupError + '_ {
    move |why| CgroupError::Manager {
        path: path.to_path_buf(),
        why,
    }
}

/// The container's cgroup path as it is recorded in its state: with
/// `--systemd-cgroup`, runc's `slice:prefix:name` form (checked, an empty
/// one becomes `system.slice:runc:<id>`); otherwise see [`resolve_path`].
pub(crate) fn resolve(spec: &Spec, id: &str, systemd_cgroup: bool) -> Result<PathBuf, CgroupError> {
    if !systemd_cgroup {
        return resolve_path(spec, id);
    }
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    systemd::convert(&configured, id)?;
    if configured.is_empty() {
        return Ok(PathBuf::from(format!("system.slice:runc:{id}")));
    }
    Ok(PathBuf::from(configured))
}

/// The absolute cgroup path (relative to each hierarchy's root) for a
/// container. A missing cgroupsPath gets `/rrun/<id>`: a cgroup of its own,
/// never the caller's. A relative path is taken under the caller's own
/// cgroup, as runc does: on a unified host under its cgroup2 path's parent
/// (the caller's own cgroup holds processes); on v1 and
/// hybrid hosts its path when it is the same in every hierarchy (libcgroups
/// takes one path for all). When the caller's paths differ between
/// hierarchies (runc would then put the container in a different place in
/// each), rrun takes it from the hierarchies' roots instead.
pub(crate) fn resolve_path(spec: &Spec, id: &str) -> Result<PathBuf, CgroupError> {
    let configured = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let path = match configured {
        None => PathBuf::from("/rrun").join(id),
        Some(p) if p.as_os_str().is_empty() => PathBuf::from("/rrun").join(id),
        Some(p) if p.is_absolute() => p,
        Some(p) if is_unified() => own_v2_cgroup().join(p),
        Some(p) => own_v1_cgroup().join(p),
    };
    check_path(&path)?;
    Ok(path)
}

/// Refuse the root, `..`, and anything that would make libcgroups manage a
/// cgroup other than the container's own.
fn check_path(path: &Path) -> Result<(), CgroupError> {
    let bad = |why: &str| {
        Err(CgroupError::BadPath {
            path: path.to_path_buf(),
            why: why.to_string(),
        })
    };
    if path.components().any(|c| c == Component::ParentDir) {
        return bad("must not contain '..'");
    }
    if !path.components().any(|c| matches!(c, Component::Normal(_))) {
        return bad("resolves to the root cgroup");
    }
    if is_systemd_form(path) {
        return bad("systemd slice:prefix:name paths need --systemd-cgroup");
    }
    Ok(())
}

/// Only `--systemd-cgroup` records a path with colons (others are refused).
fn is_systemd_form(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.contains(':'))
}

/// Refuse, before anything is created, a `linux.resources` that asks for a
/// controller this host lacks; on a host already probed (a caller that then
/// opens the cgroup with [`Cgroup::open_on`] reads mountinfo once).
pub(crate) fn check_resources_on(
    host: &resources::Host,
    resources: &LinuxResources,
) -> Result<(), CgroupError> {
    Ok(resources::check(host, resources)?)
}

fn is_unified() -> bool {
    matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(CgroupSetup::Unified)
    )
}

/// Where a relative cgroupsPath goes on a cgroup v2 host: under the
/// PARENT of the caller's own cgroup, as runc does. The caller's own cgroup
/// holds processes (a systemd service's, a session scope), and cgroup v2's
/// no-internal-processes rule keeps a child with controllers from living
/// under it (adding a process there fails with EOPNOTSUPP).
fn own_v2_cgroup() -> PathBuf {
    let own = crate::utils::read_proc_text("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(PathBuf::from))
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    own.parent().map(Path::to_path_buf).unwrap_or(own)
}

/// The caller's cgroup in the v1 hierarchies if it is the same in all of
/// them, else `/` (see [`resolve_path`]).
fn own_v1_cgroup() -> PathBuf {
    let text = crate::utils::read_proc_text("/proc/self/cgroup").unwrap_or_default();
    let mut paths = text.lines().filter_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let real = !controllers.is_empty() && !controllers.starts_with("name=");
        real.then_some(path)
    });
    let first = paths.next().unwrap_or("/");
    if paths.all(|p| p == first) {
        return PathBuf::from(first);
    }
    tracing::warn!(
        "this process is in different cgroups in different v1 hierarchies: \
         a relative cgroupsPath is taken from the hierarchies' roots"
    );
    PathBuf::from("/")
}

/// The cgroup's directory relative to each hierarchy's root, for a path
/// [`resolve`] gave: a systemd `slice:prefix:name` path is converted to
/// the directory systemd makes for it.
pub(crate) fn relative_dir(path: &Path) -> Result<PathBuf, CgroupError> {
    let dir = if is_systemd_form(path) {
        systemd::convert(path.to_str().unwrap_or_default(), "")?.dir
    } else {
        check_path(path)?;
        path.to_path_buf()
    };
    Ok(dir.strip_prefix("/").map(Path::to_path_buf).unwrap_or(dir))
}

/// Whether the cgroup directory exists already (then rrun did not create
/// it and will not remove it).
pub(crate) fn exists(path: &Path) -> bool {
    let Ok(rel) = relative_dir(path) else {
        return false;
    };
    if is_unified() || is_systemd_form(path) {
        return Path::new(CGROUP_ROOT).join(rel).is_dir();
    }
    PROBE_HIERARCHIES
        .iter()
        .map(|h| Path::new(CGROUP_ROOT).join(h))
        .find(|h| h.is_dir())
        .is_some_and(|h| h.join(rel).is_dir())
}

/// A container's cgroup, for one command. The host's cgroup layout is
/// probed (one mountinfo read) when it is opened, and every step of the
/// command (prepare, apply, remove...) uses that; a long-running embedder
/// opens it anew per command, so nothing goes stale.
pub(crate) struct Cgroup {
    pub path: PathBuf,
    host: resources::Host,
    /// libcgroups' manager, on a cgroup v2 host and with systemd. `None` on
    /// v1 and hybrid hosts: rrun writes the v1 files itself ([`v1`]).
    manager: Option<AnyCgroupManager>,
    /// Managed through systemd (`--systemd-cgroup`): no hybrid cgroup2
    /// directory of our own then, and no direct writes.
    systemd: bool,
}

/// libcgroups' cgroupfs manager for `path` (checked by the caller).
fn libcgroups_manager(path: &Path) -> Result<AnyCgroupManager, CgroupError> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: false,
        container_name: String::new(),
    })
    .map_err(|e| manager_err(path)(e.to_string()))
}

impl Cgroup {
    /// The cgroup at a path [`resolve`] gave (recorded in the state): a
    /// `slice:prefix:name` path goes through libcgroups' systemd manager.
    pub fn open(path: &Path) -> Result<Cgroup, CgroupError> {
        Cgroup::open_on(path, resources::Host::probe()?)
    }

    /// [`Cgroup::open`] on a host the caller probed already (for
    /// [`check_resources_on`], say).
    pub fn open_on(path: &Path, host: resources::Host) -> Result<Cgroup, CgroupError> {
        if is_systemd_form(path) {
            return Cgroup::open_systemd(path, host);
        }
        check_path(path)?;
        // libcgroups' v1 manager is not built: its constructor alone costs
        // ~700 syscalls (mountinfo and /proc/self/cgroup re-read through a
        // verified procfs handle for each of its controllers).
        let manager = if host.is_unified() {
            Some(libcgroups_manager(path)?)
        } else {
            None
        };
        Ok(Cgroup {
            path: path.to_path_buf(),
            host,
            manager,
            systemd: false,
        })
    }

    /// libcgroups' systemd manager exists for cgroup v2 only, and needs
    /// systemd as init: anything else is a clear refusal, never a cgroupfs
    /// directory named after the colon path.
    fn open_systemd(path: &Path, host: resources::Host) -> Result<Cgroup, CgroupError> {
        let text = path.to_str().unwrap_or_default();
        let converted = systemd::convert(text, "")?;
        if !systemd::booted() {
            return Err(CgroupError::Systemd(format!(
                "cgroupsPath {text:?} needs systemd, but systemd is not running on \
                 this host (no /run/systemd/system); run without --systemd-cgroup"
            )));
        }
        if !host.is_unified() {
            return Err(CgroupError::Systemd(format!(
                "cgroupsPath {text:?}: the systemd cgroup driver needs a cgroup v2 host; \
                 this host has v1 hierarchies"
            )));
        }
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: true,
            container_name: converted.unit.clone(),
        })
        .map_err(|e| manager_err(path)(e.to_string()))?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            host,
            manager: Some(manager),
            systemd: true,
        })
    }

    /// On a v1 or hybrid host, make the cgroup ready for a process that
    /// enters it itself ([`SelfJoin`]): its directory in every v1
    /// hierarchy, named ones (`name=systemd`) included as runc does (a new
    /// cpuset one gets its parent's cpus and mems, without which nothing
    /// can join it) and, on a hybrid host, in the cgroup2 tree. `None` on a cgroup v2 host or with systemd: there
    /// the caller uses [`Cgroup::join`].
    ///
    /// Why: moving another process (writing its pid to cgroup.procs) takes
    /// the kernel's cgroup_threadgroup_rwsem for writing, which waits for
    /// an RCU grace period: 12-18 ms here, most of what `create` cost. A
    /// single-threaded process writing "0" to a v1 `tasks` file moves
    /// itself without that lock (0.1 ms), and clone3(CLONE_INTO_CGROUP)
    /// starts a child in a cgroup2 directory without any migration.
    pub fn prepare_self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        if self.systemd || self.host.is_unified() {
            return Ok(None);
        }
        let rel = self.relative();
        let mut tasks = Vec::new();
        let cpuset = self.host.v1.get("cpuset");
        for mount in self.host.v1_mount_points() {
            let dir = mount.join(rel);
            std::fs::create_dir_all(&dir).map_err(|e| manager_err(&dir)(format!("mkdir: {e}")))?;
            if cpuset == Some(&mount) {
                inherit_cpuset(&dir)?;
            }
            tasks.push(dir.join("tasks"));
        }
        let unified = self.hybrid_unified_dir();
        if let Some(dir) = &unified {
            std::fs::create_dir_all(dir).map_err(|e| manager_err(dir)(format!("mkdir: {e}")))?;
        }
        Ok(Some(SelfJoin { tasks, unified }))
    }

    /// Put `pid` in the cgroup (creating it), also in the hybrid cgroup2 tree.
    /// On v1 and hybrid hosts create uses [`Cgroup::prepare_self_join`]
    /// instead; libcgroups' v1 manager is built here only.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        let built;
        let manager = match &self.manager {
            Some(manager) => manager,
            None => {
                built = libcgroups_manager(&self.path)?;
                &built
            }
        };
        manager
            .add_task(Pid::from_raw(pid))
            .map_err(|e| manager_err(&self.path)(format!("adding pid {pid}: {e}")))?;
        if let Some(unified) = &self.hybrid_unified_dir() {
            join_unified(unified, pid)
                .map_err(|e| manager_err(unified)(format!("adding pid {pid}: {e}")))?;
        }
        Ok(())
    }

    /// Write `resources` (at create, and for `update`): on v1 and hybrid
    /// hosts the v1 files ourselves ([`v1::apply`]), elsewhere through
    /// libcgroups; then what libcgroups never did (cpu burst alone, blkio
    /// leaf and device weights, hybrid hugetlb, v2 and systemd fixes).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let host = &self.host;
        let filtered = resources::for_libcgroups(host, resources);
        let disable_oom_killer = resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false);
        let err =
            |e: &dyn std::fmt::Display| manager_err(&self.path)(format!("linux.resources: {e}"));
        match &self.manager {
            None => v1::apply(host, self.relative(), &filtered, disable_oom_killer)
                .map_err(|e| err(&e))?,
            Some(manager) => self
                .apply_libcgroups(manager, filtered, disable_oom_killer)
                .map_err(|e| err(&e))?,
        }
        if !self.systemd {
            let v1_dir = |controller: &str| {
                host.v1
                    .get(controller)
                    .map(|mount| mount.join(self.relative()))
            };
            let unified = self.hybrid_unified_dir();
            resources::apply_extras(host, resources, &v1_dir, unified.as_deref())?;
        }
        if host.is_unified() {
            let dir = Path::new(CGROUP_ROOT).join(relative_dir(&self.path)?);
            if self.systemd {
                resources::apply_systemd_extras(&dir, resources)?;
            } else {
                resources::apply_v2_extras(&dir, resources)?;
            }
            resources::write_rdma_v2(&dir, resources)?;
        }
        Ok(())
    }

    /// libcgroups' v2 or systemd manager: cgroupfs on v2 gets cpu.weight,
    /// io.weight and a zero swap from [`resources::apply_v2_extras`]
    /// instead, systemd gets [`resources::for_systemd`]'s properties.
    fn apply_libcgroups(
        &self,
        manager: &AnyCgroupManager,
        mut filtered: LinuxResources,
        disable_oom_killer: bool,
    ) -> Result<(), libcgroups::common::AnyManagerError> {
        if self.systemd {
            filtered = resources::for_systemd(&filtered);
        } else if self.host.is_unified() {
            filtered = resources::without_v2_extras(&filtered);
        }
        manager.apply(&ControllerOpt {
            resources: &filtered,
            disable_oom_killer,
            oom_score_adj: None,
            freezer_state: None,
        })
    }

    /// On a cgroup v2 host, enforce `linux.resources.devices` (and the
    /// devices every container gets) with a device program attached to the
    /// cgroup: cgroup2 has no devices controller, and libcgroups applies
    /// none without its libbpf-based feature. Called once, at create (each
    /// attachment adds a program; `update` does not change devices). On
    /// v1 and hybrid hosts the v1 devices controller does it.
    pub fn restrict_devices(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if !self.host.is_unified() {
            return Ok(());
        }
        let dir = Path::new(CGROUP_ROOT).join(relative_dir(&self.path)?);
        let devices = resources.devices().as_deref().unwrap_or_default();
        Ok(devices_bpf::apply(&dir, devices)?)
    }

    fn relative(&self) -> &Path {
        self.path.strip_prefix("/").unwrap_or(&self.path)
    }

    /// Every process in the cgroup and its children. On v1 and hybrid
    /// hosts they are read from the devices hierarchy, as libcgroups' v1
    /// manager does (every container has a directory there).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let err = manager_err(&self.path);
        if let Some(manager) = &self.manager {
            return manager
                .get_all_pids()
                .map(|p| p.into_iter().map(|p| p.as_raw()).collect())
                .map_err(|e| err(e.to_string()));
        }
        let devices = self
            .host
            .v1
            .get("devices")
            .ok_or_else(|| err("no v1 devices hierarchy to read its processes from".into()))?;
        v1::pids_below(&devices.join(self.relative())).map_err(|e| err(e.to_string()))
    }

    /// Remove the cgroup, SIGKILLing what is left in it first. On v1 and
    /// hybrid hosts every v1 hierarchy's directory (named ones such as
    /// `name=systemd` included) goes the way libcgroups removes its own,
    /// then the hybrid cgroup2 one.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let rel = self.relative();
        if rel.as_os_str().is_empty() {
            // Never a hierarchy's root (check_path already refuses it).
            return Err(CgroupError::BadPath {
                path: self.path.clone(),
                why: "resolves to the root cgroup".to_string(),
            });
        }
        match &self.manager {
            Some(manager) => manager
                .remove()
                .map_err(|e| manager_err(&self.path)(format!("remove: {e}")))?,
            None => {
                for mount in self.host.v1_mount_points() {
                    remove_killing(&mount.join(rel))?;
                }
            }
        }
        if let Some(unified) = self.hybrid_unified_dir() {
            match std::fs::remove_dir(&unified) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(manager_err(&unified)(format!("remove: {e}")))
                }
                _ => {}
            }
        }
        remove_empty_default_parent(&self.path, &self.host.hierarchy_mount_points());
        Ok(())
    }

    /// On a hybrid host the container also gets its own directory in the
    /// cgroup2 tree at /sys/fs/cgroup/unified (as runc does): that is what
    /// its cgroup mount shows there, never the caller's.
    fn hybrid_unified_dir(&self) -> Option<PathBuf> {
        if self.systemd || !matches!(self.host.setup, CgroupSetup::Hybrid) {
            return None;
        }
        Some(Path::new(CGROUP_ROOT).join("unified").join(self.relative()))
    }
}

/// `/rrun`, the parent of default paths, goes when its last child does.
fn remove_empty_default_parent(path: &Path, hierarchies: &[PathBuf]) {
    if path.parent() != Some(Path::new("/rrun")) {
        return;
    }
    for hierarchy in hierarchies {
        // Fails harmlessly with ENOTEMPTY/EBUSY while other containers use it.
        let _ = std::fs::remove_dir(hierarchy.join("rrun"));
    }
}

/// Removes the cgroup `path` (not a systemd one) when no process is left
/// in it, with one read of mountinfo and an rmdir per hierarchy: what
/// `delete` of a stopped container needs (the kernel refuses to remove a
/// cgroup that holds a process, EBUSY, or a child cgroup, ENOTEMPTY, so
/// nothing is read first). Building a libcgroups manager for it costs ~700
/// syscalls (it re-reads /proc/self/mountinfo and /proc/self/cgroup per
/// controller). Returns false when a directory cannot go: then
/// [`Cgroup::remove`], which kills and retries, must do the rest (a
/// hierarchy already done here is fine for it).
pub(crate) fn remove_if_empty(path: &Path) -> bool {
    if is_systemd_form(path) {
        return false;
    }
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        return false;
    }
    let Ok(host) = resources::Host::probe() else {
        return false;
    };
    let hierarchies = host.hierarchy_mount_points();
    let removed = hierarchies
        .iter()
        .all(|mount| match std::fs::remove_dir(mount.join(rel)) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        });
    if removed {
        remove_empty_default_parent(path, &hierarchies);
    }
    removed
}

/// Removes the cgroup directory `dir` (one of the container's own, never a
/// hierarchy's root) as libcgroups removes its own: SIGKILL to every
/// process left in it, then rmdir, retried while they exit. A directory
/// that is not there is fine.
fn remove_killing(dir: &Path) -> Result<(), CgroupError> {
    let err = manager_err(dir);
    let mut delay = std::time::Duration::from_millis(10);
    for _ in 0..6 {
        let procs = match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(procs) => procs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(format!("reading cgroup.procs: {e}"))),
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => std::thread::sleep(delay),
        }
        delay = (delay * 2).min(std::time::Duration::from_millis(200));
    }
    std::fs::remove_dir(dir).map_err(|e| err(format!("remove: {e}")))
}

/// How a process enters a cgroup by itself, from [`Cgroup::prepare_self_join`]:
/// the bootstrap writes "0" to each `tasks` file (v1 hierarchies: it moves
/// itself, being single-threaded) and clones the init into `unified` (the
/// hybrid host's cgroup2 directory) with CLONE_INTO_CGROUP.
#[doc(hidden)] // building block, pub for the project's tests only
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SelfJoin {
    pub tasks: Vec<PathBuf>,
    pub unified: Option<PathBuf>,
}

impl SelfJoin {
    /// Whether the init is cloned into a cgroup2 directory: then a cgroup
    /// namespace cannot come from clone3 (it would be rooted at the
    /// bootstrap's cgroup) and the init unshares it once born.
    pub fn clones_into_cgroup(&self) -> bool {
        self.unified.is_some()
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and the kernel
/// refuses tasks until they are set: take the parent's, as libcgroups and
/// runc do.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if !current.trim().is_empty() {
            continue;
        }
        let Some(parent) = dir.parent() else { continue };
        let read_parent = || {
            std::fs::read_to_string(parent.join(file))
                .map_err(|e| manager_err(&path)(format!("reading the parent's {file}: {e}")))
        };
        let mut value = read_parent()?;
        if value.trim().is_empty() {
            // A parent made just now for a nested path: fill it first.
            inherit_cpuset(parent)?;
            value = read_parent()?;
        }
        std::fs::write(&path, value.trim())
            .map_err(|e| manager_err(&path)(format!("write: {e}")))?;
    }
    Ok(())
}

fn join_unified(dir: &Path, pid: i32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemd_path_is_found_where_systemd_puts_it() {
        let rel = relative_dir(Path::new("system.slice:docker:abc")).unwrap();
        assert_eq!(rel, Path::new("system.slice/docker-abc.scope"));
        let freezer = freezer::freezer_for(Path::new("system.slice:docker:abc")).unwrap();
        let dir = match freezer {
            freezer::Freezer::V1(dir) | freezer::Freezer::V2(dir) => dir,
        };
        assert!(dir.ends_with("system.slice/docker-abc.scope"), "{dir:?}");
        assert_eq!(relative_dir(Path::new("/a/b")).unwrap(), Path::new("a/b"));
        assert!(relative_dir(Path::new("/a/../b")).is_err());
    }

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

    /// Opening makes nothing, and on v1 and hybrid hosts builds no
    /// libcgroups manager (its constructor is the ~700 syscalls this
    /// module avoids); cgroup v2 keeps libcgroups.
    #[test]
    fn opening_on_v1_builds_no_libcgroups_manager() {
        let path = Path::new("/rrun-test-open-only");
        let Ok(cgroup) = Cgroup::open(path) else {
            eprintln!("no cgroup layout detected: skipped");
            return;
        };
        assert_eq!(cgroup.manager.is_some(), cgroup.host.is_unified());
        assert!(!exists(path), "open made the cgroup");
    }
}
