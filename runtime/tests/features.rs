//! `rrun features` against what rrun does (as root, real containers): the
//! document is well formed and claims nothing of runc's; every namespace,
//! capability, hook, mount option, seccomp action, operator, architecture
//! and supported flag it lists is accepted by `rrun create` in a config
//! that uses it (namespaces are made, hooks run); a sample of what it does
//! not list, or lists as not enabled, is refused and leaves nothing.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// What `rrun features` prints, parsed.
fn features() -> Value {
    let out = Command::new(RRUN).arg("features").output().unwrap();
    assert!(out.status.success(), "features: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// A busybox bundle with a state root and a cgroup path of its own; on
/// drop every container is force-deleted and the directory removed.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-feat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "sleep", "true", "echo"], &["mnt"]);
        Bundle {
            root: dir.join("state"),
            cgroup: format!("/rrun-feat-{name}-{}", std::process::id()),
            dir,
        }
    }

    /// The smallest config: `sleep` with a pid and a mount namespace and
    /// /proc; each test adds the one thing it checks.
    fn config(&self) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "1000"],
                "env": ["PATH=/bin"], "noNewPrivileges": true
            },
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "cgroupsPath": self.cgroup,
                "namespaces": [{"type": "pid"}, {"type": "mount"}]
            }
        })
    }

    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn create(&self, config: &Value, id: &str) -> Output {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
        self.rrun(&["create", "--bundle", self.dir.to_str().unwrap(), id])
    }

    /// `config` is accepted by create; `check` sees the created init's
    /// pid; then the container is force-deleted and nothing is left.
    fn accepts(&self, config: &Value, what: &str, check: impl FnOnce(i64)) {
        let id = "accepted";
        let out = self.create(config, id);
        assert!(
            out.status.success(),
            "{what}: refused by create: {}",
            stderr(&out)
        );
        let state = self.rrun(&["state", id]);
        let state: Value = serde_json::from_slice(&state.stdout).unwrap();
        check(state["pid"].as_i64().unwrap());
        let out = self.rrun(&["delete", "--force", id]);
        assert!(out.status.success(), "{what}: delete: {}", stderr(&out));
        self.assert_nothing_left(what);
    }

    /// `config` is refused by create with an error that contains `names`,
    /// and nothing is left.
    fn refuses(&self, config: &Value, what: &str, names: &str) {
        self.refuses_with(&[], config, what, names);
    }

    fn refuses_with(&self, global: &[&str], config: &Value, what: &str, names: &str) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
        let mut args = global.to_vec();
        args.extend(["create", "--bundle", self.dir.to_str().unwrap(), "refused"]);
        let out = self.rrun(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: not refused: {err}");
        assert!(
            err.contains(names),
            "{what}: the error does not name {names:?}: {err}"
        );
        self.assert_nothing_left(what);
    }

    fn assert_nothing_left(&self, what: &str) {
        assert_nothing_left(&self.root, &self.cgroup, &self.dir, what);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_document_is_rruns_own_and_well_formed() {
    let out = Command::new(RRUN).arg("features").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // runc's layout: four-space indent, a final newline.
    assert!(text.starts_with("{\n    \"ociVersionMin\": "), "{text}");
    assert!(text.ends_with("}\n"));
    let f: Value = serde_json::from_str(&text).unwrap();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let mut top = keys(&f);
    top.sort();
    assert_eq!(
        top,
        [
            "annotations",
            "hooks",
            "linux",
            "mountOptions",
            "ociVersionMax",
            "ociVersionMin"
        ]
    );
    let mut linux = keys(&f["linux"]);
    linux.sort();
    // Properties of runtime-spec 1.2.0 only (no memoryPolicy, netDevices).
    assert_eq!(
        linux,
        [
            "apparmor",
            "capabilities",
            "cgroup",
            "intelRdt",
            "mountExtensions",
            "namespaces",
            "seccomp",
            "selinux"
        ]
    );
    let version = Command::new(RRUN).arg("--version").output().unwrap();
    let spec_line = format!("spec: {}", f["ociVersionMax"].as_str().unwrap());
    assert!(
        stdout(&version).contains(&spec_line),
        "{}",
        stdout(&version)
    );
    assert_eq!(f["ociVersionMin"], "1.0.0");
    for (key, value) in f["annotations"].as_object().unwrap() {
        assert!(key.starts_with("io.rrun."), "{key} is not rrun's to claim");
        assert!(value.is_string(), "{key}");
    }
    assert_eq!(
        f["annotations"]["io.rrun.version"],
        env!("CARGO_PKG_VERSION")
    );
    // What rrun refuses is false, not absent ("unknown").
    for path in [
        "/linux/apparmor/enabled",
        "/linux/selinux/enabled",
        "/linux/intelRdt/enabled",
        "/linux/cgroup/systemdUser",
        "/linux/cgroup/rdma",
    ] {
        assert_eq!(f.pointer(path), Some(&json!(false)), "{path}");
    }
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["cgroup"]["v2"], true);
    let seccomp = &f["linux"]["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    let known = strings(&seccomp["knownFlags"]);
    for flag in strings(&seccomp["supportedFlags"]) {
        assert!(known.contains(&flag), "{flag} supported but not known");
    }
}

#[test]
fn the_oci_versions_listed_are_accepted() {
    let f = features();
    let b = Bundle::new("versions");
    for key in ["ociVersionMin", "ociVersionMax"] {
        let mut config = b.config();
        config["ociVersion"] = f[key].clone();
        b.accepts(&config, key, |_| {});
    }
    let mut config = b.config();
    config["ociVersion"] = json!("2.0.0");
    b.refuses(&config, "ociVersion 2.0.0", "ociVersion");
}

/// /proc/<pid>/ns name of a namespace type.
fn ns_file(typ: &str) -> &str {
    match typ {
        "mount" => "mnt",
        "network" => "net",
        other => other,
    }
}

#[test]
fn every_listed_namespace_is_accepted_and_made() {
    let b = Bundle::new("ns");
    for typ in strings(&features()["linux"]["namespaces"]) {
        let mut config = b.config();
        let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        if typ != "pid" && typ != "mount" {
            namespaces.push(json!({"type": typ}));
        }
        config["linux"]["namespaces"] = json!(namespaces);
        match typ.as_str() {
            "user" => {
                let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
                config["linux"]["uidMappings"] = map.clone();
                config["linux"]["gidMappings"] = map;
            }
            "time" => {
                config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400}});
            }
            _ => {}
        }
        b.accepts(&config, &format!("namespace {typ}"), |pid| {
            let file = ns_file(&typ);
            let own = std::fs::read_link(format!("/proc/self/ns/{file}")).unwrap();
            let init = std::fs::read_link(format!("/proc/{pid}/ns/{file}")).unwrap();
            assert_ne!(own, init, "namespace {typ}: the init is in the caller's");
        });
    }
}

