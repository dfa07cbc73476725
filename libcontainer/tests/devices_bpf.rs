//! The cgroup v2 device program on a real kernel: attached to a cgroup2
//! directory of the test's own (on a hybrid host, under
//! /sys/fs/cgroup/unified; on a v2 host, under /sys/fs/cgroup), a process
//! moved there may open what the allowlist allows and nothing else, root
//! or not. The container path (create on a cgroup v2 host) is tested in
//! the cgroup v2 guest.

mod common;

use common::in_child;
use libcontainer::cgroups::devices_bpf;
use std::path::{Path, PathBuf};

/// The cgroup2 mount: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup.
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap_or_default()))
        .find(|p| p.starts_with("/sys/fs/cgroup"))
}

/// Open `path` in a child moved into `cgroup`: the errno, or 0.
fn open_in(cgroup: &Path, path: &str, write: bool) -> String {
    let path = path.to_string();
    let procs = cgroup.join("cgroup.procs");
    in_child(move || {
        std::fs::write(&procs, "0").map_err(|e| format!("joining: {e}"))?;
        let r = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path);
        Ok(r.err()
            .and_then(|e| e.raw_os_error())
            .unwrap_or(0)
            .to_string())
    })
    .unwrap()
}

#[test]
fn a_denied_device_cannot_be_opened_an_allowed_one_can() {
    let Some(root) = cgroup2_root() else {
        eprintln!("no cgroup2 mount on this host: skipped");
        return;
    };
    let dir = root.join(format!("rrun-test-devbpf-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
        ]))
        .unwrap();
    // /dev/mem's numbers (1:1), on a node of our own: the kernel may have
    // no /dev/mem, but the device program is asked before the driver.
    let mem = std::env::temp_dir().join(format!("rrun-test-devbpf-mem-{}", std::process::id()));
    let _ = std::fs::remove_file(&mem);
    nix::sys::stat::mknod(
        &mem,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 1),
    )
    .unwrap();
    let attached = devices_bpf::apply(&dir, &rules);
    let results = attached.as_ref().ok().map(|()| {
        [
            open_in(&dir, "/dev/null", true),
            open_in(&dir, "/dev/kmsg", false),
            open_in(&dir, "/dev/kmsg", true),
            open_in(&dir, mem.to_str().unwrap(), false),
        ]
    });
    std::fs::remove_dir(&dir).unwrap();
    let _ = std::fs::remove_file(&mem);
    attached.unwrap();
    let eperm = libc::EPERM.to_string();
    let [null, kmsg_r, kmsg_w, mem] = results.unwrap();
    assert_eq!(null, "0", "/dev/null (a default device)");
    assert_eq!(kmsg_r, "0", "/dev/kmsg read (allowed by the config)");
    assert_eq!(kmsg_w, eperm, "/dev/kmsg write (only r allowed)");
    assert_eq!(mem, eperm, "c 1:1, /dev/mem (denied)");
}
