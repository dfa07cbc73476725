//! `rrun update` and `rrun events` against real containers (as root), next
//! to runc on the same bundle: the cgroup files an update writes (read on
//! the host and from inside the container; v1's, or the unified tree's
//! on a cgroup v2 host), the `events --stats` JSON keys, and OOM kills
//! (exit 137, an `oom` event, the kernel's oom_kill count). Every test
//! uses cgroups of its own (`/rrun-ue-<name>-<pid>`, `-runc` for the
//! oracle) and removes them.

mod common;
use common::*;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/update-resources.json"
);
/// Generous bound for waiting on a container: never an assertion on time,
/// only a way not to hang forever when something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// A busybox bundle with a state root for rrun and one for runc, removed on
/// drop together with every container (force-deleted) and its cgroup.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    runc_root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-ue-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(
            &dir,
            &["sh", "sleep", "cat", "mv", "rm", "[", "test", "true", "dd"],
            &[],
        );
        let bundle = Bundle {
            root: dir.join("state"),
            runc_root: dir.join("runc-state"),
            cgroup: format!("/rrun-ue-{name}-{}", std::process::id()),
            dir,
        };
        bundle.write_config(&bundle.config(args, &bundle.cgroup, json!({"pids": {"limit": 64}})));
        bundle
    }

    /// `runc spec`'s config trimmed to busybox, with the cgroup hierarchies
    /// mounted read-only so that the container can read its own limits.
    fn config(&self, args: &[&str], cgroup: &str, resources: Value) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hostname": "rrun-test",
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "cgroupsPath": cgroup,
                "resources": resources,
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    fn runc_cgroup(&self) -> String {
        format!("{}-runc", self.cgroup)
    }

    /// Output through files: a created container holds inherited pipes open.
    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files_with_stdin(cmd, &self.dir, None)
    }

    fn rrun_stdin(&self, args: &[&str], stdin: &Path) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files_with_stdin(cmd, &self.dir, Some(stdin))
    }

    fn runc(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(&self.runc_root).args(args);
        output_via_files_with_stdin(cmd, &self.dir, None)
    }

    fn run_detached(&self, id: &str) {
        let out = self.rrun(&["run", "-d", "--bundle", &self.dir.display().to_string(), id]);
        assert!(out.status.success(), "rrun run -d {id}: {}", stderr(&out));
    }

    /// The same bundle under runc, in a cgroup of its own.
    fn runc_detached(&self, id: &str, args: &[&str], resources: Value) {
        let mut config = self.config(args, &self.runc_cgroup(), resources);
        config["root"]["path"] = json!(self.dir.join("rootfs"));
        let runc_bundle = self.dir.join("runc-bundle");
        std::fs::create_dir_all(&runc_bundle).unwrap();
        std::fs::write(runc_bundle.join("config.json"), config.to_string()).unwrap();
        let out = self.runc(&["run", "-d", "--bundle", runc_bundle.to_str().unwrap(), id]);
        assert!(out.status.success(), "runc run -d {id}: {}", stderr(&out));
    }

    fn host_file(&self, cgroup: &str, controller: &str, file: &str) -> String {
        host::read_cgroup_file(controller, cgroup, file)
    }

    /// This test's cgroups in every hierarchy the host has (net_cls,
    /// perf_event, hugetlb... where mounted), deepest first.
    fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for hierarchy in host::hierarchy_mount_points() {
            for cgroup in [self.cgroup.clone(), self.runc_cgroup()] {
                let p = hierarchy.join(&cgroup[1..]);
                if p.exists() {
                    left.push(p);
                }
            }
        }
        left
    }

    fn wait_stopped(&self, id: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = self.rrun(&["state", id]);
            let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if state["status"] == "stopped" {
                return;
            }
            assert!(Instant::now() < deadline, "{id} never stopped: {state}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        delete_every_container("runc", &self.runc_root);
        // Only the cgroups this test named, and only once empty.
        for p in self.cgroups_left() {
            let _ = std::fs::remove_dir(p);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed and reaped on drop, even when a test fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait (boundedly) for a file the container or another process writes.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The memory limit file: v1's, or memory.max on a unified host.
fn limit_file() -> &'static str {
    if host::unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    }
}

/// The swap limit file: v1's memory+swap, or memory.swap.max (swap alone)
/// on a unified host.
fn swap_file() -> &'static str {
    if host::unified() {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    }
}

