//! What this machine offers, asked before a test relies on it: cgroup
//! hierarchies and the files their kernel gives, I/O schedulers, swap
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
/// the kernel offers tell). rrun asks the same (cgroups/resources.rs);
/// a fresh machine often offers only none, mq-deadline and kyber.
pub fn blkio_weight_offered() -> bool {
    v1_root_has("blkio", "blkio.weight")
        || v1_root_has("blkio", "blkio.bfq.weight")
        || io_scheduler_offered(&["bfq", "cfq"])
}

/// Swap accounting (`memory.memsw.*`): off with `swapaccount=0` or
/// without CONFIG_MEMCG_SWAP.
pub fn swap_accounting() -> bool {
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
    v1_mount("cpuset")
        .and_then(|m| std::fs::read_to_string(m.join(file)).ok())
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
