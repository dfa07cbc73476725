//! Checking `linux.resources` against the controllers this host has, before
//! anything is created, and what libcgroups does not do for us.
//!
//! A controller the config asks for (a value runc would not treat as unset)
//! that the host lacks is ONE error naming the field and the controller; a
//! controller the config does not ask for is never looked at. The checked
//! resources are then split: what libcgroups' controllers apply (through
//! libcgroups on cgroup v2, through [`super::v1`]'s writes of the same
//! files on v1 and hybrid hosts), normalized so that runc's "unset" values
//! are unset, and the few writes libcgroups never did (cpu burst on its
//! own, blkio leaf and per-device weights, and hugetlb in the cgroup2 tree
//! of a hybrid host).

use libcgroups::common::CgroupSetup;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The config asks for something this host cannot do.
    #[error("linux.resources.{field}: {why}")]
    Unavailable { field: String, why: String },
    #[error("linux.resources.{field}: writing {value:?} to {path}: {errno}")]
    Write {
        field: &'static str,
        path: PathBuf,
        value: String,
        errno: nix::errno::Errno,
    },
}

fn unavailable(field: impl Into<String>, why: impl Into<String>) -> ResourceError {
    ResourceError::Unavailable {
        field: field.into(),
        why: why.into(),
    }
}

/// The cgroup layout of this host: v1 hierarchies by controller, named v1
/// hierarchies, and the cgroup2 tree (the whole tree on a unified host,
/// /sys/fs/cgroup/unified on a hybrid one).
///
/// Probed once per command (a `Cgroup` keeps the one it was opened with),
/// never cached for the process: a long-running embedder (the shim) sees
/// hierarchies mounted after it started.
#[derive(Debug)]
pub struct Host {
    pub setup: CgroupSetup,
    /// Mount point of each mounted v1 controller (`cpu`, `net_cls`, ...).
    pub v1: HashMap<String, PathBuf>,
    /// Mount point of each named v1 hierarchy (one without controllers),
    /// by its `name=` option as /proc/self/cgroup shows it: `name=systemd`
    /// at /sys/fs/cgroup/systemd on a systemd host of the v1 era. A
    /// container gets a directory there too, as runc does. Empty on a
    /// unified host (runc ignores v1 there).
    pub named: HashMap<String, PathBuf>,
    /// Root of the cgroup2 tree, if there is one.
    pub unified: Option<PathBuf>,
}

impl Host {
    pub fn probe() -> Result<Host, ResourceError> {
        let setup = libcgroups::common::get_cgroup_setup()
            .map_err(|e| unavailable("", format!("cannot detect the cgroup layout: {e}")))?;
        let mountinfo = crate::utils::read_proc_text("/proc/self/mountinfo").unwrap_or_default();
        let unified = match setup {
            CgroupSetup::Unified => Some(PathBuf::from(CGROUP_ROOT)),
            CgroupSetup::Hybrid => Some(PathBuf::from(HYBRID_UNIFIED)),
            CgroupSetup::Legacy => None,
        };
        let named = match setup {
            CgroupSetup::Unified => HashMap::new(),
            _ => named_v1_mounts(&mountinfo),
        };
        Ok(Host {
            setup,
            v1: v1_mounts(&mountinfo),
            named,
            unified,
        })
    }

    /// Every v1 hierarchy's mount point, once each (cpu and cpuacct may
    /// share one), named hierarchies included: the hierarchies a
    /// container's cgroup has a directory in, and the ones a process
    /// entering the container (create, exec) joins.
    pub fn v1_mount_points(&self) -> Vec<PathBuf> {
        let mut points: Vec<PathBuf> = self
            .v1
            .values()
            .chain(self.named.values())
            .cloned()
            .collect();
        points.sort();
        points.dedup();
        points
    }

    /// The v1 hierarchies and the cgroup2 tree: where a container's cgroup
    /// has a directory.
    pub fn hierarchy_mount_points(&self) -> Vec<PathBuf> {
        let mut points = self.v1_mount_points();
        points.extend(self.unified.clone());
        points
    }

