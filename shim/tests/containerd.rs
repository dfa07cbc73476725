//! The shim under a real containerd 1.6, driven by `ctr`, side by side
//! with the stock runc-v2 shim running rrun (`--runc-binary`): every check
//! runs once per column and must pass in both.
//!
//! As root, the test re-executes itself in private mount and pid
//! namespaces (`unshare`, as conformance's `rrun-e2e` does, whose
//! namespace, process and image helpers it reuses): a tmpfs on /run,
//! overlays on /etc, /var and /tmp, a private containerd with its own
//! sockets, root and state under /run, and a containerd namespace (and so
//! cgroup parent) of its own. After every check nothing may be left: no
//! shim process or socket, no rootfs mount, no cgroup, no FIFO, no
//! runtime or containerd task state.
//!
//! `harness = false`: the output ends with `shim: N passed, N failed`;
//! `SHIM_TESTS_FILTER=text` runs only the checks whose title has it.
//! Without root, containerd, ctr or the runc-v2 shim it says why and
//! skips; without the rrun binary (built by `cargo test --workspace`, or
//! `cargo build -p rrun`) the runc-v2 column is skipped.

#[path = "../../conformance/src/e2e/proc.rs"]
#[allow(dead_code)]
mod proc;

#[path = "../../conformance/src/e2e/image.rs"]
#[allow(dead_code)]
mod image;

#[path = "../../conformance/src/e2e/ns.rs"]
#[allow(dead_code)]
mod ns;

use proc::{Output, Spec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const RUNC_V2_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
/// The test's own directory, on the namespace's private /run.
const WORK: &str = "/run/shim-tests";
/// Where the shim keeps the library's state (its default root).
const SHIM_ROOT: &str = "/run/containerd/rrun";
/// Where `ctr` makes the FIFOs of a task's stdio.
const FIFO_DIR: &str = "/run/containerd/fifo";
/// Where the shims' ttrpc sockets are.
const SOCKET_DIR: &str = "/run/containerd/s";
/// The containerd namespace (and cgroup parent) of a run, passed down.
const NS_ENV: &str = "SHIM_TESTS_NS";
/// The README's CRI recipe for both ways to rrun, loaded so that it is
/// checked to parse (ctr does not go through the CRI plugin).
const CRI_RUNTIMES: &str = r#"[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rrun]
  runtime_type = "io.containerd.rrun.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc-rrun]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc-rrun.options]
  BinaryName = "/usr/local/bin/rrun"
"#;
/// Only the checks whose title contains this.
const FILTER_ENV: &str = "SHIM_TESTS_FILTER";

fn main() {
    let stage = std::env::var(ns::STAGE_ENV).unwrap_or_default();
    let code = match stage.as_str() {
        "" => outer(),
        "init" => ns::init(&[]).unwrap_or_else(|e| {
            eprintln!("shim tests: {e:#}");
            2
        }),
        "harness" => harness(),
        other => {
            eprintln!("shim tests: unknown {} {other}", ns::STAGE_ENV);
            2
        }
    };
    std::process::exit(code);
}

fn skip(why: &str) -> i32 {
    println!("shim tests skipped: {why}");
    println!("shim: 0 passed, 0 failed");
    0
}

/// Host side: check what the run needs, run it in private namespaces,
/// then remove the cgroup parent it made and check that nothing else is.
fn outer() -> i32 {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not root (containerd and containers need it)");
    }
    for bin in [
        CONTAINERD,
        CTR,
        RUNC_V2_SHIM,
        "/usr/bin/unshare",
        "/bin/busybox",
    ] {
        if !Path::new(bin).exists() {
            return skip(&format!(
                "{bin} is missing (apt-get install containerd util-linux busybox-static)"
            ));
        }
    }
    let namespace = format!("shimtest{}", std::process::id());
    let exe = std::env::current_exe().expect("current_exe");
    let status = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--mount-proc",
            "--",
        ])
        .arg(&exe)
        .env(ns::STAGE_ENV, "init")
        .env(NS_ENV, &namespace)
        .status();
    let mut code = match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("shim tests: running unshare: {e}");
            return 2;
        }
    };
    // Every process of the run is gone with its pid namespace: what is left
    // in the cgroup hierarchies is the parent the runtimes made (and,
    // after a failure, empty containers' cgroups).
    let left = remove_cgroup_parent(&namespace);
    if !left.is_empty() {
        println!("LEFT BEHIND on the host: {}", left.join(" "));
        code = code.max(1);
    }
    code
}

