//! Cgroup statistics in runc's `events --stats` JSON format (runc 1.1's
//! `types.Stats`: same keys, same omissions of zero values).
//!
//! The files are read here rather than through libcgroups' `stats()`:
//! runc's format needs files libcgroups does not read (cpuacct.usage_all,
//! cpuset, the blkio fallbacks) and treats a missing optional file (no swap
//! accounting, no hugetlb hierarchy) as zero where libcgroups fails.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";
/// cpuacct.stat counts USER_HZ ticks; Linux fixes USER_HZ at 100.
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

/// A statistics file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A file that must be there could not be read.
    #[error("cgroup stats: read {path}: {errno}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno reading it failed with.
        errno: nix::errno::Errno,
    },
    /// A file's content is not what the kernel writes there.
    #[error("cgroup stats: {path}: malformed content {content:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The content, or the line, that did not parse.
        content: String,
    },
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A cgroup's statistics; serialized, runc's `events --stats` data. What
/// a controller the cgroup lacks would give is zero (or empty). Times are
/// in nanoseconds and sizes in bytes, on cgroup v1 and v2 alike.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// The cpuset's settings (v1 only: zero on v2, as runc 1.1).
    pub cpuset: CpuSet,
    /// Memory use and limits.
    pub memory: Memory,
    /// Process counts.
    pub pids: Pids,
    /// Block I/O (v2's io.stat mapped onto v1's names, as runc does).
    pub blkio: Blkio,
    /// Huge page use, by page size as runc names it (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// rrun has no Intel RDT support: always `{}`, as runc without it.
    pub intel_rdt: IntelRdt,
    /// runc never fills it for `events`: always `null`.
    pub network_interfaces: Option<Vec<()>>,
}

/// Intel RDT statistics: rrun has none.
#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

/// CPU statistics.
#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    /// CPU time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// CPU time used by the cgroup, in nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    /// All of it.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In the kernel, per CPU (v1 with `cpuacct.usage_all` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// In user space, per CPU (v1 with `cpuacct.usage_all` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In the kernel (v1: counted in ticks, so in 10 ms steps).
    pub kernel: u64,
    /// In user space (v1: counted in ticks, so in 10 ms steps).
    pub user: u64,
}

/// CFS bandwidth throttling (`cpu.stat`).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods that have elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// The cpuset's settings (v1 `cpuset.*` files; a file the kernel lacks
/// reads as zero).
#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    /// The CPUs the cgroup may run on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// `cpuset.cpu_exclusive`.
    pub cpu_exclusive: u64,
    /// The memory nodes the cgroup may allocate on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// `cpuset.mem_hardwall`.
    pub mem_hardwall: u64,
    /// `cpuset.mem_exclusive`.
    pub mem_exclusive: u64,
    /// `cpuset.memory_migrate`.
    pub memory_migrate: u64,
    /// `cpuset.memory_spread_page`.
    pub memory_spread_page: u64,
    /// `cpuset.memory_spread_slab`.
    pub memory_spread_slab: u64,
    /// `cpuset.memory_pressure`.
    pub memory_pressure: u64,
    /// `cpuset.sched_load_balance`.
    pub sched_load_balance: u64,
    /// `cpuset.sched_relax_domain_level` (-1: the system default).
    pub sched_relax_domain_level: i64,
}

