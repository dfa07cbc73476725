//! The `rrun` command line against real containers (as root): output and
//! exit codes, the lifecycle and its state JSON next to runc's, 200
//! sequential runs, invalid configs, and that nothing is ever left behind.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// A busybox bundle and a state root of its own, removed on drop together
/// with anything a test left (containers are force-deleted first).
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(
            &dir,
            &["sh", "true", "sleep", "echo", "cat", "stty", "tty"],
            &[],
        );
        let cgroup = format!("/rrun-cli-{name}-{}", std::process::id());
        let bundle = Bundle {
            root: dir.join("state"),
            dir,
            cgroup,
        };
        bundle.write_config(&bundle.config(args));
        bundle
    }

    /// The config `runc spec` would write, trimmed to what busybox needs.
    fn config(&self, args: &[&str]) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hostname": "rrun-test",
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": {"pids": {"limit": 64}},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    /// Run rrun with stdout and stderr in files, not pipes: a created
    /// container inherits them and holds them open, as runc's does.
    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn bundle_arg(&self) -> String {
        self.dir.display().to_string()
    }

    fn state_dirs(&self) -> usize {
        std::fs::read_dir(&self.root)
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn mounts_left(&self) -> bool {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mountinfo.contains(self.dir.to_str().unwrap())
    }

    /// Nothing of any container of this bundle remains.
    fn assert_clean(&self, what: &str) {
        assert_eq!(self.state_dirs(), 0, "{what}: a state directory was left");
        assert_no_cgroup(&self.cgroup, what);
        assert!(!self.mounts_left(), "{what}: a mount was left");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        // Containers a test made with runc as the oracle, even if it failed.
        delete_every_container("runc", &self.dir.join("runc-state"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn run_prints_the_output_and_exits_with_the_process_code() {
    let b = Bundle::new("exit", &["sh", "-c", "echo hello from $(hostname); exit 3"]);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), "exit3"]);
    assert_eq!(
        stdout(&out),
        "hello from rrun-test\n",
        "stderr: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(3));
    b.assert_clean("run");
}

#[test]
fn run_reports_a_signal_death_as_128_plus_signal() {
    let b = Bundle::new("signal", &["sh", "-c", "kill -9 $$"]);
    // Without a pid namespace: pid 1 of a namespace cannot SIGKILL itself.
    let mut config = b.config(&["sh", "-c", "kill -9 $$"]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    b.write_config(&config);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), "sig"]);
    assert_eq!(out.status.code(), Some(137), "stderr: {}", stderr(&out));
}

