//! Embedding: a multi-threaded tokio program with a `waitpid(-1)` reaper on
//! SIGCHLD (what the containerd-shim crate does) drives 50 containers at
//! once through the library, and execs a process into each (which lets the
//! container's process end). Every init's and every exec'd process's exit
//! must reach that reaper exactly once with the right code, and the
//! library must leave the caller's cwd, environment, umask and signal mask
//! as they were.
//!
//! `harness = false`: the container helpers re-execute this binary, so
//! `main` must call the library's entry point before anything else.

#[path = "common/isolate.rs"]
mod isolate;

/// Where the containers' cgroups are on this host (v1, hybrid, unified).
#[path = "../../runtime/tests/common/host.rs"]
mod host;

use libcontainer::container::{self, CreateOptions, ExecOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONTAINERS: usize = 50;

fn main() {
    libcontainer::init::entry::run_if_requested();
    // This process left its first mount namespace before main (isolate.rs):
    // the guarded image must still be a read-only mount, made once, not a
    // memfd copy of this (large, debug) binary per container.
    let guard = libcontainer::exe_guard::GuardedExe::get().expect("guarded image");
    assert_eq!(
        guard.kind,
        libcontainer::exe_guard::GuardKind::ReadOnlyMount,
        "the binary was copied into a memfd"
    );
    let before = CallerView::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(drive_containers());
    drop(runtime);
    let after = CallerView::now();
    assert_eq!(
        before, after,
        "the library changed the caller's process state"
    );
    match result {
        Ok(()) => println!("embed: 1 passed, 0 failed"),
        Err(e) => {
            println!("embed: 0 passed, 1 failed\n{e}");
            std::process::exit(1);
        }
    }
}

/// What the library must not change in its caller.
#[derive(Debug, PartialEq)]
struct CallerView {
    cwd: PathBuf,
    env: Vec<(String, String)>,
    umask: u32,
    sigmask: Vec<i32>,
}

impl CallerView {
    fn now() -> CallerView {
        let mut env: Vec<_> = std::env::vars().collect();
        env.sort();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        let mask = nix::sys::signal::SigSet::thread_get_mask().unwrap();
        let sigmask = (1..32)
            .filter(|&n| nix::sys::signal::Signal::try_from(n).is_ok_and(|s| mask.contains(s)))
            .collect();
        CallerView {
            cwd: std::env::current_dir().unwrap(),
            env,
            umask,
            sigmask,
        }
    }
}

type Exits = Arc<Mutex<HashMap<i32, Vec<i32>>>>;

/// The embedder's reaper: on SIGCHLD, reap everything with waitpid(-1).
fn start_reaper(exits: Exits, notify: Arc<tokio::sync::Notify>) {
    let mut sigchld =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).unwrap();
    tokio::spawn(async move {
        loop {
            sigchld.recv().await;
            loop {
                let mut status = 0;
                // SAFETY: waitpid with a valid status pointer.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                exits.lock().unwrap().entry(pid).or_default().push(code);
            }
            notify.notify_waiters();
        }
    });
}

