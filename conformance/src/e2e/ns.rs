//! The harness never runs an engine in the machine's own namespaces.
//!
//! * outer (the command the user ran, host namespaces): re-executes itself
//!   under `unshare --mount --propagation private --pid --fork --mount-proc`,
//!   waits, then removes what the engines may have left in the host's
//!   cgroup hierarchies (cgroups are not namespaced) and checks the host's
//!   default engine paths.
//! * init (pid 1 of the new pid namespace, private mounts): puts a tmpfs on
//!   /run and /tmp and a tmpfs-backed overlay on /etc and /var, so that
//!   whatever an engine writes to its default places (/etc/docker/key.json,
//!   /var/lib/containers/cache, /run/containerd...) vanishes with the
//!   namespace; runs the harness as its child and reaps every orphan (the
//!   shims and conmon are reparented to it). When it exits the kernel kills
//!   whatever is left in the namespace.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

pub const STAGE_ENV: &str = "RRUN_E2E_STAGE";
/// Where the harness keeps everything: a directory of the tmpfs on /run.
pub const WORK: &str = "/run/rrun-e2e";

/// Where the process is in the chain outer -> init -> harness (from
/// [`STAGE_ENV`]): a binary built on this module calls [`outer`], [`init`]
/// or its own harness accordingly, with the same arguments each time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Outer,
    Init,
    Harness,
}

impl Stage {
    pub fn current() -> Result<Stage> {
        match std::env::var(STAGE_ENV).unwrap_or_default().as_str() {
            "" => Ok(Stage::Outer),
            "init" => Ok(Stage::Init),
            "harness" => Ok(Stage::Harness),
            s => bail!("unknown {STAGE_ENV} {s}"),
        }
    }
}

/// The names a run is known by on the host: cgroups are not namespaced, so
/// the cgroup parents the engines are told to use (docker's cgroup-parent,
/// ctr's namespace, podman's --cgroup-parent) are the host's. A run refuses
/// to start when one exists: it would not know what it may remove. Each kind
/// of run (rrun-e2e's checks, rrun-bench's engine benchmark) has its own, so
/// that one may run while the other does; none contains "rrun" (see
/// [`super::engines::Engines`]).
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// containerd namespace of the ctr commands; also the cgroup parent of
    /// their containers.
    pub ctr_ns: &'static str,
    /// dockerd's cgroup-parent, below each hierarchy's root.
    pub docker: &'static str,
    /// podman's --cgroup-parent, below each hierarchy's root.
    pub podman: &'static str,
}

impl Names {
    /// rrun-e2e's.
    pub const E2E: Names = Names {
        ctr_ns: "e2e-engines",
        docker: "e2e-engines-docker",
        podman: "e2e-engines-podman",
    };

    pub fn cgroup_parents(&self) -> [&'static str; 3] {
        [self.docker, self.ctr_ns, self.podman]
    }
}

/// Paths an engine writes by default; with the overlays they must not
/// appear on the host.
const HOST_DEFAULT_PATHS: &[&str] = &[
    "/etc/docker/key.json",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/cni",
    "/run/containerd",
    "/run/docker",
    "/run/docker.sock",
    "/run/libpod",
    "/run/containers",
    "/run/runc",
    "/run/rrun",
    "/run/rrun-e2e",
    "/tmp/rrun-e2e",
];

/// The running binary's name ("rrun-e2e", "rrun-bench"), for messages.
pub fn me() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rrun-e2e".to_owned())
}

extern "C" fn ignore(_: libc::c_int) {}

/// Host side: run the namespaced harness, then clean and check the host.
pub fn outer(args: &[String], names: &Names) -> Result<i32> {
    let before: Vec<&str> = HOST_DEFAULT_PATHS
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(p).symlink_metadata().is_ok())
        .collect();
    let existing = cgroup_parent_dirs(names);
    if !existing.is_empty() {
        bail!(
            "these cgroups exist already (a harness still running, or one that was killed): {}; \
             remove them with rmdir when no process is in them",
            existing.join(" ")
        );
    }
    let exe = std::env::current_exe().context("current_exe")?;
    // A handler (not SIG_IGN, which children would inherit): ^C reaches the
    // harness, and this process lives on to clean up after it.
    // SAFETY: installing a handler that does nothing.
    unsafe {
        libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, ignore as *const () as libc::sighandler_t);
    }
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
        .args(args)
        .env(STAGE_ENV, "init")
        .status()
        .context("running unshare (util-linux)")?;
    let mut code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    // The namespace is gone, and every process in it: what the engines left
    // in the cgroup hierarchies is empty and can go.
    let removed = remove_cgroup_parents(names, std::time::Duration::from_secs(5));
    if !removed.is_empty() {
        eprintln!(
            "{}: removed after the run (left by an engine or runtime): {}",
            me(),
            removed.join(" ")
        );
    }
    let left = cgroup_parent_dirs(names);
    let new_paths: Vec<&str> = HOST_DEFAULT_PATHS
        .iter()
        .copied()
        .filter(|p| !before.contains(p) && std::path::Path::new(p).symlink_metadata().is_ok())
        .collect();
    if !left.is_empty() || !new_paths.is_empty() {
        eprintln!(
            "{}: LEFT BEHIND on the host: {} {}",
            me(),
            left.join(" "),
            new_paths.join(" ")
        );
        code = code.max(1);
    } else {
        eprintln!(
            "{}: host checked: no cgroup of the run and no engine default path left",
            me()
        );
    }
    Ok(code)
}

