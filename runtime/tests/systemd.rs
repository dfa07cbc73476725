//! The systemd cgroup driver (`--systemd-cgroup`, runc's `slice:prefix:name`
//! cgroupsPath) on a cgroup v2 host whose pid 1 is systemd, as root: the
//! container gets a transient scope made over D-Bus, with its resources as
//! the unit's properties (what `systemctl show` says) and in the cgroup
//! files; pause, resume and update go through it; the limits survive
//! `systemctl daemon-reload` (systemd rewrites the files from the unit's
//! properties then); after delete no unit and no cgroup is left. runc,
//! given the same config, is the oracle for the properties.
//!
//! Elsewhere (pid 1 not systemd, or v1 hierarchies) every test says why on
//! stderr and does nothing: `cgroups.rs` checks the refusal there.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
/// The slice the tests' scopes go in (systemd makes it on demand).
const SLICE: &str = "system.slice";
const PREFIX: &str = "rrun-test";

/// Why the systemd driver cannot be tested here, if it cannot.
fn unsupported() -> Option<String> {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() != "systemd" {
        return Some(format!(
            "pid 1 is {:?}, not systemd: the systemd cgroup driver is not tested here",
            comm.trim()
        ));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Some("no /run/systemd/system: systemd did not boot this host".into());
    }
    if !host::unified() {
        return Some(format!(
            "cgroups are {:?} here: rrun's systemd driver needs the unified cgroup v2 tree",
            host::layout()
        ));
    }
    if host::binary("systemctl").is_none() {
        return Some("no systemctl".into());
    }
    None
}

macro_rules! systemd_host_or_skip {
    ($test:expr) => {
        if let Some(why) = unsupported() {
            eprintln!("{}: skipped: {why}", $test);
            return;
        }
    };
}

/// A busybox bundle and state roots; the container's unit is
/// `rrun-test-<name>-<pid>.scope` under system.slice. On drop every
/// container is force-deleted and the directory removed.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    runc_root: PathBuf,
    name: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-sd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "sleep", "cat", "echo"], &["out"]);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        Bundle {
            root: dir.join("state"),
            runc_root: dir.join("runc-state"),
            name: format!("{name}-{}", std::process::id()),
            dir,
        }
    }

    /// `system.slice:rrun-test:<name>` for the runtime `tool`'s container.
    fn cgroups_path(&self, tool: &str) -> String {
        format!("{SLICE}:{PREFIX}:{tool}-{}", self.name)
    }

    /// The unit systemd makes for it.
    fn unit(&self, tool: &str) -> String {
        format!("{PREFIX}-{tool}-{}.scope", self.name)
    }

    /// Its cgroup directory.
    fn cgroup_dir(&self, tool: &str) -> PathBuf {
        Path::new(host::CGROUP_ROOT)
            .join(SLICE)
            .join(self.unit(tool))
    }

    fn config(&self, tool: &str, args: &[&str], resources: Value) -> Value {
        let path = self.cgroups_path(tool);
        common::cgroup_test_config(args, resources, &path, &self.dir.join("out"), true)
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    /// `tool --root <its root> --systemd-cgroup ARGS...`
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let (bin, root) = match tool {
            "rrun" => (RRUN, &self.root),
            _ => ("runc", &self.runc_root),
        };
        let mut cmd = Command::new(bin);
        cmd.arg("--root")
            .arg(root)
            .arg("--systemd-cgroup")
            .args(args);
        output_via_files(cmd, &self.dir)
    }

    fn ok(&self, tool: &str, args: &[&str]) -> String {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {}: {}",
            args.join(" "),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Create and start `tool`'s container (its id is the tool's name)
    /// from `resources`, running `sleep 1000`.
    fn start(&self, tool: &str, resources: Value) {
        self.write_config(&self.config(tool, &["sleep", "1000"], resources));
        self.ok(
            tool,
            &["create", "--bundle", &self.dir.display().to_string(), tool],
        );
        self.ok(tool, &["start", tool]);
    }

    fn init_pid(&self, tool: &str) -> i32 {
        let state: Value = serde_json::from_str(&self.ok(tool, &["state", tool])).unwrap();
        state["pid"].as_i64().expect("a pid in the state") as i32
    }

    fn status(&self, tool: &str) -> String {
        let state: Value = serde_json::from_str(&self.ok(tool, &["state", tool])).unwrap();
        state["status"].as_str().unwrap_or_default().to_string()
    }

    fn read(&self, tool: &str, file: &str) -> String {
        let path = self.cgroup_dir(tool).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for root in [&self.root, &self.runc_root] {
            for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
                let tool = if root == &self.root { RRUN } else { "runc" };
                let _ = Command::new(tool)
                    .arg("--root")
                    .arg(root)
                    .args(["--systemd-cgroup", "delete", "--force"])
                    .arg(entry.file_name())
                    .output();
            }
        }
        for tool in ["rrun", "runc"] {
            // A unit a failed test left (never one it did not make).
            let _ = Command::new("systemctl")
                .args(["stop", &self.unit(tool)])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `systemctl show -p PROPERTY --value UNIT`.
fn show(unit: &str, property: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", property, "--value", unit])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemctl show {unit}: {}",
        stderr(&out)
    );
    stdout(&out).trim().to_string()
}