async fn drive_containers() -> Result<(), String> {
    let exits: Exits = Arc::default();
    let notify = Arc::new(tokio::sync::Notify::new());
    start_reaper(exits.clone(), notify.clone());

    let work = std::env::temp_dir().join(format!("rrun-embed-{}", std::process::id()));
    let bundle = make_bundle(&work);
    let root = work.join("state");
    let mut tasks = Vec::new();
    for n in 0..CONTAINERS {
        let (root, bundle) = (root.clone(), bundle.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            run_one(&root, &bundle, n)
        }));
    }
    let mut expected = HashMap::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(pids) => expected.extend(pids),
            Err(e) => errors.push(e),
        }
    }
    // Wait (event-driven, with a generous hang guard) for every exit.
    let all_reported = async {
        loop {
            let waiting = notify.notified();
            if expected
                .keys()
                .all(|p| exits.lock().unwrap().contains_key(p))
            {
                break;
            }
            waiting.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(300), all_reported)
        .await
        .is_err()
    {
        errors.push("not every container's exit reached the reaper".to_string());
    }
    let seen = exits.lock().unwrap().clone();
    for (pid, code) in &expected {
        match seen.get(pid).map(Vec::as_slice) {
            Some([got]) if got == code => {}
            other => errors.push(format!(
                "init {pid}: expected exit {code} once, reaper saw {other:?}"
            )),
        }
    }
    for n in 0..CONTAINERS {
        if let Err(e) = container::delete(&root, &format!("embed-{n}"), true) {
            errors.push(format!("delete embed-{n}: {e}"));
        }
    }
    let left = std::fs::read_dir(&root).map(|d| d.count()).unwrap_or(0);
    if left != 0 {
        errors.push(format!(
            "{left} state directories left under {}",
            root.display()
        ));
    }
    for n in 0..CONTAINERS {
        let cgroup = format!("/rrun-embed-{}-{n}", std::process::id());
        for cg in host::cgroup_dirs(&cgroup) {
            if cg.exists() {
                errors.push(format!("cgroup {} left behind", cg.display()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if expected.len() != 2 * CONTAINERS {
        errors.push(format!(
            "only {} of {} inits and exec'd processes started",
            expected.len(),
            2 * CONTAINERS
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// create + start one container whose process waits for an exec'd one,
/// which exits with 100 + `n`; once the reaper took that one (its /proc
/// entry goes: the init's exit would kill it, as the pid namespace's
/// end), the init exits with `n`. Returns the
/// two pids with the exit codes they must report.
fn run_one(root: &Path, bundle: &Path, n: usize) -> Result<Vec<(i32, i32)>, String> {
    let id = format!("embed-{n}");
    let own_bundle = bundle.with_file_name(format!("bundle-{n}"));
    std::fs::create_dir_all(&own_bundle).map_err(|e| e.to_string())?;
    let config = std::fs::read_to_string(bundle.join("config.json"))
        .unwrap()
        .replace("EXIT_CODE", &n.to_string())
        .replace("CGROUP", &format!("/rrun-embed-{}-{n}", std::process::id()))
        .replace("ROOTFS", &bundle.join("rootfs").display().to_string());
    std::fs::write(own_bundle.join("config.json"), config).map_err(|e| e.to_string())?;
    let opts = CreateOptions {
        root: root.to_path_buf(),
        id: id.clone(),
        bundle: own_bundle,
        ..Default::default()
    };
    let created = container::create(&opts).map_err(|e| format!("create {id}: {e}"))?;
    container::start(root, &id).map_err(|e| format!("start {id}: {e}"))?;
    let process = serde_json::from_value(serde_json::json!({
        "user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["PATH=/bin"],
        "args": ["/bin/sh", "-c", format!("echo $$ > /tmp/go-{n}; exit {}", 100 + n)],
    }))
    .unwrap();
    let exec = ExecOptions {
        root: root.to_path_buf(),
        id: id.clone(),
        process,
        ..Default::default()
    };
    let executed = container::exec(&exec).map_err(|e| format!("exec {id}: {e}"))?;
    Ok(vec![
        (created.pid, n as i32),
        (executed.pid, 100 + n as i32),
    ])
}

fn make_bundle(work: &Path) -> PathBuf {
    let bundle = work.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep", "touch", "rm"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let config = r#"{
  "ociVersion": "1.2.0",
  "root": {"path": "ROOTFS"},
  "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["/bin/sh", "-c",
              "while [ ! -s /tmp/go-EXIT_CODE ]; do sleep 0.01; done; read p < /tmp/go-EXIT_CODE; while [ -e /proc/$p ]; do sleep 0.01; done; exit EXIT_CODE"],
              "env": ["PATH=/bin"]},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
  "linux": {"cgroupsPath": "CGROUP",
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]}
}"#;
    std::fs::write(bundle.join("config.json"), config).unwrap();
    bundle
}