fn cap_bounding_set(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn every_listed_capability_is_accepted_and_granted() {
    let caps = strings(&features()["linux"]["capabilities"]);
    let b = Bundle::new("caps");
    let mut config = b.config();
    config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": caps, "ambient": caps
    });
    let listed_mask = (1u64 << caps.len()) - 1;
    let expected = cap_bounding_set("self") & listed_mask;
    b.accepts(&config, "every capability", |pid| {
        assert_eq!(cap_bounding_set(&pid.to_string()), expected);
    });
}

#[test]
fn every_listed_hook_runs() {
    let hooks = strings(&features()["hooks"]);
    let b = Bundle::new("hooks");
    let marks = b.dir.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mut config = b.config();
    config["process"]["args"] = json!(["true"]);
    for hook in &hooks {
        // startContainer runs after pivot_root, in the container: it
        // marks in the rootfs. The others see the host's paths
        // (createContainer: in the container's mount namespace, before
        // pivot_root).
        let mark = if hook == "startContainer" {
            PathBuf::from("/tmp").join(hook)
        } else {
            marks.join(hook)
        };
        let script = format!("echo ran > {}", mark.display());
        config["hooks"][hook] = json!([{"path": "/bin/sh", "args": ["sh", "-c", script]}]);
    }
    let ran = |hook: &str| {
        if hook == "startContainer" {
            b.dir.join("rootfs/tmp").join(hook).exists()
        } else {
            marks.join(hook).exists()
        }
    };
    let out = b.create(&config, "hooks");
    assert!(out.status.success(), "create: {}", stderr(&out));
    let out = b.rrun(&["start", "hooks"]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    for _ in 0..100 {
        let state: Value = serde_json::from_slice(&b.rrun(&["state", "hooks"]).stdout).unwrap();
        if state["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = b.rrun(&["delete", "hooks"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    for hook in &hooks {
        assert!(ran(hook), "the {hook} hook did not run");
    }
    b.assert_nothing_left("hooks");
}

#[test]
fn every_listed_mount_option_is_accepted() {
    let options = strings(&features()["mountOptions"]);
    assert!(!options.is_empty());
    let b = Bundle::new("mountopts");
    let source = b.dir.join("bind-source");
    std::fs::create_dir_all(&source).unwrap();
    for option in options {
        let mut config = b.config();
        let mount = if option == "bind" || option == "rbind" {
            json!({"destination": "/mnt", "type": "bind", "source": source, "options": [option]})
        } else if option == "idmap" || option == "ridmap" {
            // Id-mapped mounts are bind mounts with mappings (tests/idmap.rs).
            let ids = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
            json!({"destination": "/mnt", "type": "bind", "source": source,
                   "options": ["rbind", option], "uidMappings": ids, "gidMappings": ids})
        } else {
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": [option]})
        };
        config["mounts"].as_array_mut().unwrap().push(mount);
        b.accepts(&config, &format!("mount option {option}"), |_| {});
    }
}

/// A profile allowing everything but `getppid`, which gets `action`.
fn profile(action: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": action}]
    })
}

