//! `linux.resources` on this host's real cgroups (as root): every
//! controller of the host's kind (v1 hierarchies, or the unified cgroup v2
//! tree) holds the configured value, read from the host and from inside
//! the container; what the host lacks is one clear refusal that leaves
//! nothing; a fork bomb stops at pids.max; a denied device cannot be
//! opened or written, by the init or an exec'd process; Docker's config
//! gives the same cgroup files as under runc; the container's own cgroup2
//! directory (the hybrid tree, or its cgroup on a unified host) works
//! (cgroup.procs, .freeze, .kill, .events). Every test uses absolute
//! cgroup paths of its own and checks that none remains.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

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
        common::cgroup_test_config(args, resources, &self.cgroup, &self.dir.join("out"), false)
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

/// The directory of `cgroup` holding `controller`'s files on this host
/// (its v1 hierarchy's, or the unified tree's).
fn host_dir(controller: &str, cgroup: &str) -> PathBuf {
    host::cgroup_dir(controller, cgroup)
}

fn read_host(controller: &str, cgroup: &str, file: &str) -> String {
    host::read_cgroup_file(controller, cgroup, file)
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

/// (controller, file, expected) of one cgroup file.
type Expected = Vec<(&'static str, &'static str, String)>;

/// Every resource this host's kind of cgroups can take, as
/// `linux.resources` and the files it must give. What the host lacks is
/// left out with one line on stderr
/// (`what_the_host_lacks_is_one_clear_refusal_and_nothing_left` checks
/// that it is refused).
fn every_resources() -> (Value, Expected) {
    if host::unified() {
        every_resources_v2()
    } else {
        every_resources_v1()
    }
}

fn every_resources_v1() -> (Value, Expected) {
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
    add_cpuset(&mut resources, &mut expected);
    if host::has_v1("hugetlb") && host::hugepage_size(2048) {
        resources["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
        expected.push(("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304".into()));
    } else {
        eprintln!("no v1 hugetlb hierarchy or no 2MB huge pages: hugepageLimits not set (skipped)");
    }
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

/// A CPU and a memory node the cpuset root has ("0" on most machines).
fn add_cpuset(resources: &mut Value, expected: &mut Expected) {
    let (cpus, mems) = (
        host::first_cpuset("cpuset.cpus"),
        host::first_cpuset("cpuset.mems"),
    );
    resources["cpu"]["cpus"] = json!(cpus);
    resources["cpu"]["mems"] = json!(mems);
    expected.push(("cpuset", "cpuset.cpus", cpus));
    expected.push(("cpuset", "cpuset.mems", mems));
}

/// The unified tree's files for the same resources, as runc 1.1 writes
/// them: memory.max, memory.low (reservation), memory.swap.max (runc's
/// memory+swap minus memory), cpu.weight (shares converted), cpu.max
/// ("quota period"), cpu.max.burst, pids.max, io.max (one line per
/// device), io.weight or io.bfq.weight, hugetlb.<size>.max, and a
/// `unified` key (memory.high). swappiness and disableOOMKiller have no
/// cgroup v2 file; the device allowlist (an eBPF program) is checked by
/// what a container can open (`a_denied_device_...`).
fn every_resources_v2() -> (Value, Expected) {
    let shares = 512;
    let mut expected: Expected = vec![
        ("memory", "memory.max", "67108864".into()),
        ("memory", "memory.low", "33554432".into()),
        ("memory", "memory.high", "50331648".into()),
        (
            "cpu",
            "cpu.weight",
            host::cpu_weight_of_shares(shares).to_string(),
        ),
        ("cpu", "cpu.max", "50000 100000".into()),
        ("pids", "pids.max", "40".into()),
    ];
    let mut resources = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "checkBeforeUpdate": true},
        "cpu": {"shares": shares, "quota": 50000, "period": 100000},
        "pids": {"limit": 40},
        "blockIO": {},
        "unified": {"memory.high": "50331648"},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    });
    if host::swap_accounting() {
        resources["memory"]["swap"] = json!(134217728);
        expected.push(("memory", "memory.swap.max", "67108864".into()));
    } else {
        eprintln!(
            "no swap accounting on this host (no memory.swap.max): memory.swap not set (skipped)"
        );
    }
    if host::v2_file_offered("cpu.max.burst") {
        resources["cpu"]["burst"] = json!(1000);
        expected.push(("cpu", "cpu.max.burst", "1000".into()));
    } else {
        eprintln!("no cpu.max.burst on this kernel (before 5.14): cpu.burst not set (skipped)");
    }
    add_cpuset(&mut resources, &mut expected);
    if host::v2_controllers().iter().any(|c| c == "hugetlb") && host::hugepage_size(2048) {
        resources["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
        expected.push(("hugetlb", "hugetlb.2MB.max", "4194304".into()));
    } else {
        eprintln!("no hugetlb controller or no 2MB huge pages: hugepageLimits not set (skipped)");
    }
    // runc writes the weight as it is to io.bfq.weight where BFQ is
    // loaded, else converted to io.weight.
    if host::v2_file_offered("io.bfq.weight") {
        resources["blockIO"]["weight"] = json!(500);
        expected.push(("io", "io.bfq.weight", "500".into()));
    } else if host::v2_file_offered("io.weight") {
        resources["blockIO"]["weight"] = json!(500);
        expected.push(("io", "io.weight", host::io_weight_of_blkio(500).to_string()));
    } else {
        eprintln!("no io.weight or io.bfq.weight on this host: blockIO.weight not set (skipped)");
    }
    if let Some((major, minor)) = host::block_device() {
        let throttle = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
        resources["blockIO"]["throttleReadBpsDevice"] = throttle(1048576);
        resources["blockIO"]["throttleWriteBpsDevice"] = throttle(2097152);
        resources["blockIO"]["throttleReadIOPSDevice"] = throttle(100);
        resources["blockIO"]["throttleWriteIOPSDevice"] = throttle(200);
        expected.push((
            "io",
            "io.max",
            format!("{major}:{minor} rbps=1048576 wbps=2097152 riops=100 wiops=200"),
        ));
    } else {
        eprintln!("no block device on this host: io.max throttles not set (skipped)");
    }
    (resources, expected)
}

/// devices.list also holds the default devices (as under runc): the
/// configured entry must be there and nothing may be allowed to all. The
/// weight files read "default N" (io.weight, BFQ's) or "N" (older BFQ).
fn check_value(controller: &str, file: &str, got: &str, want: &str, where_: &str) {
    if file == "devices.list" {
        assert!(got.lines().any(|l| l == want), "{where_} {file}: {got}");
        assert!(
            !got.lines().any(|l| l.starts_with("a ")),
            "{where_} {file}: {got}"
        );
    } else if file == "io.weight" || file.ends_with("bfq.weight") {
        let default = format!("default {want}");
        assert!(
            got.lines().any(|l| l.trim() == want || l.trim() == default),
            "{where_} {controller}/{file}: {got:?}, want {want}"
        );
    } else {
        assert_eq!(got, want, "{where_} {controller}/{file}");
    }
}

/// A shell loop that copies each cgroup file, as the container sees it
/// (/sys/fs/cgroup/<hierarchy>/ on v1, /sys/fs/cgroup/ on a unified
/// host), to /out/<file>.
fn copy_files_script(files: &[(&str, &str, String)]) -> String {
    let mut script = String::new();
    for (c, f, _) in files {
        script.push_str(&format!("cat {}/{f} > /out/{f}; ", host::inside_dir(c)));
    }
    if !host::unified() {
        script.push_str(&format!(
            "cat {}/memory.oom_control > /out/memory.oom_control; ",
            host::inside_dir("memory")
        ));
    }
    script.push_str("echo done > /out/done");
    script
}

#[test]
fn every_controller_holds_the_configured_value_on_the_host_and_inside() {
    let b = Bundle::new("every");
    let (resources, files) = every_resources();
    let script = copy_files_script(&files);
    b.write_config(&b.config(&["sh", "-c", &script], resources));
    b.create("every");
    for (c, f, want) in &files {
        check_value(c, f, &read_host(c, &b.cgroup, f), want, "host");
    }
    // disableOOMKiller: v1's memory.oom_control; cgroup v2 has no such
    // switch (runc and rrun accept the field there and write nothing).
    let v1 = !host::unified();
    if v1 {
        let oom = read_host("memory", &b.cgroup, "memory.oom_control");
        assert!(
            oom.contains("oom_kill_disable 1"),
            "host oom_control: {oom}"
        );
    }

    let out = b.rrun(&["start", "every"]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    b.wait_for_out("done");
    for (c, f, want) in &files {
        let inside = std::fs::read_to_string(b.out_file(f)).unwrap();
        check_value(c, f, inside.trim(), want, "inside the container");
    }
    if v1 {
        let inside_oom = std::fs::read_to_string(b.out_file("memory.oom_control")).unwrap();
        assert!(inside_oom.contains("oom_kill_disable 1"), "{inside_oom}");
    }

    wait_stopped(&b, "every");
    let out = b.rrun(&["delete", "every"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "every");
}

/// The refusal of what the host lacks: exit 1, one line holding every
/// one of `want`, no state directory and no cgroup left.
fn assert_refused(b: &Bundle, resources: &Value, want: &[String]) {
    b.write_config(&b.config(&["true"], resources.clone()));
    let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "refused"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{resources}: {err}");
    for want in want {
        assert!(
            err.contains(want.as_str()),
            "{resources}: got {err:?}, want {want:?}"
        );
    }
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(
        std::fs::read_dir(&b.root).map(|d| d.count()).unwrap_or(0),
        0,
        "{resources}: a state directory was left"
    );
    assert_no_cgroup(&b.cgroup, &resources.to_string());
}

/// cpu.idle (5.15+): the same file on v1 and on a unified host.
#[test]
fn cpu_idle_is_written() {
    let b = Bundle::new("idle");
    if !host::cgroup_file_offered("cpu", "cpu.idle") {
        let want = if host::unified() {
            // libcgroups writes it; the kernel has no such file.
            vec!["linux.resources".to_string(), "cpu.idle".to_string()]
        } else {
            vec!["linux.resources.cpu.idle: cpu.idle is not available".to_string()]
        };
        assert_refused(&b, &json!({"cpu": {"idle": 1}}), &want);
        eprintln!("no cpu.idle on this kernel (before 5.15): refused as it must be; the value is not checked");
        return;
    }
    b.write_config(&b.config(&["sleep", "100"], json!({"cpu": {"idle": 1}})));
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
    if host::unified() {
        assert_eq!(read_host("cpu", &b.cgroup, "cpu.weight"), "100");
        assert_eq!(read_host("cpu", &b.cgroup, "cpu.max"), "max 100000");
        assert_eq!(read_host("memory", &b.cgroup, "memory.max"), "max");
        assert_eq!(read_host("memory", &b.cgroup, "memory.low"), "0");
        if host::v2_file_offered("io.weight") {
            assert_eq!(read_host("io", &b.cgroup, "io.weight"), "default 100");
        }
    } else {
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
    }
    let out = b.rrun(&["delete", "--force", "zeros"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "zeros");
}

/// An rdma device name this host does not have.
fn absent_rdma_device() -> String {
    (1..)
        .map(|n| format!("mlx5_{n}"))
        .find(|d| !Path::new("/sys/class/infiniband").join(d).exists())
        .unwrap()
}

/// What v1 and hybrid hosts lack: each refused by rrun's own check before
/// anything is made, naming the field and why.
fn lacking_v1() -> Vec<(Value, Vec<String>)> {
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
            json!({"rdma": {absent_rdma_device(): {"hcaHandles": 3}}}),
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
    cases
        .into_iter()
        .map(|(resources, want)| (resources, vec![want]))
        .collect()
}

/// What a unified host lacks: what cgroup v2 has no file for at all
/// (net_cls, net_prio, real-time group scheduling, leaf weights), what
/// this kernel or its root does not offer, and rdma limits for a device
/// that is not there (rrun writes rdma.max as runc does: the kernel
/// refuses it). rrun's own checks name the field; libcgroups' refusals
/// (real-time, leaf weight, a missing file) come at apply, after the
/// cgroup was made: they must still be one line, naming what, and leave
/// nothing.
fn lacking_v2() -> Vec<(Value, Vec<String>)> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let controllers = host::v2_controllers();
    let offers = |c: &str| controllers.iter().any(|o| o == c);
    let rdma_device = absent_rdma_device();
    let mut cases = vec![
        (
            json!({"network": {"classID": 1048577}}),
            words(&["linux.resources.network: net_cls and net_prio do not exist in cgroup v2"]),
        ),
        (
            json!({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}),
            words(&["linux.resources.network: net_cls and net_prio do not exist in cgroup v2"]),
        ),
        (
            json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}),
            words(&["linux.resources", "realtime"]),
        ),
        (
            json!({"blockIO": {"leafWeight": 500}}),
            words(&["linux.resources", "leaf_weight"]),
        ),
        if offers("rdma") {
            (
                json!({"rdma": {&rdma_device: {"hcaHandles": 3}}}),
                words(&["linux.resources.rdma: ", &rdma_device]),
            )
        } else {
            (
                json!({"rdma": {&rdma_device: {"hcaHandles": 3}}}),
                words(&["linux.resources.rdma: rdma controller is not available on this host"]),
            )
        },
    ];
    let lacking = [
        (
            !offers("hugetlb") && host::hugepage_size(2048),
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
            words(&[
                "linux.resources.hugepageLimits: hugetlb controller is not available on this host",
            ]),
        ),
        (
            !host::blkio_weight_offered(),
            json!({"blockIO": {"weight": 500}}),
            words(&["linux.resources", "weight"]),
        ),
        (
            !host::swap_accounting(),
            json!({"memory": {"limit": 67108864, "swap": 134217728}}),
            words(&["linux.resources", "memory.swap.max"]),
        ),
        (
            !host::v2_file_offered("cpu.max.burst"),
            json!({"cpu": {"burst": 1000}}),
            words(&["linux.resources", "cpu.max.burst"]),
        ),
        (
            !host::v2_file_offered("cpu.idle"),
            json!({"cpu": {"idle": 1}}),
            words(&["linux.resources", "cpu.idle"]),
        ),
    ];
    for (lacks, resources, want) in lacking {
        if lacks {
            cases.push((resources, want));
        }
    }
    cases
}

#[test]
fn what_the_host_lacks_is_one_clear_refusal_and_nothing_left() {
    let b = Bundle::new("refuse");
    let mut cases = if host::unified() {
        lacking_v2()
    } else {
        lacking_v1()
    };
    cases.push((
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 2097152}]}),
        vec!["linux.resources.hugepageLimits.pageSize: huge page size \"3MB\" is not available on this host".to_string()],
    ));
    for (resources, want) in cases {
        assert_refused(&b, &resources, &want);
    }
}

