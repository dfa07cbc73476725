//! One runtime under test: its binary, its own state root and bundle, and
//! the timed invocations of its CLI.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::{self, File};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::isolation::CGROUP_PARENT;

/// Deadline of one CLI invocation: a hung runtime fails the benchmark
/// instead of hanging it.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// A command killed because it outlived its deadline (downcast from the
/// anyhow error of [`Runtime::invoke_with`] and [`time_command`]).
#[derive(Debug)]
pub struct TimedOut {
    pub after: Duration,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timed out after {:.1} s (killed)",
            self.after.as_secs_f64()
        )
    }
}

impl std::error::Error for TimedOut {}

/// What one CLI invocation cost.
pub struct Invocation {
    pub elapsed: Duration,
    /// Peak RSS of the runtime process and the children it waited for.
    pub max_rss_kib: u64,
}

pub struct Runtime {
    pub name: String,
    pub exe: PathBuf,
    /// `<tmp>/<name>`: state root, bundle, pid file and command log.
    dir: PathBuf,
    config: serde_json::Value,
    /// The bundle's own `process.args` (make-bundle.sh's `/bin/true`).
    default_args: serde_json::Value,
    next_id: usize,
    /// Containers that may exist and need `delete --force` at the end.
    pub live: Vec<String>,
}

impl Runtime {
    /// Builds `<tmp>/<name>/bundle` (args `/bin/true`) with make-bundle.sh.
    pub fn prepare(name: &str, exe: PathBuf, tmp: &Path, make_bundle: &Path) -> Result<Self> {
        let dir = tmp.join(name);
        let bundle = dir.join("bundle");
        fs::create_dir_all(dir.join("state"))
            .with_context(|| format!("mkdir {}", dir.display()))?;
        let status = Command::new(make_bundle)
            .arg(&bundle)
            .arg("/bin/true")
            .env("BUNDLE_HOSTNAME", name)
            .status()
            .with_context(|| format!("running {}", make_bundle.display()))?;
        if !status.success() {
            bail!(
                "{} {} failed: {status}",
                make_bundle.display(),
                bundle.display()
            );
        }
        let config_path = bundle.join("config.json");
        let text = fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", config_path.display()))?;
        let default_args = config["process"]["args"].clone();
        Ok(Self {
            name: name.to_owned(),
            exe,
            dir,
            config,
            default_args,
            next_id: 0,
            live: Vec::new(),
        })
    }

