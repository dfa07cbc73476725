//! `linux.resources` on this host's real cgroups (as root): every v1
//! controller holds the configured value, read from the host and from
//! inside the container; what the host lacks is one clear refusal that
//! leaves nothing; a fork bomb stops at pids.max; Docker's config gives the
//! same cgroup files as under runc; the container's own directory in the
//! hybrid cgroup2 tree works (cgroup.procs, .freeze, .kill, .events).
//! Every test uses absolute cgroup paths of its own and checks that none
//! remains.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A busybox bundle, a state root, and the cgroup paths its containers use;
/// on drop every container is force-deleted (rrun's and runc's) and the
/// directory removed.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    runc_root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-cg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "sleep", "echo", "cat", "true"], &["out"]);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        Bundle {
            root: dir.join("state"),
            runc_root: dir.join("runc-state"),
            cgroup: format!("/rrun-cg-{name}-{}", std::process::id()),
            dir,
        }
    }

    /// A minimal config: `resources` as given, host cgroups mounted
    /// read-only at /sys/fs/cgroup, the bundle's `out/` at /out.
    fn config(&self, args: &[&str], resources: Value) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/out", "type": "bind", "source": self.dir.join("out"), "options": ["rbind", "rw"]}
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": resources,
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
            }
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn runc(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(&self.runc_root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn bundle_arg(&self) -> String {
        self.dir.display().to_string()
    }

    /// Create a container from the current config; panics with rrun's
    /// stderr if it fails.
    fn create(&self, id: &str) {
        let out = self.rrun(&["create", "--bundle", &self.bundle_arg(), id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
    }

    fn out_file(&self, name: &str) -> PathBuf {
        self.dir.join("out").join(name)
    }

    /// Wait (without a time limit on correctness: up to a minute) for the
    /// container process to write `/out/<name>`.
    fn wait_for_out(&self, name: &str) -> String {
        for _ in 0..600 {
            if let Ok(s) = std::fs::read_to_string(self.out_file(name)) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the container never wrote /out/{name}");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        delete_every_container("runc", &self.runc_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/sys/fs/cgroup/<hierarchy><cgroup>`.
fn host_dir(hierarchy: &str, cgroup: &str) -> PathBuf {
    Path::new(CGROUP_ROOT)
        .join(hierarchy)
        .join(cgroup.trim_start_matches('/'))
}

fn read_host(hierarchy: &str, cgroup: &str, file: &str) -> String {
    let path = host_dir(hierarchy, cgroup).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn wait_stopped(b: &Bundle, id: &str) {
    for _ in 0..600 {
        let out = b.rrun(&["state", id]);
        let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if state["status"] == "stopped" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("container {id} never stopped");
}

/// (hierarchy, file, expected) of one cgroup file.
type Expected = Vec<(&'static str, &'static str, String)>;

/// Every v1 resource this host can take, as `linux.resources` and the
/// files it must give. What the host lacks is left out with one line on
/// stderr (`what_the_host_lacks_is_one_clear_refusal_and_nothing_left`
/// checks that it is refused).
fn every_resources() -> (Value, Expected) {
    let mut expected: Expected = vec![
        ("memory", "memory.limit_in_bytes", "67108864".into()),
        ("memory", "memory.soft_limit_in_bytes", "33554432".into()),
        ("memory", "memory.swappiness", "30".into()),
        ("cpu", "cpu.shares", "512".into()),
        ("cpu", "cpu.cfs_quota_us", "50000".into()),
        ("cpu", "cpu.cfs_period_us", "100000".into()),
        ("pids", "pids.max", "40".into()),
        ("devices", "devices.list", "c 1:3 rwm".into()),
    ];
    let mut resources = json!({
        "memory": {"limit": 67108864, "reservation": 33554432,
                   "swappiness": 30, "disableOOMKiller": true, "checkBeforeUpdate": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 40},
        "blockIO": {"weight": 0},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    });
    if host::swap_accounting() {
        resources["memory"]["swap"] = json!(134217728);
        expected.push(("memory", "memory.memsw.limit_in_bytes", "134217728".into()));
    } else {
        eprintln!("no swap accounting on this host: memory.swap not set (skipped)");
    }
    if host::v1_root_has("cpu", "cpu.cfs_burst_us") {
        resources["cpu"]["burst"] = json!(1000);
        expected.push(("cpu", "cpu.cfs_burst_us", "1000".into()));
    } else {
        eprintln!("no cpu.cfs_burst_us on this kernel (before 5.14): cpu.burst not set (skipped)");
    }
    if host::rt_budget_for(1, 10000, 1000000) {
        resources["cpu"]["realtimeRuntime"] = json!(10000);
        resources["cpu"]["realtimePeriod"] = json!(1000000);
        expected.push(("cpu", "cpu.rt_period_us", "1000000".into()));
        expected.push(("cpu", "cpu.rt_runtime_us", "10000".into()));
    } else {
        eprintln!(
            "no real-time group scheduling or no free real-time budget in the cpu root: \
             cpu.realtimeRuntime and realtimePeriod not set (skipped)"
        );
    }
    // A CPU and a memory node the cpuset root has ("0" on most machines).
    let (cpus, mems) = (
        host::first_cpuset("cpuset.cpus"),
        host::first_cpuset("cpuset.mems"),
    );
    resources["cpu"]["cpus"] = json!(cpus);
    resources["cpu"]["mems"] = json!(mems);
    expected.push(("cpuset", "cpuset.cpus", cpus));
    expected.push(("cpuset", "cpuset.mems", mems));
    if let Some((major, minor)) = host::block_device() {
        let dev = format!("{major}:{minor}");
        let throttle = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
        for (field, file, rate) in [
            (
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                1048576,
            ),
            (
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                2097152,
            ),
            (
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                100,
            ),
            (
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                200,
            ),
        ] {
            resources["blockIO"][field] = throttle(rate);
            expected.push(("blkio", file, format!("{dev} {rate}")));
        }
    } else {
        eprintln!("no block device on this host: blkio throttles not set (skipped)");
    }
    (resources, expected)
}

/// devices.list also holds the default devices (as under runc): the
/// configured entry must be there and nothing may be allowed to all.
fn check_value(hierarchy: &str, file: &str, got: &str, want: &str, where_: &str) {
    if file == "devices.list" {
        assert!(got.lines().any(|l| l == want), "{where_} {file}: {got}");
        assert!(
            !got.lines().any(|l| l.starts_with("a ")),
            "{where_} {file}: {got}"
        );
    } else {
        assert_eq!(got, want, "{where_} {hierarchy}/{file}");
    }
}

/// A shell loop that copies each cgroup file, as the container sees it
/// under /sys/fs/cgroup/<hierarchy>/, to /out/<file>.
fn copy_files_script(files: &[(&str, &str, String)]) -> String {
    let mut script = String::new();
    for (h, f, _) in files {
        script.push_str(&format!("cat /sys/fs/cgroup/{h}/{f} > /out/{f}; "));
    }
    script.push_str("cat /sys/fs/cgroup/memory/memory.oom_control > /out/memory.oom_control; ");
    script.push_str("echo done > /out/done");
    script
}

#[test]
fn every_v1_controller_holds_the_configured_value_on_the_host_and_inside() {
    let b = Bundle::new("every");
    let (resources, files) = every_resources();
    let script = copy_files_script(&files);
    b.write_config(&b.config(&["sh", "-c", &script], resources));
    b.create("every");
    for (h, f, want) in &files {
        check_value(h, f, &read_host(h, &b.cgroup, f), want, "host");
    }
    let oom = read_host("memory", &b.cgroup, "memory.oom_control");
    assert!(
        oom.contains("oom_kill_disable 1"),
        "host oom_control: {oom}"
    );

    let out = b.rrun(&["start", "every"]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    b.wait_for_out("done");
    for (h, f, want) in &files {
        let inside = std::fs::read_to_string(b.out_file(f)).unwrap();
        check_value(h, f, inside.trim(), want, "inside the container");
    }
    let inside_oom = std::fs::read_to_string(b.out_file("memory.oom_control")).unwrap();
    assert!(inside_oom.contains("oom_kill_disable 1"), "{inside_oom}");

    wait_stopped(&b, "every");
    let out = b.rrun(&["delete", "every"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "every");
}

#[test]
fn cpu_idle_is_written() {
    let b = Bundle::new("idle");
    b.write_config(&b.config(&["sleep", "100"], json!({"cpu": {"idle": 1}})));
    if !host::v1_root_has("cpu", "cpu.idle") {
        let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "idle"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("linux.resources.cpu.idle: cpu.idle is not available"),
            "{}",
            stderr(&out)
        );
        assert_no_cgroup(&b.cgroup, "idle refused");
        eprintln!("no cpu.idle on this kernel (before 5.15): refused as it must be; the value is not checked");
        return;
    }
    b.create("idle");
    assert_eq!(read_host("cpu", &b.cgroup, "cpu.idle"), "1");
    let out = b.rrun(&["delete", "--force", "idle"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "idle");
}

#[test]
fn zero_values_runc_treats_as_unset_leave_the_defaults() {
    let b = Bundle::new("zeros");
    let resources = json!({
        "memory": {"limit": 0, "reservation": 0, "kernel": 0, "kernelTCP": 0},
        "cpu": {"shares": 0, "quota": 0, "period": 0},
        "blockIO": {"weight": 0, "leafWeight": 0}
    });
    b.write_config(&b.config(&["sleep", "100"], resources));
    b.create("zeros");
    // The new cgroup's defaults, as the kernel made them.
    assert_eq!(read_host("cpu", &b.cgroup, "cpu.shares"), "1024");
    assert_eq!(read_host("cpu", &b.cgroup, "cpu.cfs_quota_us"), "-1");
    if host::v1_root_has("memory", "memory.kmem.tcp.limit_in_bytes") {
        assert_eq!(
            read_host("memory", &b.cgroup, "memory.kmem.tcp.limit_in_bytes"),
            "9223372036854771712"
        );
    } else {
        eprintln!("no memory.kmem.tcp.* on this kernel: the kernelTCP default is not checked");
    }
    let out = b.rrun(&["delete", "--force", "zeros"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "zeros");
}

#[test]
fn what_the_host_lacks_is_one_clear_refusal_and_nothing_left() {
    let b = Bundle::new("refuse");
    let hugetlb_delegated =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.subtree_control")
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "hugetlb"));
    let layout = if host::hybrid() {
        "hybrid cgroup v1/v2"
    } else {
        "cgroup v1"
    };
    let rdma = if host::has_v1("rdma") {
        "rdma limits on cgroup v1 are not supported by rrun"
    } else {
        "rdma controller is not available on this host"
    };
    let mut cases: Vec<(Value, String)> = vec![
        (
            json!({"rdma": {"mlx5_1": {"hcaHandles": 3}}}),
            format!("linux.resources.rdma: {rdma}"),
        ),
        (
            json!({"unified": {"memory.high": "1000000"}}),
            format!("linux.resources.unified: unified key/values need a cgroup v2 host; this host is {layout}"),
        ),
    ];
    // (lacking on this host, resources, rrun's error)
    let lacking = [
        (
            !host::has_v1("net_cls"),
            json!({"network": {"classID": 1048577}}),
            "linux.resources.network.classID: net_cls controller is not available on this host",
        ),
        (
            !host::has_v1("net_prio"),
            json!({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}),
            "linux.resources.network.priorities: net_prio controller is not available on this host",
        ),
        (
            !host::blkio_weight_offered(),
            json!({"blockIO": {"weight": 500}}),
            "linux.resources.blockIO.weight: blkio.weight is not available on this host (no CFQ/BFQ)",
        ),
        (
            !host::v1_root_has("blkio", "blkio.leaf_weight"),
            json!({"blockIO": {"leafWeight": 500}}),
            "linux.resources.blockIO.leafWeight: blkio.leaf_weight is not available on this host (only CFQ has leaf weights)",
        ),
        (
            // rrun checks the page size first.
            !host::has_v1("hugetlb") && !hugetlb_delegated && host::hugepage_size(2048),
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
            "linux.resources.hugepageLimits: hugetlb controller is not available on this host",
        ),
        (
            !host::swap_accounting(),
            json!({"memory": {"limit": 67108864, "swap": 134217728}}),
            "linux.resources.memory.swap: swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes)",
        ),
        (
            !host::rt_group_sched(),
            json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}),
            "linux.resources.cpu.realtimeRuntime: cpu.rt_runtime_us is not available on this host",
        ),
        (
            !host::v1_root_has("cpu", "cpu.cfs_burst_us"),
            json!({"cpu": {"burst": 1000}}),
            "linux.resources.cpu.burst: cpu.cfs_burst_us is not available on this host",
        ),
        (
            !host::v1_root_has("cpu", "cpu.idle"),
            json!({"cpu": {"idle": 1}}),
            "linux.resources.cpu.idle: cpu.idle is not available on this host",
        ),
    ];
    for (lacks, resources, want) in lacking {
        if lacks {
            cases.push((resources, want.to_string()));
        }
    }
    cases.push((
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 2097152}]}),
        "linux.resources.hugepageLimits.pageSize: huge page size \"3MB\" is not available on this host".to_string(),
    ));
    for (resources, want) in cases {
        b.write_config(&b.config(&["true"], resources.clone()));
        let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "refused"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{resources}: {err}");
        assert!(
            err.contains(&want),
            "{resources}: got {err:?}, want {want:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert_eq!(
            std::fs::read_dir(&b.root).map(|d| d.count()).unwrap_or(0),
            0,
            "{resources}: a state directory was left"
        );
        assert_no_cgroup(&b.cgroup, &resources.to_string());
    }
}

#[test]
fn a_fork_bomb_stops_at_pids_max() {
    let b = Bundle::new("forkbomb");
    let limit = 12;
    // The bomb runs in a subshell, which exits when a fork fails; only
    // shell builtins after it: at the limit, nothing can fork.
    let script = "(while :; do sleep 1000 & done) 2>/out/err; \
                  read cur < /sys/fs/cgroup/pids/pids.current; echo $cur > /out/current; \
                  echo done > /out/done; wait";
    b.write_config(&b.config(&["sh", "-c", script], json!({"pids": {"limit": limit}})));
    b.create("bomb");
    let out = b.rrun(&["start", "bomb"]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    b.wait_for_out("done");
    let inside: u64 = std::fs::read_to_string(b.out_file("current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The subshell that hit the limit has exited: one below it now.
    assert!(
        (limit - 1..=limit).contains(&inside),
        "pids.current inside the container: {inside}"
    );
    let err = std::fs::read_to_string(b.out_file("err")).unwrap();
    assert!(err.contains("can't fork"), "the bomb's error: {err:?}");
    assert_eq!(read_host("pids", &b.cgroup, "pids.max"), limit.to_string());
    let current: u64 = read_host("pids", &b.cgroup, "pids.current")
        .parse()
        .unwrap();
    assert!(current <= limit, "pids.current {current} > {limit}");
    let events = read_host("pids", &b.cgroup, "pids.events");
    let failed: u64 = events
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(failed > 0, "no fork was refused: pids.events {events:?}");
    let out = b.rrun(&["delete", "--force", "bomb"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "fork bomb");
}

const DOCKER_FILES: &[(&str, &str)] = &[
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.memsw.limit_in_bytes"),
    ("memory", "memory.soft_limit_in_bytes"),
    ("memory", "memory.swappiness"),
    ("memory", "memory.oom_control"),
    ("memory", "memory.kmem.tcp.limit_in_bytes"),
    ("pids", "pids.max"),
    ("devices", "devices.list"),
    ("cpu", "cpu.shares"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("cpu", "cpu.cfs_burst_us"),
    ("cpu", "cpu.rt_runtime_us"),
    ("cpu", "cpu.idle"),
    ("cpuset", "cpuset.cpus"),
    ("cpuset", "cpuset.mems"),
    ("blkio", "blkio.throttle.read_bps_device"),
    ("blkio", "blkio.throttle.write_iops_device"),
    ("freezer", "freezer.state"),
];

#[test]
fn docker_config_gives_the_same_cgroup_files_as_runc() {
    let b = Bundle::new("docker");
    let ours = b.cgroup.clone();
    let theirs = format!("{}-runc", b.cgroup);
    let runc = host::binary("runc").is_some();
    if runc {
        b.write_config(&docker_config_for_this_host(&b.dir, &theirs));
        let out = b.runc(&["create", "--bundle", &b.bundle_arg(), "docker-runc"]);
        assert!(out.status.success(), "runc create: {}", stderr(&out));
    } else {
        eprintln!("runc is not installed: the cgroup files are not compared with runc's (skipped)");
    }
    b.write_config(&docker_config_for_this_host(&b.dir, &ours));
    b.create("docker-rrun");

    // A file neither cgroup has is one this kernel does not make
    // (memory.memsw.* without swap accounting, cpu.rt_* without
    // CONFIG_RT_GROUP_SCHED, cpu.idle before 5.15...).
    let made = |h: &str, f: &str| {
        host_dir(h, &ours).join(f).exists() || (runc && host_dir(h, &theirs).join(f).exists())
    };
    let not_made: Vec<String> = DOCKER_FILES
        .iter()
        .filter(|(h, f)| !made(h, f))
        .map(|(h, f)| format!("{h}/{f}"))
        .collect();
    if !not_made.is_empty() {
        eprintln!("this kernel does not make {not_made:?}: not compared");
    }
    for (h, f) in DOCKER_FILES.iter().filter(|(h, f)| runc && made(h, f)) {
        let ours_value = read_host(h, &ours, f);
        let theirs_value = read_host(h, &theirs, f);
        // oom_control's under_oom/oom_kill counters are not configuration.
        let config_lines = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("under_oom") && !l.starts_with("oom_kill "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        // devices.list is in the order the rules were written.
        let sorted = |s: String| {
            let mut lines: Vec<&str> = s.lines().collect();
            lines.sort_unstable();
            lines.join("\n")
        };
        assert_eq!(
            sorted(config_lines(&ours_value)),
            sorted(config_lines(&theirs_value)),
            "{h}/{f}: rrun vs runc"
        );
    }
    assert_eq!(
        read_host("memory", &ours, "memory.limit_in_bytes"),
        "67108864"
    );
    if host::swap_accounting() {
        assert_eq!(
            read_host("memory", &ours, "memory.memsw.limit_in_bytes"),
            "134217728"
        );
    }
    assert_eq!(read_host("pids", &ours, "pids.max"), "50");

    let out = b.rrun(&["delete", "--force", "docker-rrun"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    if runc {
        let out = b.runc(&["delete", "--force", "docker-runc"]);
        assert!(out.status.success(), "runc delete: {}", stderr(&out));
    }
    assert_no_cgroup(&ours, "docker rrun");
    assert_no_cgroup(&theirs, "docker runc");
}

fn read_unified(cgroup: &str, file: &str) -> String {
    read_host("unified", cgroup, file)
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// On this hybrid host the container also gets its own directory in the
/// cgroup2 tree: the v2 interface files work there without controllers.
#[test]
fn the_containers_cgroup2_directory_has_procs_freeze_kill_and_events() {
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        eprintln!("no hybrid cgroup2 tree on this host: skipped");
        return;
    }
    let b = Bundle::new("v2files");
    b.write_config(&b.config(&["sleep", "1000"], json!({"pids": {"limit": 10}})));
    b.create("v2");
    let state: Value = serde_json::from_slice(&b.rrun(&["state", "v2"]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let dir = host_dir("unified", &b.cgroup);
    assert_eq!(read_unified(&b.cgroup, "cgroup.procs"), pid.to_string());
    assert!(read_unified(&b.cgroup, "cgroup.events").contains("populated 1"));

    std::fs::write(dir.join("cgroup.freeze"), "1").unwrap();
    wait_for("frozen 1", || {
        read_unified(&b.cgroup, "cgroup.events").contains("frozen 1")
    });
    std::fs::write(dir.join("cgroup.freeze"), "0").unwrap();
    wait_for("frozen 0", || {
        read_unified(&b.cgroup, "cgroup.events").contains("frozen 0")
    });

    if dir.join("cgroup.kill").exists() {
        std::fs::write(dir.join("cgroup.kill"), "1").unwrap();
    } else {
        eprintln!("no cgroup.kill on this kernel (before 5.14): killed with rrun kill instead");
        let out = b.rrun(&["kill", "v2", "KILL"]);
        assert!(out.status.success(), "kill: {}", stderr(&out));
    }
    wait_for("populated 0", || {
        read_unified(&b.cgroup, "cgroup.events").contains("populated 0")
    });
    wait_stopped(&b, "v2");
    let out = b.rrun(&["delete", "v2"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "v2 files");
}

#[test]
fn systemd_cgroup_paths_are_refused_clearly_without_systemd() {
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("systemd runs here: the refusal is not what happens; skipped");
        return;
    }
    let b = Bundle::new("systemd");
    let mut config = b.config(&["true"], json!({"pids": {"limit": 10}}));
    config["linux"]["cgroupsPath"] = json!("system.slice:rrun-test:abc");
    b.write_config(&config);
    let out = b.rrun(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        &b.bundle_arg(),
        "sd",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("systemd is not running"), "{err}");
    // Without the flag, the colon form is refused as runc's cgroupfs does.
    let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "sd"]);
    assert!(
        stderr(&out).contains("need --systemd-cgroup"),
        "{}",
        stderr(&out)
    );
    // With the flag, a path not in slice:prefix:name form is refused.
    config["linux"]["cgroupsPath"] = json!("/not/systemd");
    b.write_config(&config);
    let out = b.rrun(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        &b.bundle_arg(),
        "sd",
    ]);
    assert!(
        stderr(&out).contains("slice:prefix:name"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&b.root).map(|d| d.count()).unwrap_or(0),
        0
    );
    assert!(!host_dir("pids", "/system.slice/rrun-test-abc.scope").exists());
}

/// The caller's cgroup path when it is the same in every v1 hierarchy,
/// else `/`: where rrun puts a relative cgroupsPath.
fn own_v1_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
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

#[test]
fn a_relative_cgroups_path_is_taken_under_the_callers_cgroup_or_the_root() {
    let b = Bundle::new("relative");
    let relative = b.cgroup.trim_start_matches('/').to_string();
    let mut config = b.config(&["sleep", "100"], json!({"pids": {"limit": 7}}));
    config["linux"]["cgroupsPath"] = json!(relative);
    b.write_config(&config);
    b.create("rel");
    let expected = Path::new(&own_v1_cgroup()).join(&relative);
    let expected = expected.to_str().unwrap();
    assert_eq!(read_host("pids", expected, "pids.max"), "7");
    let out = b.rrun(&["delete", "--force", "rel"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(expected, "relative");
}

#[test]
fn an_existing_cgroup_is_joined_and_never_removed() {
    let b = Bundle::new("existing");
    let dir = host_dir("pids", &b.cgroup);
    // Pre-made by "someone else" (the test) in every v1 hierarchy this
    // host has, named ones (name=systemd) included, each once (cpu and
    // cpuacct may be one hierarchy).
    let premade: Vec<PathBuf> = host::v1_mount_points()
        .into_iter()
        .map(|m| m.join(b.cgroup.trim_start_matches('/')))
        .collect();
    for d in &premade {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    b.write_config(&b.config(&["sleep", "100"], json!({"pids": {"limit": 9}})));
    b.create("existing");
    assert_eq!(read_host("pids", &b.cgroup, "pids.max"), "9");
    let out = b.rrun(&["delete", "--force", "existing"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(dir.exists(), "rrun removed a cgroup it did not create");
    // Ours to clean up (empty now; the hybrid cgroup2 one is rrun's).
    for d in &premade {
        std::fs::remove_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    let _ = std::fs::remove_dir(host_dir("unified", &b.cgroup));
    assert_no_cgroup(&b.cgroup, "existing");
}

/// Without cgroupsPath a container gets `/rrun/<id>`; when it goes, its
/// directory goes from every hierarchy, the hybrid cgroup2 tree included,
/// and so does `/rrun` once empty (a leftover `unified/rrun` was found so).
#[test]
fn a_default_cgroup_path_leaves_no_directory_behind() {
    let b = Bundle::new("default");
    let id = format!("dflt-{}", std::process::id());
    let mut config = b.config(&["cat", "/proc/self/cgroup"], json!({}));
    config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    b.write_config(&config);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), &id]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(seen.contains(&format!(":memory:/rrun/{id}")), "{seen}");
    for hierarchy in host::hierarchy_mount_points() {
        let parent = hierarchy.join("rrun");
        assert!(
            !parent.join(&id).exists(),
            "{} left",
            parent.join(&id).display()
        );
        // Another container of this machine may hold /rrun; then it has children.
        let children = std::fs::read_dir(&parent)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(1);
        assert!(children > 0, "{} left empty", parent.display());
    }
}

/// A mount namespace joined by path may not show the host's cgroup tree:
/// the container still enters its cgroups (they are joined before setns).
#[test]
fn a_joined_mount_namespace_does_not_hide_the_cgroups() {
    let b = Bundle::new("mntns");
    let mut holder = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /sys/fs/cgroup && echo ready && exec sleep 60")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unshare (util-linux)");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut config = b.config(
        &["cat", "/proc/self/cgroup"],
        json!({"pids": {"limit": 50}}),
    );
    let mount_ns = format!("/proc/{}/ns/mnt", holder.id());
    config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount", "path": mount_ns}]);
    config["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
    b.write_config(&config);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), "mntns"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.status.success(), "run: {}", stderr(&out));
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(seen.contains(&format!(":pids:{}", b.cgroup)), "{seen}");
    assert_no_cgroup(&b.cgroup, "mntns");
}

/// A named v1 hierarchy (`name=systemd` at /sys/fs/cgroup/systemd here)
/// holds the container at its cgroupsPath, as runc puts it there, with
/// and without a cgroup namespace; the container's cgroup mount shows its
/// own directory there; delete leaves nothing.
#[test]
fn the_container_is_in_the_named_systemd_hierarchy_as_with_runc() {
    if !host::has_v1("name=systemd") {
        eprintln!("no name=systemd hierarchy on this host: skipped");
        return;
    }
    let b = Bundle::new("named");
    std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin/grep")).unwrap();
    let script = "grep name=systemd /proc/self/cgroup > /out/cgroup; \
                  cat /sys/fs/cgroup/systemd/cgroup.procs > /out/procs; exec sleep 1000";
    for cgroupns in [false, true] {
        let mut config = b.config(&["sh", "-c", script], json!({"pids": {"limit": 20}}));
        if cgroupns {
            config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        }
        b.write_config(&config);
        let id = format!("named-{cgroupns}");
        b.create(&id);
        let state: Value = serde_json::from_slice(&b.rrun(&["state", &id]).stdout).unwrap();
        let pid = state["pid"].as_i64().unwrap().to_string();
        let procs = read_host("systemd", &b.cgroup, "cgroup.procs");
        assert_eq!(procs, pid, "the init in name=systemd{}", b.cgroup);
        assert!(b.rrun(&["start", &id]).status.success());
        let seen = b.wait_for_out("procs");
        let line = std::fs::read_to_string(b.out_file("cgroup")).unwrap();
        let want = if cgroupns { "/" } else { b.cgroup.as_str() };
        assert_eq!(
            line.trim().split_once(':').unwrap().1,
            format!("name=systemd:{want}")
        );
        // Its own directory: pid 1 (sh, then sleep) and the cat that read it.
        assert!(seen.lines().any(|l| l == "1"), "{seen}");
        assert!(
            seen.lines().count() <= 2,
            "not the container's own cgroup: {seen}"
        );
        let out = b.rrun(&["delete", "--force", &id]);
        assert!(out.status.success(), "delete: {}", stderr(&out));
        assert_no_cgroup(&b.cgroup, "named hierarchy");
        std::fs::remove_file(b.out_file("procs")).unwrap();
    }

    // runc 1.1 puts it at the same place in that hierarchy.
    let config = b.config(&["grep", "name=systemd", "/proc/self/cgroup"], json!({}));
    b.write_config(&config);
    let rrun = b.rrun(&["run", "--bundle", &b.bundle_arg(), "named-run"]);
    assert!(rrun.status.success(), "rrun run: {}", stderr(&rrun));
    if host::binary("runc").is_some() {
        let runc = b.runc(&["run", "--bundle", &b.bundle_arg(), "named-run"]);
        assert!(runc.status.success(), "runc run: {}", stderr(&runc));
        assert_eq!(stdout(&rrun), stdout(&runc));
    } else {
        eprintln!("runc is not installed: its place in name=systemd is not compared (skipped)");
    }
    assert!(
        stdout(&rrun).ends_with(&format!(":name=systemd:{}\n", b.cgroup)),
        "{}",
        stdout(&rrun)
    );
    assert_no_cgroup(&b.cgroup, "named hierarchy, run");
}