/// rmdir `/sys/fs/cgroup/*/<parent>` and below; returns the cgroups below
/// the parent that were still there, and what could not be removed.
fn remove_cgroup_parent(parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = hierarchy.path().join(parent);
        if !dir.is_dir() {
            continue;
        }
        for sub in ns::subdirs_deepest_first(&dir) {
            left.push(format!("cgroup {}", sub.display()));
            while std::fs::remove_dir(&sub).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        while std::fs::remove_dir(&dir).is_err() {
            if Instant::now() >= deadline {
                left.push(format!("cgroup {} (not removable)", dir.display()));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    left
}

/// How a check's containers reach rrun.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Column {
    /// This shim, `--runtime io.containerd.rrun.v2` (found on containerd's
    /// PATH) or its absolute path.
    Shim,
    /// The stock runc-v2 shim with `--runc-binary rrun`.
    RuncV2,
}

impl Column {
    fn label(self) -> &'static str {
        match self {
            Column::Shim => "rrun-shim",
            Column::RuncV2 => "runc-v2+rrun",
        }
    }
}

struct Env {
    work: PathBuf,
    out: PathBuf,
    namespace: String,
    shim: PathBuf,
    rrun: Option<PathBuf>,
    env: Vec<(String, String)>,
    containerd: Mutex<Option<Child>>,
}

impl Env {
    fn runc_root(&self) -> PathBuf {
        self.work.join("runc-root")
    }

    fn config(&self) -> PathBuf {
        self.work.join("containerd.toml")
    }

    fn log(&self) -> PathBuf {
        self.work.join("containerd.log")
    }

    fn task_dir(&self) -> PathBuf {
        self.work
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
    }

    fn run(&self, argv: &[String], tty: bool, timeout: Duration) -> Output {
        proc::run(
            &Spec {
                argv,
                stdin: None,
                tty,
                timeout,
                env: &self.env,
            },
            &self.out,
        )
    }

    fn ctr_argv(&self, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            CTR.into(),
            "--address".into(),
            self.work.join("containerd.sock").display().to_string(),
            "--namespace".into(),
            self.namespace.clone(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        argv
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.run(&self.ctr_argv(args), false, Duration::from_secs(60))
    }

    fn start_containerd(&self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| e.to_string())?;
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(self.config())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        *self.containerd.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.ctr(&["version"]).code == Some(0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "containerd not ready after 30 s: {}",
                    tail(&self.log(), 5)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as a service manager stops it; the shims live on.
    fn stop_containerd(&self) {
        let Some(mut child) = self.containerd.lock().unwrap().take() else {
            return;
        };
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// What the runtimes, shims and ctr left of the checks' containers.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for p in ns::processes_left() {
            if p.contains("containerd-shim") || p.contains("sleep") {
                left.push(format!("process {p}"));
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mountinfo.lines() {
            if let Some(target) = line.split(' ').nth(4) {
                if target.contains("io.containerd.runtime.v2.task") {
                    left.push(format!("mount {target}"));
                }
            }
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = hierarchy.path().join(&self.namespace);
            for sub in ns::subdirs_deepest_first(&dir) {
                left.push(format!("cgroup {}", sub.display()));
            }
        }
        let dirs = [
            Path::new(SHIM_ROOT).join(&self.namespace),
            self.runc_root().join(&self.namespace),
            self.task_dir(),
            PathBuf::from(FIFO_DIR),
            PathBuf::from(SOCKET_DIR),
        ];
        for dir in dirs {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                left.push(format!("{}", e.path().display()));
            }
        }
        left
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// One check's view: its column and its containers' names.
struct Ck<'a> {
    env: &'a Env,
    column: Column,
    /// Prefix of the check's container names.
    name: String,
    /// Every container the check made, for the cleanup.
    made: Mutex<Vec<String>>,
}

type CheckResult = Result<(), String>;

impl Ck<'_> {
    /// A container name of this check.
    fn c(&self, suffix: &str) -> String {
        let n = format!("{}{suffix}", self.name);
        let mut made = self.made.lock().unwrap();
        if !made.contains(&n) {
            made.push(n.clone());
        }
        n
    }

    /// `ctr run` with the column's runtime flags, then `flags`, the image,
    /// the name and the command.
    fn run_argv(&self, flags: &[&str], name: &str, cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into()];
        match self.column {
            Column::Shim => args.extend(["--runtime".into(), "io.containerd.rrun.v2".into()]),
            Column::RuncV2 => args.extend([
                "--runc-binary".into(),
                self.env
                    .rrun
                    .as_ref()
                    .expect("column skipped")
                    .display()
                    .to_string(),
                "--runc-root".into(),
                self.env.runc_root().display().to_string(),
            ]),
        }
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(image::CTR_REF.into());
        args.push(name.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.ctr_argv(&refs)
    }

    fn ctr_run(&self, flags: &[&str], name: &str, cmd: &[&str]) -> Output {
        let tty = flags.contains(&"-t");
        self.env.run(
            &self.run_argv(flags, name, cmd),
            tty,
            Duration::from_secs(60),
        )
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.env.ctr(args)
    }

    fn ctr_tty(&self, args: &[&str]) -> Output {
        self.env
            .run(&self.env.ctr_argv(args), true, Duration::from_secs(60))
    }

    fn ok(&self, args: &[&str]) -> Result<Output, String> {
        let o = self.ctr(args);
        if o.code != Some(0) {
            return Err(failure(&o, "exit 0"));
        }
        Ok(o)
    }

    /// `ctr run -d` of a long-running command.
    fn detached(&self, name: &str, cmd: &[&str]) -> CheckResult {
        let o = self.ctr_run(&["-d"], name, cmd);
        if o.code != Some(0) {
            return Err(failure(&o, "exit 0"));
        }
        Ok(())
    }

    /// The init's pid as `ctr task ls` shows it, once its status is `status`.
    fn task_status(&self, name: &str, status: &str, within: Duration) -> Result<u32, String> {
        let deadline = Instant::now() + within;
        loop {
            let o = self.ctr(&["task", "ls"]);
            let row = o.stdout.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[0] == name)
                    .then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
            });
            match row {
                Some((pid, s)) if s == status => return Ok(pid),
                _ if Instant::now() >= deadline => {
                    return Err(format!(
                        "task {name} not {status} after {:?}: ctr task ls: {}",
                        within,
                        o.stdout.trim()
                    ))
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A cgroup file of container `name` (ctr's cgroupsPath is
    /// /<namespace>/<id>).
    fn cgroup(&self, controller: &str, name: &str, file: &str) -> String {
        let path = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.env.namespace)
            .join(name)
            .join(file);
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Remove every container of the check, whatever its state.
    fn cleanup(&self) {
        for name in self.made.lock().unwrap().iter() {
            self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", name]);
            self.ctr(&["task", "delete", "-f", name]);
            self.ctr(&["containers", "delete", name]);
            self.ctr(&["snapshots", "rm", name]);
        }
    }
}

fn failure(o: &Output, wanted: &str) -> String {
    format!(
        "`{}`: {} (wanted {wanted}); stdout {:?}; stderr {:?}",
        o.line,
        o.status(),
        o.stdout.trim(),
        o.stderr.trim()
    )
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn has(o: &Output, text: &str) -> CheckResult {
    expect(o.stdout.contains(text), || {
        failure(o, &format!("stdout with {text:?}"))
    })
}

fn code(o: &Output, c: i32) -> CheckResult {
    expect(o.code == Some(c), || failure(o, &format!("exit {c}")))
}

type CheckFn = fn(&Ck) -> CheckResult;

fn checks() -> Vec<(&'static str, CheckFn)> {
    vec![
        ("run --rm: output", run_output),
        ("run --rm: exit code", run_exit_code),
        ("run --rm -t: a terminal", run_tty),
        ("stdin, closed by CloseIO", stdin),
        ("run -d: a detached task", run_detached),
        ("task exec", exec),
        ("task exec -t", exec_tty),
        ("task pause, resume", pause_resume),
        ("task ps", ps),
        ("task metrics", metrics),
        ("task update (ttrpc Update: ctr 1.6 has no command)", update),
        ("one shim per pod (io.kubernetes.cri.sandbox-id)", pod),
        (
            "a pod's later `start`s under a storm of SIGCHLD",
            pod_start_signals,
        ),
        ("--log-uri file:// and binary://", log_uris),
        ("task kill (SIGTERM to a handler)", kill),
        ("task kill -a (every process)", kill_all),
        ("task delete: exit status, state gone", delete),
        ("crash of the init and of an exec: their status", crashes),
        ("OOM kill: /tasks/oom before /tasks/exit", oom),
        ("a detached task across a containerd restart", restart),
        (
            "the shim killed: containerd's cleanup (shim delete)",
            shim_killed,
        ),
        ("20 containers at once: every exit reported once", twenty),
    ]
}

fn run_output(ck: &Ck) -> CheckResult {
    let o = ck.ctr_run(&["--rm"], &ck.c(""), &["echo", "hello from the container"]);
    code(&o, 0)?;
    expect(o.stdout.trim() == "hello from the container", || {
        failure(&o, "exactly the container's output")
    })?;
    if ck.column == Column::Shim {
        // The shim by its absolute path, as a runtime name.
        let mut argv = ck.env.ctr_argv(&["run", "--rm", "--runtime"]);
        argv.push(ck.env.shim.display().to_string());
        argv.extend([
            image::CTR_REF.into(),
            ck.c("-abs"),
            "echo".into(),
            "by path".into(),
        ]);
        let o = ck.env.run(&argv, false, Duration::from_secs(60));
        code(&o, 0)?;
        has(&o, "by path")?;
    }
    Ok(())
}

fn run_exit_code(ck: &Ck) -> CheckResult {
    let o = ck.ctr_run(
        &["--rm"],
        &ck.c(""),
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    code(&o, 3)?;
    has(&o, "out")?;
    expect(o.stderr.contains("err"), || {
        failure(&o, "stderr with \"err\"")
    })
}

fn run_tty(ck: &Ck) -> CheckResult {
    let o = ck.ctr_run(
        &["--rm", "-t"],
        &ck.c(""),
        &["sh", "-c", "tty; [ -t 0 ] && echo stdin-tty; exit 4"],
    );
    code(&o, 4)?;
    has(&o, "/dev/pts/")?;
    has(&o, "stdin-tty")
}

fn stdin(ck: &Ck) -> CheckResult {
    // ctr sends CloseIO when its stdin ends, but only once the task
    // exists: the input ends a moment later.
    let argv = ck.run_argv(&["--rm"], &ck.c(""), &["sh", "-c", "cat; echo eof"]);
    let line = format!("(echo from-stdin; sleep 1) | {}", proc::sh_join(&argv));
    let o = ck.env.run(
        &["sh".into(), "-c".into(), line],
        false,
        Duration::from_secs(60),
    );
    code(&o, 0)?;
    expect(o.stdout == "from-stdin\neof\n", || {
        failure(&o, "the input, then eof")
    })
}

fn run_detached(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    ck.task_status(&name, "RUNNING", Duration::from_secs(10))?;
    let current = ck.cgroup("pids", &name, "pids.current");
    expect(current.trim() == "1", || {
        format!("pids.current of the detached task: {current:?}, wanted 1")
    })?;
    let state = match ck.column {
        Column::Shim => Path::new(SHIM_ROOT).join(&ck.env.namespace).join(&name),
        Column::RuncV2 => ck.env.runc_root().join(&ck.env.namespace).join(&name),
    };
    expect(state.join("state.json").is_file(), || {
        format!("no runtime state at {}", state.display())
    })
}

fn exec(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    let o = ck.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "exec1",
        &name,
        "sh",
        "-c",
        "echo exec works; exit 5",
    ]);
    code(&o, 5)?;
    has(&o, "exec works")?;
    // The exec is gone: its id can be used again.
    let o = ck.ctr(&["task", "exec", "--exec-id", "exec1", &name, "true"]);
    code(&o, 0)
}

fn exec_tty(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    let o = ck.ctr_tty(&[
        "task",
        "exec",
        "-t",
        "--exec-id",
        "exec-t",
        &name,
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo stdin-tty; exit 6",
    ]);
    code(&o, 6)?;
    has(&o, "/dev/pts/")?;
    has(&o, "stdin-tty")
}

fn pause_resume(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    ck.ok(&["task", "pause", &name])?;
    ck.task_status(&name, "PAUSED", Duration::from_secs(5))?;
    let state = ck.cgroup("freezer", &name, "freezer.state");
    expect(state.trim() == "FROZEN", || {
        format!("freezer.state {state:?} after pause")
    })?;
    ck.ok(&["task", "resume", &name])?;
    ck.task_status(&name, "RUNNING", Duration::from_secs(5))?;
    let state = ck.cgroup("freezer", &name, "freezer.state");
    expect(state.trim() == "THAWED", || {
        format!("freezer.state {state:?} after resume")
    })
}

fn wait_procs(ck: &Ck, name: &str, n: usize) -> CheckResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = ck.cgroup("pids", name, "cgroup.procs");
        if procs.lines().count() == n {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("cgroup.procs {procs:?}, wanted {n} processes"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ps(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sh", "-c", "sleep 301 & exec sleep 300"])?;
    wait_procs(ck, &name, 2)?;
    let o = ck.ok(&["task", "ps", &name])?;
    let lines: Vec<&str> = o.stdout.lines().collect();
    expect(
        lines.len() == 3
            && lines[1..].iter().all(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|p| p.parse::<u32>().is_ok())
            }),
        || failure(&o, "a header and two pids"),
    )?;
    // An exec'd process is listed with its exec id.
    let waiter = {
        let argv = ck
            .env
            .ctr_argv(&["task", "exec", "--exec-id", "ps-exec", &name, "sleep", "3"]);
        let env = ck.env.env.clone();
        std::thread::spawn(move || {
            proc::run(
                &Spec {
                    argv: &argv,
                    stdin: None,
                    tty: false,
                    timeout: Duration::from_secs(30),
                    env: &env,
                },
                Path::new(WORK).join("out").as_path(),
            )
        })
    };
    wait_procs(ck, &name, 3)?;
    let o = ck.ok(&["task", "ps", &name])?;
    let listed = has(&o, "ps-exec");
    let exec = waiter
        .join()
        .map_err(|_| "exec thread panicked".to_string())?;
    code(&exec, 0)?;
    listed
}

fn metrics(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    let o = ck.ok(&["task", "metrics", &name])?;
    has(&o, "memory.usage_in_bytes")?;
    has(&o, "cpuacct.usage")?;
    expect(
        o.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pids.current", "1"]),
        || failure(&o, "pids.current 1"),
    )
}

/// `Update` straight to the shim's ttrpc socket (its address is in the
/// task's bundle), as containerd sends it: LinuxResources as JSON.
fn update(ck: &Ck) -> CheckResult {
    use containerd_shim_protos::protobuf::well_known_types::any::Any;
    use containerd_shim_protos::shim::shim::UpdateTaskRequest;
    use containerd_shim_protos::ttrpc::context;
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    let address = std::fs::read_to_string(ck.env.task_dir().join(&name).join("address"))
        .map_err(|e| format!("the task's address file: {e}"))?;
    let client = containerd_shim_protos::Client::connect(address.trim())
        .map_err(|e| format!("connect {address}: {e}"))?;
    let task = containerd_shim_protos::TaskClient::new(client);
    let request = UpdateTaskRequest {
        id: name.clone(),
        resources: Some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: br#"{"memory":{"limit":33554432},"pids":{"limit":77}}"#.to_vec(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    task.update(context::with_timeout(10_000_000_000), &request)
        .map_err(|e| format!("Update: {e}"))?;
    let limit = ck.cgroup("memory", &name, "memory.limit_in_bytes");
    expect(limit.trim() == "33554432", || {
        format!("memory.limit_in_bytes {limit:?} after the update")
    })?;
    let pids = ck.cgroup("pids", &name, "pids.max");
    expect(pids.trim() == "77", || {
        format!("pids.max {pids:?} after the update")
    })
}

/// The shim serving container `name` (its ttrpc address).
fn address_of(ck: &Ck, name: &str) -> Result<String, String> {
    std::fs::read_to_string(ck.env.task_dir().join(name).join("address"))
        .map(|a| a.trim().to_string())
        .map_err(|e| format!("{name}'s address file: {e}"))
}

fn pod(ck: &Ck) -> CheckResult {
    let annotation = format!("--annotation=io.kubernetes.cri.sandbox-id={}", ck.name);
    let (first, second) = (ck.c("-a"), ck.c("-b"));
    for name in [&first, &second] {
        let o = ck.ctr_run(&["-d", &annotation], name, &["sleep", "300"]);
        code(&o, 0)?;
    }
    let address = address_of(ck, &first)?;
    expect(address_of(ck, &second)? == address, || {
        "the pod's containers have shims of their own".to_string()
    })?;
    ck.ok(&["task", "kill", "-s", "SIGKILL", &first])?;
    ck.task_status(&first, "STOPPED", Duration::from_secs(10))?;
    ck.ok(&["task", "delete", &first])?;
    // The shim stays for the pod's other container.
    let o = ck.ctr(&["task", "exec", "--exec-id", "x", &second, "echo", "served"]);
    code(&o, 0)?;
    has(&o, "served")
}

/// How many grouped `start`s [`pod_start_signals`] runs.
const STORMED_STARTS: usize = 30;

/// containerd runs `<shim> start` for a pod's later containers; the
/// server it spawns finds the pod's shim and exits at once, and its
/// SIGCHLD may come at any moment of `start`'s exit. A storm of SIGCHLD
/// from here makes that moment certain to be hit: every `start` must
/// still print the pod's address and end. (containerd-shim 0.11 drops
/// its signal hooks on `start`'s way out; a signal in between left
/// `start` spinning until containerd killed it, 1 pod in ~30.)
fn pod_start_signals(ck: &Ck) -> CheckResult {
    let annotation = format!("--annotation=io.kubernetes.cri.sandbox-id={}", ck.name);
    let first = ck.c("-a");
    code(
        &ck.ctr_run(&["-d", &annotation], &first, &["sleep", "300"]),
        0,
    )?;
    let address = address_of(ck, &first)?;
    let bundle = ck.env.work.join(format!("{}-start", ck.name));
    let result = stormed_starts(ck, &bundle, &address);
    let _ = std::fs::remove_dir_all(&bundle);
    result
}

fn stormed_starts(ck: &Ck, bundle: &Path, address: &str) -> CheckResult {
    std::fs::create_dir_all(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let config = format!(
        r#"{{"ociVersion":"1.0.2","annotations":{{"io.kubernetes.cri.sandbox-id":"{}"}}}}"#,
        ck.name
    );
    std::fs::write(bundle.join("config.json"), config).map_err(|e| e.to_string())?;
    // The server writes its log here (containerd makes a FIFO).
    std::fs::write(bundle.join("log"), "").map_err(|e| e.to_string())?;
    let shim = match ck.column {
        Column::Shim => ck.env.shim.clone(),
        Column::RuncV2 => PathBuf::from(RUNC_V2_SHIM),
    };
    let sock = ck.env.work.join("containerd.sock");
    for i in 0..STORMED_STARTS {
        let id = format!("{}-start-{i}", ck.name);
        let child = Command::new(&shim)
            .args(["-namespace", &ck.env.namespace, "-address"])
            .arg(&sock)
            .args(["-publish-binary", CONTAINERD, "-id", &id, "start"])
            .env("TTRPC_ADDRESS", format!("{}.ttrpc", sock.display()))
            .current_dir(bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", shim.display()))?;
        let out = under_sigchld_storm(child, Duration::from_secs(20))
            .map_err(|e| format!("start {i} of {STORMED_STARTS}: {e}"))?;
        let printed = String::from_utf8_lossy(&out.stdout);
        expect(out.status.success() && printed.trim() == address, || {
            format!(
                "start {i}: {}, printed {printed:?} (the pod's shim: {address}); stderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
    }
    Ok(())
}

/// Waits for `child` while sending it SIGCHLD as fast as the kernel takes
/// them (through a pidfd, so no other process is hit once it is reaped);
/// kills it after `limit`.
fn under_sigchld_storm(child: Child, limit: Duration) -> Result<std::process::Output, String> {
    // SAFETY: pidfd_open of our own child, not yet waited for.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as i32, 0) } as i32;
    if pidfd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let signal = move |sig: i32| {
        // SAFETY: pidfd is open until the thread is joined; a null siginfo
        // is allowed.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, 0usize, 0u32) };
    };
    let storm = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if Instant::now() >= deadline {
                signal(libc::SIGKILL);
                return true;
            }
            // SIGCHLD's default action is to ignore it.
            signal(libc::SIGCHLD);
        }
        false
    });
    let out = child.wait_with_output().map_err(|e| e.to_string());
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let killed = storm.join().unwrap_or(false);
    // SAFETY: our own pidfd, closed once.
    unsafe { libc::close(pidfd) };
    if killed {
        return Err(format!("still running after {limit:?}: killed"));
    }
    out
}

fn log_uris(ck: &Ck) -> CheckResult {
    let log = ck.env.work.join(format!("{}.log", ck.name));
    let uri = format!("file://{}", log.display());
    let o = ck.ctr_run(
        &["--rm", "--log-uri", &uri],
        &ck.c("-file"),
        // The runc shim copies the pipes to the file on its own time and
        // may lose what is still in them when the task is deleted: a
        // moment before the exit (this shim's process writes the file).
        &[
            "sh",
            "-c",
            "echo to-file; echo err-file >&2; sleep 0.3; exit 2",
        ],
    );
    code(&o, 2)?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    expect(
        text.contains("to-file") && text.contains("err-file"),
        || format!("{} holds {text:?}", log.display()),
    )?;
    // A logging binary: stdout on fd 3, stderr on fd 4, fd 5 closed when
    // ready; the container's id in its environment. It reads both to EOF
    // (the runc shim sends it SIGTERM once the container is deleted).
    let logger = ck.env.work.join(format!("{}-logger", ck.name));
    let out = ck.env.work.join(format!("{}-logged", ck.name));
    let script = format!(
        "#!/bin/sh\ntrap '' TERM\nexec 5>&-\n/bin/busybox cat <&3 > {out}.$CONTAINER_ID.1 &\n\
         /bin/busybox cat <&4 > {out}.$CONTAINER_ID.2\nwait\n\
         /bin/busybox cat {out}.$CONTAINER_ID.1 {out}.$CONTAINER_ID.2 > {out}.$CONTAINER_ID\n",
        out = out.display()
    );
    std::fs::write(&logger, script).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let uri = format!("binary://{}?unused=1", logger.display());
    let name = ck.c("-binary");
    let o = ck.ctr_run(
        &["--rm", "--log-uri", &uri],
        &name,
        &["sh", "-c", "echo to-binary; echo err-binary >&2"],
    );
    code(&o, 0)?;
    let logged = PathBuf::from(format!("{}.{name}", out.display()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&logged).unwrap_or_default();
        if text.contains("to-binary") && text.contains("err-binary") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{} holds {text:?}", logged.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(
        &name,
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 1 & wait $!; done",
        ],
    )?;
    wait_procs(ck, &name, 2)?;
    ck.ok(&["task", "kill", &name])?;
    ck.task_status(&name, "STOPPED", Duration::from_secs(10))?;
    // Signalling a process that is gone is an error ("not found").
    let o = ck.ctr(&["task", "kill", &name]);
    expect(o.code != Some(0) && o.stderr.contains("not found"), || {
        failure(&o, "an error: not found")
    })?;
    let o = ck.ok(&["task", "delete", &name])?;
    expect(o.stderr.contains("exit code 7"), || {
        failure(&o, "\"exit code 7\"")
    })
}

fn kill_all(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    // pid 1 `sleep` ignores TERM (a namespace's init); its orphan does not.
    ck.detached(&name, &["sh", "-c", "sleep 301 & exec sleep 300"])?;
    wait_procs(ck, &name, 2)?;
    ck.ok(&["task", "kill", "-a", "-s", "SIGTERM", &name])?;
    wait_procs(ck, &name, 1)?;
    ck.task_status(&name, "RUNNING", Duration::from_secs(5))?;
    ck.ok(&["task", "kill", "-a", "-s", "SIGKILL", &name])?;
    ck.task_status(&name, "STOPPED", Duration::from_secs(10))
        .map(|_| ())
}

fn delete(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sh", "-c", "exit 9"])?;
    ck.task_status(&name, "STOPPED", Duration::from_secs(10))?;
    let o = ck.ok(&["task", "delete", &name])?;
    expect(o.stderr.contains("exit code 9"), || {
        failure(&o, "\"exit code 9\"")
    })?;
    let o = ck.ok(&["task", "ls"])?;
    expect(!o.stdout.contains(&name), || failure(&o, "no such task"))?;
    let bundle = ck.env.task_dir().join(&name);
    expect(!bundle.exists(), || {
        format!("{} still there", bundle.display())
    })?;
    // A running task is not deleted without -f; with it, it is.
    let name = ck.c("-running");
    ck.detached(&name, &["sleep", "300"])?;
    let o = ck.ctr(&["task", "delete", &name]);
    expect(o.code != Some(0), || failure(&o, "a refusal"))?;
    ck.ok(&["task", "delete", "-f", &name])?;
    ck.ok(&["containers", "delete", &name]).map(|_| ())
}

fn crashes(ck: &Ck) -> CheckResult {
    // A real fault kills even a namespace's init: unbounded recursion
    // overflows the stack (SIGSEGV: 128 + 11).
    let o = ck.ctr_run(&["--rm"], &ck.c("-init"), &["sh", "-c", "f() { f; }; f"]);
    code(&o, 139)?;
    let name = ck.c("-exec");
    ck.detached(&name, &["sleep", "300"])?;
    let o = ck.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "crash",
        &name,
        "sh",
        "-c",
        "kill -ABRT $$",
    ]);
    code(&o, 134)?;
    ck.task_status(&name, "RUNNING", Duration::from_secs(5))
        .map(|_| ())
}

/// `ctr events` while `f` runs; returns its lines.
fn with_events(ck: &Ck, f: impl FnOnce() -> CheckResult) -> Result<Vec<String>, String> {
    let path = ck.env.work.join(format!("events-{}", ck.name));
    let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let argv = ck.env.ctr_argv(&["events"]);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(ck.env.env.iter().map(|(k, v)| (k, v)))
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("ctr events: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let result = f();
    // Let the last events arrive.
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    result?;
    Ok(std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect())
}

/// The topics of container `name`'s events, in order.
fn topics_of(lines: &[String], name: &str) -> Vec<String> {
    let quoted = format!("\"container_id\":\"{name}\"");
    lines
        .iter()
        .filter(|l| l.contains(&quoted))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
        .map(str::to_string)
        .collect()
}

fn oom(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    let lines = with_events(ck, || {
        let o = ck.ctr_run(
            &["--rm", "--memory-limit", "16777216"],
            &name,
            &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        );
        code(&o, 137)
    })?;
    let topics = topics_of(&lines, &name);
    let oom = topics.iter().position(|t| t == "/tasks/oom");
    let exit = topics.iter().position(|t| t == "/tasks/exit");
    expect(matches!((oom, exit), (Some(o), Some(e)) if o < e), || {
        format!("events of {name}: {topics:?}, wanted /tasks/oom before /tasks/exit")
    })
}

fn restart(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(
        &name,
        &[
            "sh",
            "-c",
            "trap 'exit 8' TERM; while :; do sleep 1 & wait $!; done",
        ],
    )?;
    let pid = ck.task_status(&name, "RUNNING", Duration::from_secs(10))?;
    ck.env.stop_containerd();
    expect(Path::new(&format!("/proc/{pid}")).exists(), || {
        "the task died with containerd".to_string()
    })?;
    ck.env.start_containerd()?;
    let again = ck.task_status(&name, "RUNNING", Duration::from_secs(10))?;
    expect(again == pid, || {
        format!("pid {again} after the restart, was {pid}")
    })?;
    let o = ck.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "after",
        &name,
        "echo",
        "still here",
    ]);
    code(&o, 0)?;
    has(&o, "still here")?;
    ck.ok(&["task", "kill", &name])?;
    ck.task_status(&name, "STOPPED", Duration::from_secs(10))?;
    let o = ck.ok(&["task", "delete", &name])?;
    expect(o.stderr.contains("exit code 8"), || {
        failure(&o, "\"exit code 8\"")
    })
}

/// SIGKILL the shim serving a running task: containerd runs the shim's
/// `delete`, which must end the container and leave nothing.
fn shim_killed(ck: &Ck) -> CheckResult {
    let name = ck.c("");
    ck.detached(&name, &["sleep", "300"])?;
    let pid = ck.task_status(&name, "RUNNING", Duration::from_secs(10))?;
    let flag = format!("-id\0{name}\0");
    let shim = std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .flatten()
        .find_map(|e| {
            let p: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains("containerd-shim") && text.contains(&flag)).then_some(p)
        })
        .ok_or_else(|| format!("no shim process with -id {name}"))?;
    // SAFETY: kill(2) of the shim we found; it runs in our pid namespace.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() >= deadline {
            return Err(format!("the task's init {pid} outlived its shim by 15 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = ck.ctr(&["task", "ls"]);
    expect(
        !o.stdout.contains(&format!("{name} ")) || o.stdout.contains("STOPPED"),
        || failure(&o, "no running task"),
    )?;
    // What is not the runtime's to clean: ctr's FIFOs (its `task delete`
    // removes them, and there is no task left to delete), and the stock
    // runc-v2 shim's socket (neither it nor containerd 1.6 removes the
    // socket of a killed shim; this shim's `delete` does).
    for e in std::fs::read_dir(FIFO_DIR).into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir_all(e.path());
    }
    if ck.column == Column::RuncV2 {
        for e in std::fs::read_dir(SOCKET_DIR)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

fn twenty(ck: &Ck) -> CheckResult {
    const N: usize = 20;
    let names: Vec<String> = (0..N).map(|n| ck.c(&format!("-{n}"))).collect();
    let lines = with_events(ck, || {
        let handles: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let argv = ck.run_argv(
                    &["--rm"],
                    name,
                    &["sh", "-c", &format!("sleep 0.{}; exit {}", n % 5, 10 + n)],
                );
                let env = ck.env.env.clone();
                std::thread::spawn(move || {
                    proc::run(
                        &Spec {
                            argv: &argv,
                            stdin: None,
                            tty: false,
                            timeout: Duration::from_secs(120),
                            env: &env,
                        },
                        Path::new(WORK).join("out").as_path(),
                    )
                })
            })
            .collect();
        let mut errors = Vec::new();
        for (n, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(o) if o.code == Some(10 + n as i32) => {}
                Ok(o) => errors.push(failure(&o, &format!("exit {}", 10 + n))),
                Err(_) => errors.push(format!("container {n}: thread panicked")),
            }
        }
        expect(errors.is_empty(), || errors.join("\n      "))
    })?;
    let mut errors = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let quoted = format!("\"container_id\":\"{name}\"");
        let exits: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("/tasks/exit") && l.contains(&quoted))
            .collect();
        let status = format!("\"exit_status\":{}", 10 + n);
        match exits.as_slice() {
            [one] if one.contains(&status) => {}
            other => errors.push(format!(
                "{name}: {} /tasks/exit events, wanted one with {status}: {other:?}",
                other.len()
            )),
        }
    }
    expect(errors.is_empty(), || errors.join("\n      "))
}

fn harness() -> i32 {
    let namespace = std::env::var(NS_ENV).unwrap_or_else(|_| "shimtests".into());
    let work = PathBuf::from(WORK);
    let out = work.join("out");
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("shim tests: {}: {e}", out.display());
        return 2;
    }
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-rrun-v2"));
    let rrun = std::env::var_os("RRUN")
        .map(PathBuf::from)
        .or_else(|| shim.parent().map(|d| d.join("rrun")))
        .filter(|p| p.is_file());
    let shim_dir = shim
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let env = Env {
        out,
        namespace: namespace.clone(),
        rrun,
        env: vec![
            // containerd finds `containerd-shim-rrun-v2` on its PATH.
            (
                "PATH".into(),
                format!("{shim_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ),
            ("HOME".into(), work.display().to_string()),
            ("TMPDIR".into(), "/tmp".into()),
        ],
        shim,
        containerd: Mutex::new(None),
        work,
    };
    let w = |d: &str| env.work.join(d).display().to_string();
    let config = format!(
        "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_tcp_service = true\n{cri}[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n",
        w("root"),
        w("state"),
        w("containerd.sock"),
        w("containerd.sock.ttrpc"),
        w("debug.sock"),
        w("opt"),
        cri = CRI_RUNTIMES,
    );
    let setup = std::fs::write(env.config(), config)
        .map_err(|e| e.to_string())
        .and_then(|()| env.start_containerd())
        .and_then(|()| cri_took_the_recipe(&env.log()))
        .and_then(|()| {
            let tar = image::rootfs_tar(&env.work, None).map_err(|e| format!("{e:#}"))?;
            let archive = image::oci_archive(&env.work, &tar).map_err(|e| format!("{e:#}"))?;
            let o = env.ctr(&["images", "import", &archive.display().to_string()]);
            if o.code != Some(0) {
                return Err(failure(&o, "exit 0"));
            }
            Ok(())
        });
    if let Err(e) = setup {
        println!("setup failed: {e}");
        env.stop_containerd();
        println!("shim: 0 passed, 1 failed");
        return 1;
    }
    let mut columns = vec![Column::Shim];
    if env.rrun.is_some() {
        columns.push(Column::RuncV2);
    } else {
        println!(
            "runc-v2+rrun column skipped: no rrun binary next to the shim (cargo build -p rrun, or RRUN=path)"
        );
    }
    let (mut passed, mut failed) = (0, 0);
    let mut results: HashMap<(usize, Column), bool> = HashMap::new();
    let mut all = checks();
    if let Ok(filter) = std::env::var(FILTER_ENV) {
        all.retain(|(title, _)| title.contains(filter.as_str()));
    }
    for (i, (title, check)) in all.iter().enumerate() {
        for &column in &columns {
            let ck = Ck {
                env: &env,
                column,
                name: format!("c{i}{}", if column == Column::Shim { "s" } else { "r" }),
                made: Mutex::new(Vec::new()),
            };
            let t0 = Instant::now();
            let marks = std::fs::metadata(env.log()).map(|m| m.len()).unwrap_or(0);
            let result = check(&ck);
            if std::env::var_os("SHIM_TESTS_NO_CLEANUP").is_none() {
                ck.cleanup();
            }
            let left = wait_clean(&env);
            let result = match (result, left.is_empty()) {
                (Ok(()), true) => Ok(()),
                (Ok(()), false) => Err(format!("left behind: {}", left.join(", "))),
                (Err(e), true) => Err(e),
                (Err(e), false) => Err(format!("{e}\n      left behind: {}", left.join(", "))),
            };
            let ok = result.is_ok();
            println!(
                "{} {:<13} {title} ({:.1}s)",
                if ok { "pass" } else { "FAIL" },
                column.label(),
                t0.elapsed().as_secs_f64()
            );
            if let Err(e) = result {
                println!("      {e}");
                for line in log_since(&env.log(), marks, 8) {
                    println!("      containerd: {line}");
                }
                // Whatever a failed check left must not fail the next one.
                force_clean(&env);
            }
            results.insert((i, column), ok);
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    env.stop_containerd();
    println!();
    println!(
        "| check | {} |",
        columns
            .iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(columns.len()));
    for (i, (title, _)) in all.iter().enumerate() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| if results[&(i, *c)] { "pass" } else { "FAIL" })
            .collect();
        println!("| {title} | {} |", cells.join(" | "));
    }
    println!();
    println!("shim: {passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// The CRI plugin loaded with both runtimes of the recipe (it logs its
/// configuration when it starts).
fn cri_took_the_recipe(log: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(config) = text
        .lines()
        .find(|l| l.contains("Start cri plugin with config"))
    else {
        return Err(format!(
            "the CRI plugin did not start with the README's runtimes: {}",
            tail(log, 3)
        ));
    };
    for wanted in [
        "rrun:{Type:io.containerd.rrun.v2 ",
        "runc-rrun:{Type:io.containerd.runc.v2 ",
        "BinaryName:/usr/local/bin/rrun",
    ] {
        if !config.contains(wanted) {
            return Err(format!("the CRI plugin's configuration lacks {wanted:?}"));
        }
    }
    Ok(())
}

/// Leftovers, given the shims a moment to exit after their last delete.
fn wait_clean(env: &Env) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = env.leftovers();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After a failed check: every task and container of the namespace goes.
fn force_clean(env: &Env) {
    let o = env.ctr(&["containers", "ls", "-q"]);
    for id in o.stdout.split_whitespace() {
        env.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
        env.ctr(&["task", "delete", "-f", id]);
        env.ctr(&["containers", "delete", id]);
        env.ctr(&["snapshots", "rm", id]);
    }
}

/// Error and warning lines containerd logged since byte `from`.
fn log_since(path: &Path, from: u64, max: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let from = (from as usize).min(text.len());
    let lines: Vec<String> = String::from_utf8_lossy(&text[from..])
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=warning"))
        .filter(|l| !l.contains("cleaning up after shim disconnected"))
        .map(|l| l.trim().to_string())
        .collect();
    lines[lines.len().saturating_sub(max)..].to_vec()
}