#[test]
fn every_listed_seccomp_action_operator_arch_and_flag_is_accepted() {
    let f = features();
    let seccomp = &f["linux"]["seccomp"];
    let b = Bundle::new("seccomp");
    // A NOTIFY profile needs an agent listening at create.
    let agent_path = b.dir.join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&agent_path).unwrap();
    let with = |profile: Value| {
        let mut config = b.config();
        config["linux"]["seccomp"] = profile;
        config
    };

    for action in strings(&seccomp["actions"]) {
        let mut p = profile(&action);
        if action == "SCMP_ACT_NOTIFY" {
            p["listenerPath"] = json!(agent_path);
        }
        b.accepts(&with(p), &format!("action {action}"), |_| {});
    }
    for op in strings(&seccomp["operators"]) {
        let mut p = profile("SCMP_ACT_ERRNO");
        p["syscalls"][0]["args"] = json!([{"index": 0, "value": 1, "valueTwo": 1, "op": op}]);
        b.accepts(&with(p), &format!("operator {op}"), |_| {});
    }
    for arch in strings(&seccomp["archs"]) {
        let mut p = profile("SCMP_ACT_ERRNO");
        p["architectures"] = json!([arch]);
        b.accepts(&with(p), &format!("architecture {arch}"), |_| {});
    }
    let supported = strings(&seccomp["supportedFlags"]);
    for flag in &supported {
        let mut p = profile("SCMP_ACT_ERRNO");
        p["flags"] = json!([flag]);
        b.accepts(&with(p), &format!("flag {flag}"), |_| {});
    }
    // All of them at once with a listener (WAIT_KILLABLE_RECV means
    // something only then, and TSYNC then needs TSYNC_ESRCH).
    let mut p = profile("SCMP_ACT_NOTIFY");
    p["listenerPath"] = json!(agent_path);
    p["flags"] = json!(supported);
    b.accepts(&with(p), "every supported flag with NOTIFY", |_| {});
    // A known flag this kernel lacks is refused, naming it.
    for flag in strings(&seccomp["knownFlags"]) {
        if !supported.contains(&flag) {
            let mut p = profile("SCMP_ACT_ERRNO");
            p["flags"] = json!([flag]);
            b.refuses(&with(p), &format!("unsupported flag {flag}"), &flag);
        }
    }
}

