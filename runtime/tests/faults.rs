//! Faults at every step (issue 13): rrun SIGKILLed at each step of create,
//! start, exec, kill and delete, and the bootstrap, the container init and
//! an exec'd process dying at each of theirs, through the fault-injection
//! points of libcontainer (feature `fault-injection`, which this crate's
//! dev-dependency turns on for test builds only; `RRUN_FAULT=<point>`
//! picks one). After each: `rrun state` answers with a JSON state or one
//! clear line, `rrun delete --force` exits 0 and leaves nothing (state
//! directory, cgroups in every hierarchy, mounts, processes), and the same
//! id can be created, started and deleted again. Also: a `--root` that
//! runs out of inodes at each step of create, or of space, and a corrupt,
//! truncated or empty `state.json`.

mod common;
use common::*;

use serde_json::{json, Value};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
/// libcontainer's `fault::FAULT_ENV` (not in the library's API without
/// the feature).
const FAULT_ENV: &str = "RRUN_FAULT";
/// How long a process left by a killed rrun may take to notice and exit
/// (an orphaned bootstrap reads EOF, a killed init is reaped by pid 1).
/// A bound on a wait, never an assertion on how long anything took.
const EXIT_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// The operation of the lifecycle during which a point is reached: the
/// scenario runs the lifecycle up to and including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Create,
    Start,
    Exec,
    Kill,
    /// `kill --all TERM`, which freezes the cgroup while it signals (the
    /// init, pid 1 of its namespace without a handler, ignores it).
    KillAll,
    Delete,
}

/// What a point's process does there, and so what the test sees of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dies {
    /// The rrun command itself: it dies of SIGKILL.
    Caller,
    /// A helper or the container process before its setup is done: the
    /// rrun command fails with one line.
    Setup,
    /// The container's init after create reported it ready: the container
    /// reads as stopped once the phase is over (whether create had
    /// recorded it yet or not).
    InitAfterReady,
    /// An exec'd process right before execve: rrun exec reports it
    /// SIGKILLed (137), as for any process that dies so.
    ExecProcess,
    /// The bootstrap after its work is done: indistinguishable from its
    /// normal exit, the create succeeds.
    Harmless,
}

