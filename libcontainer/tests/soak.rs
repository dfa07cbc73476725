//! Soak (issue 13, "Races and load"): this test process is a long-running
//! embedder, as `examples/embed.rs` (a SIGCHLD reaper thread that reaps
//! every child with `waitpid(-1)`, the library's calls from other
//! threads). It runs N create / start / exec / kill / delete cycles through
//! the library, 8 at a time, and then checks that it did not grow: its
//! open fds (/proc/self/fd) and threads (/proc/self/task) are as they were
//! after a warm-up, its VmRSS grew by at most [`RSS_GROWTH_BOUND_KB`], it
//! has no child left (no zombie, no live process), and no mount or cgroup
//! of any cycle is left. A cycle that takes longer than [`CYCLE_LIMIT`]
//! fails the test as a hang (a hang check, not a speed assertion).
//!
//! N is 200 in `cargo test`; `RRUN_SOAK_CYCLES=1000` runs the issue's
//! thousand.
//!
//! `harness = false`: the container helpers re-execute this binary, so
//! `main` must call the library's entry point before anything else.

#[path = "common/isolate.rs"]
mod isolate;

/// Where the containers' cgroups are on this host (v1, hybrid, unified).
#[path = "../../runtime/tests/common/host.rs"]
mod host;

use libcontainer::config::Config;
use libcontainer::container::{self, CreateOptions, ExecOptions};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Cycles run by `cargo test`; `RRUN_SOAK_CYCLES` overrides it.
const DEFAULT_CYCLES: usize = 200;
/// Cycles run at once, each on a thread of its own.
const PARALLEL: usize = 8;
/// How much VmRSS may grow over the whole run (allocator caches, the
/// reaper's table): a leak of even 1 KiB per cycle over 1,000 cycles
/// shows, and so does any leak of a spec (a few KiB each).
const RSS_GROWTH_BOUND_KB: u64 = 8 * 1024;
/// A cycle still running after this is a hang.
const CYCLE_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    libcontainer::init::entry::run_if_requested();
    isolate::assert_isolated();
    let cycles = std::env::var("RRUN_SOAK_CYCLES")
        .ok()
        .map(|v| v.parse().expect("RRUN_SOAK_CYCLES is a number"))
        .unwrap_or(DEFAULT_CYCLES);
    let reaper = Arc::new(Reaper::start());
    let started = Instant::now();
    let result = soak(&reaper, cycles);
    let took = started.elapsed();
    match result {
        Ok(report) => println!(
            "soak: {cycles} cycles, {PARALLEL} at a time, in {:.1} s: {report}\nsoak: 1 passed, 0 failed",
            took.as_secs_f64()
        ),
        Err(e) => {
            println!("soak: 0 passed, 1 failed\n{e}");
            std::process::exit(1);
        }
    }
}

/// What must not grow.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    threads: usize,
    rss_kb: u64,
}

impl Usage {
    fn now() -> Usage {
        let count = |dir: &str| std::fs::read_dir(dir).unwrap().count();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        Usage {
            fds: count("/proc/self/fd"),
            threads: count("/proc/self/task"),
            rss_kb,
        }
    }
}

