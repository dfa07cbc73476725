//! `linux.resources` on cgroup v1 hierarchies (v1 and hybrid hosts), written
//! by rrun itself: the writes libcgroups 0.7's v1 controllers do, in their
//! order and with their edge cases, without building libcgroups' v1
//! manager.
//!
//! Why: that manager's constructor looks up each of its twelve controllers
//! by re-reading /proc/self/mountinfo and /proc/self/cgroup through a
//! freshly verified procfs handle (fstatfs, statx, openat2, faccessat2 per
//! lookup): about 700 system calls and 0.8 ms per `create`, for writes that
//! are a handful of small files. [`super::resources::Host`] already knows
//! every v1 hierarchy from one mountinfo read.
//!
//! What is written (and what libcgroups does, kept here on purpose):
//! * the controllers the resources need are checked first, all of them,
//!   before anything is written: one missing hierarchy is an error and
//!   nothing is changed. `devices` is always needed (its default rules);
//!   `network` needs both `net_cls` and `net_prio`, whichever it sets;
//!   `memory` is needed as soon as the memory object is there.
//! * then each controller in libcgroups' controller order (its own order
//!   was a HashMap's, i.e. any): cpu, cpuset, devices, hugetlb, memory,
//!   pids, blkio, net_prio, net_cls.
//!
//! The caller filters the resources first
//! ([`super::resources::for_libcgroups`]: runc's "unset" values, kernel
//! memory) and writes what libcgroups never did itself
//! ([`super::resources::apply_extras`]).

use super::resources::Host;
use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxHugepageLimit,
    LinuxMemory, LinuxNetwork, LinuxResources,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a v1 write (or the read it depends on) failed.
#[derive(Debug, thiserror::Error)]
pub enum V1Error {
    /// The resources need a controller this host has no hierarchy for.
    #[error(
        "cgroup {0} is required to fulfill the request, but this host has no v1 {0} hierarchy"
    )]
    Missing(&'static str),
    /// A cgroup file could not be opened or written.
    #[error("writing {value:?} to {path}: {errno}")]
    Write {
        path: PathBuf,
        value: String,
        errno: Errno,
    },
    /// A cgroup file could not be read.
    #[error("reading {path}: {errno}")]
    Read { path: PathBuf, errno: Errno },
    /// A cgroup file holds something other than a number.
    #[error("{path}: malformed content {content:?}")]
    Malformed { path: PathBuf, content: String },
    /// The kernel refused a memory limit below what the cgroup uses
    /// (EBUSY on memory.limit_in_bytes): libcgroups' words, with the usage.
    #[error(
        "unable to set memory limit to {target} (current usage: {current}, peak usage: {peak})"
    )]
    MemoryBusy {
        target: i64,
        current: u64,
        peak: u64,
    },
    /// memory.swappiness is 0-100.
    #[error("invalid swappiness value: {0}. valid range is 0-100")]
    Swappiness(u64),
    /// A hugepage limit's page size does not start with a power of two.
    #[error("hugepageLimits: malformed page size {0:?}: not a power of two")]
    PageSize(String),
}

/// One controller's directory of the container's cgroup, as the writers
/// below see it: a real cgroup directory ([`PathBuf`]), or a stand-in in
/// the tests.
trait Dir {
    /// Write `value` to `file`, which must exist (never created: a missing
    /// cgroup file is an error, as a kernel without that feature gives).
    fn write(&self, file: &str, value: &str) -> Result<(), V1Error>;
    fn read(&self, file: &str) -> Result<String, V1Error>;
    fn has(&self, file: &str) -> bool;
}

impl Dir for PathBuf {
    fn write(&self, file: &str, value: &str) -> Result<(), V1Error> {
        let path = self.join(file);
        let err = |e: std::io::Error| V1Error::Write {
            path: path.clone(),
            value: value.to_string(),
            errno: crate::utils::io_errno(&e),
        };
        // Truncating is a no-op on cgroupfs; it keeps a plain file (the
        // tests' stand-in) holding the last value. An empty value opens
        // the file and writes nothing, as libcgroups' write_all of "".
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(err)?;
        f.write_all(value.as_bytes()).map_err(err)
    }

