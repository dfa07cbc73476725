//! Id-mapped bind mounts (`mounts[].uidMappings`, `gidMappings`, the
//! `idmap` and `ridmap` options): what a container sees of a host
//! directory's owners through one, and who owns what it writes there.
//!
//! The volume holds files of uid/gid 0, 1000 and 5 (chowned here, as
//! root). Through a mount mapping 0 <-> 1000 both ways a container without
//! a user namespace sees them as 1000, 0 and the overflow id 65534, and a
//! file its root creates lands on disk as 1000. In a container with a user
//! namespace (0 -> 100000, 65536 ids) a mount with `idmap` alone takes that
//! mapping: the container sees the volume's owners as on disk, and its
//! root writes files of uid 0. Like every test binary here, this one runs
//! in a private mount namespace (`common::isolate`).

mod common;
use common::*;

use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// Root's file capabilities: those that let it write in a directory it
/// does not own, when the directory's owner is one of its ids.
const CAPS: [&str; 3] = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"];

struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-idmap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "stat", "touch", "cat"], &["vol"]);
        let vol = dir.join("volume");
        std::fs::create_dir_all(&vol).unwrap();
        for (file, id) in [("root0", 0), ("u1000", 1000), ("u5", 5)] {
            let path = vol.join(file);
            std::fs::write(&path, file).unwrap();
            std::os::unix::fs::chown(&path, Some(id), Some(id)).unwrap();
        }
        Bundle {
            root: dir.join("state"),
            cgroup: format!("/rrun-idmap-{name}-{}", std::process::id()),
            dir,
        }
    }

    fn volume(&self) -> PathBuf {
        self.dir.join("volume")
    }

    /// A container with a mount and pid namespace (`user` adds a user
    /// namespace of 65536 ids from 100000), /proc, /dev, and `volume` on /vol
    /// as `vol`, running `script`.
    fn config(&self, user: bool, vol: Value, script: &str) -> Value {
        let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "pid"})];
        let mut linux = json!({"cgroupsPath": self.cgroup});
        if user {
            namespaces.push(json!({"type": "user"}));
            linux["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            linux["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
        linux["namespaces"] = json!(namespaces);
        let mut vol = vol;
        vol["destination"] = json!("/vol");
        vol["type"] = json!("bind");
        vol["source"] = json!(self.volume());
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh", "-c", script],
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                vol
            ],
            "linux": linux,
        })
    }

    fn run(&self, config: &Value) -> Output {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args([
            "run",
            "--bundle",
            self.dir.to_str().unwrap(),
            "c",
        ]);
        output_via_files(cmd, &self.dir)
    }

    /// Owner uid and gid of a file of the volume, on disk.
    fn owner_on_disk(&self, file: &str) -> (u32, u32) {
        let m = std::fs::metadata(self.volume().join(file)).unwrap();
        (m.uid(), m.gid())
    }

    fn assert_clean(&self, what: &str) {
        assert_nothing_left(&self.root, &self.cgroup, &self.dir, what);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `uid:gid` of each volume file as the container's `stat` shows them,
/// then whether /vol is id-mapped, then a file created by root.
const SCRIPT: &str = "for f in root0 u1000 u5; do stat -c \"$f %u:%g\" /vol/$f; done; \
     grep -c ' /vol .*idmapped' /proc/self/mountinfo; touch /vol/new && echo created";

#[test]
fn explicit_mappings_show_the_mapped_owners_and_write_back_through_them() {
    isolate::assert_isolated();
    let b = Bundle::new("explicit");
    let swap = json!([
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1000, "hostID": 0, "size": 1}
    ]);
    let vol = json!({"options": ["rbind"], "uidMappings": swap, "gidMappings": swap});
    let out = b.run(&b.config(false, vol, SCRIPT));
    assert_eq!(out.status.code(), Some(0), "run: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "root0 1000:1000\nu1000 0:0\nu5 65534:65534\n1\ncreated\n"
    );
    // Root's file went back through the mapping: 0 is disk id 1000.
    assert_eq!(b.owner_on_disk("new"), (1000, 1000));
    // The volume itself is as it was.
    assert_eq!(b.owner_on_disk("root0"), (0, 0));
    assert_eq!(b.owner_on_disk("u1000"), (1000, 1000));
    b.assert_clean("run");
}

#[test]
fn idmap_alone_takes_the_containers_user_namespace() {
    isolate::assert_isolated();
    let b = Bundle::new("userns");
    let plain = json!({"options": ["rbind"]});
    let out = b.run(&b.config(true, plain, SCRIPT));
    // Without the mapping the volume's owners are outside the container's
    // ids, and its root may not create files there.
    assert_ne!(out.status.code(), Some(0), "run: {}", stdout(&out));
    assert!(
        stdout(&out).starts_with("root0 65534:65534\nu1000 65534:65534\nu5 65534:65534\n0\n"),
        "without idmap: {}{}",
        stdout(&out),
        stderr(&out)
    );

    let idmapped = json!({"options": ["rbind", "idmap"]});
    let out = b.run(&b.config(true, idmapped, SCRIPT));
    assert_eq!(out.status.code(), Some(0), "run: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "root0 0:0\nu1000 1000:1000\nu5 5:5\n1\ncreated\n"
    );
    assert_eq!(b.owner_on_disk("new"), (0, 0));
    b.assert_clean("run");
}

#[test]
fn a_missing_source_is_one_error_naming_the_mount_and_nothing_is_left() {
    isolate::assert_isolated();
    let b = Bundle::new("missing");
    let ids = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let mut config = b.config(
        false,
        json!({"options": ["rbind"], "uidMappings": ids, "gidMappings": ids}),
        "true",
    );
    config["mounts"][2]["source"] = json!(b.dir.join("no-such-dir"));
    let out = b.run(&config);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "run: {err}");
    assert!(
        err.contains("mounts[2] (/vol)") && err.contains("no-such-dir") && err.contains("ENOENT"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    b.assert_clean("a refused id-mapped mount");
}