/// One kind of memory's use and limit, in bytes.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    /// The limit; with none, `u64::MAX` on v2 and the kernel's largest
    /// page-aligned value on v1.
    pub limit: u64,
    /// In use now.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// The most ever in use (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit (v1 only).
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Debug, Default, Serialize)]
pub struct Memory {
    /// Page cache, in bytes (v1 `cache`, v2 `file` of memory.stat).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory and swap together (on v2 too, as runc reports it).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every line of `memory.stat`, as the kernel names them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Process counts.
#[derive(Debug, Default, Serialize)]
pub struct Pids {
    /// Processes (and threads) in the cgroup now.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// `pids.max`; 0 when there is no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One device's value of a block I/O statistic.
#[derive(Debug, Default, Serialize, PartialEq, Eq, Clone)]
pub struct BlkioEntry {
    /// The device's major number.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// The device's minor number.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total` (v1's
    /// names); empty for statistics without one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count: bytes, operations, nanoseconds or sectors, after the
    /// statistic.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O statistics, as v1's blkio controller names them; on v2 only
/// the bytes and operations (read and write) are known.
#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations issued.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// Operations queued.
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// Time between dispatch and completion, in nanoseconds.
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// Time spent queued, in nanoseconds.
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// Operations merged into others.
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// Disk time given to the cgroup, in milliseconds (v1 only).
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// Sectors transferred.
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One huge page size's use, in bytes.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    /// In use now.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// The most ever in use (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often an allocation failed for the limit.
    pub failcnt: u64,
}

/// Where each controller of a cgroup lives.
#[derive(Debug, Clone)]
pub enum Layout {
    /// v1 (and hybrid, which libcgroups drives as v1): one directory per
    /// mounted controller.
    V1(HashMap<&'static str, PathBuf>),
    /// v2: one directory for everything.
    V2(PathBuf),
}

/// The v1 controllers whose files the statistics read.
const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb",
];

impl Layout {
    /// The directories of the cgroup at `path` (relative to each
    /// hierarchy's root, as [`crate::state::State::cgroup_path`]) on this
    /// host: one mountinfo read ([`super::resources::Host`]), where
    /// libcgroups' lookup re-read it through a verified procfs handle per
    /// controller.
    pub fn of(path: &Path) -> Layout {
        let rel = super::relative_dir(path).unwrap_or_default();
        let rel = rel.as_path();
        let host = super::resources::Host::probe();
        if let Ok(host) = &host {
            if host.is_unified() {
                return Layout::V2(Path::new(CGROUP_ROOT).join(rel));
            }
        }
        let v1 = host.map(|h| h.v1).unwrap_or_default();
        let dirs = V1_CONTROLLERS
            .iter()
            .filter_map(|name| v1.get(*name).map(|m| (*name, m.join(rel))))
            .filter(|(_, dir)| dir.is_dir())
            .collect();
        Layout::V1(dirs)
    }

    /// The directory holding memory.oom_control (v1) or memory.events (v2).
    pub fn memory_dir(&self) -> Option<&Path> {
        match self {
            Layout::V1(dirs) => dirs.get("memory").map(PathBuf::as_path),
            Layout::V2(dir) => Some(dir),
        }
    }
}

/// Read every statistic runc reports for the cgroup.
pub fn read(layout: &Layout) -> Result<Stats, StatsError> {
    match layout {
        Layout::V1(dirs) => read_v1(dirs),
        Layout::V2(dir) => read_v2(dir),
    }
}

// ---- file readers ---------------------------------------------------------

/// The file's content, or None if it does not exist.
fn read_opt(path: &Path) -> Result<Option<String>, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StatsError::Read {
            path: path.to_path_buf(),
            errno: crate::utils::io_errno(&e),
        }),
    }
}

fn read_str(path: &Path) -> Result<String, StatsError> {
    read_opt(path)?.ok_or_else(|| StatsError::Read {
        path: path.to_path_buf(),
        errno: nix::errno::Errno::ENOENT,
    })
}

fn malformed(path: &Path, content: &str) -> StatsError {
    StatsError::Malformed {
        path: path.to_path_buf(),
        content: content.to_string(),
    }
}

/// A single number; `max` reads as u64::MAX (v2 limits), as runc's
/// GetCgroupParamUint does. Negative values (v1 "unset") read as 0.
fn parse_u64(path: &Path, s: &str) -> Result<u64, StatsError> {
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>()
        .or_else(|_| t.parse::<i64>().map(|_| 0))
        .map_err(|_| malformed(path, s))
}

fn read_u64_opt(path: &Path) -> Result<Option<u64>, StatsError> {
    read_opt(path)?.map(|s| parse_u64(path, &s)).transpose()
}