    fn read(&self, file: &str) -> Result<String, V1Error> {
        let path = self.join(file);
        std::fs::read_to_string(&path).map_err(|e| V1Error::Read {
            errno: crate::utils::io_errno(&e),
            path,
        })
    }

    fn has(&self, file: &str) -> bool {
        self.join(file).exists()
    }
}

/// The controllers libcgroups' v1 manager applies resources to, in its
/// order. cpuacct, perf_event and freezer have nothing to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Cpu,
    CpuSet,
    Devices,
    HugeTlb,
    Memory,
    Pids,
    Blkio,
    NetPrio,
    NetCls,
}

const ORDER: [Controller; 9] = [
    Controller::Cpu,
    Controller::CpuSet,
    Controller::Devices,
    Controller::HugeTlb,
    Controller::Memory,
    Controller::Pids,
    Controller::Blkio,
    Controller::NetPrio,
    Controller::NetCls,
];

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::CpuSet => "cpuset",
            Controller::Devices => "devices",
            Controller::HugeTlb => "hugetlb",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::NetPrio => "net_prio",
            Controller::NetCls => "net_cls",
        }
    }

    /// Whether `resources` need this controller (libcgroups'
    /// `needs_to_handle`): note that a value asking for nothing (a zero
    /// cpu.shares, an empty cpuset string) still needs it.
    fn needed(self, resources: &LinuxResources) -> bool {
        match self {
            Controller::Cpu => resources.cpu().as_ref().is_some_and(|c| {
                c.shares().is_some()
                    || c.period().is_some()
                    || c.quota().is_some()
                    || c.realtime_period().is_some()
                    || c.realtime_runtime().is_some()
                    || c.idle().is_some()
            }),
            Controller::CpuSet => resources
                .cpu()
                .as_ref()
                .is_some_and(|c| c.cpus().is_some() || c.mems().is_some()),
            // Always: the default rules are written whatever the config says.
            Controller::Devices => true,
            Controller::HugeTlb => resources
                .hugepage_limits()
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
            Controller::Memory => resources.memory().is_some(),
            Controller::Pids => resources.pids().is_some(),
            Controller::Blkio => resources.block_io().is_some(),
            Controller::NetPrio | Controller::NetCls => resources.network().is_some(),
        }
    }

    fn apply(
        self,
        dir: &dyn Dir,
        resources: &LinuxResources,
        disable_oom_killer: bool,
    ) -> Result<(), V1Error> {
        match self {
            Controller::Cpu => resources.cpu().as_ref().map_or(Ok(()), |c| cpu(dir, c)),
            Controller::CpuSet => resources.cpu().as_ref().map_or(Ok(()), |c| cpuset(dir, c)),
            Controller::Devices => devices(dir, resources.devices().as_deref().unwrap_or_default()),
            Controller::HugeTlb => hugetlb(
                dir,
                resources.hugepage_limits().as_deref().unwrap_or_default(),
            ),
            Controller::Memory => resources
                .memory()
                .as_ref()
                .map_or(Ok(()), |m| memory(dir, m, disable_oom_killer)),
            Controller::Pids => resources
                .pids()
                .as_ref()
                .map_or(Ok(()), |p| pids(dir, p.limit())),
            Controller::Blkio => resources
                .block_io()
                .as_ref()
                .map_or(Ok(()), |b| blkio(dir, b)),
            Controller::NetPrio => resources
                .network()
                .as_ref()
                .map_or(Ok(()), |n| net_prio(dir, n)),
            Controller::NetCls => resources
                .network()
                .as_ref()
                .map_or(Ok(()), |n| net_cls(dir, n)),
        }
    }
}

/// Apply `resources` (already filtered by the caller) to the cgroup at
/// `rel` (relative to each hierarchy's root, never empty) in the v1
/// hierarchies of `host`. `disable_oom_killer` goes to memory.oom_control
/// whenever the memory object is there (0 when false, as libcgroups).
pub fn apply(
    host: &Host,
    rel: &Path,
    resources: &LinuxResources,
    disable_oom_killer: bool,
) -> Result<(), V1Error> {
    for (controller, dir) in needed_dirs(host, rel, resources)? {
        controller.apply(&dir, resources, disable_oom_killer)?;
    }
    Ok(())
}

