//! Races on one container id (issue 13, "Races and load"), as root against
//! real containers: 20 `rrun create` of one id at once (exactly one wins,
//! the others say "exists already" on one line and leave nothing), and
//! start, kill, pause, resume, delete and state of one container from many
//! threads (no panic, every refusal one line, a consistent final state,
//! nothing left after `delete --force`), and creates racing `delete
//! --force` of the same id (one whole container or nothing).

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// A busybox bundle whose process sleeps, a state root and a cgroup of its
/// own; everything is force-deleted and removed on drop.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-races-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "sleep"], &[]);
        let cgroup = format!("/rrun-races-{name}-{}", std::process::id());
        let config = json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/",
                        "args": ["sleep", "1000"], "env": ["PATH=/bin"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "cgroupsPath": cgroup,
                "resources": {"pids": {"limit": 32}},
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
            }
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        Bundle {
            root: dir.join("state"),
            dir,
            cgroup,
        }
    }

    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn create(&self, id: &str) -> Output {
        self.rrun(&["create", "--bundle", self.dir.to_str().unwrap(), id])
    }

    fn state_dirs(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The pids in the container's cgroup (the pids controller's, or the
    /// unified one).
    fn cgroup_pids(&self) -> Vec<i32> {
        let dir = host::cgroup_dir("pids", &self.cgroup);
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn mounts_left(&self) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(self.dir.to_str().unwrap())
    }

    fn assert_clean(&self, what: &str) {
        assert_eq!(
            self.state_dirs(),
            Vec::<String>::new(),
            "{what}: state left"
        );
        assert_no_cgroup(&self.cgroup, what);
        assert!(!self.mounts_left(), "{what}: a mount was left");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// No panic, and a failure is one line (what engines show).
fn assert_sane(what: &str, out: &Output) {
    let err = stderr(out);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{what}: exit {:?}: {err}",
        out.status
    );
    if !out.status.success() {
        assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'))
}

fn state_json(b: &Bundle, id: &str) -> Option<Value> {
    let out = b.rrun(&["state", id]);
    assert_sane("state", &out);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("state prints JSON"))
}

/// Run `f(i)` on `n` threads released together; their results in order.
fn all_at_once<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn twenty_concurrent_creates_of_one_id_make_one_container() {
    let b = Arc::new(Bundle::new("create"));
    for round in 0..3 {
        let id = format!("one-{round}");
        let outs = {
            let (b, id) = (b.clone(), id.clone());
            all_at_once(20, move |_| b.create(&id))
        };
        let mut winners = 0;
        for out in &outs {
            assert_sane("create", out);
            if out.status.success() {
                winners += 1;
            } else {
                let err = stderr(out);
                assert!(
                    err.contains(&format!("container with id {id} exists already")),
                    "round {round}: a loser said {err:?}"
                );
            }
        }
        assert_eq!(winners, 1, "round {round}: {winners} creates succeeded");
        // The winner's container is whole: its state, one init in its
        // cgroup, nothing else under the root.
        assert_eq!(b.state_dirs(), vec![id.clone()], "round {round}");
        let state = state_json(&b, &id).expect("the winner's state");
        assert_eq!(state["status"], "created", "round {round}: {state}");
        let pid = state["pid"].as_i64().unwrap() as i32;
        assert!(alive(pid), "round {round}: the init {pid} is gone");
        assert_eq!(b.cgroup_pids(), vec![pid], "round {round}: cgroup.procs");
        let start = b.rrun(&["start", &id]);
        assert!(start.status.success(), "start: {}", stderr(&start));
        assert_eq!(state_json(&b, &id).unwrap()["status"], "running");
        let delete = b.rrun(&["delete", "--force", &id]);
        assert!(delete.status.success(), "delete: {}", stderr(&delete));
        assert!(!alive(pid), "round {round}: the init {pid} survived delete");
        b.assert_clean(&format!("round {round}"));
    }
}

/// What a thread may do to the container, in the order its script says.
const OPS: &[&[&str]] = &[
    &["start"],
    &["kill", "ID", "TERM"],
    &["pause"],
    &["resume"],
    &["state"],
    &["delete"],
    &["list"],
    &["kill", "--all", "ID", "CONT"],
    &["ps", "--format", "json", "ID"],
];

/// A small deterministic generator: the scripts differ by thread and
/// round, and a failure can be replayed.
fn next(seed: &mut u64) -> usize {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 1_000_003) as usize
}

