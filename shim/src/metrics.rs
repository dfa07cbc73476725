//! `Stats`: the library's cgroup statistics (runc's `events --stats`
//! shape) as containerd's `Metrics`: the cgroups v1 type on v1 and hybrid
//! hosts, the cgroups v2 type on unified hosts, as the runc shim answers.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use libcontainer::cgroups::stats::{BlkioEntry, Stats};
use std::collections::BTreeMap;

/// containerd's type URLs (the protos' full names, spelled out so that no
/// protobuf descriptor is built at run time).
pub const V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
pub const V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// The statistics as the Any containerd expects on this host.
pub fn to_any(stats: &Stats) -> containerd_shim::protos::protobuf::Result<Any> {
    let (type_url, value) = if unified_host() {
        (V2_METRICS, to_v2(stats).write_to_bytes()?)
    } else {
        (V1_METRICS, to_v1(stats).write_to_bytes()?)
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

/// A cgroup2 filesystem at /sys/fs/cgroup (not the hybrid layout, whose
/// cgroup2 sits at /sys/fs/cgroup/unified).
fn unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn raw(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

pub fn to_v1(s: &Stats) -> v1::Metrics {
    let entry = |e: &libcontainer::cgroups::stats::MemoryEntry| v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    };
    let r = &s.memory.raw;
    let memory = v1::MemoryStat {
        cache: raw(r, "cache"),
        rss: raw(r, "rss"),
        rss_huge: raw(r, "rss_huge"),
        mapped_file: raw(r, "mapped_file"),
        dirty: raw(r, "dirty"),
        writeback: raw(r, "writeback"),
        pg_pg_in: raw(r, "pgpgin"),
        pg_pg_out: raw(r, "pgpgout"),
        pg_fault: raw(r, "pgfault"),
        pg_maj_fault: raw(r, "pgmajfault"),
        inactive_anon: raw(r, "inactive_anon"),
        active_anon: raw(r, "active_anon"),
        inactive_file: raw(r, "inactive_file"),
        active_file: raw(r, "active_file"),
        unevictable: raw(r, "unevictable"),
        hierarchical_memory_limit: raw(r, "hierarchical_memory_limit"),
        hierarchical_swap_limit: raw(r, "hierarchical_memsw_limit"),
        total_cache: raw(r, "total_cache"),
        total_rss: raw(r, "total_rss"),
        total_rss_huge: raw(r, "total_rss_huge"),
        total_mapped_file: raw(r, "total_mapped_file"),
        total_dirty: raw(r, "total_dirty"),
        total_writeback: raw(r, "total_writeback"),
        total_pg_pg_in: raw(r, "total_pgpgin"),
        total_pg_pg_out: raw(r, "total_pgpgout"),
        total_pg_fault: raw(r, "total_pgfault"),
        total_pg_maj_fault: raw(r, "total_pgmajfault"),
        total_inactive_anon: raw(r, "total_inactive_anon"),
        total_active_anon: raw(r, "total_active_anon"),
        total_inactive_file: raw(r, "total_inactive_file"),
        total_active_file: raw(r, "total_active_file"),
        total_unevictable: raw(r, "total_unevictable"),
        usage: MessageField::some(entry(&s.memory.usage)),
        swap: MessageField::some(entry(&s.memory.swap)),
        kernel: MessageField::some(entry(&s.memory.kernel)),
        kernel_tcp: MessageField::some(entry(&s.memory.kernel_tcp)),
        ..Default::default()
    };
    let blkio_list = |l: &[BlkioEntry]| -> Vec<v1::BlkIOEntry> {
        l.iter()
            .map(|e| v1::BlkIOEntry {
                op: e.op.clone(),
                major: e.major,
                minor: e.minor,
                value: e.value,
                ..Default::default()
            })
            .collect()
    };
    let b = &s.blkio;
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: MessageField::some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: s.cpu.usage.total,
                kernel: s.cpu.usage.kernel,
                user: s.cpu.usage.user,
                per_cpu: s.cpu.usage.percpu.clone(),
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(memory),
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blkio_list(&b.io_service_bytes_recursive),
            io_serviced_recursive: blkio_list(&b.io_serviced_recursive),
            io_queued_recursive: blkio_list(&b.io_queued_recursive),
            io_service_time_recursive: blkio_list(&b.io_service_time_recursive),
            io_wait_time_recursive: blkio_list(&b.io_wait_time_recursive),
            io_merged_recursive: blkio_list(&b.io_merged_recursive),
            io_time_recursive: blkio_list(&b.io_time_recursive),
            sectors_recursive: blkio_list(&b.sectors_recursive),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn to_v2(s: &Stats) -> v2::Metrics {
    let r = &s.memory.raw;
    let usage = &s.memory.usage;
    // The library reports v2 swap as memory+swap (runc's rule); the v2
    // type wants swap alone.
    let swap_usage = s.memory.swap.usage.saturating_sub(usage.usage);
    let swap_limit = match s.memory.swap.limit {
        u64::MAX => u64::MAX,
        l => l.saturating_sub(usage.limit),
    };
    let memory = v2::MemoryStat {
        anon: raw(r, "anon"),
        file: raw(r, "file"),
        kernel_stack: raw(r, "kernel_stack"),
        slab: raw(r, "slab"),
        sock: raw(r, "sock"),
        shmem: raw(r, "shmem"),
        file_mapped: raw(r, "file_mapped"),
        file_dirty: raw(r, "file_dirty"),
        file_writeback: raw(r, "file_writeback"),
        anon_thp: raw(r, "anon_thp"),
        inactive_anon: raw(r, "inactive_anon"),
        active_anon: raw(r, "active_anon"),
        inactive_file: raw(r, "inactive_file"),
        active_file: raw(r, "active_file"),
        unevictable: raw(r, "unevictable"),
        slab_reclaimable: raw(r, "slab_reclaimable"),
        slab_unreclaimable: raw(r, "slab_unreclaimable"),
        pgfault: raw(r, "pgfault"),
        pgmajfault: raw(r, "pgmajfault"),
        workingset_refault: raw(r, "workingset_refault"),
        workingset_activate: raw(r, "workingset_activate"),
        workingset_nodereclaim: raw(r, "workingset_nodereclaim"),
        pgrefill: raw(r, "pgrefill"),
        pgscan: raw(r, "pgscan"),
        pgsteal: raw(r, "pgsteal"),
        pgactivate: raw(r, "pgactivate"),
        pgdeactivate: raw(r, "pgdeactivate"),
        pglazyfree: raw(r, "pglazyfree"),
        pglazyfreed: raw(r, "pglazyfreed"),
        thp_fault_alloc: raw(r, "thp_fault_alloc"),
        thp_collapse_alloc: raw(r, "thp_collapse_alloc"),
        usage: usage.usage,
        usage_limit: usage.limit,
        swap_usage,
        swap_limit,
        max_usage: usage.max,
        ..Default::default()
    };
    // io.stat per device: bytes and operations, read and write.
    let mut io: BTreeMap<(u64, u64), v2::IOEntry> = BTreeMap::new();
    let lists = [
        (&s.blkio.io_service_bytes_recursive, true),
        (&s.blkio.io_serviced_recursive, false),
    ];
    for (list, bytes) in lists {
        for e in list.iter() {
            let entry = io.entry((e.major, e.minor)).or_insert_with(|| v2::IOEntry {
                major: e.major,
                minor: e.minor,
                ..Default::default()
            });
            match (e.op.as_str(), bytes) {
                ("Read", true) => entry.rbytes = e.value,
                ("Write", true) => entry.wbytes = e.value,
                ("Read", false) => entry.rios = e.value,
                ("Write", false) => entry.wios = e.value,
                _ => {}
            }
        }
    }
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        }),
        memory: MessageField::some(memory),
        io: MessageField::some(v2::IOStat {
            usage: io.into_values().collect(),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                pagesize: size.clone(),
                failcnt: h.failcnt,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    /// containerd finds the type by these names (typeurl of the
    /// containerd/cgroups packages).
    #[test]
    fn type_urls_are_containerds() {
        assert_eq!(v1::Metrics::descriptor().full_name(), V1_METRICS);
        assert_eq!(v2::Metrics::descriptor().full_name(), V2_METRICS);
    }

    fn sample() -> Stats {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.pids.limit = 10;
        s.cpu.usage.total = 5_000_000;
        s.cpu.usage.user = 3_000_000;
        s.cpu.usage.kernel = 2_000_000;
        s.memory.usage.usage = 4096;
        s.memory.usage.limit = 1 << 20;
        s.memory.swap.usage = 4096 + 100;
        s.memory.swap.limit = (1 << 20) + (1 << 19);
        s.memory.raw.insert("cache".into(), 7);
        s.memory.raw.insert("total_rss".into(), 8);
        s.memory.raw.insert("anon".into(), 9);
        s.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 512,
        });
        s.blkio.io_serviced_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Write".into(),
            value: 2,
        });
        s
    }

    #[test]
    fn v1_fields() {
        let m = to_v1(&sample());
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.pids.limit, 10);
        assert_eq!(m.cpu.usage.total, 5_000_000);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 1 << 20);
        assert_eq!(m.memory.cache, 7);
        assert_eq!(m.memory.total_rss, 8);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 512);
    }

    #[test]
    fn v2_fields() {
        let m = to_v2(&sample());
        assert_eq!(m.cpu.usage_usec, 5000);
        assert_eq!(m.cpu.user_usec, 3000);
        assert_eq!(m.cpu.system_usec, 2000);
        assert_eq!(m.memory.usage, 4096);
        assert_eq!(m.memory.swap_usage, 100);
        assert_eq!(m.memory.swap_limit, 1 << 19);
        assert_eq!(m.memory.anon, 9);
        assert_eq!(m.io.usage.len(), 1);
        assert_eq!((m.io.usage[0].rbytes, m.io.usage[0].wios), (512, 2));
    }
}