/// Every fault-injection point of libcontainer, with its phase.
const POINTS: &[(&str, Phase, Dies)] = &[
    ("create:state-dir-claimed", Phase::Create, Dies::Caller),
    ("create:state-dir-made", Phase::Create, Dies::Caller),
    ("create:fifo-made", Phase::Create, Dies::Caller),
    ("create:owned-saved", Phase::Create, Dies::Caller),
    ("create:bootstrap-spawned", Phase::Create, Dies::Caller),
    ("bootstrap:cgroups-joined", Phase::Create, Dies::Setup),
    ("bootstrap:namespaces-joined", Phase::Create, Dies::Setup),
    ("bootstrap:init-cloned", Phase::Create, Dies::Setup),
    ("bootstrap:init-reported", Phase::Create, Dies::Harmless),
    ("create:cgroup-made", Phase::Create, Dies::Caller),
    ("create:bootstrap-sent", Phase::Create, Dies::Caller),
    ("create:init-received", Phase::Create, Dies::Caller),
    ("create:owned-pid-saved", Phase::Create, Dies::Caller),
    ("init:started", Phase::Create, Dies::Setup),
    ("init:namespaces-set", Phase::Create, Dies::Setup),
    ("init:mounts-made", Phase::Create, Dies::Setup),
    ("create:hooks-run", Phase::Create, Dies::Caller),
    ("init:hooks-run", Phase::Create, Dies::Setup),
    ("init:pivoted", Phase::Create, Dies::Setup),
    ("init:rootfs-done", Phase::Create, Dies::Setup),
    ("init:privileges-dropped", Phase::Create, Dies::Setup),
    ("create:init-ready", Phase::Create, Dies::Caller),
    ("create:state-saved", Phase::Create, Dies::Caller),
    ("create:pid-file-written", Phase::Create, Dies::Caller),
    (
        "init:waiting-for-start",
        Phase::Create,
        Dies::InitAfterReady,
    ),
    ("start:fifo-opened", Phase::Start, Dies::Caller),
    ("start:fifo-removed", Phase::Start, Dies::Caller),
    ("start:fifo-written", Phase::Start, Dies::Caller),
    ("init:start-received", Phase::Start, Dies::InitAfterReady),
    ("init:before-exec", Phase::Start, Dies::InitAfterReady),
    ("start:state-saved", Phase::Start, Dies::Caller),
    ("exec:bootstrap-spawned", Phase::Exec, Dies::Caller),
    ("exec-bootstrap:cgroups-joined", Phase::Exec, Dies::Setup),
    ("exec-bootstrap:namespaces-joined", Phase::Exec, Dies::Setup),
    ("exec-bootstrap:process-cloned", Phase::Exec, Dies::Setup),
    ("exec:bootstrap-sent", Phase::Exec, Dies::Caller),
    ("exec:process-received", Phase::Exec, Dies::Caller),
    ("exec-process:started", Phase::Exec, Dies::Setup),
    ("exec-process:privileges-dropped", Phase::Exec, Dies::Setup),
    ("exec:process-ready", Phase::Exec, Dies::Caller),
    ("exec:pid-file-written", Phase::Exec, Dies::Caller),
    ("exec-process:before-exec", Phase::Exec, Dies::ExecProcess),
    ("kill:state-loaded", Phase::Kill, Dies::Caller),
    ("kill:signalled", Phase::Kill, Dies::Caller),
    ("kill:all-frozen", Phase::KillAll, Dies::Caller),
    ("kill:all-signalled", Phase::KillAll, Dies::Caller),
    ("delete:state-loaded", Phase::Delete, Dies::Caller),
    ("delete:killed", Phase::Delete, Dies::Caller),
    ("delete:cgroup-removed", Phase::Delete, Dies::Caller),
    ("delete:state-dir-removed", Phase::Delete, Dies::Caller),
];

