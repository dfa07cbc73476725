//! Namespaces a config leaves out (config-linux.md: "If a namespace type is
//! not specified in the namespaces array, the container MUST inherit the
//! runtime namespace of that type"), as the OCI runtime-tools suite's
//! `linux_ns_itype` test asks, and above all a container without a mount
//! namespace of its own: it must never change the caller's mounts (rrun
//! once pivoted the caller's root there, issue 9). Like every test binary
//! here, this one runs in a private mount namespace (`common::isolate`),
//! so a regression cannot reach the machine's own mounts.

mod common;
use common::*;

use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// Every namespace type of the spec, with its name under /proc/<pid>/ns.
const TYPES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("cgroup", "cgroup"),
    ("user", "user"),
    ("time", "time"),
    ("mount", "mnt"),
];

/// A busybox bundle with a marker file at the root of its rootfs and a
/// state root of its own; removed on drop with every container left.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-ns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "cat", "ls", "sleep", "true"], &[]);
        std::fs::write(dir.join("rootfs/marker"), "inside the rootfs\n").unwrap();
        Bundle {
            root: dir.join("state"),
            cgroup: format!("/rrun-ns-{name}-{}", std::process::id()),
            dir,
        }
    }

    /// A config with exactly `namespaces` (types), no masked or read-only
    /// paths, and no mounts but a /dev tmpfs with a mount namespace (the
    /// default devices go there, not into the rootfs on disk).
    fn config(&self, namespaces: &[&str], args: &[&str]) -> Value {
        let mut linux = json!({
            "cgroupsPath": self.cgroup,
            "namespaces": namespaces.iter().map(|t| json!({"type": t})).collect::<Vec<_>>(),
        });
        if namespaces.contains(&"user") {
            linux["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            linux["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        }
        let mounts = if namespaces.contains(&"mount") {
            json!([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}])
        } else {
            json!([])
        };
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin"],
            },
            "mounts": mounts,
            "linux": linux,
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

    fn create(&self, id: &str) -> i32 {
        let out = self.rrun(&["create", "--bundle", self.dir.to_str().unwrap(), id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
        self.pid(id)
    }

    fn pid(&self, id: &str) -> i32 {
        let out = self.rrun(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        state["pid"].as_i64().unwrap() as i32
    }

    fn status(&self, id: &str) -> String {
        let out = self.rrun(&["state", id]);
        let state: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        state["status"].as_str().unwrap_or_default().to_string()
    }

    fn wait_stopped(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.status(id) != "stopped" {
            assert!(Instant::now() < deadline, "{id} never stopped");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn delete(&self, id: &str) {
        let out = self.rrun(&["delete", "--force", id]);
        assert!(out.status.success(), "delete {id}: {}", stderr(&out));
    }

    /// No state directory or cgroup of this bundle is left.
    fn assert_clean(&self, what: &str) {
        let dirs = std::fs::read_dir(&self.root)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(dirs, 0, "{what}: a state directory was left");
        assert_no_cgroup(&self.cgroup, what);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a runtime bug in the caller's mount namespace would change.
#[derive(Debug, PartialEq)]
struct CallerMounts {
    root: (u64, u64),
    mountinfo: String,
}

impl CallerMounts {
    fn now() -> CallerMounts {
        let root = std::fs::metadata("/").unwrap();
        CallerMounts {
            root: (root.dev(), root.ino()),
            mountinfo: std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        }
    }

    fn assert_unchanged(&self, what: &str) {
        let now = CallerMounts::now();
        assert_eq!(self.root, now.root, "{what}: the caller's / changed");
        assert_eq!(
            self.mountinfo, now.mountinfo,
            "{what}: the caller's mounts changed"
        );
    }
}

fn ns_of(pid: &str, name: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap()
}

#[test]
fn without_a_mount_namespace_the_callers_mounts_stay_as_they_were() {
    isolate::assert_isolated();
    let b = Bundle::new("nomnt");
    let before = CallerMounts::now();
    b.write_config(&b.config(&["pid", "ipc", "uts", "network"], &["cat", "/marker"]));

    let pid = b.create("c");
    before.assert_unchanged("after create");
    assert_eq!(ns_of(&pid.to_string(), "mnt"), ns_of("self", "mnt"));
    // The container's / is its rootfs, by chroot.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        b.dir.join("rootfs").canonicalize().unwrap()
    );
    let out = b.rrun(&["start", "c"]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    b.wait_stopped("c");
    before.assert_unchanged("after start");
    b.delete("c");
    before.assert_unchanged("after delete");
    b.assert_clean("create, start, delete");

    let out = b.rrun(&["run", "--bundle", b.dir.to_str().unwrap(), "r"]);
    assert_eq!(out.status.code(), Some(0), "run: {}", stderr(&out));
    assert_eq!(stdout(&out), "inside the rootfs\n");
    before.assert_unchanged("after run");
    b.assert_clean("run");
}

#[test]
fn a_failed_create_without_a_mount_namespace_changes_no_mount_and_leaves_nothing() {
    isolate::assert_isolated();
    let b = Bundle::new("nomntfail");
    let before = CallerMounts::now();
    let plain = b.config(&["pid", "network"], &["true"]);
    let mut with_mount = plain.clone();
    with_mount["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
    let mut masked = plain.clone();
    masked["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let mut readonly_root = plain.clone();
    readonly_root["root"]["readonly"] = json!(true);
    let mut missing_binary = plain.clone();
    missing_binary["process"]["args"] = json!(["/no/such/binary"]);
    let cases: &[(&Value, &str)] = &[
        (&with_mount, "mounts[0]: /proc: needs a mount namespace"),
        (&masked, "linux.maskedPaths: needs a mount namespace"),
        (&readonly_root, "root.readonly: needs a mount namespace"),
        // Fails in the init, after it entered the rootfs.
        (&missing_binary, "/no/such/binary"),
    ];
    for (config, expected) in cases {
        b.write_config(config);
        let out = b.rrun(&["create", "--bundle", b.dir.to_str().unwrap(), "f"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{expected}: {err}");
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        before.assert_unchanged(expected);
        b.assert_clean(expected);
    }
}

/// Each type left out alone, then all of them: the left-out namespaces
/// are the caller's, every other one is new.
#[test]
fn each_namespace_left_out_is_the_callers() {
    isolate::assert_isolated();
    let b = Bundle::new("itype");
    let before = CallerMounts::now();
    let time_ns = Path::new("/proc/self/ns/time").exists();
    if !time_ns {
        eprintln!("this kernel has no time namespace: the time case is skipped");
    }
    let available: Vec<&(&str, &str)> = TYPES
        .iter()
        .filter(|(t, _)| *t != "time" || time_ns)
        .collect();
    let mut variants: Vec<Vec<&str>> = available
        .iter()
        .map(|(left_out, _)| vec![*left_out])
        .collect();
    variants.push(available.iter().map(|(t, _)| *t).collect());
    for left_out in variants {
        let kept: Vec<&str> = available
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !left_out.contains(t))
            .collect();
        b.write_config(&b.config(&kept, &["sleep", "1000"]));
        let what = format!("without {left_out:?}");
        let pid = b.create("c").to_string();
        for (typ, name) in &available {
            let (ours, theirs) = (ns_of("self", name), ns_of(&pid, name));
            if left_out.contains(typ) {
                assert_eq!(ours, theirs, "{what}: {typ} should be the caller's");
            } else {
                assert_ne!(ours, theirs, "{what}: {typ} should be new");
            }
        }
        b.delete("c");
        before.assert_unchanged(&what);
        b.assert_clean(&what);
    }
}