fn state_of(b: &Bundle, id: &str) -> Value {
    let out = b.rrun(&["state", id]);
    assert!(out.status.success(), "state {id}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lifecycle_walks_created_running_stopped_gone() {
    let b = Bundle::new("lifecycle", &["sleep", "1000"]);
    let pid_file = b.dir.join("init.pid");
    let out = b.rrun(&[
        "create",
        "--bundle",
        &b.bundle_arg(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "lc",
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = state_of(&b, "lc");
    assert_eq!(state["status"], "created");
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(state["pid"], pid);
    let dir = host::cgroup_dir("pids", &b.cgroup);
    assert!(dir.exists(), "{} does not exist", dir.display());

    assert!(b.rrun(&["start", "lc"]).status.success());
    assert_eq!(state_of(&b, "lc")["status"], "running");
    let again = b.rrun(&["start", "lc"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("cannot start an already running container"));
    let delete = b.rrun(&["delete", "lc"]);
    assert!(
        !delete.status.success(),
        "delete of a running container must fail"
    );
    assert!(
        stderr(&delete).contains("is not stopped: running"),
        "{}",
        stderr(&delete)
    );

    assert!(b.rrun(&["kill", "lc", "KILL"]).status.success());
    wait_until_stopped(&b, "lc");
    let state = state_of(&b, "lc");
    assert_eq!(state["pid"], 0);
    let kill = b.rrun(&["kill", "lc", "TERM"]);
    assert!(!kill.status.success());
    assert!(
        stderr(&kill).contains("container not running"),
        "{}",
        stderr(&kill)
    );

    assert!(b.rrun(&["delete", "lc"]).status.success());
    let gone = b.rrun(&["state", "lc"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("container does not exist"),
        "{}",
        stderr(&gone)
    );
    assert_eq!(b.rrun(&["delete", "lc"]).status.code(), Some(1));
    assert_eq!(b.rrun(&["delete", "--force", "lc"]).status.code(), Some(0));
    b.assert_clean("lifecycle");
}

/// The init was SIGKILLed; its reaper (pid 1 here) collects it shortly.
/// Wait for that through a pidfd, not by sleeping.
fn wait_until_stopped(b: &Bundle, id: &str) {
    let pid = state_of(b, id)["pid"].as_i64().unwrap() as i32;
    if pid != 0 {
        if let Ok(fd) = libcontainer::utils::pidfd_open(pid) {
            let _ = libcontainer::utils::pidfd_wait_exit(&fd, -1);
        }
    }
    assert_eq!(state_of(b, id)["status"], "stopped");
}

#[test]
fn state_fields_match_runc_for_the_same_bundle() {
    let Ok(runc) = which("runc") else {
        eprintln!("runc is not installed: skipped");
        return;
    };
    let b = Bundle::new("vsrunc", &["sleep", "1000"]);
    let runc_root = b.dir.join("runc-state");
    let runc = |args: &[&str]| {
        let mut cmd = Command::new(&runc);
        cmd.arg("--root").arg(&runc_root).args(args);
        output_via_files(cmd, &b.dir)
    };
    for (phase, rrun_args, runc_args) in [
        (
            "create",
            vec!["create", "--bundle", &b.bundle_arg(), "x"],
            vec!["create", "--bundle", &b.bundle_arg(), "y"],
        ),
        ("start", vec!["start", "x"], vec!["start", "y"]),
    ] {
        assert!(b.rrun(&rrun_args).status.success(), "rrun {phase}");
        // The two containers share the bundle: give runc its own cgroup.
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(b.dir.join("config.json")).unwrap())
                .unwrap();
        config["linux"]["cgroupsPath"] = json!(format!("{}-runc", b.cgroup));
        b.write_config(&config);
        let out = runc(&runc_args);
        assert!(out.status.success(), "runc {phase}: {}", stderr(&out));
        config["linux"]["cgroupsPath"] = json!(b.cgroup);
        b.write_config(&config);
        let ours = state_of(&b, "x");
        let theirs: Value = serde_json::from_slice(&runc(&["state", "y"]).stdout).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&theirs), "{phase}: state keys differ");
        // ociVersion is each runtime's own spec version (runc 1.1: 1.0.2-dev).
        for field in ["status", "bundle", "rootfs", "owner"] {
            assert_eq!(ours[field], theirs[field], "{phase}: field {field}");
        }
    }
    let _ = runc(&["delete", "--force", "y"]);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn two_hundred_sequential_runs_leave_nothing_behind() {
    let b = Bundle::new("seq", &["/bin/true"]);
    for n in 0..200 {
        let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), &format!("seq{n}")]);
        assert_eq!(out.status.code(), Some(0), "run {n}: {}", stderr(&out));
    }
    b.assert_clean("200 runs");
}

/// A change that breaks a config.
type Mutation = Box<dyn Fn(&mut Value)>;

/// Each broken config: exit 1, exactly one error line naming the problem,
/// and no state directory, cgroup or mount left.
#[test]
fn invalid_configs_fail_with_one_line_and_leave_nothing() {
    let b = Bundle::new("invalid", &["/bin/true"]);
    let good = b.config(&["/bin/true"]);
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "root.path missing",
            Box::new(|c| c["root"]["path"] = json!("nope")),
            "root.path",
        ),
        (
            "unknown namespace",
            Box::new(|c| c["linux"]["namespaces"][0]["type"] = json!("bogus")),
            "linux.namespaces[0].type",
        ),
        (
            "namespace twice",
            Box::new(|c| c["linux"]["namespaces"][1]["type"] = json!("pid")),
            "appears twice",
        ),
        (
            "uid mappings without user ns",
            Box::new(|c| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])
            }),
            "linux.uidMappings",
        ),
        (
            "unknown rlimit",
            Box::new(|c| c["process"]["rlimits"][0]["type"] = json!("RLIMIT_BOGUS")),
            "process.rlimits[0].type",
        ),
        (
            "unknown mount type",
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/mnt", "type": "nosuchfs", "source": "none"}))
            }),
            "nosuchfs",
        ),
        (
            "no args",
            Box::new(|c| c["process"]["args"] = json!([])),
            "process.args",
        ),
        (
            "missing binary",
            Box::new(|c| c["process"]["args"] = json!(["/bin/nope"])),
            "/bin/nope",
        ),
        (
            "unknown seccomp action",
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"})),
            "linux.seccomp.defaultAction",
        ),
        (
            "seccomp op",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]})
            }),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            "seccomp notify without listenerPath",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
            }),
            "linux.seccomp.listenerPath",
        ),
        (
            "seccomp agent not listening",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": "/run/rrun-test-no-agent.sock", "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
            }),
            "/run/rrun-test-no-agent.sock: connect: ENOENT",
        ),
        (
            "bad version",
            Box::new(|c| c["ociVersion"] = json!("2.0.0")),
            "ociVersion",
        ),
    ];
    for (name, mutate, expect) in cases {
        let mut config = good.clone();
        mutate(&mut config);
        b.write_config(&config);
        let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "bad"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: not one line: {err}");
        assert!(
            err.contains(expect),
            "{name}: {err:?} does not name {expect:?}"
        );
        b.assert_clean(name);
    }
    std::fs::write(b.dir.join("config.json"), "{not json").unwrap();
    let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "bad"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    b.assert_clean("bad JSON");
}