    fn layout(&self) -> &'static str {
        match self.setup {
            CgroupSetup::Unified => "cgroup v2",
            CgroupSetup::Hybrid => "hybrid cgroup v1/v2",
            CgroupSetup::Legacy => "cgroup v1",
        }
    }

    pub(crate) fn is_unified(&self) -> bool {
        matches!(self.setup, CgroupSetup::Unified)
    }

    /// A file at the root of the v1 hierarchy of `controller`.
    fn v1_file(&self, controller: &str, file: &str) -> Option<PathBuf> {
        self.v1
            .get(controller)
            .map(|m| m.join(file))
            .filter(|f| f.exists())
    }

    /// Controllers the cgroup2 root offers (`cgroup.controllers`) or
    /// delegates to its children (`cgroup.subtree_control`).
    fn v2_list(&self, file: &str) -> Vec<String> {
        self.unified
            .as_ref()
            .and_then(|u| std::fs::read_to_string(u.join(file)).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The hybrid cgroup2 tree is used for hugetlb only when v1 has no
    /// hugetlb hierarchy and the root already delegates it (rrun never
    /// writes the root's cgroup.subtree_control).
    pub fn hugetlb_in_hybrid_v2(&self) -> bool {
        matches!(self.setup, CgroupSetup::Hybrid)
            && !self.v1.contains_key("hugetlb")
            && self
                .v2_list("cgroup.subtree_control")
                .iter()
                .any(|c| c == "hugetlb")
    }
}

/// Mount points of v1 cgroup hierarchies, by controller, from mountinfo.
fn v1_mounts(mountinfo: &str) -> HashMap<String, PathBuf> {
    v1_mounts_by(mountinfo, |opt| KNOWN_V1.contains(&opt))
}

/// Mount points of named v1 hierarchies, by `name=...`, from mountinfo.
fn named_v1_mounts(mountinfo: &str) -> HashMap<String, PathBuf> {
    v1_mounts_by(mountinfo, |opt| {
        opt.strip_prefix("name=").is_some_and(|n| !n.is_empty())
    })
}

/// The first mount point of each v1 (`cgroup`) mount option `wanted` picks.
fn v1_mounts_by(mountinfo: &str, wanted: impl Fn(&str) -> bool) -> HashMap<String, PathBuf> {
    let mut mounts = HashMap::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split_whitespace();
        if right.next() != Some("cgroup") {
            continue;
        }
        let (Some(mount_point), Some(opts)) = (left.split_whitespace().nth(4), right.nth(1)) else {
            continue;
        };
        for opt in opts.split(',').filter(|opt| wanted(opt)) {
            mounts
                .entry(opt.to_string())
                .or_insert_with(|| PathBuf::from(mount_point));
        }
    }
    mounts
}

const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
];

/// Refuse, before anything is created, what the config asks of a
/// controller this host lacks.
pub fn check(host: &Host, resources: &LinuxResources) -> Result<(), ResourceError> {
    if host.is_unified() {
        return check_v2(host, resources);
    }
    if let Some(memory) = resources.memory() {
        check_memory_v1(host, memory)?;
    }
    if let Some(cpu) = resources.cpu() {
        check_cpu_v1(host, cpu)?;
    }
    if resources.pids().is_some() {
        need_v1(host, "pids", "pids")?;
    }
    if let Some(blkio) = resources.block_io() {
        check_blkio_v1(host, blkio)?;
    }
    check_hugetlb(host, resources)?;
    check_network_v1(host, resources)?;
    if resources.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(unavailable(
            "rdma",
            if host.v1.contains_key("rdma") {
                "rdma limits on cgroup v1 are not supported by rrun".to_string()
            } else {
                "rdma controller is not available on this host".to_string()
            },
        ));
    }
    if resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unavailable(
            "unified",
            format!(
                "unified key/values need a cgroup v2 host; this host is {}",
                host.layout()
            ),
        ));
    }
    Ok(())
}

fn need_v1(host: &Host, controller: &str, field: &str) -> Result<(), ResourceError> {
    if host.v1.contains_key(controller) {
        return Ok(());
    }
    Err(unavailable(
        field,
        format!("{controller} controller is not available on this host"),
    ))
}

fn need_v1_file(
    host: &Host,
    controller: &str,
    file: &str,
    field: &str,
) -> Result<(), ResourceError> {
    need_v1(host, controller, field)?;
    if host.v1_file(controller, file).is_some() {
        return Ok(());
    }
    Err(unavailable(
        field,
        format!("{file} is not available on this host"),
    ))
}

fn nonzero_i64(v: Option<i64>) -> bool {
    v.is_some_and(|v| v != 0)
}

fn nonzero_u64(v: Option<u64>) -> bool {
    v.is_some_and(|v| v != 0)
}