fn read_u64(path: &Path) -> Result<u64, StatsError> {
    parse_u64(path, &read_str(path)?)
}

/// `key value` lines (memory.stat, cpu.stat, memory.events).
fn parse_flat_keyed(path: &Path, s: &str) -> Result<BTreeMap<String, u64>, StatsError> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [k, v] => Ok((k.to_string(), parse_u64(path, v)?)),
            _ => Err(malformed(path, l)),
        })
        .collect()
}

fn read_flat_keyed_opt(path: &Path) -> Result<Option<BTreeMap<String, u64>>, StatsError> {
    read_opt(path)?
        .map(|s| parse_flat_keyed(path, &s))
        .transpose()
}

/// A cpu list such as `0-3,6` (cpuset.cpus, cpuset.mems).
pub(crate) fn parse_cpu_list(path: &Path, s: &str) -> Result<Vec<u16>, StatsError> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || malformed(path, s);
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// Huge page sizes as runc names them ("2MB", "1GB").
fn hugepage_sizes() -> Vec<String> {
    libcgroups::stats::supported_page_sizes().unwrap_or_else(|_| {
        std::fs::read_dir(HUGEPAGES_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let kb: u64 = name
                    .strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()?;
                Some(match kb {
                    kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
                    kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
                    kb => format!("{kb}KB"),
                })
            })
            .collect()
    })
}

// ---- cgroup v1 ------------------------------------------------------------

fn read_v1(dirs: &HashMap<&'static str, PathBuf>) -> Result<Stats, StatsError> {
    let mut stats = Stats::default();
    if let Some(dir) = dirs.get("cpu") {
        stats.cpu.throttling = v1_throttling(dir)?;
    }
    if let Some(dir) = dirs.get("cpuacct") {
        stats.cpu.usage = v1_cpu_usage(dir)?;
    }
    if let Some(dir) = dirs.get("cpuset") {
        stats.cpuset = v1_cpuset(dir)?;
    }
    if let Some(dir) = dirs.get("memory") {
        stats.memory = v1_memory(dir)?;
    }
    if let Some(dir) = dirs.get("pids") {
        stats.pids = Pids {
            current: read_u64(&dir.join("pids.current"))?,
            // "max" means no limit: runc reports 0.
            limit: match read_str(&dir.join("pids.max"))?.trim() {
                "max" => 0,
                s => parse_u64(&dir.join("pids.max"), s)?,
            },
        };
    }
    if let Some(dir) = dirs.get("blkio") {
        stats.blkio = v1_blkio(dir)?;
    }
    if let Some(dir) = dirs.get("hugetlb") {
        for size in hugepage_sizes() {
            let file = |f: &str| dir.join(format!("hugetlb.{size}.{f}"));
            stats.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: read_u64(&file("usage_in_bytes"))?,
                    max: read_u64(&file("max_usage_in_bytes"))?,
                    failcnt: read_u64(&file("failcnt"))?,
                },
            );
        }
    }
    Ok(stats)
}

fn v1_throttling(dir: &Path) -> Result<Throttling, StatsError> {
    let stat = read_flat_keyed_opt(&dir.join("cpu.stat"))?.unwrap_or_default();
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    Ok(Throttling {
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_time: get("throttled_time"),
    })
}

fn v1_cpu_usage(dir: &Path) -> Result<CpuUsage, StatsError> {
    let mut usage = CpuUsage {
        total: read_u64(&dir.join("cpuacct.usage"))?,
        ..Default::default()
    };
    let percpu = dir.join("cpuacct.usage_percpu");
    usage.percpu = read_str(&percpu)?
        .split_whitespace()
        .map(|v| parse_u64(&percpu, v))
        .collect::<Result<_, _>>()?;
    // "cpu user system" then one line per cpu, in nanoseconds.
    let all = dir.join("cpuacct.usage_all");
    if let Some(content) = read_opt(&all)? {
        for line in content.lines().skip(1) {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, user, system] => {
                    usage.percpu_user.push(parse_u64(&all, user)?);
                    usage.percpu_kernel.push(parse_u64(&all, system)?);
                }
                _ => return Err(malformed(&all, line)),
            }
        }
    }
    let stat_path = dir.join("cpuacct.stat");
    let stat = parse_flat_keyed(&stat_path, &read_str(&stat_path)?)?;
    usage.user = stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK;
    usage.kernel = stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK;
    Ok(usage)
}

