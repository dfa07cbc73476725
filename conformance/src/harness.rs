//! What every case uses: the runtime under test, its CLI, bundles, waiting,
//! and the leftovers check.

use anyhow::{Context, Result};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::io::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What this machine offers (cgroup files, I/O schedulers, swap
/// accounting, the kernel's version...), shared with the cargo tests: a
/// case asks before it relies on any of it.
#[path = "../../runtime/tests/common/host.rs"]
pub mod host;

/// The parent of every cgroup the suite asks for (`linux.cgroupsPath`).
pub const CGROUP_PARENT: &str = "rrun-conformance";
/// Safety bound on any single runtime call, so a hung runtime cannot hang the suite.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// A runtime given on the command line as `name=path`.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
}

/// The `ociVersion` bundles say: the newest the suite knows (its cases
/// use 1.2 fields), unless a runtime refuses it.
pub const OCI_VERSION: &str = "1.2.0";
/// What is tried when a runtime refuses a version, newest first.
const OCI_VERSIONS: &[&str] = &[OCI_VERSION, "1.1.0", "1.0.2"];

/// The version each runtime's bundles say, by runtime name, and why
/// [`OCI_VERSION`] was not it (see [`probe_oci_version`]).
static OCI_VERSION_OF: std::sync::Mutex<Vec<(String, String, Option<String>)>> =
    std::sync::Mutex::new(Vec::new());

/// The `ociVersion` for the bundles of the runtime named `name`.
pub fn oci_version_of(name: &str) -> String {
    let table = OCI_VERSION_OF.lock().unwrap_or_else(|e| e.into_inner());
    table
        .iter()
        .find(|(n, _, _)| n == name)
        .map_or_else(|| OCI_VERSION.to_string(), |(_, v, _)| v.clone())
}

/// Why the runtime named `name` does not get [`OCI_VERSION`] (its error),
/// if it does not.
pub fn oci_version_refused(name: &str) -> Option<String> {
    let table = OCI_VERSION_OF.lock().unwrap_or_else(|e| e.into_inner());
    table
        .iter()
        .find(|(n, _, _)| n == name)
        .and_then(|(_, _, why)| why.clone())
}

/// Find the newest `ociVersion` the runtime accepts: create (then delete)
/// a container from the default bundle with each of [`OCI_VERSIONS`]
/// until the runtime stops refusing the version itself (an error that
/// names the version: crun 1.8 takes only 1.0.x and says "unknown version
/// specified"). Any other failure keeps the version: the cases will say
/// what fails. Returns a line for the notes when the version is not
/// [`OCI_VERSION`].
pub fn probe_oci_version(runtime: &Runtime, base: &Path, checker: &Path) -> Option<String> {
    let work = base.join(format!("oci-version-{}", runtime.name));
    let root = work.join("root");
    let mut chosen = OCI_VERSION.to_string();
    let mut refused: Option<String> = None;
    for (n, version) in OCI_VERSIONS.iter().enumerate() {
        let id = format!("oci-version-{}-{n}", runtime.name);
        let cgroups_path = format!("/{CGROUP_PARENT}/{id}-{}", std::process::id());
        let Ok(mut bundle) = Bundle::create(&work.join(&id), checker, &cgroups_path) else {
            break;
        };
        bundle.config["ociVersion"] = serde_json::json!(version);
        bundle.set_args(&["true"]);
        if bundle.write().is_err() {
            break;
        }
        let call = |args: &[&str], n: &str| {
            let mut cmd = Command::new(&runtime.path);
            cmd.arg("--root").arg(&root).args(args);
            let (out, err) = (work.join(format!("{n}.out")), work.join(format!("{n}.err")));
            let code = run_to_files(&mut cmd, &out, &err, Vec::new());
            (code, fs::read_to_string(&err).unwrap_or_default())
        };
        let (code, err) = call(&["create", "--bundle", &bundle.dir_str(), &id], &id);
        call(&["delete", "--force", &id], &format!("{id}-delete"));
        for dir in cgroup_dirs(&cgroups_path) {
            let _ = wait_gone(&dir);
        }
        chosen = version.to_string();
        let about_version = err.to_lowercase().contains("version");
        if code == 0 || !about_version {
            break;
        }
        let line = err.trim().lines().last().unwrap_or("").to_string();
        if refused.is_none() {
            refused = Some(format!("ociVersion {version}: {line}"));
        }
    }
    let _ = fs::remove_dir_all(&work);
    let note = refused
        .as_ref()
        .map(|why| format!("bundles say ociVersion {chosen}: the runtime refuses {why}"));
    OCI_VERSION_OF
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((runtime.name.clone(), chosen, refused));
    note
}