fn check_memory_v1(host: &Host, memory: &LinuxMemory) -> Result<(), ResourceError> {
    let asks = nonzero_i64(memory.limit())
        || nonzero_i64(memory.reservation())
        || nonzero_i64(memory.swap())
        || nonzero_i64(memory.kernel_tcp())
        || memory.swappiness().is_some()
        || memory.disable_oom_killer() == Some(true);
    if !asks {
        return Ok(());
    }
    need_v1(host, "memory", "memory")?;
    if nonzero_i64(memory.swap()) {
        need_v1_file(host, "memory", "memory.memsw.limit_in_bytes", "memory.swap").map_err(
            |_| {
                unavailable(
                    "memory.swap",
                    "swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes)",
                )
            },
        )?;
    }
    if nonzero_i64(memory.kernel_tcp()) {
        need_v1_file(
            host,
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            "memory.kernelTCP",
        )?;
    }
    if memory.swappiness().is_some_and(|s| s > 100) {
        return Err(unavailable(
            "memory.swappiness",
            format!(
                "{} is out of range 0..100",
                memory.swappiness().unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

fn check_cpu_v1(host: &Host, cpu: &LinuxCpu) -> Result<(), ResourceError> {
    let files = [
        (nonzero_u64(cpu.shares()), "cpu.shares", "cpu.shares"),
        (nonzero_i64(cpu.quota()), "cpu.cfs_quota_us", "cpu.quota"),
        (nonzero_u64(cpu.period()), "cpu.cfs_period_us", "cpu.period"),
        (cpu.burst().is_some(), "cpu.cfs_burst_us", "cpu.burst"),
        (
            nonzero_i64(cpu.realtime_runtime()),
            "cpu.rt_runtime_us",
            "cpu.realtimeRuntime",
        ),
        (
            nonzero_u64(cpu.realtime_period()),
            "cpu.rt_period_us",
            "cpu.realtimePeriod",
        ),
        (cpu.idle().is_some(), "cpu.idle", "cpu.idle"),
    ];
    for (asked, file, field) in files {
        if asked {
            need_v1_file(host, "cpu", file, field)?;
        }
    }
    if cpu.cpus().as_ref().is_some_and(|c| !c.is_empty()) {
        need_v1(host, "cpuset", "cpu.cpus")?;
    }
    if cpu.mems().as_ref().is_some_and(|m| !m.is_empty()) {
        need_v1(host, "cpuset", "cpu.mems")?;
    }
    Ok(())
}

/// Whether child blkio cgroups have weight files. BFQ (kernel >= 5.0)
/// shows `blkio.bfq.weight` only below the root, so the root alone cannot
/// tell: the I/O schedulers the kernel offers can.
fn blkio_weight_available(host: &Host) -> bool {
    host.v1_file("blkio", "blkio.weight").is_some()
        || host.v1_file("blkio", "blkio.bfq.weight").is_some()
        || io_scheduler_offered(&["bfq", "cfq"])
}

fn io_scheduler_offered(names: &[&str]) -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/block") else {
        return false;
    };
    devices.flatten().any(|dev| {
        std::fs::read_to_string(dev.path().join("queue/scheduler")).is_ok_and(|s| {
            s.split_whitespace()
                .map(|w| w.trim_matches(['[', ']']))
                .any(|w| names.contains(&w))
        })
    })
}

/// A file of the container's own blkio cgroup: CFQ's name, else BFQ's.
fn blkio_file(dir: &Path, cfq: &str, bfq: &str) -> PathBuf {
    match dir.join(cfq) {
        path if path.exists() => path,
        _ => dir.join(bfq),
    }
}

fn check_blkio_v1(host: &Host, blkio: &LinuxBlockIo) -> Result<(), ResourceError> {
    let weights = [
        (blkio.weight().is_some_and(|w| w != 0), "blockIO.weight"),
        (
            blkio
                .weight_device()
                .as_ref()
                .is_some_and(|d| !d.is_empty()),
            "blockIO.weightDevice",
        ),
    ];
    for (asked, field) in weights {
        if asked {
            need_v1(host, "blkio", field)?;
            if !blkio_weight_available(host) {
                return Err(unavailable(
                    field,
                    "blkio.weight is not available on this host (no CFQ/BFQ)",
                ));
            }
        }
    }
    let leaf_asked = blkio.leaf_weight().is_some_and(|w| w != 0)
        || blkio
            .weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some());
    if leaf_asked && host.v1_file("blkio", "blkio.leaf_weight").is_none() {
        return Err(unavailable(
            "blockIO.leafWeight",
            "blkio.leaf_weight is not available on this host (only CFQ has leaf weights)",
        ));
    }
    let throttles = [
        (
            blkio.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "blockIO.throttleReadBpsDevice",
        ),
        (
            blkio.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            blkio.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            blkio.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (list, file, field) in throttles {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            need_v1_file(host, "blkio", file, field)?;
        }
    }
    Ok(())
}

fn check_hugetlb(host: &Host, resources: &LinuxResources) -> Result<(), ResourceError> {
    let Some(limits) = resources
        .hugepage_limits()
        .as_ref()
        .filter(|l| !l.is_empty())
    else {
        return Ok(());
    };
    for limit in limits {
        if !hugepage_size_exists(limit.page_size()) {
            return Err(unavailable(
                "hugepageLimits.pageSize",
                format!(
                    "huge page size {:?} is not available on this host",
                    limit.page_size()
                ),
            ));
        }
    }
    let available = host.v1.contains_key("hugetlb")
        || host.hugetlb_in_hybrid_v2()
        || (host.is_unified()
            && host
                .v2_list("cgroup.controllers")
                .iter()
                .any(|c| c == "hugetlb"));
    if available {
        return Ok(());
    }
    let why = match host.setup {
        CgroupSetup::Hybrid => format!(
            "hugetlb controller is not available on this host (no v1 hugetlb hierarchy, and \
             {HYBRID_UNIFIED}/cgroup.subtree_control does not delegate hugetlb)"
        ),
        _ => "hugetlb controller is not available on this host".to_string(),
    };
    Err(unavailable("hugepageLimits", why))
}

/// `2MB` -> /sys/kernel/mm/hugepages/hugepages-2048kB.
fn hugepage_size_exists(page_size: &str) -> bool {
    let kb = page_size_kb(page_size);
    kb.is_some_and(|kb| {
        Path::new(HUGEPAGES)
            .join(format!("hugepages-{kb}kB"))
            .is_dir()
    })
}

fn page_size_kb(page_size: &str) -> Option<u64> {
    let digits: String = page_size.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let factor = match &page_size[digits.len()..] {
        "KB" | "kB" => 1,
        "MB" => 1024,
        "GB" => 1024 * 1024,
        _ => return None,
    };
    Some(n * factor)
}

fn check_network_v1(host: &Host, resources: &LinuxResources) -> Result<(), ResourceError> {
    let Some(network) = resources.network() else {
        return Ok(());
    };
    if network.class_id().is_some() {
        need_v1(host, "net_cls", "network.classID")?;
    }
    if network.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
        need_v1(host, "net_prio", "network.priorities")?;
    }
    Ok(())
}

/// On a v2 host: each asked-for controller must be offered by the root.
fn check_v2(host: &Host, resources: &LinuxResources) -> Result<(), ResourceError> {
    let offered = host.v2_list("cgroup.controllers");
    let need = |controller: &str, field: &str| {
        if offered.iter().any(|c| c == controller) {
            Ok(())
        } else {
            Err(unavailable(
                field,
                format!("{controller} controller is not available on this host"),
            ))
        }
    };
    if resources.memory().is_some() {
        need("memory", "memory")?;
    }
    if let Some(cpu) = resources.cpu() {
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            need("cpuset", "cpu.cpus")?;
        }
        let asked = |v: Option<i64>| v.is_some_and(|v| v != 0);
        if cpu.shares().is_some_and(|s| s != 0)
            || asked(cpu.quota())
            || cpu.period().is_some_and(|p| p != 0)
            || cpu.idle().is_some()
        {
            need("cpu", "cpu")?;
        }
    }
    if resources.pids().is_some() {
        need("pids", "pids")?;
    }
    if resources.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some_and(|w| w != 0)
            || b.throttle_read_bps_device()
                .as_ref()
                .is_some_and(|l| !l.is_empty())
            || b.throttle_write_bps_device()
                .as_ref()
                .is_some_and(|l| !l.is_empty())
            || b.throttle_read_iops_device()
                .as_ref()
                .is_some_and(|l| !l.is_empty())
            || b.throttle_write_iops_device()
                .as_ref()
                .is_some_and(|l| !l.is_empty())
    }) {
        need("io", "blockIO")?;
    }
    check_hugetlb(host, resources)?;
    if let Some(network) = resources.network() {
        if network.class_id().is_some() || network.priorities().is_some() {
            return Err(unavailable(
                "network",
                "net_cls and net_prio do not exist in cgroup v2",
            ));
        }
    }
    if resources.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        // libcgroups' v2 manager has no rdma controller: rrun writes
        // rdma.max itself (write_rdma_v2).
        need("rdma", "rdma")?;
    }
    Ok(())
}