#[test]
fn what_is_not_listed_or_not_enabled_is_refused() {
    let f = features();
    let b = Bundle::new("refused");
    let options = strings(&f["mountOptions"]);
    let tmpfs_with = |option: &str| {
        let mut config = b.config();
        config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": [option]}),
        );
        config
    };
    for option in ["no_such_option", "tmpcopyup"] {
        assert!(!options.iter().any(|o| o == option), "{option} is listed");
        b.refuses(
            &tmpfs_with(option),
            &format!("mount option {option}"),
            "/mnt",
        );
    }

    // Id-mapped mounts are bind mounts with both mappings (or the
    // container's own user namespace's); tests/idmap.rs runs them.
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    b.refuses(&tmpfs_with("idmap"), "idmap on a tmpfs", "mounts[");
    let mut config = b.config();
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "bind", "source": b.dir.join("rootfs"), "options": ["rbind"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }));
    b.refuses(&config, "uidMappings without gidMappings", "uidMappings");

    assert_eq!(f["linux"]["intelRdt"]["enabled"], false);
    let mut config = b.config();
    config["linux"]["intelRdt"] = json!({"closID": "rrun", "l3CacheSchema": "L3:0=f"});
    b.refuses(&config, "intelRdt", "linux.intelRdt");

    // Applied where the kernel runs AppArmor (cli.rs checks it there).
    let apparmor =
        std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    assert_eq!(f["linux"]["apparmor"]["enabled"], apparmor);
    if !apparmor {
        let mut config = b.config();
        config["process"]["apparmorProfile"] = json!("docker-default");
        b.refuses(&config, "apparmorProfile", "process.apparmorProfile");
    }

    assert_eq!(f["linux"]["selinux"]["enabled"], false);
    let mut config = b.config();
    config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    b.refuses(&config, "selinuxLabel", "process.selinuxLabel");

    // rdma is managed on cgroup v2 hosts only (rrun writes rdma.max);
    // either way a device the kernel does not know is refused.
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(f["linux"]["cgroup"]["rdma"], unified);
    let mut config = b.config();
    config["linux"]["resources"] = json!({"rdma": {"no-such-hca": {"hcaHandles": 3}}});
    b.refuses(&config, "rdma limits", "linux.resources.rdma");

    if f["linux"]["cgroup"]["systemd"] == false {
        let mut config = b.config();
        config["linux"]["cgroupsPath"] = json!("system.slice:rrun-feat:x");
        b.refuses_with(
            &["--systemd-cgroup"],
            &config,
            "--systemd-cgroup",
            "--systemd-cgroup",
        );
        assert!(!host::cgroup_dir("pids", "/system.slice/rrun-feat-x.scope").exists());
    }

    let mut config = b.config();
    config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "no_such_namespace"}]);
    b.refuses(&config, "unknown namespace", "linux.namespaces");

    let seccomp = [
        (
            profile("SCMP_ACT_NO_SUCH_ACTION"),
            "SCMP_ACT_NO_SUCH_ACTION",
        ),
        (
            {
                let mut p = profile("SCMP_ACT_ERRNO");
                p["syscalls"][0]["args"] =
                    json!([{"index": 0, "value": 1, "op": "SCMP_CMP_NO_SUCH_OP"}]);
                p
            },
            "SCMP_CMP_NO_SUCH_OP",
        ),
        (
            {
                let mut p = profile("SCMP_ACT_ERRNO");
                p["architectures"] = json!(["SCMP_ARCH_NO_SUCH_ARCH"]);
                p
            },
            "SCMP_ARCH_NO_SUCH_ARCH",
        ),
        (
            {
                let mut p = profile("SCMP_ACT_ERRNO");
                p["flags"] = json!(["SECCOMP_FILTER_FLAG_NO_SUCH_FLAG"]);
                p
            },
            "SECCOMP_FILTER_FLAG_NO_SUCH_FLAG",
        ),
    ];
    for (p, name) in seccomp {
        let mut config = b.config();
        config["linux"]["seccomp"] = p;
        b.refuses(&config, name, name);
    }
}
