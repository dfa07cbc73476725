//! pause/resume, the `paused` status, `ps`, `kill --all` and `delete
//! --force` of a frozen container, against real containers (as root), next
//! to runc where it is installed. Every test leaves nothing behind, also
//! when it fails: its bundle's drop thaws and force-deletes what is left.

mod common;
use common::*;

use libcontainer::utils::{pidfd_open, pidfd_wait_exit};
use serde_json::{json, Value};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Command, Output};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
/// A bound on waiting for a killed process (a broken thaw would otherwise
/// hang the test instead of failing it); never reached when it works.
const DEATH_BOUND_MS: i32 = 10_000;
const BUSY_LOOP: &[&str] = &["sh", "-c", "while :; do :; done"];
/// A busybox bundle, a state root and a cgroup path of the test's own.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-freeze-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "sleep", "true"], &[]);
        let bundle = Bundle {
            root: dir.join("state"),
            dir,
            cgroup: format!("/rrun-test-freeze-{name}-{}", std::process::id()),
        };
        bundle.write_config(&bundle.config(args, true));
        bundle
    }

    /// What `runc spec` writes, trimmed to what busybox needs; without a
    /// pid namespace, killing the init does not take the other processes
    /// with it (what `kill --all` and `delete --force` must do).
    fn config(&self, args: &[&str], pid_namespace: bool) -> Value {
        let mut namespaces = vec![
            json!({"type": "network"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        if pid_namespace {
            namespaces.push(json!({"type": "pid"}));
        }
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hostname": "rrun-test",
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": {"pids": {"limit": 64}},
                "namespaces": namespaces,
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

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc-state")
    }

    fn runc(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(self.runc_root()).args(args);
        output_via_files(cmd, &self.dir)
    }

    /// `rrun create` + `rrun start`, asserting both succeed.
    fn start(&self, id: &str) -> i32 {
        let bundle = self.dir.display().to_string();
        let out = self.rrun(&["create", "--bundle", &bundle, id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
        let out = self.rrun(&["start", id]);
        assert!(out.status.success(), "start {id}: {}", stderr(&out));
        self.state(id)["pid"].as_i64().unwrap() as i32
    }

    fn state(&self, id: &str) -> Value {
        let out = self.rrun(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Run rrun, expect exit 1 and `message` in its error.
    fn refused(&self, args: &[&str], message: &str) {
        let out = self.rrun(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} must fail");
        assert!(
            stderr(&out).contains(message),
            "{args:?}: {:?} does not say {message:?}",
            stderr(&out)
        );
    }

    fn pids(&self, id: &str) -> Vec<i32> {
        let out = self.rrun(&["ps", "--format", "json", id]);
        assert!(out.status.success(), "ps {id}: {}", stderr(&out));
        serde_json::from_slice::<Option<Vec<i32>>>(&out.stdout)
            .unwrap()
            .unwrap_or_default()
    }

    /// The container's pids once there are at least `n` (its init forks
    /// them after start): re-read, waiting on the init's pidfd in between.
    fn wait_for_pids(&self, id: &str, init: &OwnedFd, n: usize) -> Vec<i32> {
        for _ in 0..500 {
            let pids = self.pids(id);
            if pids.len() >= n {
                return pids;
            }
            assert!(!pidfd_wait_exit(init, 20).unwrap(), "the init exited");
        }
        panic!("{id}: never had {n} processes: {:?}", self.pids(id));
    }

    /// The CPU time the container's cgroup used: v1's cpuacct.usage (ns),
    /// or cpu.stat's usage_usec on a unified host.
    fn cpu_usage(&self) -> u64 {
        if host::unified() {
            let stat = host::read_cgroup_file("cpu", &self.cgroup, "cpu.stat");
            return stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no usage_usec in cpu.stat: {stat}"));
        }
        host::read_cgroup_file("cpuacct", &self.cgroup, "cpuacct.usage")
            .parse()
            .unwrap()
    }

    /// Whether the kernel has the container's cgroup frozen: v1's
    /// freezer.state, or cgroup.freeze and cgroup.events on a unified
    /// host (rrun writes the first, the kernel says `frozen 1` in the
    /// second once every task is stopped).
    fn frozen(&self) -> bool {
        if host::unified() {
            let freeze = host::read_cgroup_file("freezer", &self.cgroup, "cgroup.freeze");
            let events = host::read_cgroup_file("freezer", &self.cgroup, "cgroup.events");
            let frozen = events.lines().any(|l| l == "frozen 1");
            assert_eq!(
                freeze == "1",
                frozen,
                "cgroup.freeze {freeze} but cgroup.events {events:?}"
            );
            return frozen;
        }
        let state = host::read_cgroup_file("freezer", &self.cgroup, "freezer.state");
        assert!(
            state == "FROZEN" || state == "THAWED",
            "freezer.state {state}"
        );
        state == "FROZEN"
    }

    /// No process is left in the container's cgroup.
    fn cgroup_empty(&self) -> bool {
        if host::unified() {
            return host::read_cgroup_file("pids", &self.cgroup, "cgroup.events")
                .lines()
                .any(|l| l == "populated 0");
        }
        host::read_cgroup_file("pids", &self.cgroup, "cgroup.procs").is_empty()
    }

    fn state_dirs(&self) -> usize {
        std::fs::read_dir(&self.root)
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Thaw first, whatever rrun's own delete does with a frozen cgroup
        // (only this test's cgroups, where they exist).
        let (file, thawed) = if host::unified() {
            ("cgroup.freeze", "0")
        } else {
            ("freezer.state", "THAWED")
        };
        for cgroup in [self.cgroup.clone(), format!("{}-runc", self.cgroup)] {
            let path = host::cgroup_file("freezer", &cgroup, file);
            if path.exists() {
                let _ = std::fs::write(path, thawed);
            }
        }
        delete_every_container(RRUN, &self.root);
        delete_every_container("runc", &self.runc_root());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runc_installed() -> bool {
    host::binary("runc").is_some()
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A frozen busy loop uses no CPU: its cgroup's CPU time (cpuacct.usage,
/// cpu.stat's usage_usec on a unified host) does not move while the test
/// blocks for a moment; after resume it moves again. The kernel says the
/// cgroup is frozen (freezer.state, or cgroup.freeze and cgroup.events),
/// then thawed.
#[test]
fn pause_stops_a_busy_loop_and_resume_restarts_it() {
    let b = Bundle::new("busy", BUSY_LOOP);
    let init = pidfd_open(b.start("busy")).unwrap();
    assert_eq!(b.status("busy"), "running");

    let out = b.rrun(&["pause", "busy"]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert_eq!(b.status("busy"), "paused");
    let list: Value = serde_json::from_slice(&b.rrun(&["list", "-f", "json"]).stdout).unwrap();
    assert_eq!(list[0]["status"], "paused", "{list}");
    assert!(b.frozen(), "paused, but the kernel has the cgroup thawed");
    let frozen_at = b.cpu_usage();
    // A short blocking wait (on the init, which must not exit meanwhile).
    assert!(!pidfd_wait_exit(&init, 300).unwrap());
    assert_eq!(b.cpu_usage(), frozen_at, "a frozen busy loop used CPU");

    let out = b.rrun(&["resume", "busy"]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(b.status("busy"), "running");
    assert!(!b.frozen(), "resumed, but the kernel has the cgroup frozen");
    let moved = (0..500).any(|_| {
        let _ = pidfd_wait_exit(&init, 20);
        b.cpu_usage() > frozen_at
    });
    assert!(moved, "the busy loop did not run again after resume");

    let out = b.rrun(&["delete", "--force", "busy"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_no_cgroup(&b.cgroup, "after delete");
}

/// What refuses while paused, in runc's words; pause and resume refuse the
/// wrong status; a created container can be paused and is created again
/// after resume.
#[test]
fn paused_containers_refuse_start_delete_and_a_second_pause() {
    let b = Bundle::new("refuse", &["sleep", "1000"]);
    let bundle = b.dir.display().to_string();
    assert!(b
        .rrun(&["create", "--bundle", &bundle, "c1"])
        .status
        .success());
    b.refused(&["resume", "c1"], "container not paused");
    assert!(b.rrun(&["pause", "c1"]).status.success());
    assert_eq!(b.status("c1"), "paused");
    b.refused(
        &["start", "c1"],
        "cannot start a container in the paused state",
    );
    b.refused(
        &["delete", "c1"],
        "cannot delete container c1 that is not stopped: paused",
    );
    b.refused(&["pause", "c1"], "container not running");
    // A signal other than SIGKILL waits for the thaw; the container stays paused.
    assert!(b.rrun(&["kill", "c1", "TERM"]).status.success());
    assert_eq!(b.status("c1"), "paused");
    assert!(b.rrun(&["resume", "c1"]).status.success());
    assert_eq!(b.status("c1"), "created");
    assert!(b.rrun(&["start", "c1"]).status.success());
    assert_eq!(b.status("c1"), "running");
    b.refused(&["resume", "c1"], "container not paused");
}

/// The same bundle under runc: the same statuses after pause and resume,
/// and the same refusals.
#[test]
fn pause_and_resume_match_runc() {
    if !runc_installed() {
        eprintln!("runc is not installed: skipped");
        return;
    }
    let b = Bundle::new("vsrunc", &["sleep", "1000"]);
    let bundle = b.dir.display().to_string();
    b.start("x");
    let mut config = b.config(&["sleep", "1000"], true);
    config["linux"]["cgroupsPath"] = json!(format!("{}-runc", b.cgroup));
    b.write_config(&config);
    assert!(b
        .runc(&["create", "--bundle", &bundle, "y"])
        .status
        .success());
    assert!(b.runc(&["start", "y"]).status.success());
    let runc_status = |id| {
        let v: Value = serde_json::from_slice(&b.runc(&["state", id]).stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    };
    for (args, status) in [
        (vec!["pause"], "paused"),
        (vec!["start"], "paused"),
        (vec!["delete"], "paused"),
        (vec!["pause"], "paused"),
        (vec!["kill"], "paused"),
        (vec!["resume"], "running"),
        (vec!["resume"], "running"),
    ] {
        let ours = b.rrun(&[args.as_slice(), &["x"]].concat());
        let theirs = b.runc(&[args.as_slice(), &["y"]].concat());
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        let our_error = stderr(&ours);
        // runc logs `time=... level=error msg="<message>"`.
        let our_message = our_error.trim().replace(" x ", " y ");
        assert!(
            stderr(&theirs).contains(&our_message),
            "{args:?}: rrun said {our_error:?}, runc said {:?}",
            stderr(&theirs)
        );
        assert_eq!(b.status("x"), status, "rrun after {args:?}");
        assert_eq!(runc_status("y"), status, "runc after {args:?}");
    }
    let out = b.runc(&["ps", "--format", "json", "y"]);
    let theirs: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b.pids("x").len(), theirs.len(), "ps --format json");
}

/// `ps --format json` gives the init and its child (host pids); the table
/// keeps ps(1)'s header and exactly the container's lines; extra arguments
/// after `--` go to ps(1).
#[test]
fn ps_lists_the_containers_processes() {
    let b = Bundle::new("ps", &["sh", "-c", "sleep 1000 & wait"]);
    let init_pid = b.start("ps");
    let init = pidfd_open(init_pid).unwrap();
    let pids = b.wait_for_pids("ps", &init, 2);
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(
        pids.contains(&init_pid),
        "{pids:?} lacks the init {init_pid}"
    );
    let child = *pids.iter().find(|&&p| p != init_pid).unwrap();
    assert_eq!(parent_of(child), init_pid);

    let out = b.rrun(&["ps", "ps"]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header[..2], ["UID", "PID"], "{table}");
    let listed: Vec<i32> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{table}");
    assert!(listed.iter().all(|p| pids.contains(p)), "{table}");

    let out = b.rrun(&["ps", "ps", "--", "-o", "pid,comm"]);
    assert!(out.status.success(), "ps -o: {}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(lines[0].split_whitespace().next(), Some("PID"), "{table}");
    assert!(lines[1..].iter().any(|l| l.ends_with(" sleep")), "{table}");

    b.refused(&["ps", "--format", "yaml", "ps"], "invalid format option");
}

/// `kill --all` signals every process of the cgroup, not only the init
/// (no pid namespace here, so the init's death alone would leave the
/// sleeps running; on a unified host rrun writes cgroup.kill), and the
/// cgroup is empty; again on the stopped container it succeeds.
#[test]
fn kill_all_kills_every_process_of_the_container() {
    let b = Bundle::new("killall", &[]);
    let args = ["sh", "-c", "sleep 1000 & sleep 1001 & wait"];
    b.write_config(&b.config(&args, false));
    let init_pid = b.start("ka");
    let init = pidfd_open(init_pid).unwrap();
    let pids = b.wait_for_pids("ka", &init, 3);
    let pidfds: Vec<OwnedFd> = pids.iter().map(|&p| pidfd_open(p).unwrap()).collect();

    let out = b.rrun(&["kill", "--all", "ka", "KILL"]);
    assert!(out.status.success(), "kill --all: {}", stderr(&out));
    for (pid, fd) in pids.iter().zip(&pidfds) {
        assert!(
            pidfd_wait_exit(fd, DEATH_BOUND_MS).unwrap(),
            "pid {pid} survived"
        );
    }
    assert_eq!(b.status("ka"), "stopped");
    assert!(b.pids("ka").is_empty());
    assert!(b.cgroup_empty(), "a process is left in the cgroup");
    let again = b.rrun(&["kill", "--all", "ka", "KILL"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    b.refused(&["kill", "ka", "KILL"], "container not running");
    assert!(b.rrun(&["delete", "ka"]).status.success());
    assert_no_cgroup(&b.cgroup, "after delete");
}

/// `delete --force` of a frozen container with several processes (no pid
/// namespace): every process dies, and no state directory or cgroup stays.
#[test]
fn delete_force_removes_a_paused_container() {
    let b = Bundle::new("delpaused", &[]);
    let args = ["sh", "-c", "sleep 1000 & while :; do :; done"];
    b.write_config(&b.config(&args, false));
    let init_pid = b.start("dp");
    let init = pidfd_open(init_pid).unwrap();
    let pids = b.wait_for_pids("dp", &init, 2);
    let pidfds: Vec<OwnedFd> = pids.iter().map(|&p| pidfd_open(p).unwrap()).collect();
    assert!(b.rrun(&["pause", "dp"]).status.success());
    assert_eq!(b.status("dp"), "paused");

    let out = b.rrun(&["delete", "--force", "dp"]);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert_eq!(b.state_dirs(), 0, "a state directory was left");
    assert_no_cgroup(&b.cgroup, "after delete");
    for (pid, fd) in pids.iter().zip(&pidfds) {
        assert!(pidfd_wait_exit(fd, 0).unwrap(), "pid {pid} still runs");
    }
}

/// SIGKILL to a paused container's init is delivered at once: rrun thaws
/// the cgroup for it, as runc does.
#[test]
fn kill_of_a_paused_container_with_sigkill_lands() {
    let b = Bundle::new("killpaused", BUSY_LOOP);
    let init = pidfd_open(b.start("kp")).unwrap();
    assert!(b.rrun(&["pause", "kp"]).status.success());
    let out = b.rrun(&["kill", "kp", "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert!(
        pidfd_wait_exit(&init, DEATH_BOUND_MS).unwrap(),
        "the init survived"
    );
    assert_eq!(b.status("kp"), "stopped");
    assert!(b.rrun(&["delete", "kp"]).status.success());
    assert_no_cgroup(&b.cgroup, "after delete");
}
