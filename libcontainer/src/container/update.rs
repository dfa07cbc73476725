//! `update`: change a container's resources, as `runc update` does.
//!
//! The request is merged into the container's current resources (the last
//! update's, kept in `<root>/<id>/resources.json`, or the bundle's config at
//! create) because some values only make sense together: v1 memory and
//! memory+swap must be written in an order the kernel accepts, v2 swap is
//! computed from the memory limit, v2 cpu.max holds quota and period.
//! As in runc, a zero means "leave unchanged" for the memory values, cpu
//! shares/quota/period/realtime values, the blkio weight and the pids limit;
//! kernel memory limits are ignored.

use super::ContainerError;
use crate::cgroups::stats::Layout;
use crate::cgroups::{Cgroup, CgroupError};
use crate::state::{State, StateDir, Status};
use crate::utils::io_errno;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::{Path, PathBuf};

/// Where the resources of the last update are kept.
const RESOURCES_FILE: &str = "resources.json";

/// A LinuxResources JSON document (`runc update --resources`); `source`
/// names where it came from in the error.
pub fn parse_resources(source: &str, data: &[u8]) -> Result<LinuxResources, ContainerError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de)
        .map_err(|e| ContainerError::Setup(format!("resources {source}: {e}")))
}

/// Change the resources of a container that is not stopped, as `runc
/// update` does: `request` is merged into the current resources (kept
/// under `<root>/<id>/`, never re-read from the bundle), checked against
/// the host, and applied to its cgroup. As in runc, a zero leaves a memory
/// value, cpu shares, quota, period or realtime value, the blkio weight or
/// the pids limit unchanged, and kernel memory limits are ignored; devices
/// and `disableOOMKiller` stay as create set them.
pub fn update(root: &Path, id: &str, request: &LinuxResources) -> Result<(), ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    if status == Status::Stopped {
        return Err(ContainerError::WrongStatus {
            id: id.to_string(),
            status,
            message: "container not running".to_string(),
        });
    }
    let base = current_resources(&dir.path);
    let asked = updatable(&with_runc_defaults(request));
    // What the host lacks (swap accounting, realtime budget...) is one line
    // naming the field, as at create, not the cgroup library's write error.
    let host = crate::cgroups::resources::Host::probe().map_err(CgroupError::from)?;
    crate::cgroups::resources::check(&host, &asked)
        .map_err(|e| ContainerError::Setup(format!("container {id}: update: {e}")))?;
    let merged = merge(&updatable(&base), &asked);
    check_blkio_weight(&state, &merged)?;

    let cgroup = Cgroup::open(&state.cgroup_path)?;
    let mut to_apply = merged.clone();
    // Replaying the container's own device rules keeps v1's devices cgroup
    // as create left it (libcgroups always re-adds its default rules).
    to_apply.set_devices(base.devices().clone());
    // The container's own disableOOMKiller stays as create set it.
    if let Some(mut memory) = *to_apply.memory() {
        memory.set_disable_oom_killer(base.memory().and_then(|m| m.disable_oom_killer()));
        to_apply.set_memory(Some(memory));
    }
    cgroup
        .apply(&to_apply)
        .map_err(|e| ContainerError::Setup(format!("container {id}: update: {e}")))?;
    // Saved with the devices and disableOOMKiller create set: `merged` has
    // them stripped, and the next update would lose them (libcgroups then
    // writes oom_kill_disable 0).
    let mut saved = to_apply;
    if saved.memory().is_none() {
        saved.set_memory(*base.memory());
    }
    save(&dir.path, id, &saved)
}

/// The container's resources now: saved by create and by every update
/// (never re-read from the bundle, which may have changed since create).
fn current_resources(state_dir: &Path) -> LinuxResources {
    std::fs::read(state_dir.join(RESOURCES_FILE))
        .ok()
        .and_then(|data| serde_json::from_slice(&data).ok())
        .unwrap_or_default()
}

pub(crate) fn save(
    state_dir: &Path,
    id: &str,
    merged: &LinuxResources,
) -> Result<(), ContainerError> {
    let path = state_dir.join(RESOURCES_FILE);
    let data = serde_json::to_vec(merged)
        .map_err(|e| ContainerError::Setup(format!("container {id}: {e}")))?;
    crate::utils::write_atomic(&path, &data)
        .map_err(|e| ContainerError::sys(id, "write", path.display())(io_errno(&e)))
}

/// runc: a memory limit of -1 without a swap value means "no limit on
/// memory+swap either".
fn with_runc_defaults(request: &LinuxResources) -> LinuxResources {
    let mut r = request.clone();
    if let Some(mut memory) = *r.memory() {
        if memory.limit() == Some(-1) && memory.swap().is_none() {
            memory.set_swap(Some(-1));
            r.set_memory(Some(memory));
        }
    }
    r
}

fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// Only what `update` changes, with runc's "zero means unchanged" values
/// taken out (so they neither reach libcgroups nor replace a current value).
fn updatable(r: &LinuxResources) -> LinuxResources {
    let mut out = LinuxResources::default();
    if let Some(m) = r.memory() {
        let mut memory = LinuxMemory::default();
        memory.set_limit(nonzero(m.limit()));
        memory.set_reservation(nonzero(m.reservation()));
        memory.set_swap(nonzero(m.swap()));
        memory.set_check_before_update(m.check_before_update());
        out.set_memory(Some(memory));
    }
    if let Some(c) = r.cpu() {
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(nonzero(c.shares()));
        cpu.set_quota(nonzero(c.quota()));
        cpu.set_burst(c.burst());
        cpu.set_period(nonzero(c.period()));
        cpu.set_realtime_runtime(nonzero(c.realtime_runtime()));
        cpu.set_realtime_period(nonzero(c.realtime_period()));
        cpu.set_cpus(nonempty(c.cpus()));
        cpu.set_mems(nonempty(c.mems()));
        cpu.set_idle(c.idle());
        out.set_cpu(Some(cpu));
    }
    if let Some(weight) = r.block_io().as_ref().and_then(|b| nonzero(b.weight())) {
        let mut block_io = LinuxBlockIo::default();
        block_io.set_weight(Some(weight));
        out.set_block_io(Some(block_io));
    }
    if let Some(pids) = r.pids().filter(|p| p.limit() != 0) {
        out.set_pids(Some(pids));
    }
    out.set_unified(r.unified().clone().filter(|u| !u.is_empty()));
    out
}

