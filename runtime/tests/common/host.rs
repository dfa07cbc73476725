//! What this machine offers, asked before a test relies on it: the cgroup
//! layout (v1, hybrid, unified v2), where a container's cgroup files are
//! on it (host and inside), the files its kernel gives, I/O schedulers, swap
//! accounting, the real-time budget, block devices, the kernel's version,
//! namespaces, binaries. A test that finds something missing adapts what
//! it expects (what the host lacks must be refused, by rrun as by runc) or
//! skips that part with one line on stderr saying what and why; it never
//! assumes the machine the suite was written on.
//!
//! Shared by the test crates of runtime/ (`common::host`), libcontainer/
//! and the conformance runner through `#[path]`, so std only.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// (mount point, fstype, super options) of every cgroup and cgroup2 mount
/// of this process's mount namespace, in mountinfo order.
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let mut right = right.split_whitespace();
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or("");
            matches!(fstype, "cgroup" | "cgroup2").then(|| {
                (
                    PathBuf::from(mount_point),
                    fstype.to_string(),
                    options.to_string(),
                )
            })
        })
        .collect()
}

/// The mount point of the v1 hierarchy that has `option`: a controller
/// (`cpuacct`, `net_cls`) or a name (`name=systemd`).
pub fn v1_mount(option: &str) -> Option<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .find(|(_, fstype, options)| fstype == "cgroup" && options.split(',').any(|o| o == option))
        .map(|(mount_point, _, _)| mount_point)
}

/// The host has a v1 hierarchy with `option` (a controller or `name=...`).
pub fn has_v1(option: &str) -> bool {
    v1_mount(option).is_some()
}

/// Every v1 hierarchy's mount point (controllers and named ones, once
/// each) and the cgroup2 mount: where a container's cgroup can have a
/// directory on this host.
pub fn hierarchy_mount_points() -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = cgroup_mounts()
        .into_iter()
        .map(|(mount_point, _, _)| mount_point)
        .collect();
    points.sort();
    points.dedup();
    points
}

/// Every v1 hierarchy's mount point (controllers and named ones), once
/// each: cpu and cpuacct may be one hierarchy.
pub fn v1_mount_points() -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = cgroup_mounts()
        .into_iter()
        .filter(|(_, fstype, _)| fstype == "cgroup")
        .map(|(mount_point, _, _)| mount_point)
        .collect();
    points.sort();
    points.dedup();
    points
}

/// A cgroup2 tree at /sys/fs/cgroup/unified next to v1 hierarchies (a
/// hybrid host; without it a v1 host is "legacy").
pub fn hybrid() -> bool {
    cgroup_mounts()
        .iter()
        .any(|(p, fstype, _)| fstype == "cgroup2" && p == Path::new("/sys/fs/cgroup/unified"))
}

/// `file` exists at the root of the v1 hierarchy of `controller` (the
/// kernel's config decides most of them: a child cgroup has the same).
pub fn v1_root_has(controller: &str, file: &str) -> bool {
    v1_mount(controller).is_some_and(|m| m.join(file).exists())
}

/// How this host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// v1 hierarchies only.
    Legacy,
    /// v1 hierarchies, and a cgroup2 tree at /sys/fs/cgroup/unified.
    Hybrid,
    /// cgroup v2 alone at /sys/fs/cgroup (Debian 12 with systemd).
    Unified,
}

pub fn layout() -> Layout {
    let mounts = cgroup_mounts();
    if mounts
        .iter()
        .any(|(p, fstype, _)| fstype == "cgroup2" && p == Path::new(CGROUP_ROOT))
    {
        Layout::Unified
    } else if hybrid() {
        Layout::Hybrid
    } else {
        Layout::Legacy
    }
}

/// The unified cgroup v2 hierarchy is /sys/fs/cgroup: no v1 controller.
pub fn unified() -> bool {
    layout() == Layout::Unified
}