fn v1_cpuset(dir: &Path) -> Result<CpuSet, StatsError> {
    let file = |f: &str| dir.join(format!("cpuset.{f}"));
    let num = |f: &str| -> Result<u64, StatsError> { Ok(read_u64_opt(&file(f))?.unwrap_or(0)) };
    let relax = file("sched_relax_domain_level");
    let relax_level = match read_opt(&relax)? {
        Some(s) => s.trim().parse().map_err(|_| malformed(&relax, &s))?,
        None => 0,
    };
    Ok(CpuSet {
        cpus: parse_cpu_list(&file("cpus"), &read_str(&file("cpus"))?)?,
        cpu_exclusive: num("cpu_exclusive")?,
        mems: parse_cpu_list(&file("mems"), &read_str(&file("mems"))?)?,
        mem_hardwall: num("mem_hardwall")?,
        mem_exclusive: num("mem_exclusive")?,
        memory_migrate: num("memory_migrate")?,
        memory_spread_page: num("memory_spread_page")?,
        memory_spread_slab: num("memory_spread_slab")?,
        memory_pressure: num("memory_pressure")?,
        sched_load_balance: num("sched_load_balance")?,
        sched_relax_domain_level: relax_level,
    })
}

/// `memory.<prefix>{usage_in_bytes,max_usage_in_bytes,failcnt,limit_in_bytes}`.
/// Optional groups (memsw without swap accounting, kmem) read as zero.
fn v1_memory_entry(dir: &Path, prefix: &str, optional: bool) -> Result<MemoryEntry, StatsError> {
    let file = |f: &str| dir.join(format!("{prefix}{f}"));
    let Some(usage) = read_u64_opt(&file("usage_in_bytes"))? else {
        if optional {
            return Ok(MemoryEntry::default());
        }
        return Err(StatsError::Read {
            path: file("usage_in_bytes"),
            errno: nix::errno::Errno::ENOENT,
        });
    };
    Ok(MemoryEntry {
        usage,
        max: read_u64_opt(&file("max_usage_in_bytes"))?.unwrap_or(0),
        failcnt: read_u64_opt(&file("failcnt"))?.unwrap_or(0),
        limit: read_u64_opt(&file("limit_in_bytes"))?.unwrap_or(0),
    })
}

fn v1_memory(dir: &Path) -> Result<Memory, StatsError> {
    let stat_path = dir.join("memory.stat");
    let raw = parse_flat_keyed(&stat_path, &read_str(&stat_path)?)?;
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: v1_memory_entry(dir, "memory.", false)?,
        swap: v1_memory_entry(dir, "memory.memsw.", true)?,
        kernel: v1_memory_entry(dir, "memory.kmem.", true)?,
        kernel_tcp: v1_memory_entry(dir, "memory.kmem.tcp.", true)?,
        raw,
    })
}

/// `8:0 Read 123` lines (or `8:0 123`); the `Total 123` line is skipped.
fn parse_blkio(path: &Path, s: &str) -> Result<Vec<BlkioEntry>, StatsError> {
    let mut out = Vec::new();
    for line in s.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        let num = |f: &str| f.parse::<u64>().map_err(|_| malformed(path, line));
        let entry = match fields[..] {
            ["Total", _] => continue,
            [major, minor, value] => BlkioEntry {
                major: num(major)?,
                minor: num(minor)?,
                op: String::new(),
                value: num(value)?,
            },
            [major, minor, op, value] => BlkioEntry {
                major: num(major)?,
                minor: num(minor)?,
                op: op.to_string(),
                value: num(value)?,
            },
            _ => return Err(malformed(path, line)),
        };
        out.push(entry);
    }
    Ok(out)
}