/// The resources libcgroups is given (and, on v1 and hybrid hosts,
/// [`super::v1::apply`], which writes what libcgroups' v1 controllers
/// would): runc's "unset" values removed, and what rrun writes on its own
/// ([`apply_extras`]) taken out.
pub fn for_libcgroups(host: &Host, resources: &LinuxResources) -> LinuxResources {
    let mut out = resources.clone();
    if let Some(memory) = resources.memory() {
        let mut memory = *memory;
        if nonzero_i64(memory.kernel()) {
            tracing::warn!("linux.resources.memory.kernel is deprecated and ignored, as by runc");
        }
        memory.set_kernel(None);
        if !nonzero_i64(memory.kernel_tcp()) {
            memory.set_kernel_tcp(None);
        }
        out.set_memory(Some(memory));
    }
    if let Some(cpu) = resources.cpu() {
        let mut cpu = cpu.clone();
        // runc's "0 means unset" for quota and period: on v2, libcgroups
        // would write "max 0" to cpu.max, which the kernel refuses.
        if cpu.quota() == Some(0) {
            cpu.set_quota(None);
        }
        if cpu.period() == Some(0) {
            cpu.set_period(None);
        }
        if !host.is_unified() {
            // libcgroups v1 skips a burst given alone: apply_extras writes it.
            cpu.set_burst(None);
        }
        out.set_cpu(Some(cpu));
    }
    if host.hugetlb_in_hybrid_v2() {
        out.set_hugepage_limits(None);
    }
    out
}