/// What the swap limit file holds for runc's `memory.swap` (memory+swap)
/// with the memory limit `memory`: the same on v1; the swap beyond the
/// memory on a unified host, as runc converts it
/// (ConvertMemorySwapToCgroupV2Value), "0" when they are equal.
fn swap_value(memsw: u64, memory: u64) -> String {
    if host::unified() {
        (memsw - memory).to_string()
    } else {
        memsw.to_string()
    }
}

/// The memory reservation file: v1's soft limit, or memory.low.
fn reservation_file() -> &'static str {
    if host::unified() {
        "memory.low"
    } else {
        "memory.soft_limit_in_bytes"
    }
}

/// The cpu shares file: v1's cpu.shares, or cpu.weight (converted as runc
/// does) on a unified host.
fn shares_file() -> &'static str {
    if host::unified() {
        "cpu.weight"
    } else {
        "cpu.shares"
    }
}

fn shares_value(shares: u64) -> String {
    if host::unified() {
        host::cpu_weight_of_shares(shares).to_string()
    } else {
        shares.to_string()
    }
}

/// The CPU quota and period as files and values: v1's two files, or
/// cpu.max's "quota period" on a unified host.
fn quota_period(quota: u64, period: u64) -> Vec<(&'static str, &'static str, String)> {
    if host::unified() {
        vec![("cpu", "cpu.max", format!("{quota} {period}"))]
    } else {
        vec![
            ("cpu", "cpu.cfs_quota_us", quota.to_string()),
            ("cpu", "cpu.cfs_period_us", period.to_string()),
        ]
    }
}

/// The files the container's init dumps: memory and swap limits, quota
/// and period, as (controller, file).
fn dumped_files() -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("memory", limit_file()), ("memory", swap_file())];
    files.extend(quota_period(0, 0).into_iter().map(|(c, f, _)| (c, f)));
    files
}

/// The container's init: on each /tmp/dump request, copy its own cgroup
/// files (as mounted inside the container) to /tmp/out, one
/// `<file> <value>` line each.
fn dumper() -> String {
    let files: Vec<String> = dumped_files()
        .iter()
        .map(|(c, f)| format!("{}/{f}", host::inside_dir(c)))
        .collect();
    format!(
        "while :; do if [ -e /tmp/dump ]; then \
         for f in {}; do echo ${{f##*/}} $(cat $f); done > /tmp/out.new; \
         mv /tmp/out.new /tmp/out; rm /tmp/dump; fi; sleep 0.1; done",
        files.join(" ")
    )
}