/// The units `systemctl list-units --all` knows whose name matches `pattern`.
fn units(pattern: &str) -> Vec<String> {
    let out = Command::new("systemctl")
        .args(["list-units", "--all", "--plain", "--no-legend", pattern])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemctl list-units: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn daemon_reload() {
    let out = Command::new("systemctl")
        .arg("daemon-reload")
        .output()
        .unwrap();
    assert!(out.status.success(), "daemon-reload: {}", stderr(&out));
}

/// The unit properties this test compares with runc's. Not AllowedCPUs:
/// runc sets it, rrun writes cpuset.cpus itself (libcgroups cannot send
/// it), which `check_files` reads.
const PROPERTIES: &[&str] = &[
    "MemoryMax",
    "MemoryHigh",
    "MemoryLow",
    "MemorySwapMax",
    "TasksMax",
    "CPUWeight",
    "CPUQuotaPerSecUSec",
    "CPUQuotaPeriodUSec",
    "IOWeight",
    "Delegate",
    "Slice",
    "ControlGroup",
];

/// Resources that systemd turns into unit properties, as runc passes them.
fn resources() -> Value {
    let mut r = json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": host::first_cpuset("cpuset.cpus")},
        "pids": {"limit": 40},
    });
    if host::swap_accounting() {
        r["memory"]["swap"] = json!(134217728);
    } else {
        eprintln!("no swap accounting: memory.swap not set (skipped)");
    }
    r
}

/// The cgroup files the resources give, checked after create, update and
/// daemon-reload (memory.swap.max is the swap alone: limit - memory).
fn check_files(b: &Bundle, tool: &str, memory: u64, pids: u64, when: &str) {
    assert_eq!(
        b.read(tool, "memory.max"),
        memory.to_string(),
        "{tool} memory.max {when}"
    );
    assert_eq!(
        b.read(tool, "pids.max"),
        pids.to_string(),
        "{tool} pids.max {when}"
    );
    assert_eq!(
        b.read(tool, "cpu.max"),
        "50000 100000",
        "{tool} cpu.max {when}"
    );
    assert_eq!(
        b.read(tool, "cpu.weight"),
        host::cpu_weight_of_shares(512).to_string(),
        "{tool} cpu.weight {when}"
    );
    assert_eq!(
        b.read(tool, "cpuset.cpus"),
        host::first_cpuset("cpuset.cpus"),
        "{tool} cpuset.cpus {when}"
    );
    if host::swap_accounting() {
        assert_eq!(
            b.read(tool, "memory.swap.max"),
            (134217728 - memory).to_string(),
            "{tool} memory.swap.max {when}"
        );
    }
}

#[test]
fn a_scope_holds_the_container_with_its_resources_as_unit_properties_as_with_runc() {
    systemd_host_or_skip!("a_scope_holds_the_container_with_its_resources_as_unit_properties");
    let b = Bundle::new("props");
    let mut props = Vec::new();
    for tool in ["rrun", "runc"] {
        b.start(tool, resources());
        let unit = b.unit(tool);
        assert_eq!(show(&unit, "ActiveState"), "active", "{tool}: {unit}");
        assert_eq!(
            show(&unit, "ControlGroup"),
            format!("/{SLICE}/{unit}"),
            "{tool}: {unit}"
        );
        // The init is in the scope's cgroup.
        let pid = b.init_pid(tool);
        let procs = b.read(tool, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{tool}: init {pid} not in {unit}: {procs:?}"
        );
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(cgroup.trim(), format!("0::/{SLICE}/{unit}"), "{tool}");
        check_files(&b, tool, 67108864, 40, "after create");
        props.push(
            PROPERTIES
                .iter()
                .map(|p| {
                    let value = show(&unit, p).replace(&b.unit(tool), "UNIT");
                    (p.to_string(), value)
                })
                .collect::<Vec<_>>(),
        );
    }
    eprintln!("unit properties (rrun, runc): {props:?}");
    assert_eq!(show(&b.unit("rrun"), "MemoryMax"), "67108864");
    assert_eq!(show(&b.unit("rrun"), "TasksMax"), "40");
    assert_eq!(show(&b.unit("rrun"), "CPUQuotaPerSecUSec"), "500ms");
    for ((name, rrun), (_, runc)) in props[0].iter().zip(&props[1]) {
        assert_eq!(
            rrun, runc,
            "{name}: rrun's scope has {rrun:?}, runc's {runc:?}"
        );
    }

    // systemd rewrites a unit's cgroup from its properties on reload: a
    // limit written only in the files would be lost there.
    daemon_reload();
    for tool in ["rrun", "runc"] {
        check_files(&b, tool, 67108864, 40, "after daemon-reload");
        assert_eq!(b.status(tool), "running", "{tool} after daemon-reload");
    }
}