type BlkioField = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;

/// runc's order of preference: BFQ debug stats, BFQ, CFQ, throttle
/// (recursive), throttle. A group whose first file is missing or empty is
/// skipped; within a group, an empty file ends the search as in runc.
fn v1_blkio(dir: &Path) -> Result<Blkio, StatsError> {
    let bytes: BlkioField = |b| &mut b.io_service_bytes_recursive;
    let serviced: BlkioField = |b| &mut b.io_serviced_recursive;
    let full = |prefix: &str| -> Vec<(String, BlkioField)> {
        let f = |name: &str, field: BlkioField| (format!("blkio.{prefix}{name}"), field);
        vec![
            f("sectors_recursive", |b| &mut b.sectors_recursive),
            f("io_service_time_recursive", |b| {
                &mut b.io_service_time_recursive
            }),
            f("io_wait_time_recursive", |b| &mut b.io_wait_time_recursive),
            f("io_merged_recursive", |b| &mut b.io_merged_recursive),
            f("io_queued_recursive", |b| &mut b.io_queued_recursive),
            f("time_recursive", |b| &mut b.io_time_recursive),
            f("io_serviced_recursive", serviced),
            f("io_service_bytes_recursive", bytes),
        ]
    };
    let pair = |serviced_name: &str, bytes_name: &str| -> Vec<(String, BlkioField)> {
        vec![
            (format!("blkio.{serviced_name}"), serviced),
            (format!("blkio.{bytes_name}"), bytes),
        ]
    };
    let groups = [
        full("bfq."),
        pair(
            "bfq.io_serviced_recursive",
            "bfq.io_service_bytes_recursive",
        ),
        full(""),
        pair(
            "throttle.io_serviced_recursive",
            "throttle.io_service_bytes_recursive",
        ),
        pair("throttle.io_serviced", "throttle.io_service_bytes"),
    ];
    for group in groups {
        let mut blkio = Blkio::default();
        for (i, (name, field)) in group.iter().enumerate() {
            let path = dir.join(name);
            let entries = match read_opt(&path)? {
                Some(s) => parse_blkio(&path, &s)?,
                None => Vec::new(),
            };
            if entries.is_empty() {
                if i == 0 {
                    break;
                }
                return Ok(blkio);
            }
            *field(&mut blkio) = entries;
            if i == group.len() - 1 {
                return Ok(blkio);
            }
        }
    }
    Ok(Blkio::default())
}

// ---- cgroup v2 ------------------------------------------------------------

fn read_v2(dir: &Path) -> Result<Stats, StatsError> {
    Ok(Stats {
        cpu: v2_cpu(dir)?,
        memory: v2_memory(dir)?,
        pids: v2_pids(dir)?,
        blkio: v2_io(dir)?,
        hugetlb: v2_hugetlb(dir)?,
        ..Default::default()
    })
}

fn v2_cpu(dir: &Path) -> Result<Cpu, StatsError> {
    let stat = read_flat_keyed_opt(&dir.join("cpu.stat"))?.unwrap_or_default();
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    Ok(Cpu {
        usage: CpuUsage {
            total: get("usage_usec") * 1000,
            user: get("user_usec") * 1000,
            kernel: get("system_usec") * 1000,
            ..Default::default()
        },
        throttling: Throttling {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_usec") * 1000,
        },
    })
}