/// The directory of each controller `resources` need, in [`ORDER`]; an
/// error naming the first one this host lacks.
fn needed_dirs(
    host: &Host,
    rel: &Path,
    resources: &LinuxResources,
) -> Result<Vec<(Controller, PathBuf)>, V1Error> {
    ORDER
        .iter()
        .filter(|c| c.needed(resources))
        .map(|&c| match host.v1.get(c.name()) {
            Some(mount) => Ok((c, mount.join(rel))),
            None => Err(V1Error::Missing(c.name())),
        })
        .collect()
}

/// Write `value` when it is set and not zero (runc's "0 means unset").
fn write_nonzero<T: PartialEq + Default + ToString>(
    dir: &dyn Dir,
    file: &str,
    value: Option<T>,
) -> Result<(), V1Error> {
    match value {
        Some(v) if v != T::default() => dir.write(file, &v.to_string()),
        _ => Ok(()),
    }
}

fn cpu(dir: &dyn Dir, cpu: &LinuxCpu) -> Result<(), V1Error> {
    write_nonzero(dir, "cpu.shares", cpu.shares())?;
    // The period before the quota: the kernel checks the quota against it.
    write_nonzero(dir, "cpu.cfs_period_us", cpu.period())?;
    write_nonzero(dir, "cpu.cfs_quota_us", cpu.quota())?;
    if let Some(burst) = cpu.burst() {
        dir.write("cpu.cfs_burst_us", &burst.to_string())?;
    }
    // libcgroups' order: the runtime before the period. Lowering a period
    // below the current runtime fails with EINVAL: runc's order would be
    // the same for a new cgroup (runtime 0).
    write_nonzero(dir, "cpu.rt_runtime_us", cpu.realtime_runtime())?;
    write_nonzero(dir, "cpu.rt_period_us", cpu.realtime_period())?;
    if let Some(idle) = cpu.idle() {
        dir.write("cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// An empty string is written too (nothing reaches the kernel, but the
/// file must exist).
fn cpuset(dir: &dyn Dir, cpu: &LinuxCpu) -> Result<(), V1Error> {
    if let Some(cpus) = cpu.cpus() {
        dir.write("cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems() {
        dir.write("cpuset.mems", mems)?;
    }
    Ok(())
}

/// The container's rules in their order (a runc-style config starts with
/// "deny all", `a *:* rwm`), then the devices every container gets, as
/// libcgroups adds them at each apply (create and every update).
fn devices(dir: &dyn Dir, rules: &[LinuxDeviceCgroup]) -> Result<(), V1Error> {
    for rule in rules.iter().cloned().chain(default_rules()) {
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        dir.write(file, &rule.to_string())?;
    }
    Ok(())
}

/// libcgroups' default devices (/dev/null, zero, full, tty, urandom,
/// random: `c M:m rwm`), then its default allow rules (mknod of any
/// device, /dev/console, /dev/pts/*, /dev/ptmx, /dev/net/tun).
fn default_rules() -> Vec<LinuxDeviceCgroup> {
    let char_dev = |major: i64, minor: Option<i64>, access: &str| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(LinuxDeviceType::C));
        rule.set_major(Some(major));
        rule.set_minor(minor);
        rule.set_access(Some(access.to_string()));
        rule
    };
    let mut rules: Vec<LinuxDeviceCgroup> = [(1, 3), (1, 5), (1, 7), (5, 0), (1, 9), (1, 8)]
        .into_iter()
        .map(|(major, minor)| {
            let mut device = LinuxDevice::default();
            device.set_typ(LinuxDeviceType::C);
            device.set_major(major);
            device.set_minor(minor);
            LinuxDeviceCgroup::from(&device)
        })
        .collect();
    let mknod = |typ| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_access(Some("m".to_string()));
        rule
    };
    rules.push(mknod(LinuxDeviceType::C));
    rules.push(mknod(LinuxDeviceType::B));
    rules.push(char_dev(5, Some(1), "rwm"));
    rules.push(char_dev(136, None, "rwm"));
    rules.push(char_dev(5, Some(2), "rwm"));
    rules.push(char_dev(10, Some(200), "rwm"));
    rules
}

fn hugetlb(dir: &dyn Dir, limits: &[LinuxHugepageLimit]) -> Result<(), V1Error> {
    for limit in limits {
        let size = limit.page_size();
        let digits: String = size.chars().take_while(char::is_ascii_digit).collect();
        if !digits.parse::<u64>().is_ok_and(u64::is_power_of_two) {
            return Err(V1Error::PageSize(size.clone()));
        }
        let value = limit.limit().to_string();
        dir.write(&format!("hugetlb.{size}.limit_in_bytes"), &value)?;
        // Reserved-page accounting (kernel >= 5.7) gets the same limit.
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if dir.has(&rsvd) {
            dir.write(&rsvd, &value)?;
        }
    }
    Ok(())
}

fn memory(dir: &dyn Dir, memory: &LinuxMemory, disable_oom_killer: bool) -> Result<(), V1Error> {
    memory_limits(dir, memory)?;
    write_nonzero(dir, "memory.soft_limit_in_bytes", memory.reservation())?;
    // Written on every apply, so an update without disableOOMKiller turns
    // the OOM killer back on (update passes create's value along).
    let oom = if disable_oom_killer { "1" } else { "0" };
    dir.write("memory.oom_control", oom)?;
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(V1Error::Swappiness(swappiness));
        }
        dir.write("memory.swappiness", &swappiness.to_string())?;
    }
    if let Some(kernel) = memory.kernel() {
        dir.write("memory.kmem.limit_in_bytes", &kernel.to_string())?;
    }
    if let Some(tcp) = memory.kernel_tcp() {
        dir.write("memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    Ok(())
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory+swap),
/// as libcgroups decides: the kernel keeps limit <= memsw at every step,
/// so a memsw being raised (or made unlimited) is written first.
fn memory_limits(dir: &dyn Dir, memory: &LinuxMemory) -> Result<(), V1Error> {
    let Some(limit) = memory.limit() else {
        return memory_and_swap(dir, 0, memory.swap().unwrap_or(0), false);
    };
    let current = read_number(dir, "memory.limit_in_bytes", i64::MAX)?;
    match memory.swap() {
        Some(swap) => memory_and_swap(dir, limit, swap, swap == -1 || current < swap),
        None if limit == -1 => memory_and_swap(dir, -1, -1, true),
        None => memory_and_swap(dir, limit, 0, current < 0),
    }
}

/// A zero value is not written. With `swap_first`, libcgroups writes memsw
/// and the limit, then both again in the usual order (the second pair
/// changes nothing but is kept: these are its writes).
fn memory_and_swap(dir: &dyn Dir, limit: i64, swap: i64, swap_first: bool) -> Result<(), V1Error> {
    if swap_first {
        write_nonzero(dir, "memory.memsw.limit_in_bytes", Some(swap))?;
        memory_limit(dir, limit)?;
    }
    memory_limit(dir, limit)?;
    write_nonzero(dir, "memory.memsw.limit_in_bytes", Some(swap))
}

/// EBUSY means the cgroup uses more than `limit` already: say how much.
fn memory_limit(dir: &dyn Dir, limit: i64) -> Result<(), V1Error> {
    match write_nonzero(dir, "memory.limit_in_bytes", Some(limit)) {
        Err(V1Error::Write {
            errno: Errno::EBUSY,
            ..
        }) => Err(V1Error::MemoryBusy {
            target: limit,
            current: read_number(dir, "memory.usage_in_bytes", u64::MAX)?,
            peak: read_number(dir, "memory.max_usage_in_bytes", u64::MAX)?,
        }),
        other => other,
    }
}

/// A number file; `max` reads as `max`.
fn read_number<T: std::str::FromStr>(dir: &dyn Dir, file: &str, max: T) -> Result<T, V1Error> {
    let content = dir.read(file)?;
    let content = content.trim();
    if content == "max" {
        return Ok(max);
    }
    content.parse().map_err(|_| V1Error::Malformed {
        path: PathBuf::from(file),
        content: content.to_string(),
    })
}

/// pids.max: a limit of 0 or less is "max" (unlimited).
fn pids(dir: &dyn Dir, limit: i64) -> Result<(), V1Error> {
    let value = if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    };
    dir.write("pids.max", &value)
}