/// Where each worker is, for the hang check: (cycle, step, since).
type Progress = Arc<Mutex<Vec<Option<(usize, &'static str, Instant)>>>>;

struct Soak {
    root: PathBuf,
    config: Config,
    reaper: Arc<Reaper>,
    progress: Progress,
    tag: String,
}

fn soak(reaper: &Arc<Reaper>, cycles: usize) -> Result<String, String> {
    let work = std::env::temp_dir().join(format!("rrun-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let bundle = make_bundle(&work);
    let config = Config::load(&bundle).map_err(|e| e.to_string())?;
    let soak = Arc::new(Soak {
        root: work.join("state"),
        config,
        reaper: reaper.clone(),
        progress: Arc::new(Mutex::new(vec![None; PARALLEL])),
        tag: format!("rrun-soak-{}", std::process::id()),
    });
    let watchdog = start_watchdog(soak.progress.clone());

    // Warm-up: the guarded image, the allocator's arenas of the worker
    // threads and what the library keeps once made are there before the
    // baseline is taken.
    let warmup = PARALLEL * 2;
    let mut errors = run_cycles(&soak, 0..warmup);
    settle(reaper);
    let before = Usage::now();
    let mounts_before = mount_count();
    errors.extend(run_cycles(&soak, warmup..warmup + cycles));
    settle(reaper);
    let after = Usage::now();
    drop(watchdog);

    if before.fds != after.fds {
        errors.push(format!(
            "open fds: {} before, {} after",
            before.fds, after.fds
        ));
    }
    if before.threads != after.threads {
        errors.push(format!(
            "threads: {} before, {} after",
            before.threads, after.threads
        ));
    }
    let grew = after.rss_kb.saturating_sub(before.rss_kb);
    if grew > RSS_GROWTH_BOUND_KB {
        errors.push(format!(
            "VmRSS grew by {grew} kB ({} -> {} kB), more than {RSS_GROWTH_BOUND_KB} kB",
            before.rss_kb, after.rss_kb
        ));
    }
    let children = children_of(std::process::id() as i32);
    if !children.is_empty() {
        errors.push(format!("children left (pid, state): {children:?}"));
    }
    if mount_count() != mounts_before {
        errors.push(format!(
            "mounts: {mounts_before} before, {} after",
            mount_count()
        ));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mountinfo.contains(work.to_str().unwrap()) {
        errors.push(format!("a mount under {} was left", work.display()));
    }
    for n in 0..warmup + cycles {
        for dir in host::cgroup_dirs(&soak.cgroup(n)) {
            if dir.exists() {
                errors.push(format!("cgroup {} left", dir.display()));
            }
        }
    }
    let left = std::fs::read_dir(&soak.root)
        .map(|d| d.count())
        .unwrap_or(0);
    if left != 0 {
        errors.push(format!("{left} entries left under {}", soak.root.display()));
    }
    let _ = std::fs::remove_dir_all(&work);
    if errors.is_empty() {
        Ok(format!(
            "fds {} -> {}, threads {} -> {}, VmRSS {} -> {} kB, no child, mount or cgroup left",
            before.fds, after.fds, before.threads, after.threads, before.rss_kb, after.rss_kb
        ))
    } else {
        errors.truncate(20);
        Err(errors.join("\n"))
    }
}

impl Soak {
    fn cgroup(&self, n: usize) -> String {
        format!("/{}-{n}", self.tag)
    }

    fn step(&self, worker: usize, cycle: usize, step: &'static str) {
        self.progress.lock().unwrap()[worker] = Some((cycle, step, Instant::now()));
    }

    /// One cycle: create, start, exec a process that exits with 7 (and wait
    /// for that exit), SIGKILL the init (and wait for its exit), delete.
    fn cycle(&self, worker: usize, n: usize) -> Result<(), String> {
        let id = format!("soak-{n}");
        let mut config = self.config.clone();
        let mut linux = config.spec.linux().clone().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from(self.cgroup(n))));
        config.spec.set_linux(Some(linux));
        let opts = CreateOptions {
            root: self.root.clone(),
            id: id.clone(),
            bundle: config.bundle.clone(),
            ..Default::default()
        };
        let fail = |step: &str, e: &dyn std::fmt::Display| format!("cycle {n}: {step}: {e}");
        self.step(worker, n, "create");
        let mark = self.reaper.mark();
        let created = container::create_from(&opts, &config).map_err(|e| fail("create", &e))?;
        let result = (|| {
            self.step(worker, n, "start");
            container::start(&self.root, &id).map_err(|e| fail("start", &e))?;
            self.step(worker, n, "exec");
            let mut process = config.spec.process().clone().unwrap();
            process.set_args(Some(["sh", "-c", "exit 7"].map(String::from).to_vec()));
            let exec_mark = self.reaper.mark();
            let executed = container::exec(&ExecOptions {
                root: self.root.clone(),
                id: id.clone(),
                process,
                ..Default::default()
            })
            .map_err(|e| fail("exec", &e))?;
            self.step(worker, n, "wait for the exec'd process");
            match self.reaper.wait_for(executed.pid, exec_mark, CYCLE_LIMIT) {
                Some(7) => {}
                other => return Err(fail("exec'd process", &format!("exit {other:?}, not 7"))),
            }
            drop(executed);
            self.step(worker, n, "kill");
            container::kill(&self.root, &id, libc::SIGKILL, false).map_err(|e| fail("kill", &e))?;
            self.step(worker, n, "wait for the init");
            match self.reaper.wait_for(created.pid, mark, CYCLE_LIMIT) {
                Some(137) => Ok(()),
                other => Err(fail("init", &format!("exit {other:?}, not 137"))),
            }
        })();
        self.step(worker, n, "delete");
        let deleted = container::delete(&self.root, &id, result.is_err());
        drop(created);
        self.progress.lock().unwrap()[worker] = None;
        result?;
        deleted.map_err(|e| fail("delete", &e))
    }
}

/// Run cycles `range`, `PARALLEL` at a time; the errors.
fn run_cycles(soak: &Arc<Soak>, range: std::ops::Range<usize>) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|worker| {
            let (soak, next, errors, end) = (soak.clone(), next.clone(), errors.clone(), range.end);
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    break;
                }
                if let Err(e) = soak.cycle(worker, n) {
                    errors.lock().unwrap().push(e);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    errors
}

/// Fail the whole test, at once, when a cycle hangs: the hung call would
/// otherwise never return.
struct Watchdog(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn start_watchdog(progress: Progress) -> Watchdog {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            for (cycle, step, since) in progress.lock().unwrap().iter().flatten() {
                if since.elapsed() > CYCLE_LIMIT {
                    println!(
                        "soak: 0 passed, 1 failed\ncycle {cycle}: hung in {step} for more than {} s",
                        CYCLE_LIMIT.as_secs()
                    );
                    std::process::exit(1);
                }
            }
        }
    });
    Watchdog(stop)
}