/// A busybox bundle with hooks of every kind, a state root and a cgroup
/// of its own; force-deletes what is left on drop.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "true", "sleep"], &[]);
        let bundle = Bundle {
            root: dir.join("state"),
            cgroup: format!("/rrun-faults-{name}-{}", std::process::id()),
            dir,
        };
        bundle.write_config();
        bundle
    }

    /// Hooks on every step that has one, so that the points between them
    /// are reached with a hook runner in play; `true` from the host's
    /// static busybox (createContainer runs before pivot_root, the
    /// startContainer hook after it, from the rootfs's copy).
    fn write_config(&self) {
        let hook = json!([{"path": "/bin/busybox", "args": ["busybox", "true"]}]);
        let config = json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hostname": "rrun-faults",
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "1000"],
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]}
            ],
            "hooks": {
                "createRuntime": hook, "createContainer": hook, "startContainer": hook,
                "poststart": hook, "poststop": hook
            },
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": {"pids": {"limit": 64}},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    /// rrun with `--root root`, `RRUN_FAULT=fault` when given; stdout and
    /// stderr through files (a created container holds them open).
    fn rrun_in(&self, root: &Path, fault: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(root).args(args);
        match fault {
            Some(point) => cmd.env(FAULT_ENV, point),
            None => cmd.env_remove(FAULT_ENV),
        };
        output_via_files(cmd, &self.dir)
    }

    fn rrun(&self, fault: Option<&str>, args: &[&str]) -> Output {
        self.rrun_in(&self.root, fault, args)
    }

    fn create(&self, root: &Path, fault: Option<&str>, id: &str) -> Output {
        let pid_file = root.join(format!("{id}.pid"));
        self.rrun_in(
            root,
            fault,
            &[
                "create",
                "--bundle",
                self.dir.to_str().unwrap(),
                "--pid-file",
                pid_file.to_str().unwrap(),
                id,
            ],
        )
    }

    /// A fresh create, start, state and delete of `id` work, and leave
    /// nothing.
    fn assert_reusable(&self, id: &str, what: &str) {
        let out = self.create(&self.root, None, id);
        assert!(
            out.status.success(),
            "{what}: create again: {}",
            stderr(&out)
        );
        let out = self.rrun(None, &["start", id]);
        assert!(
            out.status.success(),
            "{what}: start again: {}",
            stderr(&out)
        );
        let out = self.rrun(None, &["state", id]);
        assert!(
            out.status.success(),
            "{what}: state again: {}",
            stderr(&out)
        );
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(state["status"], "running", "{what}: state again");
        let out = self.rrun(None, &["delete", "--force", id]);
        assert!(
            out.status.success(),
            "{what}: delete again: {}",
            stderr(&out)
        );
        self.assert_clean(&self.root, id, &format!("{what}, then create again"));
    }

    /// Nothing of the container `id` under `root` is left: its state
    /// directory (and exec.fifo in it), its cgroup in every hierarchy, a
    /// mount in this test's namespace (where rrun ran), any process in
    /// its cgroup or started with a fault point in its environment.
    fn assert_clean(&self, root: &Path, id: &str, what: &str) {
        let dir = root.join(id);
        assert!(!dir.exists(), "{what}: {} was left", dir.display());
        // Nor the directory a create makes before it takes the id.
        let claim = format!(".claim-{id}-");
        let claims: Vec<_> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&claim))
            .collect();
        assert!(
            claims.is_empty(),
            "{what}: {claims:?} were left in {}",
            root.display()
        );
        let pids = wait_for_no_process(&self.cgroup);
        assert!(
            pids.is_empty(),
            "{what}: processes were left: {}",
            describe(&pids)
        );
        assert_no_cgroup(&self.cgroup, what);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.dir.to_str().unwrap();
        let left: Vec<&str> = mountinfo
            .lines()
            .filter(|l| l.contains(bundle) && !l.contains(" - tmpfs fullroot "))
            .collect();
        assert!(left.is_empty(), "{what}: mounts were left: {left:?}");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        // This test's own cgroup, if a failed assertion left it: rmdir
        // removes only an empty one.
        for dir in host::cgroup_dirs(&self.cgroup) {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The processes that belong to a test container: in its cgroup (any
/// hierarchy; /proc/<pid>/cgroup is read from the host's cgroup
/// namespace), or carrying `RRUN_FAULT` (a bootstrap or init of these
/// tests not yet in a cgroup). Waits, up to [`EXIT_BOUND`], for them to
/// be gone, and returns those that are not.
fn wait_for_no_process(cgroup: &str) -> Vec<i32> {
    let deadline = std::time::Instant::now() + EXIT_BOUND;
    loop {
        let pids = container_processes(cgroup);
        if pids.is_empty() || std::time::Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn container_processes(cgroup: &str) -> Vec<i32> {
    let marker = format!("{FAULT_ENV}=");
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let proc_dir = entry.path();
        // A zombie has left its cgroups and is its parent's to reap.
        let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.starts_with(" Z"))
        {
            continue;
        }
        let cgroups = std::fs::read_to_string(proc_dir.join("cgroup")).unwrap_or_default();
        let in_cgroup = cgroups.lines().any(|line| {
            let path = line.splitn(3, ':').nth(2).unwrap_or_default();
            path == cgroup || path.starts_with(&format!("{cgroup}/"))
        });
        let environ = std::fs::read(proc_dir.join("environ")).unwrap_or_default();
        let has_marker = environ
            .split(|&b| b == 0)
            .any(|var| var.starts_with(marker.as_bytes()));
        if in_cgroup || has_marker {
            pids.push(pid);
        }
    }
    pids
}

fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{pid} {:?}", String::from_utf8_lossy(&cmdline))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A command ended as a command should: no panic (exit 101, or the
/// panic message), and a failure says why on one line.
fn assert_sane(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "{what}: panic: {err}"
    );
    if out.status.code() == Some(1) {
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| !l.contains("warn")),
            "{what}: a failure without one clear error line: {err:?}"
        );
    }
}