/// The writes libcgroups does not do on v1 and hybrid hosts. `v1_dir`
/// gives the container's directory in a v1 hierarchy; `unified_dir` is its
/// directory in the hybrid cgroup2 tree.
pub fn apply_extras(
    host: &Host,
    resources: &LinuxResources,
    v1_dir: &dyn Fn(&str) -> Option<PathBuf>,
    unified_dir: Option<&Path>,
) -> Result<(), ResourceError> {
    if host.is_unified() {
        return Ok(());
    }
    if let Some(burst) = resources.cpu().as_ref().and_then(|c| c.burst()) {
        if let Some(dir) = v1_dir("cpu") {
            write(
                &dir.join("cpu.cfs_burst_us"),
                &burst.to_string(),
                "cpu.burst",
            )?;
        }
    }
    if let Some(blkio) = resources.block_io() {
        if let Some(dir) = v1_dir("blkio") {
            apply_blkio_weights(&dir, blkio)?;
        }
    }
    if host.hugetlb_in_hybrid_v2() {
        if let Some(dir) = unified_dir {
            apply_v2_hugetlb(dir, resources)?;
        }
    }
    Ok(())
}

fn apply_blkio_weights(dir: &Path, blkio: &LinuxBlockIo) -> Result<(), ResourceError> {
    if let Some(leaf) = blkio.leaf_weight().filter(|w| *w != 0) {
        write(
            &dir.join("blkio.leaf_weight"),
            &leaf.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for device in blkio.weight_device().as_deref().unwrap_or_default() {
        let dev = format!("{}:{}", device.major(), device.minor());
        if let Some(w) = device.weight() {
            write(
                &blkio_file(dir, "blkio.weight_device", "blkio.bfq.weight_device"),
                &format!("{dev} {w}"),
                "blockIO.weightDevice",
            )?;
        }
        if let Some(w) = device.leaf_weight() {
            write(
                &dir.join("blkio.leaf_weight_device"),
                &format!("{dev} {w}"),
                "blockIO.weightDevice",
            )?;
        }
    }
    Ok(())
}

/// hugetlb in the hybrid cgroup2 tree: the container's directory there
/// must have been given the controller by its parents.
fn apply_v2_hugetlb(dir: &Path, resources: &LinuxResources) -> Result<(), ResourceError> {
    let Some(limits) = resources
        .hugepage_limits()
        .as_ref()
        .filter(|l| !l.is_empty())
    else {
        return Ok(());
    };
    let offered = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    if !offered.split_whitespace().any(|c| c == "hugetlb") {
        return Err(unavailable(
            "hugepageLimits",
            format!(
                "hugetlb controller is not delegated to {} by its parent",
                dir.display()
            ),
        ));
    }
    for limit in limits {
        let file = dir.join(format!("hugetlb.{}.max", limit.page_size()));
        write(&file, &limit.limit().to_string(), "hugepageLimits")?;
    }
    Ok(())
}

fn write(path: &Path, value: &str, field: &'static str) -> Result<(), ResourceError> {
    std::fs::write(path, value).map_err(|e| ResourceError::Write {
        field,
        path: path.to_path_buf(),
        value: value.to_string(),
        errno: crate::utils::io_errno(&e),
    })
}

/// On a cgroup v2 host managed through cgroupfs: what [`apply_v2_extras`]
/// writes instead of libcgroups, taken out of what libcgroups gets.
/// libcgroups 0.7 converts `cpu.shares` with the quadratic formula of
/// runc 1.4 (512 -> 59) where runc 1.1 and crun 1.8, Debian 12's, convert
/// linearly (512 -> 20); its `blockIO.weight` conversion overflows a u16
/// (a panic in debug builds, a wrong io.weight in release ones).
pub fn without_v2_extras(resources: &LinuxResources) -> LinuxResources {
    let mut out = resources.clone();
    if let Some(cpu) = resources.cpu() {
        let mut cpu = cpu.clone();
        cpu.set_shares(None);
        out.set_cpu(Some(cpu));
    }
    if let Some(blkio) = resources.block_io() {
        let mut blkio = blkio.clone();
        blkio.set_weight(None);
        out.set_block_io(Some(blkio));
    }
    out
}

/// runc 1.1's cpu.shares -> cpu.weight (ConvertCPUSharesToCgroupV2Value).
pub fn cpu_weight_of_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's blkio weight (10-1000) -> io.weight (1-10000)
/// (ConvertBlkIOToIOWeightValue).
pub fn io_weight_of_blkio(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// The cgroup v2 writes runc's fs2 manager does and libcgroups does not do
/// as runc does, after libcgroups' (see [`without_v2_extras`]): cpu.weight
/// from `cpu.shares` (unless `unified` sets cpu.weight, which libcgroups
/// writes after); `blockIO.weight` to io.bfq.weight as it is while BFQ is
/// the disk's scheduler, else to io.weight converted; and
/// memory.swap.max "0" when memory+swap equals memory (libcgroups writes
/// nothing for a zero swap, which leaves "max": unlimited swap).
pub fn apply_v2_extras(dir: &Path, resources: &LinuxResources) -> Result<(), ResourceError> {
    let unified_sets = |key: &str| {
        resources
            .unified()
            .as_ref()
            .is_some_and(|u| u.contains_key(key))
    };
    if let Some(shares) = resources.cpu().as_ref().and_then(|c| c.shares()) {
        if shares != 0 && !unified_sets("cpu.weight") {
            write(
                &dir.join("cpu.weight"),
                &cpu_weight_of_shares(shares).to_string(),
                "cpu.shares",
            )?;
        }
    }
    if let Some(weight) = resources.block_io().as_ref().and_then(|b| b.weight()) {
        write_io_weight(dir, weight)?;
    }
    if let Some(memory) = resources.memory() {
        if let (Some(limit), Some(swap)) = (memory.limit(), memory.swap()) {
            if limit > 0 && swap == limit && !unified_sets("memory.swap.max") {
                write(&dir.join("memory.swap.max"), "0", "memory.swap")?;
            }
        }
    }
    Ok(())
}

/// With the systemd driver: what [`apply_systemd_extras`] does instead of
/// libcgroups, taken out of what libcgroups gets. libcgroups 0.7 sends
/// AllowedCPUs and AllowedMemoryNodes as arrays of u64 where systemd wants
/// bytes (systemd refuses the whole SetUnitProperties: "Unexpected message
/// contents", so any cpuset failed create), converts `cpu.shares` to
/// CPUWeight with runc 1.4's formula, and ignores `blockIO.weight`.
/// `cpu.shares` becomes `unified` cpu.weight, which libcgroups' systemd
/// manager (wrongly) takes as shares and converts: the shares that convert
/// to runc 1.1's weight are passed, so CPUWeight is runc's and stays in
/// the unit's properties (a daemon-reload rewrites the files from them).
pub fn for_systemd(resources: &LinuxResources) -> LinuxResources {
    let mut out = resources.clone();
    if let Some(cpu) = resources.cpu() {
        let mut cpu = cpu.clone();
        cpu.set_cpus(None);
        cpu.set_mems(None);
        let unified_weight = resources
            .unified()
            .as_ref()
            .is_some_and(|u| u.contains_key("cpu.weight"));
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            cpu.set_shares(None);
            if !unified_weight {
                let mut unified = resources.unified().clone().unwrap_or_default();
                unified.insert(
                    "cpu.weight".to_string(),
                    shares_libcgroups_converts_to(cpu_weight_of_shares(shares)).to_string(),
                );
                out.set_unified(Some(unified));
            }
        }
        out.set_cpu(Some(cpu));
    }
    if let Some(blkio) = resources.block_io() {
        let mut blkio = blkio.clone();
        blkio.set_weight(None);
        out.set_block_io(Some(blkio));
    }
    out
}

/// libcgroups 0.7's shares -> CPUWeight (runc 1.4's
/// ConvertCPUSharesToCgroupV2Value).
fn libcgroups_weight_of_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// The least shares libcgroups converts to `weight` or more (it is
/// monotonic, and every weight 1-10000 is reached).
fn shares_libcgroups_converts_to(weight: u64) -> u64 {
    let (mut low, mut high) = (2u64, 262_144u64);
    while low < high {
        let mid = low + (high - low) / 2;
        if libcgroups_weight_of_shares(mid) >= weight {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// The writes runc's systemd manager does on the cgroup's files itself
/// after the unit's properties (see [`for_systemd`]): cpuset.cpus and
/// cpuset.mems (systemd leaves them alone while the unit has no
/// AllowedCPUs), and the blkio weight as on cgroupfs.
pub fn apply_systemd_extras(dir: &Path, resources: &LinuxResources) -> Result<(), ResourceError> {
    if let Some(cpu) = resources.cpu() {
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            write(&dir.join("cpuset.mems"), mems, "cpu.mems")?;
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            write(&dir.join("cpuset.cpus"), cpus, "cpu.cpus")?;
        }
    }
    if let Some(weight) = resources.block_io().as_ref().and_then(|b| b.weight()) {
        write_io_weight(dir, weight)?;
    }
    Ok(())
}

fn write_io_weight(dir: &Path, weight: u16) -> Result<(), ResourceError> {
    if weight == 0 {
        return Ok(());
    }
    let bfq = dir.join("io.bfq.weight");
    if bfq.exists() {
        write(&bfq, &weight.to_string(), "blockIO.weight")
    } else {
        write(
            &dir.join("io.weight"),
            &io_weight_of_blkio(weight).to_string(),
            "blockIO.weight",
        )
    }
}

/// `linux.resources.rdma` on a cgroup v2 host, as runc writes it: one
/// `rdma.max` line per device, `<device> hca_handle=N hca_object=M`. The
/// kernel refuses a device it does not know (ENODEV), named here.
pub fn write_rdma_v2(dir: &Path, resources: &LinuxResources) -> Result<(), ResourceError> {
    let Some(rdma) = resources.rdma().as_ref() else {
        return Ok(());
    };
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limit) in devices {
        let mut line = device.clone();
        if let Some(handles) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={objects}"));
        }
        if line == *device {
            continue;
        }
        std::fs::write(dir.join("rdma.max"), &line).map_err(|e| {
            unavailable(
                "rdma",
                format!(
                    "writing {line:?} to {}: {}",
                    dir.join("rdma.max").display(),
                    crate::utils::io_errno(&e)
                ),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn systemd_gets_the_shares_that_libcgroups_converts_to_runcs_weight() {
        for shares in [2, 3, 100, 512, 1024, 4096, 100_000, 262_144] {
            let want = cpu_weight_of_shares(shares);
            let passed = shares_libcgroups_converts_to(want);
            assert_eq!(libcgroups_weight_of_shares(passed), want, "shares {shares}");
        }
        let r = for_systemd(&resources(
            r#"{"cpu":{"shares":512,"cpus":"0","mems":"0"},"blockIO":{"weight":500}}"#,
        ));
        let cpu = r.cpu().clone().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.cpus().clone(), cpu.mems().clone()),
            (None, None, None)
        );
        assert_eq!(r.block_io().as_ref().unwrap().weight(), None);
        let unified = r.unified().clone().unwrap();
        let weight: u64 = unified["cpu.weight"].parse().unwrap();
        assert_eq!(libcgroups_weight_of_shares(weight), 20);
    }

    /// A v1 host with only the given hierarchies (mount points that need
    /// not exist: the checks below look at hierarchies, not files).
    fn v1_host(controllers: &[&str]) -> Host {
        Host {
            setup: CgroupSetup::Legacy,
            v1: controllers
                .iter()
                .map(|c| (c.to_string(), PathBuf::from("/nonexistent").join(c)))
                .collect(),
            named: HashMap::new(),
            unified: None,
        }
    }

    #[test]
    fn mountinfo_names_every_comounted_controller() {
        let info =
            "30 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n\
                    31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids\n";
        let m = v1_mounts(info);
        assert_eq!(
            m["net_prio"],
            PathBuf::from("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert_eq!(m["pids"], PathBuf::from("/sys/fs/cgroup/pids"));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn named_hierarchies_are_found_and_are_v1_mount_points() {
        let info = "32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let named = named_v1_mounts(info);
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(
            named["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert!(!v1_mounts(info).contains_key("name=systemd"));
        let host = Host {
            setup: CgroupSetup::Hybrid,
            v1: v1_mounts(info),
            named,
            unified: Some(PathBuf::from("/sys/fs/cgroup/unified")),
        };
        assert_eq!(
            host.v1_mount_points(),
            [
                PathBuf::from("/sys/fs/cgroup/pids"),
                PathBuf::from("/sys/fs/cgroup/systemd")
            ]
        );
        assert_eq!(host.hierarchy_mount_points().len(), 3);
    }

    #[test]
    fn rdma_limits_on_v2_need_the_controller_and_only_it() {
        let root = std::env::temp_dir().join(format!("rrun-rdma-v2-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let host = Host {
            setup: CgroupSetup::Unified,
            v1: HashMap::new(),
            named: HashMap::new(),
            unified: Some(root.clone()),
        };
        let r = resources(r#"{"rdma":{"mlx5_1":{"hcaHandles":3}}}"#);

        std::fs::write(root.join("cgroup.controllers"), "memory pids\n").unwrap();
        let e = check(&host, &r).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.rdma: rdma controller"),
            "{e}"
        );

        std::fs::write(root.join("cgroup.controllers"), "memory pids rdma\n").unwrap();
        check(&host, &r).unwrap();
        check(&host, &resources(r#"{"pids":{"limit":10}}"#)).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn values_runc_treats_as_unset_ask_for_nothing() {
        let host = v1_host(&[]);
        let r = resources(
            r#"{"memory":{"limit":0,"reservation":0,"kernel":0},"cpu":{"shares":0},
                "blockIO":{"weight":0}}"#,
        );
        check(&host, &r).unwrap();
    }

    #[test]
    fn a_missing_controller_is_named_with_the_field() {
        let host = v1_host(&["memory", "cpu"]);
        let r = resources(r#"{"network":{"classID":1048577}}"#);
        let e = check(&host, &r).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.network.classID: net_cls controller is not available on this host"
        );
        let r = resources(r#"{"pids":{"limit":10}}"#);
        let e = check(&host, &r).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.pids: pids controller"),
            "{e}"
        );
        let r = resources(r#"{"unified":{"memory.high":"1000000"}}"#);
        let e = check(&host, &r).unwrap_err().to_string();
        assert!(e.contains("need a cgroup v2 host"), "{e}");
    }

    #[test]
    fn libcgroups_never_sees_kernel_memory_or_a_zero_tcp_limit() {
        let host = v1_host(&["memory", "cpu"]);
        let r = resources(
            r#"{"memory":{"limit":100000000,"kernel":0,"kernelTCP":0},"cpu":{"burst":10}}"#,
        );
        let out = for_libcgroups(&host, &r);
        let memory = out.memory().unwrap();
        assert_eq!(memory.kernel(), None);
        assert_eq!(memory.kernel_tcp(), None);
        assert_eq!(memory.limit(), Some(100000000));
        assert_eq!(out.cpu().as_ref().unwrap().burst(), None);
    }

    #[test]
    fn page_sizes_parse_as_the_kernel_names_them() {
        assert_eq!(page_size_kb("2MB"), Some(2048));
        assert_eq!(page_size_kb("1GB"), Some(1048576));
        assert_eq!(page_size_kb("64KB"), Some(64));
        assert_eq!(page_size_kb("2M"), None);
    }
}