#[test]
fn concurrent_operations_on_one_container_stay_consistent() {
    let b = Arc::new(Bundle::new("ops"));
    for round in 0..6u64 {
        let id = format!("ops-{round}");
        let out = b.create(&id);
        assert!(out.status.success(), "create: {}", stderr(&out));
        let pid = state_json(&b, &id).unwrap()["pid"].as_i64().unwrap() as i32;
        let outs = {
            let (b, id) = (b.clone(), id.clone());
            all_at_once(8, move |thread| {
                let mut seed = 0x9e37_79b9_7f4a_7c15 ^ ((round << 8) | (thread as u64 + 1));
                let mut outs = Vec::new();
                for step in 0..8 {
                    let mut args: Vec<String> = OPS[next(&mut seed) % OPS.len()]
                        .iter()
                        .map(|a| a.replace("ID", &id))
                        .collect();
                    // The last steps of odd rounds may end the container.
                    if round % 2 == 1 && step >= 6 && next(&mut seed).is_multiple_of(4) {
                        args = vec!["kill".into(), id.clone(), "KILL".into()];
                    }
                    if !args.contains(&id) && args[0] != "list" {
                        args.push(id.clone());
                    }
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    outs.push((args.join(" "), b.rrun(&refs)));
                }
                outs
            })
        };
        let ok = outs.iter().flatten().filter(|(_, o)| o.status.success());
        let mut done: Vec<&str> = ok.map(|(what, _)| what.as_str()).collect();
        done.sort();
        done.dedup();
        eprintln!("round {round}: {done:?} succeeded at least once");
        for (what, out) in outs.iter().flatten() {
            assert_sane(&format!("round {round}: {what}"), out);
            let err = stderr(out);
            if what.starts_with("delete") && out.status.success() {
                continue;
            }
            assert!(
                !err.contains("corrupt") && !err.contains("EEXIST") && !err.contains("ENOENT"),
                "round {round}: {what}: {err}"
            );
        }
        let killed = outs
            .iter()
            .flatten()
            .any(|(what, _)| what.ends_with("KILL"));
        check_consistent(&b, &id, pid, round, killed);
        let delete = b.rrun(&["delete", "--force", &id]);
        assert_sane("delete --force", &delete);
        assert!(delete.status.success(), "delete: {}", stderr(&delete));
        assert!(!alive(pid), "round {round}: the init {pid} survived");
        b.assert_clean(&format!("round {round}"));
    }
}

/// What `state` says agrees with the init, the freezer and `list`.
/// `killed`: a SIGKILL was sent this round; a container frozen while the
/// signal was on its way stays paused, then dies once resumed.
fn check_consistent(b: &Bundle, id: &str, pid: i32, round: u64, killed: bool) {
    let Some(state) = state_json(b, id) else {
        // Deleted: then nothing of it is left, and the init is gone.
        assert!(!alive(pid), "round {round}: deleted, yet the init runs");
        b.assert_clean(&format!("round {round}, after a delete"));
        return;
    };
    let status = state["status"].as_str().unwrap().to_string();
    match status.as_str() {
        "created" | "running" => {
            assert!(alive(pid), "round {round}: {status} with a dead init");
            assert_eq!(state["pid"], pid, "round {round}");
        }
        "paused" => {
            assert!(alive(pid), "round {round}: paused with a dead init");
            let resume = b.rrun(&["resume", id]);
            assert!(resume.status.success(), "resume: {}", stderr(&resume));
            let after = state_json(b, id).unwrap();
            match after["status"].as_str() {
                Some("running" | "created") => assert!(alive(pid), "round {round}: {after}"),
                Some("stopped") if killed => {
                    assert!(!alive(pid), "round {round}: stopped, yet alive")
                }
                _ => panic!("round {round}: after resume: {after}"),
            }
        }
        "stopped" => {
            assert!(!alive(pid), "round {round}: stopped with a live init");
            assert_eq!(state["pid"], 0, "round {round}");
        }
        other => panic!("round {round}: status {other:?}"),
    }
    let list = b.rrun(&["list", "--format", "json"]);
    assert!(list.status.success(), "list: {}", stderr(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "round {round}: {listed:?}");
    assert_eq!(listed[0]["id"], id);
}

/// `create` and `delete --force` of one id at once: whatever wins, the
/// id ends either as one whole container or as nothing, never as an init
/// or a cgroup that no state directory records.
#[test]
fn creates_racing_force_deletes_leave_one_container_or_nothing() {
    let b = Arc::new(Bundle::new("claim"));
    for round in 0..4 {
        let id = format!("claim-{round}");
        let outs = {
            let (b, id) = (b.clone(), id.clone());
            all_at_once(12, move |i| {
                if i % 2 == 0 {
                    ("create", b.create(&id))
                } else {
                    ("delete --force", b.rrun(&["delete", "--force", &id]))
                }
            })
        };
        for (what, out) in &outs {
            assert_sane(&format!("round {round}: {what}"), out);
        }
        match state_json(&b, &id) {
            Some(state) => {
                let pid = state["pid"].as_i64().unwrap() as i32;
                assert_eq!(state["status"], "created", "round {round}: {state}");
                assert!(alive(pid), "round {round}: the init {pid} is gone");
                assert_eq!(b.cgroup_pids(), vec![pid], "round {round}: cgroup.procs");
                assert_eq!(b.state_dirs(), vec![id.clone()], "round {round}");
            }
            None => {
                assert_eq!(b.cgroup_pids(), Vec::<i32>::new(), "round {round}");
                b.assert_clean(&format!("round {round}, no container"));
            }
        }
        let delete = b.rrun(&["delete", "--force", &id]);
        assert!(delete.status.success(), "delete: {}", stderr(&delete));
        b.assert_clean(&format!("round {round}"));
    }
}