/// `rrun state id` answers with a JSON state of this id, or fails with
/// one line. Returns the status when there is one.
fn assert_state_answers(b: &Bundle, id: &str, what: &str) -> Option<String> {
    let out = b.rrun(None, &["state", id]);
    assert_sane(&out, &format!("{what}: state"));
    if out.status.success() {
        let state: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{what}: state is not JSON ({e}): {}", stdout(&out)));
        assert_eq!(state["id"], id, "{what}: state");
        let status = state["status"].as_str().unwrap().to_string();
        let pid = state["pid"].as_i64().unwrap();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        match status.as_str() {
            // Its init has not run the container's process yet.
            "created" => assert_eq!(comm.trim(), "rrun:init", "{what}: created, but pid {pid}"),
            "stopped" => assert_eq!(pid, 0, "{what}: stopped"),
            _ => assert!(pid > 0, "{what}: {status} without a pid"),
        }
        return Some(status);
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: state: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{what}: state: not one line: {err:?}"
    );
    // A create killed half-way left the id taken: state must not send an
    // engine off to create it again without a word about delete --force.
    let half_made =
        b.root.join(id).join("owned.json").exists() && !b.root.join(id).join("state.json").exists();
    assert!(
        !half_made || err.contains("delete --force"),
        "{what}: state of a half-made container: {err:?}"
    );
    None
}

/// The rrun under test has the points: `cargo test` built it with the
/// feature, but a plain `cargo build` in between replaces the same
/// target/debug/rrun with one that has none, and every point would then
/// pass for a step that was never faulted.
fn assert_points_built_in() {
    let binary = std::fs::read(RRUN).unwrap();
    let has = binary
        .windows(FAULT_ENV.len())
        .any(|w| w == FAULT_ENV.as_bytes());
    assert!(
        has,
        "{RRUN} has no fault-injection points (rebuilt without the feature by a \
         plain cargo build?): run the test again"
    );
}

/// Run the lifecycle up to `phase` with the fault set on every command,
/// and check that the point's process died where the point says.
fn run_scenario(b: &Bundle, id: &str, point: &str, phase: Phase, dies: Dies) {
    let fault = Some(point);
    let mut outputs: Vec<(Phase, Output)> = Vec::new();
    outputs.push((Phase::Create, b.create(&b.root, fault, id)));
    if phase >= Phase::Start {
        outputs.push((Phase::Start, b.rrun(fault, &["start", id])));
    }
    if phase >= Phase::Exec {
        let pid_file = b.root.join(format!("{id}.exec.pid"));
        let pid_file = pid_file.to_str().unwrap();
        let out = b.rrun(fault, &["exec", "--pid-file", pid_file, id, "true"]);
        outputs.push((Phase::Exec, out));
    }
    if phase == Phase::Kill {
        outputs.push((Phase::Kill, b.rrun(fault, &["kill", id, "KILL"])));
    }
    if phase >= Phase::KillAll {
        let out = b.rrun(fault, &["kill", "--all", id, "TERM"]);
        outputs.push((Phase::KillAll, out));
    }
    if phase >= Phase::Delete {
        outputs.push((Phase::Delete, b.rrun(fault, &["delete", "--force", id])));
    }
    for (step, out) in &outputs {
        assert_sane(out, &format!("{point}: {step:?}"));
        if *step < phase {
            assert!(
                out.status.success(),
                "{point}: {step:?} before the faulty step failed: {}",
                stderr(out)
            );
        }
    }
    let (_, out) = outputs.last().unwrap();
    let err = stderr(out);
    match dies {
        Dies::Caller => assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{point}: rrun {phase:?} was not killed there: {:?} {err}",
            out.status
        ),
        Dies::Setup => assert_eq!(
            out.status.code(),
            Some(1),
            "{point}: rrun {phase:?} did not fail: {err}"
        ),
        Dies::ExecProcess => assert_eq!(
            out.status.code(),
            Some(137),
            "{point}: rrun exec did not report the kill: {err}"
        ),
        Dies::Harmless => assert!(out.status.success(), "{point}: {err}"),
        Dies::InitAfterReady => {
            if let Some(pid) = std::fs::read_to_string(b.root.join(format!("{id}.pid")))
                .ok()
                .and_then(|p| p.parse::<i32>().ok())
            {
                // It was ready: wait until it is gone, then it must read so.
                if let Ok(fd) = libcontainer::utils::pidfd_open(pid) {
                    let _ = libcontainer::utils::pidfd_wait_exit(&fd, -1);
                }
                let status = assert_state_answers(b, id, point);
                assert_eq!(status.as_deref(), Some("stopped"), "{point}");
            }
        }
    }
}