#[test]
fn a_fork_bomb_stops_at_pids_max() {
    let b = Bundle::new("forkbomb");
    let limit = 12;
    // The bomb runs in a subshell, which exits when a fork fails; only
    // shell builtins after it: at the limit, nothing can fork.
    let script = format!(
        "(while :; do sleep 1000 & done) 2>/out/err; \
         read cur < {}/pids.current; echo $cur > /out/current; \
         echo done > /out/done; wait",
        host::inside_dir("pids")
    );
    b.write_config(&b.config(&["sh", "-c", &script], json!({"pids": {"limit": limit}})));
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

/// The files Docker's config writes on v1 and hybrid hosts.
const DOCKER_FILES_V1: &[(&str, &str)] = &[
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

/// The same on a unified host (the device allowlist is an eBPF program
/// there, not a file).
const DOCKER_FILES_V2: &[(&str, &str)] = &[
    ("memory", "memory.max"),
    ("memory", "memory.swap.max"),
    ("memory", "memory.low"),
    ("memory", "memory.high"),
    ("memory", "memory.min"),
    ("memory", "memory.oom.group"),
    ("pids", "pids.max"),
    ("cpu", "cpu.weight"),
    ("cpu", "cpu.max"),
    ("cpu", "cpu.max.burst"),
    ("cpu", "cpu.idle"),
    ("cpuset", "cpuset.cpus"),
    ("cpuset", "cpuset.mems"),
    ("io", "io.max"),
    ("io", "io.weight"),
    ("freezer", "cgroup.freeze"),
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
    let files = if host::unified() {
        DOCKER_FILES_V2
    } else {
        DOCKER_FILES_V1
    };
    let not_made: Vec<String> = files
        .iter()
        .filter(|(h, f)| !made(h, f))
        .map(|(h, f)| format!("{h}/{f}"))
        .collect();
    if !not_made.is_empty() {
        eprintln!("this kernel does not make {not_made:?}: not compared");
    }
    for (h, f) in files.iter().filter(|(h, f)| runc && made(h, f)) {
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
    // 64 MiB, and 128 MiB of memory+swap (v2: 64 MiB of swap beyond it).
    let (limit, swap, swap_value) = if host::unified() {
        ("memory.max", "memory.swap.max", "67108864")
    } else {
        (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "134217728",
        )
    };
    assert_eq!(read_host("memory", &ours, limit), "67108864");
    if host::swap_accounting() {
        assert_eq!(read_host("memory", &ours, swap), swap_value);
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

/// The container's directory in the cgroup2 tree: on a hybrid host its
/// own directory in /sys/fs/cgroup/unified (the v2 interface files work
/// there without controllers), on a unified host its cgroup.
#[test]
fn the_containers_cgroup2_directory_has_procs_freeze_kill_and_events() {
    if host::cgroup2_root().is_none() {
        eprintln!("no cgroup2 tree on this host (cgroup v1 only): skipped");
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

#[test]
fn a_relative_cgroups_path_is_taken_under_the_callers_cgroup_or_the_root() {
    let b = Bundle::new("relative");
    let relative = b.cgroup.trim_start_matches('/').to_string();
    let mut config = b.config(&["sleep", "100"], json!({"pids": {"limit": 7}}));
    config["linux"]["cgroupsPath"] = json!(relative);
    b.write_config(&config);
    b.create("rel");
    let expected = Path::new(&host::relative_cgroups_parent()).join(&relative);
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
    // cpuacct may be one hierarchy); on a unified host in its one tree.
    let premade: Vec<PathBuf> = if host::unified() {
        vec![dir.clone()]
    } else {
        host::v1_mount_points()
            .into_iter()
            .map(|m| m.join(b.cgroup.trim_start_matches('/')))
            .collect()
    };
    for d in &premade {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    b.write_config(&b.config(&["sleep", "100"], json!({"pids": {"limit": 9}})));
    b.create("existing");
    assert_eq!(read_host("pids", &b.cgroup, "pids.max"), "9");
    let out = b.rrun(&["delete", "--force", "existing"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(dir.exists(), "rrun removed a cgroup it did not create");
    // Ours to clean up (empty now; a hybrid host's cgroup2 one is rrun's).
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
    let entry = host::proc_cgroup_entry("memory", &format!("/rrun/{id}"));
    assert!(seen.contains(&entry), "{entry} not in {seen}");
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
    let entry = host::proc_cgroup_entry("pids", &b.cgroup);
    assert!(seen.contains(&entry), "{entry} not in {seen}");
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
    for applet in ["grep", "mv"] {
        std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin").join(applet)).unwrap();
    }
    // /out/procs appears whole (renamed into place): the test reads it as
    // soon as it exists.
    let script = "grep name=systemd /proc/self/cgroup > /out/cgroup; \
                  cat /sys/fs/cgroup/systemd/cgroup.procs > /out/procs.tmp; \
                  mv /out/procs.tmp /out/procs; exec sleep 1000";
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

/// What a process of the container can do with device nodes: read and
/// write the nodes `linux.devices` made (denied ones, allowed ones), make
/// nodes of a denied device with mknod and use them. One `<what>: ok` or
/// `<what>: <busybox's error>` line each, in /out/<label>, then `done`.
/// Major 240 is reserved for local use: no driver has it, so a device the
/// cgroup lets through fails to open with ENXIO, never EPERM, and no
/// write can reach anything.
fn device_probe(label: &str) -> String {
    let steps = [
        ("read-denied-block", "head -c 1 /dev/xblk".to_string()),
        (
            "write-denied-block",
            "sh -c 'echo x > /dev/xblk'".to_string(),
        ),
        ("read-denied-char", "head -c 1 /dev/xchr".to_string()),
        (
            "write-denied-char",
            "sh -c 'echo x > /dev/xchr'".to_string(),
        ),
        (
            "mknod-denied-block",
            format!("mknod /dev/{label}-blk b 240 0"),
        ),
        ("read-mknoded-block", format!("head -c 1 /dev/{label}-blk")),
        (
            "write-mknoded-block",
            format!("sh -c 'echo x > /dev/{label}-blk'"),
        ),
        (
            "mknod-denied-char",
            format!("mknod /dev/{label}-chr c 240 0"),
        ),
        ("read-mknoded-char", format!("head -c 1 /dev/{label}-chr")),
        (
            "write-mknoded-char",
            format!("sh -c 'echo x > /dev/{label}-chr'"),
        ),
        ("read-allowed-block", "head -c 1 /dev/xblk-ok".to_string()),
        ("read-allowed-char", "head -c 1 /dev/xok".to_string()),
        (
            "write-default-null",
            "sh -c 'echo x > /dev/null'".to_string(),
        ),
    ];
    let mut script = format!(
        "o=/out/{label}; e=/out/{label}.err; : > $o; \
         t() {{ n=$1; shift; if \"$@\" >/dev/null 2>$e; then echo \"$n: ok\" >> $o; \
         else echo \"$n: $(cat $e)\" >> $o; fi; }}; "
    );
    for (what, command) in steps {
        script.push_str(&format!("t {what} {command}; "));
    }
    script.push_str("echo done >> $o");
    script
}

/// The lines of /out/<label> once the probe wrote `done`.
fn probe_result(out_dir: &Path, label: &str) -> Vec<String> {
    let path = out_dir.join(label);
    for _ in 0..600 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().last() == Some("done") {
            return text.lines().map(str::to_string).collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never ended with done", path.display());
}

/// A block and a char device given in linux.devices but denied by
/// linux.resources.devices cannot be opened for reading or writing, by
/// the init (`run`) or by a process `exec` adds; mknod of a denied device
/// succeeds (runc's default rules allow `m` on every device, after the
/// config's) but the node it makes cannot be used either; allowed and
/// default devices can. On a unified host this is rrun's eBPF device
/// program, on v1 the devices controller. runc, given the same bundle,
/// must see exactly the same.
#[test]
fn a_denied_device_cannot_be_opened_or_written_by_run_or_exec() {
    let b = Bundle::new("devdeny");
    for applet in ["head", "mknod"] {
        std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin").join(applet)).unwrap();
    }
    let resources = json!({"pids": {"limit": 20}, "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 240, "minor": 1, "access": "rw"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "rw"}
    ]});
    let init = format!("{}; exec sleep 1000", device_probe("run"));
    let mut config = b.config(&["sh", "-c", &init], resources);
    let caps = json!(["CAP_KILL", "CAP_MKNOD"]);
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set] = caps.clone();
    }
    let node = |path: &str, typ: &str, major: u64, minor: u64| {
        json!({"path": path, "type": typ, "major": major, "minor": minor,
               "fileMode": 0o600, "uid": 0, "gid": 0})
    };
    config["linux"]["devices"] = json!([
        node("/dev/xblk", "b", 240, 0),
        node("/dev/xchr", "c", 240, 0),
        node("/dev/xblk-ok", "b", 240, 1),
        node("/dev/xok", "c", 10, 237)
    ]);
    b.write_config(&config);
    let out = b.rrun(&["run", "-d", "--bundle", &b.bundle_arg(), "dev"]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    let ran = probe_result(&b.dir.join("out"), "run");
    let out = b.rrun(&["exec", "dev", "sh", "-c", &device_probe("exec")]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let execed = probe_result(&b.dir.join("out"), "exec");

    for (how, lines) in [("run", &ran), ("exec", &execed)] {
        let line = |what: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(&format!("{what}: ")))
                .unwrap_or_else(|| panic!("{how}: no {what} in {lines:?}"))
                .clone()
        };
        for what in [
            "read-denied-block",
            "write-denied-block",
            "read-denied-char",
            "write-denied-char",
            "read-mknoded-block",
            "write-mknoded-block",
            "read-mknoded-char",
            "write-mknoded-char",
        ] {
            assert!(
                line(what).contains("Operation not permitted"),
                "{how}: {} (want EPERM from the device cgroup)",
                line(what)
            );
        }
        for what in ["mknod-denied-block", "mknod-denied-char"] {
            assert_eq!(line(what), format!("{what}: ok"), "{how}");
        }
        // Let through: no driver answers major 240 (ENXIO); loop-control
        // opens (its read is EINVAL).
        for what in ["read-allowed-block", "read-allowed-char"] {
            assert!(
                !line(what).contains("Operation not permitted"),
                "{how}: {} (an allowed device was refused)",
                line(what)
            );
        }
        assert_eq!(
            line("write-default-null"),
            "write-default-null: ok",
            "{how}"
        );
    }

    if host::binary("runc").is_some() {
        let runc_out = b.dir.join("out-runc");
        std::fs::create_dir_all(&runc_out).unwrap();
        let mut theirs = config.clone();
        theirs["root"]["path"] = json!(b.dir.join("rootfs"));
        theirs["linux"]["cgroupsPath"] = json!(format!("{}-runc", b.cgroup));
        for mount in theirs["mounts"].as_array_mut().unwrap() {
            if mount["destination"] == "/out" {
                mount["source"] = json!(runc_out);
            }
        }
        let runc_bundle = b.dir.join("runc-bundle");
        std::fs::create_dir_all(&runc_bundle).unwrap();
        std::fs::write(runc_bundle.join("config.json"), theirs.to_string()).unwrap();
        let out = b.runc(&[
            "run",
            "-d",
            "--bundle",
            runc_bundle.to_str().unwrap(),
            "dev",
        ]);
        assert!(out.status.success(), "runc run -d: {}", stderr(&out));
        assert_eq!(probe_result(&runc_out, "run"), ran, "run: rrun vs runc");
        let out = b.runc(&["exec", "dev", "sh", "-c", &device_probe("exec")]);
        assert!(out.status.success(), "runc exec: {}", stderr(&out));
        assert_eq!(
            probe_result(&runc_out, "exec"),
            execed,
            "exec: rrun vs runc"
        );
        let out = b.runc(&["delete", "--force", "dev"]);
        assert!(out.status.success(), "runc delete: {}", stderr(&out));
        assert_no_cgroup(&format!("{}-runc", b.cgroup), "runc's devices container");
    } else {
        eprintln!("runc is not installed: what its container sees is not compared (skipped)");
    }
    let out = b.rrun(&["delete", "--force", "dev"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "devices");
}