/// The root of this host's cgroup2 tree: /sys/fs/cgroup on a unified host,
/// /sys/fs/cgroup/unified on a hybrid one, none on a legacy one.
pub fn cgroup2_root() -> Option<PathBuf> {
    match layout() {
        Layout::Unified => Some(PathBuf::from(CGROUP_ROOT)),
        Layout::Hybrid => Some(PathBuf::from(CGROUP_ROOT).join("unified")),
        Layout::Legacy => None,
    }
}

/// The directory of the cgroup `cgroup` (a cgroupsPath, absolute, as a
/// container's cgroup is named on every hierarchy) that holds the files
/// of `controller`: on a unified host `/sys/fs/cgroup/<cgroup>` whatever
/// the controller; elsewhere the directory in the controller's v1
/// hierarchy (`unified` names the hybrid cgroup2 tree, `systemd` the
/// `name=systemd` hierarchy).
pub fn cgroup_dir(controller: &str, cgroup: &str) -> PathBuf {
    let rel = cgroup.trim_start_matches('/');
    if unified() {
        return Path::new(CGROUP_ROOT).join(rel);
    }
    let mount = match controller {
        "unified" => cgroup2_root(),
        "systemd" => v1_mount("name=systemd"),
        _ => v1_mount(controller),
    };
    mount
        .unwrap_or_else(|| Path::new(CGROUP_ROOT).join(controller))
        .join(rel)
}

/// `<cgroup_dir(controller, cgroup)>/<file>`.
pub fn cgroup_file(controller: &str, cgroup: &str, file: &str) -> PathBuf {
    cgroup_dir(controller, cgroup).join(file)
}

/// The trimmed text of a cgroup file of `cgroup`; panics naming the path
/// when it cannot be read.
pub fn read_cgroup_file(controller: &str, cgroup: &str, file: &str) -> String {
    let path = cgroup_file(controller, cgroup, file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Where a container whose /sys/fs/cgroup is a `cgroup` mount (its own
/// cgroup in each hierarchy) finds the files of `controller`:
/// `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/<hierarchy>` on
/// v1 (named as the host names its mount point: cpu, cpu,cpuacct...).
pub fn inside_dir(controller: &str) -> String {
    if unified() {
        return CGROUP_ROOT.to_string();
    }
    let name = v1_mount(controller)
        .and_then(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| controller.to_string());
    format!("{CGROUP_ROOT}/{name}")
}

/// Every directory the cgroup `cgroup` can have on this host, one per
/// hierarchy (v1 controllers, named ones, the cgroup2 tree): what must
/// be gone once its container is.
pub fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    let rel = cgroup.trim_start_matches('/');
    hierarchy_mount_points()
        .into_iter()
        .map(|m| m.join(rel))
        .collect()
}

/// The entry /proc/<pid>/cgroup gives a process in the cgroup `path` for
/// `controller`: `0::<path>` on a unified host, `:<controller>:<path>`
/// (the end of a v1 line) elsewhere.
pub fn proc_cgroup_entry(controller: &str, path: &str) -> String {
    if unified() {
        format!("0::{path}")
    } else {
        format!(":{controller}:{path}")
    }
}

/// Where rrun (as runc) puts a relative cgroupsPath for this process: on
/// a unified host under the parent of its own cgroup (its own holds
/// processes, so no child may have controllers); on v1 and hybrid hosts
/// under its own cgroup when it is the same in every v1 controller
/// hierarchy, else under the roots.
pub fn relative_cgroups_parent() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if unified() {
        let own = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/");
        return Path::new(own)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".to_string());
    }
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, c, path) = (p.next()?, p.next()?, p.next()?);
            (!c.is_empty() && !c.starts_with("name=")).then_some(path)
        })
        .collect();
    if paths.windows(2).all(|w| w[0] == w[1]) {
        paths.first().unwrap_or(&"/").to_string()
    } else {
        "/".to_string()
    }
}

