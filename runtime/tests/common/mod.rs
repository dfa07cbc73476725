//! Helpers shared by the CLI test files (each `tests/*.rs` is its own
//! crate and uses only some of them).
#![allow(dead_code)]

#[path = "../../../libcontainer/tests/common/isolate.rs"]
pub mod isolate;

/// What this machine offers (cgroup files, I/O schedulers, swap
/// accounting, the real-time budget, binaries...): ask it before relying
/// on it. Also included by libcontainer's tests and the conformance runner.
#[path = "host.rs"]
pub mod host;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Run `cmd` with stdout and stderr in files under `dir`, not pipes: a
/// created container inherits them and holds them open, as runc's does,
/// so a pipe would never reach EOF. stdin is `stdin` or /dev/null.
pub fn output_via_files_with_stdin(mut cmd: Command, dir: &Path, stdin: Option<&Path>) -> Output {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) = (dir.join(format!("out.{n}")), dir.join(format!("err.{n}")));
    let stdin = match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    };
    let status = cmd
        .stdin(stdin)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    output
}

pub fn output_via_files(cmd: Command, dir: &Path) -> Output {
    output_via_files_with_stdin(cmd, dir, None)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `<dir>/rootfs`: static busybox with `applets` linked to it, and the
/// directories a container's mounts need.
pub fn make_busybox_rootfs(dir: &Path, applets: &[&str], extra_dirs: &[&str]) {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "sys", "tmp", "etc"]
        .iter()
        .chain(extra_dirs)
    {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
    for applet in applets {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// `tool --root root delete --force` every container under `root`: what a
/// test's bundle does on drop, even after a failed assertion.
pub fn delete_every_container(tool: &str, root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let _ = Command::new(tool)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force"])
            .arg(entry.file_name())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `cgroup` (a cgroupsPath) has no directory in any hierarchy of this
/// host: every v1 one (named ones included) and the cgroup2 tree, or the
/// unified tree alone.
pub fn assert_no_cgroup(cgroup: &str, what: &str) {
    for dir in host::cgroup_dirs(cgroup) {
        assert!(!dir.exists(), "{what}: {} was left", dir.display());
    }
}

/// Nothing of a bundle's runs is left: no state directory under `root`,
/// no cgroup at `cgroup`, no mount of anything under `dir`.
pub fn assert_nothing_left(root: &Path, cgroup: &str, dir: &Path, what: &str) {
    let states = std::fs::read_dir(root).map(|d| d.count()).unwrap_or(0);
    assert_eq!(states, 0, "{what}: a state directory was left");
    assert_no_cgroup(cgroup, what);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(dir.to_str().unwrap()),
        "{what}: a mount was left"
    );
}

/// Docker 20.10's config for a container (tests/fixtures/docker-config.json,
/// seccomp profile and all) with what points at dockerd's paths made the
/// test's own: root (`<dir>/rootfs`), the bind-mounted /etc files (empty
/// files under `<dir>/etc-files`) and cgroupsPath.
pub fn docker_config(dir: &Path, cgroup: &str) -> serde_json::Value {
    use serde_json::json;
    let text = include_str!("../fixtures/docker-config.json");
    let mut config: serde_json::Value = serde_json::from_str(text).unwrap();
    config["root"]["path"] = json!(dir.join("rootfs"));
    config["linux"]["cgroupsPath"] = json!(cgroup);
    for mount in config["mounts"].as_array_mut().unwrap() {
        if mount["type"] == "bind" {
            let name = Path::new(mount["destination"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_owned();
            let source = dir.join("etc-files").join(name);
            std::fs::create_dir_all(source.parent().unwrap()).unwrap();
            std::fs::write(&source, "").unwrap();
            mount["source"] = json!(source);
        }
    }
    config
}

/// [`docker_config`] as dockerd 20.10 would write it on this host: without
/// swap accounting it passes no swap limit ("Memory limited without swap"),
/// so neither does this config (rrun and runc refuse one there).
pub fn docker_config_for_this_host(dir: &Path, cgroup: &str) -> serde_json::Value {
    let mut config = docker_config(dir, cgroup);
    if !host::swap_accounting() {
        if let Some(memory) = config["linux"]["resources"]["memory"].as_object_mut() {
            if memory.remove("swap").is_some() {
                eprintln!(
                    "no swap accounting on this host: Docker's config without its swap limit"
                );
            }
        }
    }
    config
}

/// The minimal config of the cgroup tests (cgroups.rs, systemd.rs):
/// `resources` as given at `cgroups_path`, the host's cgroups mounted
/// read-only at /sys/fs/cgroup, `out` bound at /out; a cgroup namespace
/// of its own with `cgroup_ns`.
pub fn cgroup_test_config(
    args: &[&str],
    resources: serde_json::Value,
    cgroups_path: &str,
    out: &std::path::Path,
    cgroup_ns: bool,
) -> serde_json::Value {
    let mut namespaces =
        serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    if cgroup_ns {
        namespaces
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "cgroup"}));
    }
    serde_json::json!({
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
            {"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": namespaces
        }
    })
}