/// Let the reaper take the last exits (the library's helpers exit just
/// after the calls return) before anything is counted.
fn settle(reaper: &Reaper) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !children_of(std::process::id() as i32).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    reaper.forget_all();
}

/// The processes whose parent is `pid`, with their state letter.
fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split(' ').collect())
            .unwrap_or_default();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            children.push((child, fields[0].chars().next().unwrap_or('?')));
        }
    }
    children
}

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

fn make_bundle(work: &Path) -> PathBuf {
    let bundle = work.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let config = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/",
                    "args": ["sleep", "1000"], "env": ["PATH=/bin"]},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
        "linux": {"cgroupsPath": "/set-per-cycle",
                  "resources": {"pids": {"limit": 16}},
                  "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                 {"type": "uts"}]}
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

/// Exits by pid: (when, code), `when` from a counter of exits, so that a
/// waiter tells its process's exit from an earlier one of the same pid.
/// The library's helpers exit here too and nobody claims them: entries
/// older than [`Reaper::KEEP`] exits are dropped, so the table stays small.
#[derive(Default)]
struct Exits {
    seen: u64,
    by_pid: HashMap<i32, (u64, i32)>,
}

struct Reaper {
    exits: Arc<(Mutex<Exits>, Condvar)>,
}

impl Reaper {
    const KEEP: u64 = 4096;

    /// Block SIGCHLD (every later thread inherits the mask) and start the
    /// thread that takes it with sigwait and reaps every child.
    fn start() -> Reaper {
        let mut sigchld = SigSet::empty();
        sigchld.add(Signal::SIGCHLD);
        sigchld.thread_block().expect("block SIGCHLD");
        let exits: Arc<(Mutex<Exits>, Condvar)> = Arc::default();
        let shared = exits.clone();
        std::thread::spawn(move || loop {
            if sigchld.wait().is_ok() {
                reap_all(&shared);
            }
        });
        Reaper { exits }
    }

    fn mark(&self) -> u64 {
        self.exits.0.lock().unwrap().seen
    }

    /// `pid`'s exit code once it exited after `mark`; `None` after `limit`.
    fn wait_for(&self, pid: i32, mark: u64, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let (lock, cond) = &*self.exits;
        let mut exits = lock.lock().unwrap();
        loop {
            if let Some(&(when, code)) = exits.by_pid.get(&pid) {
                if when > mark {
                    exits.by_pid.remove(&pid);
                    return Some(code);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            exits = cond.wait_timeout(exits, left).unwrap().0;
        }
    }

    fn forget_all(&self) {
        let mut exits = self.exits.0.lock().unwrap();
        exits.by_pid = HashMap::new();
    }
}

fn reap_all(exits: &(Mutex<Exits>, Condvar)) {
    loop {
        let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, 128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("soak: waitpid: {e}");
                break;
            }
        };
        let mut guard = exits.0.lock().unwrap();
        guard.seen += 1;
        let when = guard.seen;
        guard.by_pid.insert(pid.as_raw(), (when, code));
        if guard.by_pid.len() as u64 > Reaper::KEEP {
            let oldest = when.saturating_sub(Reaper::KEEP / 2);
            guard.by_pid.retain(|_, &mut (w, _)| w > oldest);
        }
    }
    exits.1.notify_all();
}