/// `update`'s values over `base`'s, field by field. Both went through
/// [`updatable`], so a None in `update` means "unchanged".
fn merge(base: &LinuxResources, update: &LinuxResources) -> LinuxResources {
    let mut out = LinuxResources::default();
    let (bm, um) = (
        base.memory().unwrap_or_default(),
        update.memory().unwrap_or_default(),
    );
    let mut memory = LinuxMemory::default();
    memory.set_limit(um.limit().or(bm.limit()));
    memory.set_reservation(um.reservation().or(bm.reservation()));
    memory.set_swap(um.swap().or(bm.swap()));
    memory.set_check_before_update(um.check_before_update().or(bm.check_before_update()));
    if memory != LinuxMemory::default() {
        out.set_memory(Some(memory));
    }

    let (bc, uc) = (
        base.cpu().clone().unwrap_or_default(),
        update.cpu().clone().unwrap_or_default(),
    );
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(uc.shares().or(bc.shares()));
    cpu.set_quota(uc.quota().or(bc.quota()));
    cpu.set_burst(uc.burst().or(bc.burst()));
    cpu.set_period(uc.period().or(bc.period()));
    cpu.set_realtime_runtime(uc.realtime_runtime().or(bc.realtime_runtime()));
    cpu.set_realtime_period(uc.realtime_period().or(bc.realtime_period()));
    cpu.set_cpus(uc.cpus().clone().or(bc.cpus().clone()));
    cpu.set_mems(uc.mems().clone().or(bc.mems().clone()));
    cpu.set_idle(uc.idle().or(bc.idle()));
    if cpu != LinuxCpu::default() {
        out.set_cpu(Some(cpu));
    }

    out.set_block_io(update.block_io().clone().or(base.block_io().clone()));
    out.set_pids(update.pids().or(*base.pids()));
    out.set_unified(match (base.unified(), update.unified()) {
        (Some(b), Some(u)) => Some(b.clone().into_iter().chain(u.clone()).collect()),
        (b, u) => u.clone().or(b.clone()),
    });
    out
}

/// A blkio weight on a host whose blkio cgroup has no weight file (no CFQ
/// or BFQ scheduler) cannot be applied: say so instead of failing on a
/// missing file.
fn check_blkio_weight(state: &State, merged: &LinuxResources) -> Result<(), ContainerError> {
    if merged
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .is_none()
    {
        return Ok(());
    }
    let (dir, files): (Option<PathBuf>, &[&str]) = match Layout::of(&state.cgroup_path) {
        Layout::V1(dirs) => (
            dirs.get("blkio").cloned(),
            &["blkio.weight", "blkio.bfq.weight"],
        ),
        Layout::V2(dir) => (Some(dir), &["io.weight", "io.bfq.weight"]),
    };
    if dir.is_some_and(|d| files.iter().any(|f| d.join(f).exists())) {
        return Ok(());
    }
    Err(ContainerError::Setup(format!(
        "container {}: blockIO.weight: the cgroup {} has no {} file on this host \
         (no CFQ/BFQ I/O scheduler)",
        state.id,
        state.cgroup_path.display(),
        files.join(" or ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn zeros_leave_values_unchanged() {
        let base = parse(
            r#"{"memory":{"limit":1000,"reservation":500,"swap":2000},
                "cpu":{"shares":512,"quota":10000,"period":100000},
                "blockIO":{"weight":300},"pids":{"limit":64}}"#,
        );
        let request = parse(
            r#"{"memory":{"limit":134217728,"reservation":0,"swap":268435456,"kernel":0},
                "cpu":{"shares":0,"quota":50000,"period":100000},"blockIO":{"weight":0}}"#,
        );
        let merged = merge(&updatable(&base), &updatable(&with_runc_defaults(&request)));
        let m = merged.memory().unwrap();
        assert_eq!(m.limit(), Some(134217728));
        assert_eq!(m.swap(), Some(268435456));
        assert_eq!(m.reservation(), Some(500));
        assert_eq!(m.kernel(), None);
        let c = merged.cpu().clone().unwrap();
        assert_eq!((c.shares(), c.quota()), (Some(512), Some(50000)));
        assert_eq!(merged.block_io().as_ref().unwrap().weight(), Some(300));
        assert_eq!(merged.pids().unwrap().limit(), 64);
    }

    #[test]
    fn unlimited_memory_unlimits_swap_too() {
        let request = parse(r#"{"memory":{"limit":-1}}"#);
        let merged = merge(
            &updatable(&parse(r#"{"memory":{"limit":1000,"swap":1000}}"#)),
            &updatable(&with_runc_defaults(&request)),
        );
        assert_eq!(merged.memory().unwrap().swap(), Some(-1));
    }

    #[test]
    fn empty_request_changes_nothing() {
        let base = updatable(&parse(r#"{"cpu":{"cpus":"0"},"pids":{"limit":10}}"#));
        let merged = merge(&base, &updatable(&parse("{}")));
        assert_eq!(merged, base);
    }
}