/// What a case returns: `Ok(Pass)`, `Ok(Skip(why))`, or `Err(why it failed)`.
pub enum Outcome {
    Pass,
    Skip(String),
}
pub type CaseResult = Result<Outcome, String>;

/// Fail the case with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Turn any error into a case failure with context.
pub fn ctx<T, E: std::fmt::Display>(r: std::result::Result<T, E>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// The exit code recorded for a runtime call that outlived CLI_TIMEOUT.
pub const TIMED_OUT: i32 = -2;

/// The result of one runtime CLI call. stdout/stderr go to files, not pipes:
/// a created container inherits them and would keep a pipe open forever.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub log: String,
    pub stdout_path: PathBuf,
}

impl Output {
    /// The error text the runtime produced (stderr, else its log).
    pub fn error_text(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.log
        } else {
            &self.stderr
        };
        text.trim().to_string()
    }

    /// One line for notes: exit code and the first line of the error text.
    pub fn summary(&self) -> String {
        if self.code == TIMED_OUT {
            return format!("timed out after {}s and was killed", CLI_TIMEOUT.as_secs());
        }
        let first = self.error_text().lines().next().unwrap_or("").to_string();
        format!("exit {}: {}", self.code, first)
    }

    /// Re-read stdout: the container process may have written to it later.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// The checker's report, once the container has written it to this
    /// call's stdout (a bounded wait, never an assertion on time).
    pub fn wait_report(&self) -> Result<Value, String> {
        let mut report = Err(String::new());
        wait_until(Duration::from_secs(20), || {
            report = parse_report(&self.stdout_now());
            report.is_ok()
        });
        report.map_err(|e| format!("no report from inside: {e}"))
    }
}

/// Options of one CLI call beyond its arguments.
#[derive(Default)]
pub struct CallOpts {
    /// (host fd, target fd) pairs dup2'ed into the runtime process
    /// (for --preserve-fds, and to leak fds on purpose).
    pub fds: Vec<(RawFd, RawFd)>,
}

/// Everything one case needs against one runtime.
pub struct Env<'a> {
    pub runtime: &'a Runtime,
    pub case: &'a str,
    pub root: PathBuf,
    pub work: PathBuf,
    pub checker: PathBuf,
    calls: Cell<u32>,
    ids: RefCell<Vec<String>>,
    cleanups: RefCell<Vec<Box<dyn FnOnce()>>>,
    notes: RefCell<Vec<String>>,
    checks: RefCell<Vec<(String, Option<String>)>>,
}