/// Controllers the cgroup2 root offers (`cgroup.controllers`): what a
/// container's cgroup can get on a unified host.
pub fn v2_controllers() -> Vec<String> {
    cgroup2_root()
        .and_then(|r| std::fs::read_to_string(r.join("cgroup.controllers")).ok())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A cgroup directly below the cgroup2 root, or the cgroup of this
/// process, has `file` (the kernel's config and the controllers the root
/// delegates decide: `cpu.idle`, `cpu.max.burst`, `memory.swap.max`,
/// `io.weight`...). The root itself has none of the controller files.
pub fn v2_file_offered(file: &str) -> bool {
    let Some(root) = cgroup2_root() else {
        return false;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("0::")
                .map(|p| root.join(p.trim_start_matches('/')))
        });
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain(own)
        .any(|dir| dir.is_dir() && dir != root && dir.join(file).exists())
}

/// The container's cgroup has `file`: on a unified host a cgroup below the
/// root has it ([`v2_file_offered`]), elsewhere the v1 hierarchy of
/// `controller` has it at its root.
pub fn cgroup_file_offered(controller: &str, file: &str) -> bool {
    if unified() {
        v2_file_offered(file)
    } else {
        v1_root_has(controller, file)
    }
}

/// runc 1.1's cpu.shares -> cpu.weight (cgroups.ConvertCPUSharesToCgroupV2Value).
pub fn cpu_weight_of_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's blkio weight (10-1000) -> io.weight (1-10000)
/// (cgroups.ConvertBlkIOToIOWeightValue).
pub fn io_weight_of_blkio(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.saturating_sub(10) * 9999) / 990
}

/// A disk of this host offers one of the I/O schedulers `names` (what
/// /sys/block/*/queue/scheduler lists, the active one in brackets).
pub fn io_scheduler_offered(names: &[&str]) -> bool {
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .any(|dev| {
            std::fs::read_to_string(dev.path().join("queue/scheduler")).is_ok_and(|s| {
                s.split_whitespace()
                    .map(|w| w.trim_matches(['[', ']']))
                    .any(|w| names.contains(&w))
            })
        })
}

/// A child blkio cgroup has a weight file: `blkio.weight` (CFQ) or
/// `blkio.bfq.weight` (BFQ, shown only below the root, so the schedulers
/// the kernel offers tell); on a unified host `io.weight` or
/// `io.bfq.weight`. rrun asks the same (cgroups/resources.rs);
/// a fresh machine often offers only none, mq-deadline and kyber.
pub fn blkio_weight_offered() -> bool {
    if unified() {
        // io.weight (blk-iocost), or io.bfq.weight while BFQ is loaded.
        return v2_file_offered("io.weight") || v2_file_offered("io.bfq.weight");
    }
    v1_root_has("blkio", "blkio.weight")
        || v1_root_has("blkio", "blkio.bfq.weight")
        || io_scheduler_offered(&["bfq", "cfq"])
}

/// Swap accounting (`memory.memsw.*` on v1, `memory.swap.max` on a
/// unified host): off with `swapaccount=0` or without CONFIG_MEMCG_SWAP.
/// (A host without swap has it all the same: the limits are written.)
pub fn swap_accounting() -> bool {
    if unified() {
        return v2_file_offered("memory.swap.max");
    }
    v1_root_has("memory", "memory.memsw.limit_in_bytes")
}

/// Real-time group scheduling (`cpu.rt_runtime_us`, `cpu.rt_period_us`):
/// CONFIG_RT_GROUP_SCHED, which Debian's own kernels leave out.
pub fn rt_group_sched() -> bool {
    v1_root_has("cpu", "cpu.rt_runtime_us")
}