fn inside_values(b: &Bundle) -> Vec<(String, String)> {
    let tmp = b.dir.join("rootfs/tmp");
    let _ = std::fs::remove_file(tmp.join("out"));
    std::fs::write(tmp.join("dump"), "").unwrap();
    wait_for_file(&tmp.join("out"))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// containerd's update body (the fixture) as this host can take it:
/// without swap accounting there is no swap to limit, and the fixture's
/// swap limit must be refused, naming the file it needs. Returns the body
/// to send.
fn update_body(b: &Bundle, id: &str) -> PathBuf {
    if host::swap_accounting() {
        return PathBuf::from(FIXTURE);
    }
    let out = b.rrun_stdin(&["update", "--resources", "-", id], Path::new(FIXTURE));
    assert!(
        !out.status.success() && stderr(&out).contains(swap_file()),
        "a swap limit without swap accounting: {}",
        stderr(&out)
    );
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    body["memory"].as_object_mut().unwrap().remove("swap");
    let path = b.dir.join("update-resources.json");
    std::fs::write(&path, body.to_string()).unwrap();
    eprintln!(
        "no swap accounting on this host: its swap limit refused, the body sent without it \
         ({} not checked)",
        swap_file()
    );
    path
}

#[test]
fn containerd_body_on_stdin_updates_memory_swap_and_cpu() {
    let b = Bundle::new("stdin", &["sh", "-c", &dumper()]);
    b.run_detached("c");
    let shares_before = b.host_file(&b.cgroup, "cpu", shares_file());
    let reservation_before = b.host_file(&b.cgroup, "memory", reservation_file());

    let body = update_body(&b, "c");
    let out = b.rrun_stdin(&["update", "--resources", "-", "c"], &body);
    assert!(out.status.success(), "update: {}", stderr(&out));

    // 128 MiB of memory, 256 MiB of memory+swap, 50 ms of CPU per 100 ms.
    let mut expected = vec![("memory", limit_file(), "134217728".to_string())];
    if host::swap_accounting() {
        expected.push(("memory", swap_file(), swap_value(268435456, 134217728)));
    }
    expected.extend(quota_period(50000, 100000));
    for (controller, file, value) in &expected {
        assert_eq!(
            &b.host_file(&b.cgroup, controller, file),
            value,
            "host {controller}/{file}"
        );
    }
    // Zeros in the body leave the values alone (shares, reservation).
    assert_eq!(b.host_file(&b.cgroup, "cpu", shares_file()), shares_before);
    assert_eq!(
        b.host_file(&b.cgroup, "memory", reservation_file()),
        reservation_before
    );

    let inside = inside_values(&b);
    for (_, file, value) in expected {
        assert!(
            inside.iter().any(|(k, v)| k == file && *v == value),
            "inside the container {file} should be {value}: {inside:?}"
        );
    }
}

/// One `runc update` flag: what it writes, and why this host cannot take
/// it (then rrun must refuse it, as runc does, naming one of `names`).
struct FlagCase {
    flags: Vec<String>,
    controller: &'static str,
    file: &'static str,
    lacks: Option<String>,
    names: Vec<&'static str>,
    /// Why runc 1.1 answers otherwise on this host, and the value rrun
    /// must write instead (none for a refusal).
    unlike_runc: Option<(String, Option<String>)>,
}

fn flag(flags: &[&str], controller: &'static str, file: &'static str) -> FlagCase {
    FlagCase {
        flags: flags.iter().map(|f| f.to_string()).collect(),
        controller,
        file,
        lacks: None,
        names: vec![file],
        unlike_runc: None,
    }
}

impl FlagCase {
    /// Unless `offered`, the host lacks what the flag needs (`why`).
    fn needs(mut self, offered: bool, why: &str) -> FlagCase {
        if !offered && self.lacks.is_none() {
            self.lacks = Some(why.to_string());
        }
        self
    }

    /// rrun's refusal must name one of these (instead of the file).
    fn named_by(mut self, names: &[&'static str]) -> FlagCase {
        self.names = names.to_vec();
        self
    }

    /// When `differs`, runc 1.1 does not do what rrun must (`why`): its
    /// answer is not compared, and rrun's value must be `want` (or, with
    /// `lacks`, a refusal).
    fn unlike_runc(mut self, differs: bool, why: &str, want: Option<String>) -> FlagCase {
        if differs {
            self.unlike_runc = Some((why.to_string(), want));
        }
        self
    }
}

#[test]
fn each_runc_flag_writes_the_same_file_as_runc() {
    let b = Bundle::new("flags", &["sleep", "1000"]);
    b.run_detached("c");
    let runc = host::binary("runc").is_some();
    if runc {
        b.runc_detached("r", &["sleep", "1000"], json!({"pids": {"limit": 64}}));
    } else {
        eprintln!("runc is not installed: rrun's values are not compared with runc's (skipped)");
    }
    let v2 = host::unified();
    let swap = host::swap_accounting();
    let no_swap = if v2 {
        "no swap accounting (memory.swap.max) on this host"
    } else {
        "no swap accounting (memory.memsw.*) on this host"
    };
    let rt = host::rt_group_sched();
    let no_rt = if v2 {
        "cgroup v2 has no real-time group scheduling"
    } else {
        "no real-time group scheduling (cpu.rt_*, CONFIG_RT_GROUP_SCHED) on this host"
    };
    // Both containers' cgroups get 10000 of every 500000 µs.
    let rt_budget = host::rt_budget_for(2, 10000, 500000);
    let no_budget = "the cpu root has no real-time budget left for 10000/500000 µs in two cgroups";
    // CFQ's weight file where it exists, else BFQ's; on a unified host
    // io.bfq.weight where BFQ is loaded, else io.weight (runc's order).
    let weight_file = if v2 {
        if host::cgroup_file("io", &b.cgroup, "io.bfq.weight").exists() {
            "io.bfq.weight"
        } else {
            "io.weight"
        }
    } else if host::cgroup_file("blkio", &b.cgroup, "blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    // The cpu.max of a unified host holds quota and period.
    let (quota_file, period_file) = if v2 {
        ("cpu.max", "cpu.max")
    } else {
        ("cpu.cfs_quota_us", "cpu.cfs_period_us")
    };
    let (rt_period_file, rt_runtime_file, rt_names): (_, _, &[&str]) = if v2 {
        ("cpu.max", "cpu.max", &["realtime"])
    } else {
        ("cpu.rt_period_us", "cpu.rt_runtime_us", &[])
    };
    // A CPU and a memory node the cpuset root has ("0" on most machines).
    let cpus = host::first_cpuset("cpuset.cpus");
    let mems = host::first_cpuset("cpuset.mems");
    let mut rt_period =
        flag(&["--cpu-rt-period", "500000"], "cpu", rt_period_file).needs(rt, no_rt);
    let mut rt_runtime = flag(&["--cpu-rt-runtime", "10000"], "cpu", rt_runtime_file)
        .needs(rt, no_rt)
        .needs(rt_budget, no_budget);
    if v2 {
        let why = "runc 1.1 takes real-time values on cgroup v2 and writes nothing";
        rt_period = rt_period.named_by(rt_names).unlike_runc(true, why, None);
        rt_runtime = rt_runtime.named_by(rt_names).unlike_runc(true, why, None);
    }
    let cases = [
        flag(&["--memory", "256m"], "memory", limit_file()),
        // 512 MiB of memory+swap over the 256 MiB above.
        flag(&["--memory-swap", "512m"], "memory", swap_file())
            .needs(swap, no_swap)
            .unlike_runc(
                v2,
                "runc 1.1 on cgroup v2 refuses a swap limit given without --memory \
                 (\"unable to set swap limit without memory limit\": its update converts \
                 memory+swap against a memory limit of 0); rrun keeps the container's limit",
                Some(swap_value(512 << 20, 256 << 20)),
            ),
        flag(
            &["--memory-reservation", "64m"],
            "memory",
            reservation_file(),
        ),
        flag(
            &["--memory", "96m", "--memory-swap", "1g"],
            "memory",
            swap_file(),
        )
        .needs(swap, no_swap),
        flag(&["--cpu-share", "512"], "cpu", shares_file()),
        flag(&["--cpu-period", "200000"], "cpu", period_file),
        flag(&["--cpu-quota", "30000"], "cpu", quota_file),
        flag(&["--cpu-quota", "-1"], "cpu", quota_file),
        rt_period,
        rt_runtime,
        flag(&["--cpuset-cpus", &cpus], "cpuset", "cpuset.cpus"),
        flag(&["--cpuset-mems", &mems], "cpuset", "cpuset.mems"),
        flag(&["--pids-limit", "20"], "pids", "pids.max"),
        flag(&["--blkio-weight", "200"], "blkio", weight_file)
            .needs(
                host::blkio_weight_offered(),
                "no CFQ or BFQ I/O scheduler on this host (only none, mq-deadline, kyber...), \
                 so no blkio weight file",
            )
            .named_by(&["blockIO.weight"]),
    ];
    for case in &cases {
        let flags = &case.flags;
        let (controller, file) = (case.controller, case.file);
        let mut rrun_args = vec!["update"];
        rrun_args.extend(flags.iter().map(String::as_str));
        let mut runc_args = rrun_args.clone();
        rrun_args.push("c");
        runc_args.push("r");
        let ours = b.rrun(&rrun_args);
        let theirs = runc.then(|| b.runc(&runc_args));
        if let Some((why, want)) = &case.unlike_runc {
            if let Some(theirs) = &theirs {
                eprintln!(
                    "{flags:?}: runc {} ({}); not compared: {why}",
                    if theirs.status.success() {
                        "succeeded"
                    } else {
                        "failed"
                    },
                    stderr(theirs).trim()
                );
            }
            match (&case.lacks, want) {
                (Some(why), _) => {
                    let err = stderr(&ours);
                    assert!(!ours.status.success(), "{flags:?} succeeded, but {why}");
                    assert!(
                        case.names.iter().any(|name| err.contains(name)),
                        "{flags:?}: rrun's refusal names none of {:?}: {err}",
                        case.names
                    );
                }
                (None, Some(want)) => {
                    assert!(ours.status.success(), "{flags:?}: {}", stderr(&ours));
                    assert_eq!(
                        &b.host_file(&b.cgroup, controller, file),
                        want,
                        "{flags:?}: {controller}/{file}"
                    );
                }
                (None, None) => assert!(ours.status.success(), "{flags:?}: {}", stderr(&ours)),
            }
            continue;
        }
        if let Some(theirs) = &theirs {
            assert_eq!(
                ours.status.success(),
                theirs.status.success(),
                "{flags:?}: rrun: {} / runc: {}",
                stderr(&ours),
                stderr(theirs)
            );
        }
        if let Some(why) = &case.lacks {
            let err = stderr(&ours);
            assert!(!ours.status.success(), "{flags:?} succeeded, but {why}");
            assert!(
                case.names.iter().any(|name| err.contains(name)),
                "{flags:?}: rrun's refusal names none of {:?}: {err}",
                case.names
            );
            eprintln!(
                "{flags:?}: refused by rrun{} as expected; the {controller}/{file} value \
                 comparison is skipped: {why}",
                if runc { " and runc" } else { "" }
            );
            continue;
        }
        assert!(ours.status.success(), "{flags:?}: {}", stderr(&ours));
        if runc {
            assert_eq!(
                b.host_file(&b.cgroup, controller, file),
                b.host_file(&b.runc_cgroup(), controller, file),
                "{flags:?}: {controller}/{file} differs from runc's"
            );
        }
    }
    // The last memory limit this host took: --memory 96m came with a swap
    // limit.
    let memory = if swap { 96u64 << 20 } else { 256u64 << 20 };
    assert_eq!(
        b.host_file(&b.cgroup, "memory", limit_file()),
        memory.to_string()
    );
    assert_eq!(b.host_file(&b.cgroup, "pids", "pids.max"), "20");
    assert_eq!(
        b.host_file(&b.cgroup, "cpu", shares_file()),
        shares_value(512)
    );
    assert_eq!(b.host_file(&b.cgroup, "cpuset", "cpuset.cpus"), cpus);
    let alias = b.rrun(&["update", "--cpu-shares", "256", "c"]);
    assert!(alias.status.success(), "{}", stderr(&alias));
    assert_eq!(
        b.host_file(&b.cgroup, "cpu", shares_file()),
        shares_value(256)
    );

    // Kernel memory is accepted and ignored; Intel RDT is refused; sizes
    // are checked as runc checks them.
    let kmem_file = host::cgroup_file("memory", &b.cgroup, "memory.kmem.limit_in_bytes");
    let kmem_before = kmem_file
        .exists()
        .then(|| b.host_file(&b.cgroup, "memory", "memory.kmem.limit_in_bytes"));
    let kmem = b.rrun(&["update", "--kernel-memory", "10m", "c"]);
    assert!(kmem.status.success(), "{}", stderr(&kmem));
    match kmem_before {
        Some(before) => assert_eq!(
            b.host_file(&b.cgroup, "memory", "memory.kmem.limit_in_bytes"),
            before
        ),
        None => eprintln!(
            "no memory.kmem.limit_in_bytes on this kernel: that it stays unchanged is not checked"
        ),
    }
    let rdt = b.rrun(&["update", "--l3-cache-schema", "L3:0=f", "c"]);
    assert!(
        stderr(&rdt).contains("Intel RDT/CAT: l3 cache schema is not enabled"),
        "{}",
        stderr(&rdt)
    );
    let bad = b.rrun(&["update", "--memory", "12x", "c"]);
    assert!(
        stderr(&bad).contains("invalid value for memory: invalid size: '12x'"),
        "{}",
        stderr(&bad)
    );
}

/// create's disableOOMKiller survives any number of updates (the second
/// one used to switch the OOM killer back on). cgroup v2 has no switch
/// for it (no oom_kill_disable; memory.oom.group is another thing):
/// there rrun, as runc, accepts the field and writes nothing, the
/// container is made and every update applies memory.max.
#[test]
fn disable_oom_killer_survives_repeated_updates() {
    let b = Bundle::new("oomkeep", &["sleep", "1000"]);
    let resources = json!({"pids": {"limit": 64},
        "memory": {"limit": 268435456, "disableOOMKiller": true}});
    b.write_config(&b.config(&["sleep", "1000"], &b.cgroup, resources.clone()));
    b.run_detached("c");
    let v2 = host::unified();
    if v2 {
        if host::binary("runc").is_some() {
            // runc takes the same config on this host.
            b.runc_detached("r", &["sleep", "1000"], resources);
        }
        assert!(
            !host::cgroup_file("memory", &b.cgroup, "memory.oom_control").exists(),
            "a cgroup v2 host with memory.oom_control?"
        );
        eprintln!(
            "cgroup v2: disableOOMKiller has no file; checked that it is accepted and that \
             updates apply memory.max"
        );
    }
    for (limit, bytes) in [
        ("200m", 200u64 << 20),
        ("150m", 150 << 20),
        ("100m", 100 << 20),
    ] {
        let out = b.rrun(&["update", "--memory", limit, "c"]);
        assert!(out.status.success(), "update {limit}: {}", stderr(&out));
        assert_eq!(
            b.host_file(&b.cgroup, "memory", limit_file()),
            bytes.to_string(),
            "after --memory {limit}"
        );
        if !v2 {
            let control = b.host_file(&b.cgroup, "memory", "memory.oom_control");
            assert!(
                control.contains("oom_kill_disable 1"),
                "after --memory {limit}: {control}"
            );
        }
    }
}

/// The memory and swap limits after create and each update: v1's memory
/// and memory+swap files, or memory.max and memory.swap.max (the swap
/// beyond memory: "0" when runc's memory+swap equals memory) on a unified
/// host; the same as runc's where it runs the same steps.
#[test]
fn raising_memory_above_memsw_fails_like_runc() {
    let b = Bundle::new("order", &["sleep", "1000"]);
    let resources = json!({"memory": {"limit": 67108864, "swap": 67108864}});
    b.write_config(&b.config(&["sleep", "1000"], &b.cgroup, resources.clone()));
    if !host::swap_accounting() {
        // A swap limit this host cannot apply is refused at create.
        let out = b.rrun(&["run", "-d", "--bundle", &b.dir.display().to_string(), "c"]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "swap limited without swap accounting"
        );
        let names = if host::unified() {
            "memory.swap.max"
        } else {
            "linux.resources.memory.swap"
        };
        assert!(err.contains(names), "{err}");
        eprintln!(
            "no swap accounting on this host: the swap limit is refused at create; \
             the memory/memsw write order is not checked (skipped)"
        );
        return;
    }
    b.run_detached("c");
    let runc = host::binary("runc").is_some();
    if runc {
        b.runc_detached("r", &["sleep", "1000"], resources);
    } else {
        eprintln!("runc is not installed: its refusal is not compared (skipped)");
    }
    let limits = |memory: u64, memsw: u64, after: &str, runc: bool| {
        assert_eq!(
            b.host_file(&b.cgroup, "memory", limit_file()),
            memory.to_string(),
            "{} after {after}",
            limit_file()
        );
        assert_eq!(
            b.host_file(&b.cgroup, "memory", swap_file()),
            swap_value(memsw, memory),
            "{} after {after}",
            swap_file()
        );
        if runc {
            for file in [limit_file(), swap_file()] {
                assert_eq!(
                    b.host_file(&b.cgroup, "memory", file),
                    b.host_file(&b.runc_cgroup(), "memory", file),
                    "{file} after {after}: rrun vs runc"
                );
            }
        }
    };
    limits(64 << 20, 64 << 20, "create", runc);
    // memsw stays 64m: a 128m memory limit is refused (v1: by the kernel,
    // for runc too; v2: memory+swap below memory has no swap value).
    let ours = b.rrun(&["update", "--memory", "128m", "c"]);
    assert!(!ours.status.success(), "memory above memsw was accepted");
    let mut runc_same = runc;
    if runc {
        let theirs = b.runc(&["update", "--memory", "128m", "r"]);
        if theirs.status.success() && host::unified() {
            // runc 1.1 on v2 accepts it: what it wrote is shown, and its
            // files are not compared until both are updated alike.
            eprintln!(
                "runc accepted --memory 128m above memory+swap 64m on cgroup v2 (rrun refuses it, \
                 as the kernel does on v1); runc's files: memory.max {}, memory.swap.max {} \
                 (not compared after this update)",
                b.host_file(&b.runc_cgroup(), "memory", limit_file()),
                b.host_file(&b.runc_cgroup(), "memory", swap_file())
            );
            runc_same = false;
        } else {
            assert!(!theirs.status.success(), "runc accepted memory above memsw");
        }
    }
    limits(64 << 20, 64 << 20, "the refused update", runc_same);
    // With swap raised in the same update, swap is written first.
    let both = ["update", "--memory", "128m", "--memory-swap", "256m"];
    let ours = b.rrun(&[&both[..], &["c"]].concat());
    assert!(ours.status.success(), "{}", stderr(&ours));
    if runc {
        let theirs = b.runc(&[&both[..], &["r"]].concat());
        assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    }
    limits(
        128 << 20,
        256 << 20,
        "--memory 128m --memory-swap 256m",
        runc,
    );
    // And lowering both writes memory first.
    let both = ["update", "--memory", "32m", "--memory-swap", "32m"];
    let ours = b.rrun(&[&both[..], &["c"]].concat());
    assert!(ours.status.success(), "{}", stderr(&ours));
    if runc {
        let theirs = b.runc(&[&both[..], &["r"]].concat());
        assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    }
    limits(32 << 20, 32 << 20, "--memory 32m --memory-swap 32m", runc);
}

#[test]
fn update_of_a_stopped_container_fails() {
    let b = Bundle::new("stopped", &["true"]);
    b.run_detached("c");
    b.wait_stopped("c");
    let out = b.rrun(&["update", "--memory", "64m", "c"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container not running"),
        "{}",
        stderr(&out)
    );
    let out = b.rrun(&["events", "--stats", "c"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container with id c is not running"),
        "{}",
        stderr(&out)
    );
}

/// Every key path of a JSON document, except inside `raw` (memory.stat).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, v) in map {
            let path = format!("{prefix}/{k}");
            out.insert(path.clone());
            if k != "raw" {
                key_paths(v, &path, out);
            }
        }
    }
}

/// Keys runc omits when their value is zero (Go's omitempty), or that
/// depend on what the container did (I/O).
fn omitted_when_zero(path: &str) -> bool {
    path == "/data/memory/cache"
        || path.starts_with("/data/cpu/throttling/")
        || path.starts_with("/data/blkio/")
        || path.ends_with("/usage")
        || path.ends_with("/max")
        || path == "/data/cpu/usage/total"
}

#[test]
fn events_stats_has_runcs_keys_and_sane_values() {
    let b = Bundle::new("stats", &["sleep", "1000"]);
    b.run_detached("c");
    let ours = b.rrun(&["events", "--stats", "c"]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();

    let mut theirs = None;
    if host::binary("runc").is_some() {
        b.runc_detached("r", &["sleep", "1000"], json!({"pids": {"limit": 64}}));
        let out = b.runc(&["events", "--stats", "r"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let theirs: &Value = theirs.insert(serde_json::from_slice(&out.stdout).unwrap());
        let (mut our_keys, mut their_keys) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&ours, "", &mut our_keys);
        key_paths(theirs, "", &mut their_keys);
        let differ: Vec<_> = our_keys
            .symmetric_difference(&their_keys)
            .filter(|k| !omitted_when_zero(k))
            .collect();
        assert!(differ.is_empty(), "keys differ from runc's: {differ:?}");
        let raw_keys = |v: &Value| -> BTreeSet<String> {
            v["data"]["memory"]["raw"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(raw_keys(&ours), raw_keys(theirs));
    } else {
        eprintln!("runc is not installed: the keys are not compared with runc's (skipped)");
    }

    assert_eq!(ours["type"], "stats");
    assert_eq!(ours["id"], "c");
    let data = &ours["data"];
    assert!(data["pids"]["current"].as_u64().unwrap() >= 1, "{data}");
    assert_eq!(data["pids"]["limit"], 64);
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{data}"
    );
    if host::unified() {
        // A new cgroup's cpuset.cpus is empty on cgroup v2 (it runs on its
        // parent's): what rrun reports must be what runc reports.
        if let Some(theirs) = &theirs {
            assert_eq!(data["cpuset"], theirs["data"]["cpuset"], "cpuset vs runc's");
        }
    } else {
        assert!(!data["cpuset"]["cpus"].as_array().unwrap().is_empty());
    }
    assert_eq!(data["network_interfaces"], Value::Null);
}

/// Doubles a shell string until the memory cgroup's limit stops it.
const HOG: &str = "x=a; while :; do x=$x$x; done";

fn oom_resources() -> Value {
    if host::swap_accounting() {
        // 16 MiB; memsw equal so that swap (if any) cannot absorb the hog.
        return json!({"memory": {"limit": 16777216, "swap": 16777216}, "pids": {"limit": 64}});
    }
    // Without swap accounting memsw cannot be limited: swappiness 0 keeps
    // the cgroup's pages out of swap (if any) instead.
    eprintln!(
        "no swap accounting on this host: the hog's cgroup gets swappiness 0, not a memsw limit"
    );
    json!({"memory": {"limit": 16777216, "swappiness": 0}, "pids": {"limit": 64}})
}

#[test]
fn a_memory_hog_is_oom_killed_with_137() {
    let b = Bundle::new("oomrun", &["sh", "-c", HOG]);
    b.write_config(&b.config(&["sh", "-c", HOG], &b.cgroup, oom_resources()));
    let out = b.rrun(&["run", "--bundle", &b.dir.display().to_string(), "hog"]);
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
}

#[test]
fn events_reports_the_oom_kill_of_a_detached_container() {
    let script = format!("while [ ! -e /tmp/go ]; do sleep 0.1; done; {HOG}");
    let b = Bundle::new("oomevent", &["sh", "-c", &script]);
    b.write_config(&b.config(&["sh", "-c", &script], &b.cgroup, oom_resources()));
    b.run_detached("hog");

    let events_out = b.dir.join("events.out");
    let events = Command::new(RRUN)
        .arg("--root")
        .arg(&b.root)
        .args(["events", "--interval", "100ms", "hog"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_out).unwrap())
        .stderr(std::fs::File::create(b.dir.join("events.err")).unwrap())
        .spawn()
        .unwrap();
    let mut events = KillOnDrop(events);
    // A first stats event means the OOM notification is registered.
    let first = wait_for_file(&events_out);
    assert!(
        first.starts_with(r#"{"type":"stats","id":"hog""#),
        "{first}"
    );

    std::fs::write(b.dir.join("rootfs/tmp/go"), "").unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = events.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "events did not end with the container"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(b.dir.join("events.err")).unwrap()
    );
    let lines = std::fs::read_to_string(&events_out).unwrap();
    assert!(
        lines.lines().any(|l| l == r#"{"type":"oom","id":"hog"}"#),
        "no oom event in: {}",
        lines
            .lines()
            .map(|l| &l[..l.len().min(60)])
            .collect::<Vec<_>>()
            .join("\n")
    );
    b.wait_stopped("hog");
    // The kernel counted the kill in the container's cgroup (kept until
    // delete): memory.events' oom_kill on a unified host, oom_control's
    // on v1 (4.13+).
    let (file, key) = if host::unified() {
        ("memory.events", "oom_kill ")
    } else {
        ("memory.oom_control", "oom_kill ")
    };
    let text = b.host_file(&b.cgroup, "memory", file);
    match text.lines().find_map(|l| l.strip_prefix(key)) {
        Some(n) => assert!(n.trim().parse::<u64>().unwrap() >= 1, "{file}: {text}"),
        None if !host::unified() => {
            eprintln!("no oom_kill count in memory.oom_control (before 4.13): not checked")
        }
        None => panic!("no oom_kill in {file}: {text}"),
    }
}

#[test]
fn no_cgroup_is_left_behind() {
    let b = Bundle::new("clean", &["sleep", "1000"]);
    b.run_detached("c");
    let body = update_body(&b, "c");
    let out = b.rrun_stdin(&["update", "-r", "-", "c"], &body);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.rrun(&["delete", "--force", "c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(b.cgroups_left().is_empty(), "left: {:?}", b.cgroups_left());
}