/// pid 1 of the private namespaces.
pub fn init(args: &[String]) -> Result<i32> {
    if std::process::id() != 1 {
        bail!("init stage not pid 1: run rrun-e2e without {STAGE_ENV}");
    }
    private_mounts()?;
    let exe = std::env::current_exe().context("current_exe")?;
    let child = Command::new(exe)
        .args(args)
        .env(STAGE_ENV, "harness")
        .spawn()
        .context("spawning the harness")?;
    let harness = child.id() as i32;
    let code = loop {
        let mut status = 0;
        // SAFETY: waitpid on any child with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            bail!("waitpid: {e}");
        }
        if pid == harness {
            break if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
        }
    };
    drop(child);
    let left = processes_left();
    if !left.is_empty() {
        eprintln!(
            "{}: processes left in the namespace (killed now): {}",
            me(),
            left.join(", ")
        );
        return Ok(code.max(1));
    }
    Ok(code)
}

/// Every live process of the namespace but us, as "pid comm".
pub fn processes_left() -> Vec<String> {
    let mut left = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return left;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == 1 || pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]).unwrap_or("?");
        if state == "Z" || stat.is_empty() {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        left.push(format!("{pid} {}", comm.trim()));
    }
    left
}

fn mount(src: &str, target: &str, fstype: &str, data: &str) -> Result<()> {
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (src_c, target_c, fs_c, data_c) = (c(src), c(target), c(fstype), c(data));
    // SAFETY: NUL-terminated strings, as mount(2) takes them.
    let r = unsafe {
        libc::mount(
            src_c.as_ptr(),
            target_c.as_ptr(),
            fs_c.as_ptr(),
            0,
            data_c.as_ptr().cast(),
        )
    };
    if r != 0 {
        bail!(
            "mount {fstype} on {target} ({data}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn private_mounts() -> Result<()> {
    // unshare made every mount private; check it rather than trust it.
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    if info.lines().any(|l| l.contains(" shared:")) {
        bail!("a mount is still shared with the host: refusing to start engines");
    }
    mount("tmpfs", "/run", "tmpfs", "mode=755")?;
    // /tmp too is an overlay, not an empty tmpfs: what the engines write
    // there stays private, and a checkout under /tmp (a CI clone), with the
    // runtimes under test, stays visible.
    for dir in ["etc", "var", "tmp"] {
        let upper = format!("{WORK}/.overlay/{dir}/upper");
        let work = format!("{WORK}/.overlay/{dir}/work");
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&work)?;
        mount(
            "overlay",
            &format!("/{dir}"),
            "overlay",
            &format!("lowerdir=/{dir},upperdir={upper},workdir={work}"),
        )?;
    }
    Ok(())
}

/// `/sys/fs/cgroup/<hierarchy>/<parent>` for each of our parents that exists.
pub fn cgroup_parent_dirs(names: &Names) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(hier) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    let mut hier: Vec<_> = hier.flatten().map(|e| e.path()).collect();
    hier.sort();
    for h in hier {
        for p in names.cgroup_parents() {
            let d = h.join(p);
            if d.is_dir() {
                found.push(d.display().to_string());
            }
        }
    }
    found
}

/// Directories below `dir`, deepest first.
pub fn subdirs_deepest_first(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(subdirs_deepest_first(&e.path()));
                out.push(e.path());
            }
        }
    }
    out
}

/// rmdir every cgroup below and including our parents (only those: we made
/// them); retries while a dying process still holds one. Returns what it
/// removed below the parents (the parents themselves are expected).
pub fn remove_cgroup_parents(names: &Names, patience: std::time::Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + patience;
    let mut removed = Vec::new();
    loop {
        let mut busy = false;
        for parent in cgroup_parent_dirs(names) {
            let parent = std::path::PathBuf::from(parent);
            for d in subdirs_deepest_first(&parent) {
                match std::fs::remove_dir(&d) {
                    Ok(()) => removed.push(d.display().to_string()),
                    Err(_) => busy = true,
                }
            }
            if std::fs::remove_dir(&parent).is_err() {
                busy = true;
            }
        }
        if !busy || std::time::Instant::now() >= deadline {
            return removed;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