/// `memory.<name>.current` and `.max`; swap is reported as memory+swap, as v1
/// does (runc's compatibility rule).
fn v2_memory(dir: &Path) -> Result<Memory, StatsError> {
    let Some(raw) = read_flat_keyed_opt(&dir.join("memory.stat"))? else {
        // No memory controller enabled for this cgroup.
        return Ok(Memory::default());
    };
    let usage = MemoryEntry {
        usage: read_u64(&dir.join("memory.current"))?,
        limit: read_u64(&dir.join("memory.max"))?,
        ..Default::default()
    };
    let mut swap = match read_u64_opt(&dir.join("memory.swap.current"))? {
        Some(current) => MemoryEntry {
            usage: current,
            limit: read_u64(&dir.join("memory.swap.max"))?,
            ..Default::default()
        },
        None => MemoryEntry::default(),
    };
    swap.usage += usage.usage;
    if swap.limit != u64::MAX {
        swap.limit = swap.limit.saturating_add(usage.limit);
    }
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Default::default()
    })
}

fn v2_pids(dir: &Path) -> Result<Pids, StatsError> {
    match read_u64_opt(&dir.join("pids.current"))? {
        Some(current) => Ok(Pids {
            current,
            limit: match read_str(&dir.join("pids.max"))?.trim() {
                "max" => 0,
                s => parse_u64(&dir.join("pids.max"), s)?,
            },
        }),
        // No pids controller: count the members, as runc does.
        None => Ok(Pids {
            current: read_str(&dir.join("cgroup.procs"))?.lines().count() as u64,
            limit: 0,
        }),
    }
}

fn v2_io(dir: &Path) -> Result<Blkio, StatsError> {
    let path = dir.join("io.stat");
    let mut blkio = Blkio::default();
    let Some(content) = read_opt(&path)? else {
        return Ok(blkio);
    };
    for line in content.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let num = |f: &str| f.parse::<u64>().map_err(|_| malformed(&path, line));
        let (major, minor) = (num(major)?, num(minor)?);
        for kv in fields {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match key {
                "rbytes" => (&mut blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: num(value)?,
            });
        }
    }
    Ok(blkio)
}

fn v2_hugetlb(dir: &Path) -> Result<BTreeMap<String, Hugetlb>, StatsError> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes() {
        let file = |f: &str| dir.join(format!("hugetlb.{size}.{f}"));
        let Some(usage) = read_u64_opt(&file("current"))? else {
            continue;
        };
        let events = read_flat_keyed_opt(&file("events"))?.unwrap_or_default();
        out.insert(
            size.clone(),
            Hugetlb {
                usage,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        let p = Path::new("cpuset.cpus");
        assert_eq!(parse_cpu_list(p, "0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(p, "\n").unwrap(), Vec::<u16>::new());
        assert!(parse_cpu_list(p, "a-b").is_err());
    }

    #[test]
    fn blkio_lines_parse_as_runc_does() {
        let p = Path::new("blkio.throttle.io_serviced");
        let entries = parse_blkio(p, "8:0 Read 12\n8:0 Write 3\n8:16 7\nTotal 22\n").unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].op, "Read");
        assert_eq!((entries[2].minor, entries[2].value), (16, 7));
        assert!(parse_blkio(p, "8:0 Read x\n").is_err());
    }

    #[test]
    fn zero_values_are_omitted_like_runc() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            json["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(json["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(
            json["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(json["pids"], serde_json::json!({}));
        assert_eq!(json["network_interfaces"], serde_json::Value::Null);
        assert_eq!(json["intel_rdt"], serde_json::json!({}));
    }

    #[test]
    fn v2_swap_is_reported_with_memory_as_v1_does() {
        let dir = std::env::temp_dir().join(format!("rrun-stats-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in [
            ("memory.stat", "anon 10\nfile 20\n"),
            ("memory.current", "100\n"),
            ("memory.max", "1000\n"),
            ("memory.swap.current", "5\n"),
            ("memory.swap.max", "max\n"),
            ("cgroup.procs", "1\n2\n"),
        ] {
            std::fs::write(dir.join(f), v).unwrap();
        }
        let m = v2_memory(&dir).unwrap();
        let pids = v2_pids(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(m.cache, 20);
        assert_eq!((m.usage.usage, m.usage.limit), (100, 1000));
        assert_eq!((m.swap.usage, m.swap.limit), (105, u64::MAX));
        assert_eq!(pids.current, 2);
    }
}