#[test]
fn rrun_killed_or_a_container_process_dying_at_every_step_leaves_nothing() {
    assert_points_built_in();
    let b = Bundle::new("steps");
    let started = std::time::Instant::now();
    for (n, &(point, phase, dies)) in POINTS.iter().enumerate() {
        let id = format!("fault{n}");
        run_scenario(&b, &id, point, phase, dies);
        assert_state_answers(&b, &id, point);
        let out = b.rrun(None, &["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{point}: delete --force: {}",
            stderr(&out)
        );
        b.assert_clean(&b.root, &id, point);
        b.assert_reusable(&id, point);
    }
    eprintln!(
        "{} fault points, {:.1} s",
        POINTS.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The same with the cgroup made beforehand (as an engine may make it):
/// rrun did not create it and must not remove it, so only the init's own
/// death or its pid in owned.json and state.json can end it, not the
/// cgroup's removal. Create and start points: those before the init is
/// recorded are where an init could outlive its rrun.
#[test]
fn with_a_cgroup_rrun_did_not_make_no_process_outlives_a_fault() {
    assert_points_built_in();
    let b = Bundle::new("premade");
    let dirs = host::cgroup_dirs(&b.cgroup);
    for (n, &(point, phase, dies)) in POINTS.iter().enumerate() {
        if phase > Phase::Start {
            continue;
        }
        let id = format!("premade{n}");
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
        }
        run_scenario(&b, &id, point, phase, dies);
        assert_state_answers(&b, &id, point);
        let out = b.rrun(None, &["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{point}: delete --force: {}",
            stderr(&out)
        );
        let pids = wait_for_no_process(&b.cgroup);
        assert!(
            pids.is_empty(),
            "{point}: processes were left: {}",
            describe(&pids)
        );
        assert!(!b.root.join(&id).exists(), "{point}: state dir left");
        for dir in &dirs {
            assert!(dir.is_dir(), "{point}: rrun removed {}", dir.display());
            // Empty, and nothing made below it: rmdir succeeds.
            std::fs::remove_dir(dir)
                .unwrap_or_else(|e| panic!("{point}: rmdir {}: {e}", dir.display()));
        }
    }
}

/// `exec --ignore-paused` into a paused container, faulted at each step:
/// the caller moves the process into the frozen cgroup itself once it is
/// set up, and the process waits for its word. The container stays
/// paused, `delete --force` ends it whole.
#[test]
fn exec_into_a_paused_container_faulted_at_every_step_leaves_nothing() {
    assert_points_built_in();
    let b = Bundle::new("paused");
    let points = POINTS
        .iter()
        .filter(|(point, phase, _)| *phase == Phase::Exec && *point != "exec-process:before-exec")
        .map(|&(point, _, dies)| (point, dies))
        .chain([("exec:frozen-cgroup-joined", Dies::Caller)]);
    for (n, (point, dies)) in points.enumerate() {
        let id = format!("paused{n}");
        let out = b.create(&b.root, None, &id);
        assert!(out.status.success(), "{point}: create: {}", stderr(&out));
        for args in [["start", &id], ["pause", &id]] {
            let out = b.rrun(None, &args);
            assert!(
                out.status.success(),
                "{point}: {}: {}",
                args[0],
                stderr(&out)
            );
        }
        let pid_file = b.root.join(format!("{id}.exec.pid"));
        let out = b.rrun(
            Some(point),
            &[
                "exec",
                "--detach",
                "--ignore-paused",
                "--pid-file",
                pid_file.to_str().unwrap(),
                &id,
                "true",
            ],
        );
        assert_sane(&out, point);
        match dies {
            Dies::Caller => assert_eq!(
                out.status.signal(),
                Some(libc::SIGKILL),
                "{point}: {}",
                stderr(&out)
            ),
            _ => assert_eq!(out.status.code(), Some(1), "{point}: {}", stderr(&out)),
        }
        let status = assert_state_answers(&b, &id, point);
        assert_eq!(status.as_deref(), Some("paused"), "{point}");
        let out = b.rrun(None, &["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{point}: delete --force: {}",
            stderr(&out)
        );
        b.assert_clean(&b.root, &id, point);
    }
}

/// A tmpfs of its own at `<bundle>/full`, in this test's private mount
/// namespace (see common::isolate), unmounted on drop.
struct SmallFs {
    path: PathBuf,
}

impl SmallFs {
    fn mount(b: &Bundle, options: &str) -> SmallFs {
        let path = b.dir.join("full");
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "fullroot"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {}", path.display());
        SmallFs { path }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Make files in `dir` until the filesystem has no inode left; returns
/// them, so that some can be removed to free exactly that many.
fn use_every_inode(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in 0.. {
        let path = dir.join(format!("filler{n}"));
        match std::fs::File::create(&path) {
            Ok(_) => files.push(path),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return files,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    unreachable!()
}

/// Create fails cleanly, whatever step runs out: `--root` on a tmpfs with
/// 0, 1, 2... free inodes makes mkdir, mkfifo, owned.json, the second
/// owned.json, resources.json, state.json and the pid file fail in turn,
/// until one is enough. Each failure is one line naming ENOSPC, leaves
/// nothing, and `delete --force` still exits 0.
#[test]
fn a_root_without_inodes_at_each_step_fails_clearly_and_leaves_nothing() {
    let b = Bundle::new("inodes");
    let fs = SmallFs::mount(&b, "size=4m,nr_inodes=64");
    let root = fs.path.join("state");
    std::fs::create_dir(&root).unwrap();
    let mut fillers = use_every_inode(&fs.path);
    for free in 0..fillers.len() {
        let id = "full";
        let what = format!("{free} free inodes");
        let out = b.create(&root, None, id);
        assert_sane(&out, &what);
        let out = if out.status.success() {
            let start = b.rrun_in(&root, None, &["start", id]);
            assert_sane(&start, &what);
            if start.status.success() {
                assert!(free > 0, "{what}: create and start never ran out");
                let out = b.rrun_in(&root, None, &["delete", "--force", id]);
                assert!(out.status.success(), "{what}: delete: {}", stderr(&out));
                b.assert_clean(&root, id, &what);
                eprintln!("create or start fails with 0 to {} free inodes", free - 1);
                return;
            }
            // A failed start never ran the process: the init, left
            // without its byte, exits.
            let out = b.rrun_in(&root, None, &["state", id]);
            let state: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{what}: state: {}", stderr(&out)));
            if state["status"] != "stopped" {
                let pid = state["pid"].as_i64().unwrap() as i32;
                if let Ok(fd) = libcontainer::utils::pidfd_open(pid) {
                    let _ = libcontainer::utils::pidfd_wait_exit(&fd, -1);
                }
                // Gone, or a zombie (pid 1 reaps it) that never ran the
                // container's process: its name is still the init's.
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
                assert!(
                    comm.as_deref().map_or(true, |c| c.trim() == "rrun:init"),
                    "{what}: start failed, yet {pid} ran {comm:?}"
                );
            }
            start
        } else {
            out
        };
        let err = stderr(&out);
        assert!(
            err.contains("No space left on device") && err.trim_end().lines().count() == 1,
            "{what}: not one clear line: {err:?}"
        );
        let out = b.rrun_in(&root, None, &["delete", "--force", id]);
        assert!(
            out.status.success(),
            "{what}: delete --force: {}",
            stderr(&out)
        );
        b.assert_clean(&root, id, &what);
        // One more inode for the next round.
        std::fs::remove_file(fillers.pop().unwrap()).unwrap();
    }
    panic!("create never succeeded, even with every filler removed");
}

/// The same with no space left: nothing can be written (a tmpfs gives
/// directories and FIFOs without a page, files need one).
#[test]
fn a_root_without_space_fails_clearly_and_leaves_nothing() {
    let b = Bundle::new("space");
    let fs = SmallFs::mount(&b, "size=256k");
    let root = fs.path.join("state");
    std::fs::create_dir(&root).unwrap();
    let filler = fs.path.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let page = vec![0u8; 4096];
    loop {
        use std::io::Write;
        match file.write_all(&page) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    drop(file);
    let out = b.create(&root, None, "nospace");
    assert_sane(&out, "no space");
    assert!(!out.status.success(), "create on a full --root succeeded");
    let err = stderr(&out);
    assert!(
        err.contains("No space left on device") && err.trim_end().lines().count() == 1,
        "no space: not one clear line: {err:?}"
    );
    b.assert_clean(&root, "nospace", "no space");
    let out = b.rrun_in(&root, None, &["delete", "--force", "nospace"]);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    std::fs::remove_file(&filler).unwrap();
    b.assert_reusable("nospace", "no space, then space");
}

/// A created container whose state.json is then corrupt, cut short or
/// empty: `state`, `start`, `kill` and `exec` say so in one line, and
/// `delete --force` ends its init and cgroup from owned.json.
#[test]
fn a_corrupt_or_truncated_state_json_is_a_clear_error_and_delete_force_cleans() {
    let b = Bundle::new("corrupt");
    type Damage = fn(&[u8]) -> Vec<u8>;
    let damages: [(&str, Damage); 4] = [
        ("corrupt", |_| b"{\"ociVersion\": 1.2, garbage".to_vec()),
        ("truncated", |whole| whole[..whole.len() / 2].to_vec()),
        ("empty", |_| Vec::new()),
        ("binary", |whole| whole.iter().map(|b| b ^ 0xa5).collect()),
    ];
    for (what, damage) in damages {
        let id = format!("state-{what}");
        let out = b.create(&b.root, None, &id);
        assert!(out.status.success(), "{what}: create: {}", stderr(&out));
        let path = b.root.join(&id).join("state.json");
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, damage(&whole)).unwrap();
        assert_eq!(assert_state_answers(&b, &id, what), None, "{what}: state");
        for args in [
            vec!["start", &id],
            vec!["kill", &id, "KILL"],
            vec!["exec", &id, "true"],
        ] {
            let out = b.rrun(None, &args);
            assert_sane(&out, &format!("{what}: {}", args[0]));
            assert_eq!(out.status.code(), Some(1), "{what}: {}", args[0]);
            assert!(
                stderr(&out).contains("state.json"),
                "{what}: {}: {}",
                args[0],
                stderr(&out)
            );
        }
        let out = b.rrun(None, &["list"]);
        assert!(out.status.success(), "{what}: list: {}", stderr(&out));
        let out = b.rrun(None, &["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{what}: delete --force: {}",
            stderr(&out)
        );
        b.assert_clean(&b.root, &id, what);
        b.assert_reusable(&id, what);
    }
}