#[test]
fn errors_go_to_the_log_as_runc_json_lines() {
    let b = Bundle::new("log", &["/bin/true"]);
    let log = b.dir.join("log.json");
    let out = Command::new(RRUN)
        .args([
            "--root",
            b.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "kill",
            "nope",
            "9",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .starts_with("container does not exist"),
        "{last}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

/// `--debug` logs the step trace: the caller's, the bootstrap's and the
/// init's steps in one report, in time order, with the container's output
/// and exit code untouched.
#[test]
fn debug_logs_the_steps_of_the_caller_bootstrap_and_init_in_order() {
    let b = Bundle::new("trace", &["sh", "-c", "echo traced; exit 4"]);
    let log = b.dir.join("debug.json");
    let out = b.rrun(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        &b.bundle_arg(),
        "traced",
    ]);
    assert_eq!(stdout(&out), "traced\n", "stderr: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(4));
    let steps: Vec<(f64, String, String)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .filter_map(|msg| {
            // "step <at> ms +<delta> ms <process> <name>", padded
            let fields: Vec<&str> = msg.strip_prefix("step ")?.split_whitespace().collect();
            let at = fields.first()?.parse().ok()?;
            let [.., process, name] = fields.as_slice() else {
                return None;
            };
            Some((at, process.to_string(), name.to_string()))
        })
        .collect();
    let index = |process: &str, name: &str| {
        steps
            .iter()
            .position(|(_, p, n)| p == process && n == name)
            .unwrap_or_else(|| panic!("no step {process} {name} in {steps:?}"))
    };
    let order = [
        index("caller", "config:parsed"),
        index("caller", "create:bootstrap-spawned"),
        index("bootstrap", "bootstrap:config-received"),
        index("bootstrap", "bootstrap:init-cloned"),
        index("init", "init:mounts-made"),
        index("init", "init:privileges-dropped"),
        index("caller", "create:init-ready"),
        index("caller", "start:fifo-written"),
        index("caller", "done"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert!(
        steps.windows(2).all(|w| w[0].0 <= w[1].0),
        "not in time order: {steps:?}"
    );
    b.assert_clean("run --debug");
}

/// containerd shows the user only the last error line of --log: a command
/// line rrun cannot parse must end there too, not just on stderr.
#[test]
fn a_command_line_error_reaches_the_log() {
    let b = Bundle::new("usage", &["/bin/true"]);
    let log = b.dir.join("usage.json");
    let out = Command::new(RRUN)
        .args(["--log", log.to_str().unwrap(), "--log-format=json"])
        .args(["exec", "--no-such-flag", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("--no-such-flag"),
        "{text}"
    );
}

/// A --log that cannot be opened fails the command, as in runc.
#[test]
fn an_unwritable_log_is_an_error() {
    let out = Command::new(RRUN)
        .args(["--log", "/nonexistent-dir/log.json", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent-dir/log.json"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_prints_the_lines_dockerd_reads() {
    let out = Command::new(RRUN).arg("--version").output().unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("rrun version "), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert!(lines[2].starts_with("spec: 1."), "{text}");
}

#[test]
fn list_tolerates_other_runtimes_state_directories() {
    let b = Bundle::new("list", &["sleep", "1000"]);
    std::fs::create_dir_all(b.root.join("foreign/x")).unwrap();
    std::fs::write(
        b.root.join("foreign/state.json"),
        r#"{"some":"other runtime"}"#,
    )
    .unwrap();
    assert!(b
        .rrun(&["create", "--bundle", &b.bundle_arg(), "mine"])
        .status
        .success());
    let out = b.rrun(&["list", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "mine");
    assert_eq!(list[0]["status"], "created");
    let table = stdout(&b.rrun(&["list"]));
    assert!(table.starts_with("ID "), "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    let row = &rows[1];
    assert_eq!(
        (row[0], row[2], row[5]),
        ("mine", "created", "root"),
        "{table}"
    );
    assert_eq!(stdout(&b.rrun(&["list", "-q"])), "mine\n");
    assert!(
        b.rrun(&["delete", "mine"]).status.success(),
        "delete of a created container"
    );
    std::fs::remove_dir_all(b.root.join("foreign")).unwrap();
    b.assert_clean("list");
}

/// `run` of a terminal container with no --console-socket: rrun receives
/// the pty itself and copies it to and from its own terminal (a `script`
/// session here), as runc does.
#[test]
fn run_with_a_terminal_proxies_the_pty() {
    let Ok(script) = which("script") else {
        eprintln!("script (bsdutils) is not installed: skipped");
        return;
    };
    let b = Bundle::new("tty", &[]);
    let mut config = b.config(&[
        "sh",
        "-c",
        "tty; stty size; read line; echo got:$line; exit 5",
    ]);
    config["process"]["terminal"] = json!(true);
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    }));
    b.write_config(&config);
    // The window size reaches the pty; the terminal is restored after.
    let settings = b.dir.join("settings");
    let command = format!(
        "stty rows 33 cols 101; stty -g > {s}.before; \
         {RRUN} --root {} run --bundle {} tty1; rc=$?; stty -g > {s}.after; exit $rc",
        b.root.display(),
        b.bundle_arg(),
        s = settings.display(),
    );
    let mut child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/0"),
        "the process has no pty: {text:?}"
    );
    assert!(
        text.contains("got:hello"),
        "input did not reach the process: {text:?}"
    );
    assert!(text.contains("33 101"), "the window size: {text:?}");
    assert_eq!(out.status.code(), Some(5), "{text:?}");
    let read = |ext| std::fs::read_to_string(format!("{}.{ext}", settings.display())).unwrap();
    assert_eq!(
        read("before"),
        read("after"),
        "the terminal was not restored"
    );
    b.assert_clean("terminal run");
}

/// A create killed half-way leaves a state directory without state.json:
/// `delete --force` clears it so the id can be used again.
#[test]
fn delete_force_clears_a_half_made_container() {
    let b = Bundle::new("half", &["/bin/true"]);
    std::fs::create_dir_all(b.root.join("half")).unwrap();
    let blocked = b.rrun(&["create", "--bundle", &b.bundle_arg(), "half"]);
    assert!(
        stderr(&blocked).contains("exists already"),
        "{}",
        stderr(&blocked)
    );
    assert_eq!(
        b.rrun(&["delete", "--force", "half"]).status.code(),
        Some(0)
    );
    assert_eq!(b.state_dirs(), 0);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), "half"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn init_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'))
}

/// Whatever happened to state.json (truncated, corrupt, gone), `delete
/// --force` ends the container's init and removes its cgroups in every
/// hierarchy, from what create recorded beside it; the id is usable again.
#[test]
fn delete_force_ends_a_container_whose_state_json_is_lost() {
    let b = Bundle::new("lost", &["sleep", "1000"]);
    let state_file = b.root.join("c/state.json");
    let damage: &[(&str, &dyn Fn())] = &[
        ("truncated", &|| std::fs::write(&state_file, "").unwrap()),
        ("corrupt", &|| {
            std::fs::write(&state_file, "{\"id\": 3").unwrap()
        }),
        ("removed", &|| std::fs::remove_file(&state_file).unwrap()),
    ];
    for (what, damage) in damage {
        for start in [false, true] {
            let out = b.rrun(&["create", "--bundle", &b.bundle_arg(), "c"]);
            assert!(out.status.success(), "create: {}", stderr(&out));
            if start {
                assert!(b.rrun(&["start", "c"]).status.success());
            }
            let pid = state_of(&b, "c")["pid"].as_i64().unwrap() as i32;
            damage();
            let out = b.rrun(&["delete", "--force", "c"]);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
            assert!(!init_alive(pid), "{what}: the init {pid} still runs");
            b.assert_clean(what);
        }
    }
    // Nothing recorded at all: the directory goes, and rrun says what it
    // could not end.
    std::fs::create_dir_all(b.root.join("c")).unwrap();
    std::fs::write(&state_file, "").unwrap();
    let out = b.rrun(&["delete", "--force", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("are not known and were left alone"),
        "{}",
        stderr(&out)
    );
    b.assert_clean("nothing recorded");
}

/// A capability the runtime cannot grant (one dropped from rrun's own
/// bounding set with setpriv, so that any host can show it) is skipped
/// with a warning as runc logs warnings: a JSON line on --log, a logrus
/// text line on stderr without it. The container still runs, without it.
#[test]
fn an_ungrantable_capability_is_a_logged_warning() {
    let Ok(setpriv) = which("setpriv") else {
        panic!("setpriv (util-linux) is needed");
    };
    let b = Bundle::new("capwarn", &["grep", "CapBnd", "/proc/self/status"]);
    let mut config = b.config(&["grep", "CapBnd", "/proc/self/status"]);
    let caps = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set] = caps.clone();
    }
    b.write_config(&config);
    std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin/grep")).unwrap();
    let log = b.dir.join("log.json");
    let run = |log_args: &[&str], id: &str| {
        let mut cmd = Command::new(&setpriv);
        cmd.args(["--bounding-set", "-sys_resource", RRUN, "--root"])
            .arg(&b.root)
            .args(log_args)
            .args(["run", "--bundle", &b.bundle_arg(), id]);
        output_via_files(cmd, &b.dir)
    };
    let warned = "CAP_SYS_RESOURCE is not in the runtime's own bounding set";

    let out = run(
        &["--log", log.to_str().unwrap(), "--log-format", "json"],
        "logged",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // CAP_KILL (5) only: 0x20.
    assert_eq!(
        stdout(&out).split_whitespace().last(),
        Some("0000000000000020")
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"].as_str().is_some_and(|m| m.contains(warned)))
        .unwrap_or_else(|| panic!("no warning in --log: {text:?}"));
    assert_eq!(line["level"], "warning", "{line}");
    assert!(line["msg"]
        .as_str()
        .unwrap()
        .contains("process.capabilities.bounding"));
    assert!(!stderr(&out).contains(warned), "{}", stderr(&out));

    let out = run(&[], "stderr");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains(warned))
        .unwrap_or_else(|| panic!("no warning on stderr: {err:?}"));
    assert!(line.contains("level=warning"), "{line}");
    b.assert_clean("capability warning");
}

#[test]
fn spec_writes_a_starter_config_and_never_overwrites_one() {
    let dir = std::env::temp_dir().join(format!("rrun-cli-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = |dir: &Path| {
        let mut cmd = Command::new(RRUN);
        cmd.args(["spec", "--bundle", dir.to_str().unwrap()]);
        output_via_files(cmd, dir)
    };
    assert_eq!(spec(&dir).status.code(), Some(0));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["ociVersion"], "1.2.0");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["terminal"], true);
    let again = spec(&dir);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `process.apparmorProfile` where the kernel runs AppArmor (the v2
/// guest; Docker and containerd set one there, `unconfined` with
/// `--security-opt apparmor=unconfined`): the process runs under it, as
/// /proc/self/attr/current says. Elsewhere it is refused with one line.
#[test]
fn an_apparmor_profile_is_applied_where_the_kernel_runs_apparmor() {
    let enabled =
        std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"));
    let args = ["cat", "/proc/self/attr/current"];
    let b = Bundle::new("apparmor", &args);
    let mut config = b.config(&args);
    config["process"]["apparmorProfile"] = json!("unconfined");
    b.write_config(&config);
    let out = b.rrun(&["run", "--bundle", &b.bundle_arg(), "aa"]);
    if enabled {
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            "unconfined",
            "stderr: {}",
            stderr(&out)
        );
    } else {
        eprintln!("AppArmor is not enabled on this host: checked that the profile is refused");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("process.apparmorProfile: AppArmor is not enabled"),
            "stderr: {}",
            stderr(&out)
        );
    }
    b.assert_clean("apparmor");
}