    pub fn version(&self) -> String {
        version_line(&self.exe, "--version", "")
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    /// A fresh container id whose config has its own absolute cgroupsPath
    /// `/rrun-bench/<runtime>-<n>`.
    pub fn new_container(&mut self) -> Result<String> {
        self.new_container_running(None)
    }

    /// [`Self::new_container`] whose process is `args` (None: the bundle's
    /// own, `/bin/true`).
    pub fn new_container_running(&mut self, args: Option<&[&str]>) -> Result<String> {
        let id = format!("{}-{}", self.name, self.next_id);
        self.next_id += 1;
        self.config["linux"]["cgroupsPath"] = format!("/{CGROUP_PARENT}/{id}").into();
        self.config["process"]["args"] = match args {
            Some(args) => args.into(),
            None => self.default_args.clone(),
        };
        let path = self.bundle().join("config.json");
        let text = serde_json::to_string_pretty(&self.config).context("serializing config.json")?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        self.live.push(id.clone());
        Ok(id)
    }

    /// A bundle of its own for container `id` (for containers created
    /// concurrently): `<dir>/bundles/<id>/config.json` only, whose
    /// `root.path` is the shared rootfs (read-only) by its absolute path,
    /// the process `args` and the cgroupsPath `/rrun-bench/<id>`.
    pub fn own_bundle(&self, id: &str, args: &[&str]) -> Result<PathBuf> {
        let bundle = self.dir.join("bundles").join(id);
        fs::create_dir_all(&bundle).with_context(|| format!("mkdir {}", bundle.display()))?;
        let mut config = self.config.clone();
        let rootfs = self.bundle().join("rootfs");
        config["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
        config["linux"]["cgroupsPath"] = format!("/{CGROUP_PARENT}/{id}").into();
        config["process"]["args"] = args.into();
        let path = bundle.join("config.json");
        let text = serde_json::to_string_pretty(&config).context("serializing config.json")?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(bundle)
    }

    /// This runtime's working directory, `<tmp>/<name>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `--root` it is given.
    pub fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn forget(&mut self, id: &str) {
        self.live.retain(|live| live != id);
    }

    /// `<exe> --root <state> <args…>`, timed, must exit 0. The container's
    /// own stdio goes to the same log file, never to a pipe we would block on.
    pub fn invoke(&self, args: &[&str]) -> Result<Invocation> {
        self.invoke_with(args, &self.dir.join("last-command.log"), INVOKE_TIMEOUT)
    }

    /// [`Self::invoke`] with the output to `log` (one per thread when
    /// several run at once) and a deadline, after which the runtime
    /// process is killed and the error is a [`TimedOut`].
    pub fn invoke_with(&self, args: &[&str], log: &Path, timeout: Duration) -> Result<Invocation> {
        let mut command = Command::new(&self.exe);
        command.arg("--root").arg(self.state_root()).args(args);
        time_logged(&mut command, log, timeout)
            .with_context(|| format!("{} {}", self.name, args.join(" ")))
    }

    pub fn bundle_arg(&self) -> String {
        self.bundle().to_string_lossy().into_owned()
    }

    pub fn read_init_pid(&self) -> Result<Pid> {
        let path = self.pid_file();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let pid = text
            .trim()
            .parse()
            .with_context(|| format!("bad pid in {}", path.display()))?;
        Ok(Pid::from_raw(pid))
    }
}

/// `argv` (not a runtime's CLI: the floor, strace), timed like
/// [`Runtime::invoke`]: output to `log`, must exit 0 within `timeout`.
pub fn time_command(argv: &[&str], log: &Path, timeout: Duration) -> Result<Invocation> {
    let (program, args) = argv.split_first().context("empty command line")?;
    let mut command = Command::new(program);
    command.args(args);
    time_logged(&mut command, log, timeout).with_context(|| argv.join(" "))
}

/// Runs `command` with stdin null and stdout and stderr to `log` (never a
/// pipe a container could block on), timed from the spawn to its exit.
fn time_logged(command: &mut Command, log: &Path, timeout: Duration) -> Result<Invocation> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let started = Instant::now();
    let (status, max_rss_kib) = spawn_and_wait(command, timeout)?;
    let elapsed = started.elapsed();
    if !status.success() {
        let output = fs::read_to_string(log).unwrap_or_default();
        bail!("failed ({status}): {}", output.trim());
    }
    Ok(Invocation {
        elapsed,
        max_rss_kib,
    })
}

/// The first line of `<exe> <arg>`'s stdout that starts with `prefix`
/// (the prefix removed), trimmed; "version unknown" if none.
pub fn version_line(exe: &Path, arg: &str, prefix: &str) -> String {
    let out = Command::new(exe).arg(arg).stderr(Stdio::null()).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or("version unknown")
        .trim()
        .to_owned()
}

/// Exit status of a finished command, decoded from wait4().
pub struct ExitStatus(libc::c_int);

impl ExitStatus {
    fn success(&self) -> bool {
        libc::WIFEXITED(self.0) && libc::WEXITSTATUS(self.0) == 0
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if libc::WIFEXITED(self.0) {
            write!(f, "exit code {}", libc::WEXITSTATUS(self.0))
        } else {
            write!(f, "killed by signal {}", libc::WTERMSIG(self.0))
        }
    }
}

/// Spawns and reaps with wait4() rather than Child::wait(), to get the
/// child's rusage (its peak RSS) along with its status. A child still
/// running after `timeout` is killed and reaped, and the error is a
/// [`TimedOut`].
fn spawn_and_wait(command: &mut Command, timeout: Duration) -> Result<(ExitStatus, u64)> {
    let child = command.spawn().context("spawn")?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let exited = Pidfd::open(Pid::from_raw(pid)).and_then(|fd| fd.wait(Some(timeout)));
    if !matches!(exited, Ok(true)) {
        // SAFETY: kill(2) of our own child, not reaped yet (its pid is ours).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is a plain C struct of integers; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let errno = Errno::last();
        if errno != Errno::EINTR {
            bail!("wait4({pid}): {errno}");
        }
    }
    if !exited? {
        return Err(TimedOut { after: timeout }.into());
    }
    let max_rss_kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    Ok((ExitStatus(status), max_rss_kib))
}

/// A pidfd, to wait for a process's exit with a deadline.
pub struct Pidfd {
    pid: Pid,
    fd: OwnedFd,
}

impl Pidfd {
    pub fn open(pid: Pid) -> Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        if fd < 0 {
            bail!("pidfd_open({pid}): {}", Errno::last());
        }
        let fd = i32::try_from(fd).context("pidfd out of range")?;
        // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { pid, fd })
    }

    /// Blocks until the process exits (true) or `timeout` passes (false).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = match deadline {
                None => PollTimeout::NONE,
                Some(d) => PollTimeout::try_from(d.saturating_duration_since(Instant::now()))
                    .unwrap_or(PollTimeout::MAX),
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, left) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(e) => bail!("poll(pidfd of {}): {e}", self.pid),
            }
        }
    }
}

/// Waits (at most `timeout`) for the exit of `pid`, a container's init
/// that is our child once its runtime's `create` returned (we are a child
/// subreaper), and reaps it; ECHILD (not ours) counts as reaped once it
/// has exited.
pub fn wait_init(pid: Pid, timeout: Duration) -> Result<()> {
    if !Pidfd::open(pid)?.wait(Some(timeout))? {
        bail!("init {pid} still running after {} s", timeout.as_secs());
    }
    match waitpid(pid, None) {
        Ok(_) | Err(Errno::ECHILD) => Ok(()),
        Err(e) => bail!("waitpid({pid}): {e}"),
    }
}

/// A pidfd of a created container's init, opened before `start` so that
/// the wait is for exactly that process even if its pid is later reused.
pub struct InitHandle {
    pid: Pid,
    pidfd: Pidfd,
}

impl InitHandle {
    pub fn open(pid: Pid) -> Result<Self> {
        Ok(Self {
            pid,
            pidfd: Pidfd::open(pid)?,
        })
    }

    /// Blocks until the init exits (at most [`INVOKE_TIMEOUT`]), then reaps
    /// it if it is our child (we are a child subreaper, so orphaned inits
    /// are).
    pub fn wait_for_exit(self) -> Result<()> {
        if !self.pidfd.wait(Some(INVOKE_TIMEOUT))? {
            bail!(
                "init {} still running after {} s",
                self.pid,
                INVOKE_TIMEOUT.as_secs()
            );
        }
        match waitpid(self.pid, None) {
            Ok(_) | Err(Errno::ECHILD) => Ok(()),
            Err(e) => bail!("waitpid({}): {e}", self.pid),
        }
    }
}

/// Reaps every exited child (helper processes the runtimes left to their
/// caller's reaper), without blocking on live ones.
pub fn reap_exited_children() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