fn blkio(dir: &dyn Dir, blkio: &LinuxBlockIo) -> Result<(), V1Error> {
    if let Some(weight) = blkio.weight().filter(|w| *w != 0) {
        // CFQ's file where it exists, else BFQ's.
        let file = if dir.has("blkio.weight") {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        dir.write(file, &weight.to_string())?;
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            blkio.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            blkio.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            blkio.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            blkio.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for device in devices.as_deref().unwrap_or_default() {
            let line = format!("{}:{} {}", device.major(), device.minor(), device.rate());
            dir.write(file, &line)?;
        }
    }
    Ok(())
}

/// All priorities in one write, as libcgroups does: `name prio` lines
/// joined, the last newline trimmed. The kernel parses one line per write,
/// so only the first interface takes effect.
fn net_prio(dir: &dyn Dir, network: &LinuxNetwork) -> Result<(), V1Error> {
    let Some(priorities) = network.priorities() else {
        return Ok(());
    };
    let lines: String = priorities.iter().map(ToString::to_string).collect();
    dir.write("net_prio.ifpriomap", lines.trim())
}

fn net_cls(dir: &dyn Dir, network: &LinuxNetwork) -> Result<(), V1Error> {
    match network.class_id() {
        Some(class_id) => dir.write("net_cls.classid", &class_id.to_string()),
        None => Ok(()),
    }
}

/// Every process of the cgroup at `dir` and its children, as libcgroups'
/// v1 `get_all_pids` reads them from the devices hierarchy (every
/// container has a directory there).
pub fn pids_below(dir: &Path) -> Result<Vec<i32>, V1Error> {
    let mut pids = Vec::new();
    collect_pids(dir, &mut pids)?;
    Ok(pids)
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), V1Error> {
    let procs = dir.join("cgroup.procs");
    if procs.exists() {
        let content = std::fs::read_to_string(&procs).map_err(|e| V1Error::Read {
            path: procs.clone(),
            errno: crate::utils::io_errno(&e),
        })?;
        for line in content.lines() {
            let pid = line.trim().parse().map_err(|_| V1Error::Malformed {
                path: procs.clone(),
                content: line.to_string(),
            })?;
            pids.push(pid);
        }
    }
    let read_err = |e: std::io::Error| V1Error::Read {
        path: dir.to_path_buf(),
        errno: crate::utils::io_errno(&e),
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            collect_pids(&path, pids)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A cgroup directory in memory: files and their values, every write
    /// in order, and errnos to fail chosen writes with.
    #[derive(Default)]
    struct Fake {
        files: RefCell<HashMap<String, String>>,
        writes: RefCell<Vec<(String, String)>>,
        fail: HashMap<String, Errno>,
    }

    impl Fake {
        fn with(files: &[(&str, &str)]) -> Fake {
            let fake = Fake::default();
            for (file, value) in files {
                fake.files
                    .borrow_mut()
                    .insert(file.to_string(), value.to_string());
            }
            fake
        }

        fn writes(&self) -> Vec<(String, String)> {
            self.writes.borrow().clone()
        }
    }

    impl Dir for Fake {
        fn write(&self, file: &str, value: &str) -> Result<(), V1Error> {
            let err = |errno| V1Error::Write {
                path: PathBuf::from(file),
                value: value.to_string(),
                errno,
            };
            if !self.files.borrow().contains_key(file) {
                return Err(err(Errno::ENOENT));
            }
            if let Some(errno) = self.fail.get(file) {
                return Err(err(*errno));
            }
            self.writes
                .borrow_mut()
                .push((file.to_string(), value.to_string()));
            self.files
                .borrow_mut()
                .insert(file.to_string(), value.to_string());
            Ok(())
        }

        fn read(&self, file: &str) -> Result<String, V1Error> {
            self.files.borrow().get(file).cloned().ok_or(V1Error::Read {
                path: PathBuf::from(file),
                errno: Errno::ENOENT,
            })
        }

        fn has(&self, file: &str) -> bool {
            self.files.borrow().contains_key(file)
        }
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn memory_of(json: &str) -> LinuxMemory {
        serde_json::from_str(json).unwrap()
    }

    /// A fresh v1 memory cgroup: no limits.
    const UNLIMITED: &str = "9223372036854771712";

    fn fresh_memory() -> Fake {
        Fake::with(&[
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.memsw.limit_in_bytes", UNLIMITED),
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
            ("memory.swappiness", "60"),
            ("memory.usage_in_bytes", "7340032"),
            ("memory.max_usage_in_bytes", "8388608"),
        ])
    }

    fn w(file: &str, value: &str) -> (String, String) {
        (file.to_string(), value.to_string())
    }

    #[test]
    fn a_limit_with_swap_below_the_current_limit_writes_the_limit_first() {
        let dir = fresh_memory();
        let m = memory_of(r#"{"limit":268435456,"swap":536870912}"#);
        memory(&dir, &m, false).unwrap();
        assert_eq!(
            dir.writes(),
            [
                w("memory.limit_in_bytes", "268435456"),
                w("memory.memsw.limit_in_bytes", "536870912"),
                w("memory.oom_control", "0"),
            ]
        );
    }

    #[test]
    fn a_swap_above_the_current_limit_is_written_first_then_both_again() {
        let dir = fresh_memory();
        dir.files
            .borrow_mut()
            .insert("memory.limit_in_bytes".into(), "268435456".into());
        let m = memory_of(r#"{"limit":805306368,"swap":1073741824}"#);
        memory(&dir, &m, true).unwrap();
        assert_eq!(
            dir.writes(),
            [
                w("memory.memsw.limit_in_bytes", "1073741824"),
                w("memory.limit_in_bytes", "805306368"),
                w("memory.limit_in_bytes", "805306368"),
                w("memory.memsw.limit_in_bytes", "1073741824"),
                w("memory.oom_control", "1"),
            ]
        );
    }

    #[test]
    fn unlimited_memory_makes_swap_unlimited_first() {
        let dir = fresh_memory();
        memory(&dir, &memory_of(r#"{"limit":-1}"#), false).unwrap();
        assert_eq!(
            dir.writes()[..4],
            [
                w("memory.memsw.limit_in_bytes", "-1"),
                w("memory.limit_in_bytes", "-1"),
                w("memory.limit_in_bytes", "-1"),
                w("memory.memsw.limit_in_bytes", "-1"),
            ]
        );
        // A limit alone leaves memsw alone; swap alone leaves the limit.
        let dir = fresh_memory();
        memory(&dir, &memory_of(r#"{"limit":1048576}"#), false).unwrap();
        assert_eq!(dir.writes()[0], w("memory.limit_in_bytes", "1048576"));
        assert_eq!(dir.writes().len(), 2);
        let dir = fresh_memory();
        memory(&dir, &memory_of(r#"{"swap":1048576}"#), false).unwrap();
        assert_eq!(dir.writes()[0], w("memory.memsw.limit_in_bytes", "1048576"));
        assert_eq!(dir.writes().len(), 2);
    }

    #[test]
    fn the_rest_of_memory_follows_the_limits_in_libcgroups_order() {
        let dir = fresh_memory();
        dir.files
            .borrow_mut()
            .insert("memory.kmem.tcp.limit_in_bytes".into(), UNLIMITED.into());
        let m = memory_of(r#"{"reservation":1024,"swappiness":10,"kernelTCP":4096}"#);
        memory(&dir, &m, false).unwrap();
        assert_eq!(
            dir.writes(),
            [
                w("memory.soft_limit_in_bytes", "1024"),
                w("memory.oom_control", "0"),
                w("memory.swappiness", "10"),
                w("memory.kmem.tcp.limit_in_bytes", "4096"),
            ]
        );
    }

    #[test]
    fn a_limit_below_the_usage_says_how_much_is_used() {
        let mut dir = fresh_memory();
        dir.fail
            .insert("memory.limit_in_bytes".to_string(), Errno::EBUSY);
        let e = memory(&dir, &memory_of(r#"{"limit":4096}"#), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to set memory limit to 4096 (current usage: 7340032, peak usage: 8388608)"
        );
        // Any other errno names the file and the value.
        dir.fail
            .insert("memory.limit_in_bytes".to_string(), Errno::EINVAL);
        let e = memory(&dir, &memory_of(r#"{"limit":4096}"#), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "writing \"4096\" to memory.limit_in_bytes: EINVAL: Invalid argument"
        );
    }

    #[test]
    fn swappiness_above_100_is_refused_after_the_limits() {
        let dir = fresh_memory();
        let e = memory(
            &dir,
            &memory_of(r#"{"limit":1048576,"swappiness":101}"#),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid swappiness value: 101. valid range is 0-100"
        );
        assert_eq!(dir.writes().len(), 2, "{:?}", dir.writes());
    }

    #[test]
    fn devices_get_the_configs_rules_then_the_defaults() {
        let dir = Fake::with(&[("devices.allow", ""), ("devices.deny", "")]);
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"},
                {"allow":false,"type":"b","major":8,"access":"w"}]"#,
        )
        .unwrap();
        devices(&dir, &rules).unwrap();
        let writes = dir.writes();
        let lines: Vec<String> = writes.iter().map(|(f, v)| format!("{f}: {v}")).collect();
        assert_eq!(
            lines,
            [
                "devices.deny: a *:* rwm",
                "devices.allow: c 10:229 rw",
                "devices.deny: b 8:* w",
                "devices.allow: c 1:3 rwm",
                "devices.allow: c 1:5 rwm",
                "devices.allow: c 1:7 rwm",
                "devices.allow: c 5:0 rwm",
                "devices.allow: c 1:9 rwm",
                "devices.allow: c 1:8 rwm",
                "devices.allow: c *:* m",
                "devices.allow: b *:* m",
                "devices.allow: c 5:1 rwm",
                "devices.allow: c 136:* rwm",
                "devices.allow: c 5:2 rwm",
                "devices.allow: c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn cpu_skips_zeros_and_writes_rt_runtime_before_period() {
        let dir = Fake::with(&[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.rt_runtime_us", "0"),
            ("cpu.rt_period_us", "1000000"),
        ]);
        let c: LinuxCpu = serde_json::from_str(
            r#"{"shares":0,"period":50000,"quota":20000,
                "realtimeRuntime":1000,"realtimePeriod":500000}"#,
        )
        .unwrap();
        cpu(&dir, &c).unwrap();
        assert_eq!(
            dir.writes(),
            [
                w("cpu.cfs_period_us", "50000"),
                w("cpu.cfs_quota_us", "20000"),
                w("cpu.rt_runtime_us", "1000"),
                w("cpu.rt_period_us", "500000"),
            ]
        );
        // A kernel without CONFIG_RT_GROUP_SCHED has no rt files: named.
        let dir = Fake::with(&[("cpu.shares", "1024")]);
        let c: LinuxCpu = serde_json::from_str(r#"{"realtimeRuntime":1000}"#).unwrap();
        let e = cpu(&dir, &c).unwrap_err().to_string();
        assert!(e.contains("cpu.rt_runtime_us: ENOENT"), "{e}");
    }

    #[test]
    fn pids_blkio_hugetlb_and_network_lines() {
        let dir = Fake::with(&[
            ("pids.max", "max"),
            ("blkio.bfq.weight", "100"),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            ("hugetlb.2MB.limit_in_bytes", "0"),
            ("hugetlb.2MB.rsvd.limit_in_bytes", "0"),
            ("hugetlb.1GB.limit_in_bytes", "0"),
            ("net_prio.ifpriomap", ""),
            ("net_cls.classid", "0"),
        ]);
        let r = resources(
            r#"{"pids":{"limit":0},
                "blockIO":{"weight":300,
                  "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                  "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":100},
                                             {"major":8,"minor":0,"rate":50}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":2097152},
                                  {"pageSize":"1GB","limit":0}],
                "network":{"classID":1048577,
                  "priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":1}]}}"#,
        );
        for c in [
            Controller::Pids,
            Controller::Blkio,
            Controller::HugeTlb,
            Controller::NetPrio,
            Controller::NetCls,
        ] {
            c.apply(&dir, &r, false).unwrap();
        }
        assert_eq!(
            dir.writes(),
            [
                w("pids.max", "max"),
                w("blkio.bfq.weight", "300"),
                w("blkio.throttle.read_bps_device", "8:0 1048576"),
                w("blkio.throttle.write_iops_device", "8:16 100"),
                w("blkio.throttle.write_iops_device", "8:0 50"),
                w("hugetlb.2MB.limit_in_bytes", "2097152"),
                w("hugetlb.2MB.rsvd.limit_in_bytes", "2097152"),
                w("hugetlb.1GB.limit_in_bytes", "0"),
                w("net_prio.ifpriomap", "eth0 5\nlo 1"),
                w("net_cls.classid", "1048577"),
            ]
        );
        let bad = resources(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#);
        assert!(Controller::HugeTlb.apply(&dir, &bad, false).is_err());
    }

    fn host_with(controllers: &[&str], root: &Path) -> Host {
        Host {
            setup: libcgroups::common::CgroupSetup::Legacy,
            v1: controllers
                .iter()
                .map(|c| (c.to_string(), root.join(c)))
                .collect(),
            named: HashMap::new(),
            unified: None,
        }
    }

    #[test]
    fn every_needed_hierarchy_is_checked_before_anything_is_written() {
        let root = Path::new("/nonexistent");
        let r = resources(r#"{"pids":{"limit":10},"network":{"classID":1}}"#);
        // Devices is always needed, net_prio as soon as network is there.
        let host = host_with(&["pids", "net_cls"], root);
        let e = needed_dirs(&host, Path::new("c"), &r).unwrap_err();
        assert_eq!(e.to_string(), "cgroup devices is required to fulfill the request, but this host has no v1 devices hierarchy");
        let host = host_with(&["pids", "net_cls", "devices"], root);
        let e = needed_dirs(&host, Path::new("c"), &r).unwrap_err();
        assert!(matches!(e, V1Error::Missing("net_prio")), "{e}");
        let host = host_with(&["pids", "net_cls", "devices", "net_prio", "cpu"], root);
        let dirs = needed_dirs(&host, Path::new("a/c"), &r).unwrap();
        let names: Vec<_> = dirs.iter().map(|(c, _)| c.name()).collect();
        assert_eq!(names, ["devices", "pids", "net_prio", "net_cls"]);
        assert_eq!(dirs[1].1, Path::new("/nonexistent/pids/a/c"));
        // A memory object asking for nothing still needs the hierarchy.
        let r = resources(r#"{"memory":{}}"#);
        let e = needed_dirs(&host, Path::new("c"), &r).unwrap_err();
        assert!(matches!(e, V1Error::Missing("memory")), "{e}");
    }

    /// The real writer on plain files standing in for a cgroup: files that
    /// are not there are never created.
    #[test]
    fn a_directory_standing_in_for_a_cgroup_holds_the_values() {
        let root = std::env::temp_dir().join(format!("rrun-v1-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let files: &[(&str, &[(&str, &str)])] = &[
            ("pids", &[("pids.max", "max")]),
            ("devices", &[("devices.allow", ""), ("devices.deny", "")]),
            (
                "memory",
                &[
                    ("memory.limit_in_bytes", UNLIMITED),
                    ("memory.memsw.limit_in_bytes", UNLIMITED),
                    ("memory.oom_control", "oom_kill_disable 0"),
                ],
            ),
        ];
        for (controller, files) in files {
            let dir = root.join(controller).join("c");
            std::fs::create_dir_all(&dir).unwrap();
            for (file, value) in *files {
                std::fs::write(dir.join(file), value).unwrap();
            }
        }
        let host = host_with(&["pids", "devices", "memory"], &root);
        let r = resources(r#"{"pids":{"limit":42},"memory":{"limit":1048576,"swap":2097152}}"#);
        apply(&host, Path::new("c"), &r, true).unwrap();
        let read =
            |c: &str, f: &str| std::fs::read_to_string(root.join(c).join("c").join(f)).unwrap();
        assert_eq!(read("pids", "pids.max"), "42");
        assert_eq!(read("memory", "memory.limit_in_bytes"), "1048576");
        assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), "2097152");
        assert_eq!(read("memory", "memory.oom_control"), "1");
        assert_eq!(read("devices", "devices.allow"), "c 10:200 rwm");
        // A file the kernel would not have is an error naming it.
        let r = resources(r#"{"memory":{"swappiness":10}}"#);
        let e = apply(&host, Path::new("c"), &r, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory/c/memory.swappiness: ENOENT"), "{e}");
        assert!(!root.join("memory/c/memory.swappiness").exists());

        std::fs::write(root.join("pids/c/cgroup.procs"), "12\n34\n").unwrap();
        std::fs::create_dir(root.join("pids/c/child")).unwrap();
        std::fs::write(root.join("pids/c/child/cgroup.procs"), "56\n").unwrap();
        assert_eq!(pids_below(&root.join("pids/c")).unwrap(), [12, 34, 56]);
        assert!(pids_below(&root.join("pids/gone")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