#[test]
fn pause_resume_update_and_delete_go_through_the_scope_and_leave_no_unit() {
    systemd_host_or_skip!("pause_resume_update_and_delete_go_through_the_scope_and_leave_no_unit");
    let b = Bundle::new("life");
    let tool = "rrun";
    b.start(tool, resources());
    let unit = b.unit(tool);
    let pid = b.init_pid(tool);

    b.ok(tool, &["pause", tool]);
    assert_eq!(b.status(tool), "paused");
    assert!(
        b.read(tool, "cgroup.events")
            .lines()
            .any(|l| l == "frozen 1"),
        "cgroup.events after pause: {}",
        b.read(tool, "cgroup.events")
    );
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    eprintln!("paused init: {}", state.trim());
    b.ok(tool, &["resume", tool]);
    assert_eq!(b.status(tool), "running");
    assert!(
        b.read(tool, "cgroup.events")
            .lines()
            .any(|l| l == "frozen 0"),
        "cgroup.events after resume: {}",
        b.read(tool, "cgroup.events")
    );

    // update: the unit's properties and the files, and both after a reload.
    b.ok(
        tool,
        &[
            "update",
            "--memory",
            "134217728",
            "--memory-swap",
            "268435456",
            "--pids-limit",
            "50",
            tool,
        ],
    );
    assert_eq!(
        show(&unit, "MemoryMax"),
        "134217728",
        "MemoryMax after update"
    );
    assert_eq!(show(&unit, "TasksMax"), "50", "TasksMax after update");
    let check = |when: &str| {
        assert_eq!(b.read(tool, "memory.max"), "134217728", "memory.max {when}");
        assert_eq!(b.read(tool, "pids.max"), "50", "pids.max {when}");
        assert_eq!(b.read(tool, "cpu.max"), "50000 100000", "cpu.max {when}");
        if host::swap_accounting() {
            assert_eq!(
                b.read(tool, "memory.swap.max"),
                "134217728",
                "memory.swap.max {when}"
            );
        }
    };
    check("after update");
    daemon_reload();
    check("after update and daemon-reload");
    assert_eq!(b.status(tool), "running");

    // A paused container stays paused through a reload.
    b.ok(tool, &["pause", tool]);
    daemon_reload();
    assert!(
        b.read(tool, "cgroup.events")
            .lines()
            .any(|l| l == "frozen 1"),
        "paused container after daemon-reload: {}",
        b.read(tool, "cgroup.events")
    );
    b.ok(tool, &["resume", tool]);

    // exec joins the scope.
    let out = b.ok(tool, &["exec", tool, "cat", "/proc/self/cgroup"]);
    assert_eq!(
        out.trim(),
        "0::/",
        "exec'd process in the container's cgroup namespace"
    );

    b.ok(tool, &["kill", tool, "KILL"]);
    for _ in 0..600 {
        if b.status(tool) == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    b.ok(tool, &["delete", tool]);
    let left = units(&format!("{PREFIX}-*"));
    assert!(
        !left.contains(&unit),
        "{unit} still in systemctl list-units after delete: {left:?}"
    );
    assert!(
        !b.cgroup_dir(tool).exists(),
        "{} left after delete",
        b.cgroup_dir(tool).display()
    );
}

#[test]
fn a_running_container_deleted_with_force_leaves_no_unit_and_no_process() {
    systemd_host_or_skip!("a_running_container_deleted_with_force_leaves_no_unit_and_no_process");
    let b = Bundle::new("force");
    let tool = "rrun";
    b.start(tool, json!({"memory": {"limit": 67108864}}));
    let unit = b.unit(tool);
    let pid = b.init_pid(tool);
    b.ok(tool, &["exec", "-d", tool, "sleep", "1000"]);
    b.ok(tool, &["delete", "--force", tool]);
    let left = units(&format!("{PREFIX}-*"));
    assert!(!left.contains(&unit), "{unit} left: {left:?}");
    assert!(
        !b.cgroup_dir(tool).exists(),
        "{} left",
        b.cgroup_dir(tool).display()
    );
    // The init was killed (a zombie waits for its reaper at most).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
        "init {pid} still alive after delete --force: {stat}"
    );
}