impl<'a> Env<'a> {
    pub fn new(
        runtime: &'a Runtime,
        case: &'a str,
        root: &Path,
        base: &Path,
        checker: &Path,
    ) -> Result<Self> {
        let work = base.join(format!("{}-{}", runtime.name, case));
        fs::create_dir_all(&work).with_context(|| format!("mkdir {}", work.display()))?;
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755))?;
        Ok(Env {
            runtime,
            case,
            root: root.to_path_buf(),
            work,
            checker: checker.to_path_buf(),
            calls: Cell::new(0),
            ids: RefCell::new(Vec::new()),
            cleanups: RefCell::new(Vec::new()),
            notes: RefCell::new(Vec::new()),
            checks: RefCell::new(Vec::new()),
        })
    }

    /// A container id unique to this case and runtime; remembered for cleanup.
    pub fn id(&self, suffix: &str) -> String {
        let id = format!(
            "{}-{}-{}",
            self.case.replace('.', "-"),
            self.runtime.name,
            suffix
        );
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// The absolute, test-owned cgroups path of a container id.
    pub fn cgroups_path(&self, id: &str) -> String {
        format!("/{CGROUP_PARENT}/{id}-{}", std::process::id())
    }

    /// Something worth showing under the table even when the case passes
    /// (the runtime's error line, the attacker's attempts).
    pub fn note(&self, text: String) {
        self.notes.borrow_mut().push(text);
    }

    /// A named sub-check of this case (`<case>#<name>` in requirements.rs):
    /// lets one container run prove several rows independently.
    pub fn check(&self, name: &str, problem: Option<String>) {
        self.checks.borrow_mut().push((name.to_string(), problem));
    }

    pub fn take_checks(&self) -> Vec<(String, Option<String>)> {
        self.checks.borrow_mut().drain(..).collect()
    }

    pub fn take_notes(&self) -> Vec<String> {
        self.notes.borrow_mut().drain(..).collect()
    }

    /// Run something when the case ends (kill a helper, remove a netns...).
    pub fn on_cleanup(&self, f: impl FnOnce() + 'static) {
        self.cleanups.borrow_mut().push(Box::new(f));
    }

    /// A fresh bundle for container `id` in this case's work dir, with the
    /// newest `ociVersion` this runtime accepts ([`probe_oci_version`]).
    pub fn bundle(&self, id: &str) -> Result<Bundle, String> {
        let mut bundle = ctx(
            Bundle::create(
                &self.work.join(format!("bundle-{id}")),
                &self.checker,
                &self.cgroups_path(id),
            ),
            "build bundle",
        )?;
        bundle.config["ociVersion"] = serde_json::json!(oci_version_of(&self.runtime.name));
        Ok(bundle)
    }

    /// `<runtime> --root R --log L --log-format json <args>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_opts(args, CallOpts::default())
    }

    pub fn cli_opts(&self, args: &[&str], opts: CallOpts) -> Output {
        let n = self.calls.get() + 1;
        self.calls.set(n);
        let out_path = self.work.join(format!("call-{n}.out"));
        let err_path = self.work.join(format!("call-{n}.err"));
        let log_path = self.work.join(format!("call-{n}.log"));
        let mut cmd = Command::new(&self.runtime.path);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&log_path)
            .args(["--log-format", "json"])
            .args(args);
        let code = run_to_files(&mut cmd, &out_path, &err_path, opts.fds);
        Output {
            code,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            log: fs::read_to_string(&log_path).unwrap_or_default(),
            stdout_path: out_path,
        }
    }

    /// `create --bundle B id`, failing the case if it fails.
    pub fn create(&self, bundle: &Bundle, id: &str) -> Result<Output, String> {
        let out = self.cli(&["create", "--bundle", &bundle.dir_str(), id]);
        ensure!(out.code == 0, "create {id}: {}", out.summary());
        Ok(out)
    }

    pub fn start(&self, id: &str) -> Result<Output, String> {
        let out = self.cli(&["start", id]);
        ensure!(out.code == 0, "start {id}: {}", out.summary());
        Ok(out)
    }

    /// The parsed `state <id>` output.
    pub fn state(&self, id: &str) -> Result<Value, String> {
        let out = self.cli(&["state", id]);
        ensure!(out.code == 0, "state {id}: {}", out.summary());
        ctx(serde_json::from_str(&out.stdout), "parse state JSON")
    }

    pub fn status(&self, id: &str) -> Result<String, String> {
        Ok(self.state(id)?["status"].as_str().unwrap_or("").to_string())
    }

    /// Wait (bounded) until the container's status is `want`.
    pub fn wait_status(&self, id: &str, want: &str) -> Result<(), String> {
        let mut last = String::new();
        let reached = wait_until(Duration::from_secs(20), || {
            last = self.status(id).unwrap_or_else(|e| e);
            last == want
        });
        ensure!(reached, "{id} never reached status {want:?} (last: {last})");
        Ok(())
    }

    /// `run --bundle B id` in the foreground with the bundle's config;
    /// returns the output (the container's stdout is the runtime's).
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.cli(&["run", "--bundle", &bundle.dir_str(), id])
    }

    /// Run the bundle (whose process is the checker's `report`) and parse the report.
    pub fn report(&self, bundle: &Bundle, id: &str) -> Result<Value, String> {
        bundle.write()?;
        let out = self.run(bundle, id);
        ensure!(out.code == 0, "run {id}: {}", out.summary());
        parse_report(&out.stdout)
    }

    /// Delete every container of this case, run cleanups, check leftovers.
    /// Returns a failure reason if the runtime left a state dir or cgroup behind.
    pub fn finish(&self) -> Option<String> {
        let mut problems = Vec::new();
        for id in self.ids.borrow().iter() {
            let _ = self.cli(&["kill", id, "KILL"]);
            let _ = self.cli(&["delete", "--force", id]);
            if self.root.join(id).exists() {
                problems.push(format!(
                    "state dir {} left after delete --force",
                    self.root.join(id).display()
                ));
            }
            for dir in cgroup_dirs(&self.cgroups_path(id)) {
                if dir.exists() && wait_gone(&dir).is_err() {
                    problems.push(format!("cgroup {} left behind", dir.display()));
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
        // Last resort for a runtime that lost track of its container: the
        // processes rooted in this case's bundles were started for this case.
        let mut strays = processes_rooted_in(&self.work);
        for id in self.ids.borrow().iter() {
            strays.extend(processes_in_cgroup(&self.cgroups_path(id)));
        }
        strays.sort();
        strays.dedup();
        if !strays.is_empty() {
            problems.push(format!("processes left running in the bundles: {strays:?}"));
            for pid in &strays {
                if let Ok(pid) = pid.parse::<libc::pid_t>() {
                    // SAFETY: kill(2) on a pid whose root is inside our own bundle dir.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for f in self.cleanups.borrow_mut().drain(..).rev() {
            f();
        }
        let _ = fs::remove_dir_all(&self.work);
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// A cgroup dir may take a moment to go after its last process is reaped.
fn wait_gone(dir: &Path) -> Result<(), ()> {
    if wait_until(Duration::from_secs(5), || {
        let _ = fs::remove_dir(dir);
        !dir.exists()
    }) {
        Ok(())
    } else {
        Err(())
    }
}

/// Every host directory a cgroups path maps to on this host: one per v1
/// hierarchy (named ones included) and the hybrid cgroup2 tree, or the
/// one directory of a unified host.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    host::cgroup_dirs(cgroups_path)
}

/// A file of the container's cgroup holding `controller`'s files (its v1
/// hierarchy's directory, or its cgroup on a unified host).
pub fn cgroup_file(cgroups_path: &str, controller: &str, file: &str) -> PathBuf {
    host::cgroup_file(controller, cgroups_path, file)
}

/// Remove the suite's parent cgroup dirs (only if empty: rmdir refuses otherwise).
pub fn remove_cgroup_parents() {
    for dir in cgroup_dirs(&format!("/{CGROUP_PARENT}")) {
        let _ = fs::remove_dir(dir);
    }
}

pub fn parse_report(stdout: &str) -> Result<Value, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    let line =
        line.ok_or_else(|| format!("no checker report in output {:?}", truncate(stdout, 200)))?;
    ctx(serde_json::from_str(line.trim()), "parse checker report")
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Poll `cond` every 20ms until it holds or `limit` passes (a safety bound,
/// never a timing assertion).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawn `cmd` with stdout/stderr in files and wait (bounded) for its exit code.
fn run_to_files(cmd: &mut Command, out: &Path, err: &Path, fds: Vec<(RawFd, RawFd)>) -> i32 {
    let (Ok(o), Ok(e)) = (fs::File::create(out), fs::File::create(err)) else {
        return -1;
    };
    cmd.stdin(Stdio::null()).stdout(o).stderr(e);
    if !fds.is_empty() {
        // SAFETY: between fork and exec we only call dup2 and fcntl, which are
        // async-signal-safe, on fds that exist in the child; the Vec was
        // allocated before the fork and is only read.
        unsafe {
            cmd.pre_exec(move || {
                for (src, dst) in &fds {
                    // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                    let rc = if src == dst {
                        libc::fcntl(*src, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(*src, *dst)
                    };
                    if rc < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    match cmd.spawn() {
        Ok(child) => wait_child(child, CLI_TIMEOUT),
        Err(e) => {
            let _ = fs::write(err, format!("spawn failed: {e}"));
            -1
        }
    }
}

/// Wait for a child, killing it if it outlives `limit`; exit code, or 128+signal.
pub fn wait_child(mut child: std::process::Child, limit: Duration) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return TIMED_OUT;
            }
        }
    }
}

/// A bundle directory: `config.json` + a busybox rootfs with the checker.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn create(dir: &Path, checker: &Path, cgroups_path: &str) -> Result<Bundle> {
        let rootfs = dir.join("rootfs");
        for sub in ["bin", "proc", "sys", "dev", "tmp", "etc", "home", "mnt"] {
            fs::create_dir_all(rootfs.join(sub)).with_context(|| format!("mkdir rootfs/{sub}"))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).context("copy /bin/busybox")?;
        for applet in crate::spec::APPLETS {
            symlink("busybox", rootfs.join("bin").join(applet))?;
        }
        fs::copy(checker, rootfs.join("checker"))
            .with_context(|| format!("copy checker {}", checker.display()))?;
        fs::set_permissions(rootfs.join("checker"), fs::Permissions::from_mode(0o755))?;
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
        fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
        let config = crate::spec::default_config("rrun-conformance", cgroups_path);
        Ok(Bundle {
            dir: dir.to_path_buf(),
            config,
        })
    }

    pub fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn write(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.config).map_err(|e| e.to_string())?;
        ctx(
            fs::write(self.dir.join("config.json"), text),
            "write config.json",
        )
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = serde_json::json!(args);
    }

    /// Append a mount entry.
    pub fn add_mount(&mut self, mount: Value) {
        if let Some(list) = self.config["mounts"].as_array_mut() {
            list.push(mount);
        }
    }

    /// Set the namespace list to exactly these types.
    pub fn set_namespaces(&mut self, types: &[&str]) {
        let list: Vec<Value> = types
            .iter()
            .map(|t| serde_json::json!({"type": t}))
            .collect();
        self.config["linux"]["namespaces"] = Value::Array(list);
    }

    /// Bind-mount a fresh host dir into the container at `dest` (read-write),
    /// returning the host dir.
    pub fn share_dir(&mut self, dest: &str) -> Result<PathBuf, String> {
        let host = self.dir.join(format!("shared{}", dest.replace('/', "_")));
        ctx(fs::create_dir_all(&host), "mkdir shared dir")?;
        ctx(
            fs::set_permissions(&host, fs::Permissions::from_mode(0o777)),
            "chmod shared dir",
        )?;
        self.add_mount(serde_json::json!({
            "destination": dest, "type": "bind", "source": host.display().to_string(),
            "options": ["rbind", "rw"]
        }));
        Ok(host)
    }
}

/// Namespace inodes of a host process (`/proc/<pid>/ns/<ns>`).
pub fn ns_inode(pid: &str, ns: &str) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
    let s = link.to_string_lossy().into_owned();
    s.split('[').nth(1)?.trim_end_matches(']').parse().ok()
}

/// Is any process rooted inside `dir` (e.g. a container init left behind)?
pub fn processes_rooted_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = dir.display().to_string();
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let root = fs::read_link(format!("/proc/{pid}/root")).ok()?;
            root.display()
                .to_string()
                .starts_with(&prefix)
                .then_some(pid)
        })
        .collect()
}

/// Processes in the cgroup `cgroups_path` (any hierarchy), from /proc/*/cgroup.
pub fn processes_in_cgroup(cgroups_path: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let suffix = format!(":{cgroups_path}");
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            text.lines().any(|l| l.ends_with(&suffix)).then_some(pid)
        })
        .collect()
}

/// Host mountinfo lines mentioning `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = dir.display().to_string();
    text.lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

pub fn pid_alive(pid: i64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // A zombie has exited: field 3 (after the parenthesised comm) is its state.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    state != Some("Z")
}