/// The kernel's `to_ratio`: a runtime per period as a 20-bit fraction.
fn rt_ratio(runtime: i64, period: i64) -> u128 {
    if runtime < 0 || period <= 0 {
        return 1 << 20; // RUNTIME_INF: the whole period
    }
    ((runtime as u128) << 20) / period as u128
}

fn read_i64(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `count` new cgroups directly under the v1 cpu root can each get
/// `runtime` µs of real-time budget per `period` µs: the root's budget
/// (kernel.sched_rt_runtime_us per sched_rt_period_us) minus what the
/// root's children already hold must cover them, or the kernel refuses the
/// write (as it does for runc). False without real-time group scheduling.
pub fn rt_budget_for(count: u64, runtime: i64, period: i64) -> bool {
    let Some(cpu) = v1_mount("cpu").filter(|_| rt_group_sched()) else {
        return false;
    };
    let sysctl = |name: &str| read_i64(&Path::new("/proc/sys/kernel").join(name));
    let (Some(root_runtime), Some(root_period)) =
        (sysctl("sched_rt_runtime_us"), sysctl("sched_rt_period_us"))
    else {
        return false;
    };
    let held: u128 = std::fs::read_dir(&cpu)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let runtime = read_i64(&e.path().join("cpu.rt_runtime_us")).unwrap_or(0);
            let period = read_i64(&e.path().join("cpu.rt_period_us")).unwrap_or(1);
            rt_ratio(runtime, period)
        })
        .sum();
    held + u128::from(count) * rt_ratio(runtime, period) <= rt_ratio(root_runtime, root_period)
}

/// A whole disk of this host for blkio throttle rules, as (major, minor):
/// one backed by a device (vda, sda, nvme0n1...) if there is one, else
/// any (loop, zram). None on a machine without block devices.
pub fn block_device() -> Option<(u64, u64)> {
    let mut disks: Vec<PathBuf> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    disks.sort();
    // Disks with a `device` link first (false sorts before true).
    disks.sort_by_key(|d| !d.join("device").exists());
    disks.iter().find_map(|d| {
        let dev = std::fs::read_to_string(d.join("dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// The first entry of a cpuset list ("0-1,4" -> "0").
pub fn first_of_list(list: &str) -> Option<String> {
    let first = list.trim().split(',').next()?.split('-').next()?.trim();
    (!first.is_empty()).then(|| first.to_string())
}

/// The first CPU (`cpuset.cpus`) or memory node (`cpuset.mems`) of the
/// cpuset root, which a cgroup directly under it may always have ("0" on
/// almost every machine, but CPU 0 may be offline or reserved).
pub fn first_cpuset(file: &str) -> String {
    // The cgroup2 root has only the effective lists.
    let path = match cgroup2_root().filter(|_| unified()) {
        Some(root) => Some(root.join(format!("{file}.effective"))),
        None => v1_mount("cpuset").map(|m| m.join(file)),
    };
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|list| first_of_list(&list))
        .unwrap_or_else(|| "0".to_string())
}

/// The running kernel is at least `major.minor` (from its release, e.g.
/// 6.1.0-18-amd64).
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// The kernel has time namespaces (5.6+, CONFIG_TIME_NS).
pub fn time_namespace() -> bool {
    Path::new("/proc/self/ns/time").exists()
}

/// A huge page size this kernel has, in kB (2048 for "2MB").
pub fn hugepage_size(kb: u64) -> bool {
    Path::new(&format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB")).exists()
}

/// Debian's `kernel.unprivileged_userns_clone=0`: only CAP_SYS_ADMIN may
/// make a user namespace, so the kernel itself answers EPERM.
pub fn unprivileged_userns_blocked() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|v| v.trim() == "0")
}

/// `name` as found in $PATH (and the sbin directories root's PATH has).
pub fn binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The bounding set of this process has the capability numbered `cap`
/// (CAP_SYS_RESOURCE is 24; the test machine lacks it).
pub fn holds_in_bounding_set(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|set| set & (1u64 << cap) != 0)
}
