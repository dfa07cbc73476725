//! `rrun spec` and `rrun spec --rootless` against `runc spec` (runc 1.1,
//! installed by scripts/test.sh): the same file byte for byte but for
//! `ociVersion` and `hostname`, for root and for an unprivileged user; and
//! both starters run under rrun on a busybox rootfs.

mod common;
use common::*;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rrun-spec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// `<scratch>/<name>`, made writable by anyone (for `as_user`).
    fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.0.join("state"));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tool spec [--rootless] --bundle dir`, as root or (`as_user`) as
/// nobody through setpriv; returns the file written.
fn spec(tool: &str, rootless: bool, dir: &Path, as_user: bool) -> String {
    let mut cmd = if as_user {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            tool,
        ]);
        cmd
    } else {
        Command::new(tool)
    };
    cmd.arg("spec");
    if rootless {
        cmd.arg("--rootless");
    }
    cmd.arg("--bundle").arg(dir);
    let out = output_via_files(cmd, dir);
    assert!(
        out.status.success(),
        "{tool} spec (rootless {rootless}, as nobody {as_user}): {}",
        stderr(&out)
    );
    std::fs::read_to_string(dir.join("config.json")).unwrap()
}

/// Every path at which `a` and `b` differ, with both values.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (u, v) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                differences(u, v, &format!("{path}/{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differences(u, v, &format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: runc {a}, rrun {b}")),
        _ => {}
    }
}

/// rrun's file is runc's with rrun's spec version and hostname: first
/// field by field (a readable failure), then byte for byte.
fn assert_same_but_version_and_hostname(runc: &str, rrun: &str, what: &str) {
    let (runc_json, rrun_json): (Value, Value) = (
        serde_json::from_str(runc).unwrap(),
        serde_json::from_str(rrun).unwrap(),
    );
    let mut diffs = Vec::new();
    differences(&runc_json, &rrun_json, "", &mut diffs);
    let runc_version = runc_json["ociVersion"].to_string();
    let expected = [
        "/hostname: runc \"runc\", rrun \"rrun\"".to_string(),
        format!("/ociVersion: runc {runc_version}, rrun \"1.2.0\""),
    ];
    assert_eq!(diffs, expected, "{what}");
    let expected_text = runc
        .replacen(
            &format!("\"ociVersion\": {runc_version}"),
            "\"ociVersion\": \"1.2.0\"",
            1,
        )
        .replacen("\"hostname\": \"runc\"", "\"hostname\": \"rrun\"", 1);
    assert_eq!(rrun, expected_text, "{what}: the layout differs");
}

#[test]
fn spec_is_runcs_but_for_the_version_and_hostname() {
    let s = Scratch::new("default");
    let runc = spec("runc", false, &s.subdir("runc"), false);
    let rrun = spec(RRUN, false, &s.subdir("rrun"), false);
    assert_same_but_version_and_hostname(&runc, &rrun, "spec");
}

#[test]
fn rootless_spec_is_runcs_but_for_the_version_and_hostname() {
    let s = Scratch::new("rootless");
    let runc = spec("runc", true, &s.subdir("runc"), false);
    let rrun = spec(RRUN, true, &s.subdir("rrun"), false);
    assert_same_but_version_and_hostname(&runc, &rrun, "spec --rootless as root");
    let config: Value = serde_json::from_str(&rrun).unwrap();
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": 0, "size": 1}])
    );
}

/// The mappings are the calling user's: run both as nobody (65534).
#[test]
fn rootless_spec_maps_the_calling_user_as_runc_does() {
    let s = Scratch::new("nobody");
    // A copy nobody can run whatever the permissions on the way to target/.
    let rrun_copy = s.0.join("rrun-binary");
    std::fs::copy(RRUN, &rrun_copy).unwrap();
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runc = spec("runc", true, &s.subdir("runc"), true);
    let rrun = spec(rrun_copy.to_str().unwrap(), true, &s.subdir("rrun"), true);
    assert_same_but_version_and_hostname(&runc, &rrun, "spec --rootless as nobody");
    let config: Value = serde_json::from_str(&rrun).unwrap();
    for key in ["uidMappings", "gidMappings"] {
        assert_eq!(
            config["linux"][key],
            json!([{"containerID": 0, "hostID": 65534, "size": 1}]),
            "{key}"
        );
    }
}

#[test]
fn spec_writes_to_the_current_directory_without_bundle() {
    let s = Scratch::new("cwd");
    let mut cmd = Command::new(RRUN);
    cmd.arg("spec").current_dir(&s.0);
    let out: Output = output_via_files(cmd, &s.0);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(s.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["hostname"], "rrun");
}

/// What `rrun spec` writes runs under rrun once given a rootfs and a
/// non-interactive process; so does the rootless variant (here as root:
/// a user namespace mapping root to root).
#[test]
fn both_starters_run_under_rrun() {
    let s = Scratch::new("run");
    let state = s.0.join("state");
    for rootless in [false, true] {
        let bundle = s.subdir(if rootless { "rootless" } else { "default" });
        make_busybox_rootfs(&bundle, &["sh", "cat", "ls"], &[]);
        let text = spec(RRUN, rootless, &bundle, false);
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /proc/self/uid_map; ls /sys/fs/cgroup >/dev/null && echo ok"
        ]);
        std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
        let id = format!("starter-{rootless}-{}", std::process::id());
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id);
        let out = output_via_files(cmd, &s.0);
        assert_eq!(
            out.status.code(),
            Some(0),
            "rootless {rootless}: {}",
            stderr(&out)
        );
        let seen = stdout(&out);
        assert!(seen.ends_with("ok\n"), "rootless {rootless}: {seen}");
        let map: Vec<&str> = seen.lines().next().unwrap().split_whitespace().collect();
        if rootless {
            assert_eq!(map, ["0", "0", "1"], "the user namespace's uid_map");
        } else {
            assert_eq!(map, ["0", "0", "4294967295"], "no user namespace");
        }
        assert_no_cgroup(&format!("/rrun/{id}"), "starter");
    }
}
