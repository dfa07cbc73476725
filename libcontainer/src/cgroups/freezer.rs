//! Freezing and thawing a container's cgroup, and reading whether it is
//! frozen: the v1 freezer (`freezer.state`) on legacy and hybrid hosts, the
//! cgroup2 freezer (`cgroup.freeze`, `cgroup.events`) on unified ones, and
//! on a hybrid host without a v1 freezer hierarchy, the container's own
//! directory in the cgroup2 tree (rrun makes one there, as runc does).
//!
//! rrun works on the files itself rather than through libcgroups' freezer,
//! so that a v2 freeze waits on `cgroup.events` notifications instead of
//! sleeping, and so that "is it frozen?" (asked for every `state` and
//! `list`) costs two small reads.

use super::{CgroupError, CGROUP_ROOT};
use nix::errno::Errno;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const V1_STATE: &str = "freezer.state";
const V1_SELF_FREEZING: &str = "freezer.self_freezing";
const V2_FREEZE: &str = "cgroup.freeze";
const V2_EVENTS: &str = "cgroup.events";

/// Re-reads of freezer.state before a v1 freeze gives up. The kernel
/// reports FREEZING until every task has reached the refrigerator; the
/// v1 freezer sends no notification, so the state is re-read.
const V1_FREEZE_ATTEMPTS: u32 = 1000;
/// Every this many FREEZING reads, thaw and freeze again: a task caught in
/// the middle of a vfork or a fork can keep the cgroup in FREEZING (runc
/// does the same).
const V1_REFREEZE_EVERY: u32 = 50;
/// v2: how many `cgroup.events` notifications (or poll timeouts, after
/// which the file is read again anyway) to wait for.
const V2_WAIT_ROUNDS: u32 = 100;
const V2_POLL_TIMEOUT_MS: u16 = 100;

#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    #[error("{op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{path}: still {state} after {attempts} attempts to freeze; thawed again")]
    Stuck {
        path: PathBuf,
        state: String,
        attempts: u32,
    },
    #[error("{path}: unexpected content {content:?}")]
    Unexpected { path: PathBuf, content: String },
    #[error("cgroup {path:?}: not a container cgroup (root or '..')")]
    BadPath { path: PathBuf },
}

impl From<FreezerError> for CgroupError {
    fn from(e: FreezerError) -> CgroupError {
        let path = match &e {
            FreezerError::Sys { path, .. }
            | FreezerError::Stuck { path, .. }
            | FreezerError::Unexpected { path, .. }
            | FreezerError::BadPath { path } => path.clone(),
        };
        CgroupError::Manager {
            path,
            why: format!("freezer: {e}"),
        }
    }
}

/// The freezer of one cgroup: the directory that holds its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freezer {
    /// `<v1 freezer hierarchy>/<path>` with `freezer.state`.
    V1(PathBuf),
    /// `<cgroup2 mount>/<path>` with `cgroup.freeze` and `cgroup.events`.
    V2(PathBuf),
}

/// The freezer of the container cgroup `path` (as in `linux.cgroupsPath`
/// resolved: relative to every hierarchy's root).
pub fn freezer_for(path: &Path) -> Result<Freezer, FreezerError> {
    let rel = super::relative_dir(path).map_err(|_| FreezerError::BadPath {
        path: path.to_path_buf(),
    })?;
    let rel = rel.as_path();
    Ok(match mounts() {
        Mounts {
            v1: Some(v1),
            unified: false,
            ..
        } => Freezer::V1(v1.join(rel)),
        Mounts { v2: Some(v2), .. } => Freezer::V2(v2.join(rel)),
        // No freezer mounted anywhere: reads say "not frozen", writes fail
        // naming this path.
        _ => Freezer::V1(Path::new(CGROUP_ROOT).join("freezer").join(rel)),
    })
}

/// Whether the container cgroup `path` is frozen now (the status `paused`).
/// A cgroup that does not exist, or a path rrun would never manage, is not.
pub fn is_paused(path: &Path) -> bool {
    freezer_for(path)
        .and_then(|f| f.is_frozen())
        .unwrap_or(false)
}

/// Where the freezers are mounted, looked up once per process.
struct Mounts {
    /// The v1 freezer hierarchy, if mounted.
    v1: Option<PathBuf>,
    /// The cgroup2 mount (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    v2: Option<PathBuf>,
    /// A pure cgroup2 host.
    unified: bool,
}

fn mounts() -> &'static Mounts {
    static MOUNTS: OnceLock<Mounts> = OnceLock::new();
    // One mountinfo read of our own (libcgroups' lookups open a hardened
    // procfs handle and parse mountinfo once per question): `state` and
    // `list` come through here.
    MOUNTS.get_or_init(|| match super::resources::Host::probe() {
        Ok(host) => Mounts {
            v1: host.v1.get("freezer").cloned(),
            unified: matches!(host.setup, libcgroups::common::CgroupSetup::Unified),
            v2: host.unified,
        },
        Err(_) => Mounts {
            v1: None,
            v2: None,
            unified: false,
        },
    })
}

impl Freezer {
    pub fn dir(&self) -> &Path {
        match self {
            Freezer::V1(dir) | Freezer::V2(dir) => dir,
        }
    }

    /// Freeze every process of the cgroup and its children; returns once
    /// the kernel says the whole cgroup is frozen. On failure the cgroup is
    /// thawed again: a half-frozen container is worse than a running one.
    pub fn freeze(&self) -> Result<(), FreezerError> {
        let result = match self {
            Freezer::V1(dir) => v1_freeze(dir),
            Freezer::V2(dir) => v2_set(dir, true),
        };
        if result.is_err() {
            let _ = self.write_thawed();
        }
        result
    }

    /// Thaw the cgroup; returns once the kernel says it is thawed.
    pub fn thaw(&self) -> Result<(), FreezerError> {
        match self {
            Freezer::V1(dir) => write(&dir.join(V1_STATE), "THAWED"),
            Freezer::V2(dir) => v2_set(dir, false),
        }
    }

    fn write_thawed(&self) -> Result<(), FreezerError> {
        match self {
            Freezer::V1(dir) => write(&dir.join(V1_STATE), "THAWED"),
            Freezer::V2(dir) => write(&dir.join(V2_FREEZE), "0"),
        }
    }

    /// Whether this cgroup itself was frozen (v1: FROZEN or FREEZING with
    /// self_freezing set, as runc reads it; v2: `cgroup.freeze` is 1). A
    /// cgroup frozen only because an ancestor is does not count, and a
    /// cgroup that does not exist is not frozen.
    pub fn is_frozen(&self) -> Result<bool, FreezerError> {
        match self {
            Freezer::V1(dir) => {
                let Some(state) = read_if_exists(&dir.join(V1_STATE))? else {
                    return Ok(false);
                };
                if state.trim() == "THAWED" {
                    return Ok(false);
                }
                // Kernels without self_freezing: FROZEN means frozen.
                let own = read_if_exists(&dir.join(V1_SELF_FREEZING))?;
                Ok(own.is_none_or(|s| s.trim() != "0"))
            }
            Freezer::V2(dir) => {
                Ok(read_if_exists(&dir.join(V2_FREEZE))?.is_some_and(|s| s.trim() == "1"))
            }
        }
    }
}

/// v1: write FROZEN and re-read until the kernel reports FROZEN. Bounded
/// by attempts; between reads the thread yields, so that the tasks being
/// frozen get the CPU, and every so often it thaws and freezes again.
fn v1_freeze(dir: &Path) -> Result<(), FreezerError> {
    let file = dir.join(V1_STATE);
    write(&file, "FROZEN")?;
    let mut state = String::new();
    for attempt in 1..=V1_FREEZE_ATTEMPTS {
        state = read(&file)?.trim().to_string();
        match state.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" if attempt % V1_REFREEZE_EVERY == 0 => {
                write(&file, "THAWED")?;
                write(&file, "FROZEN")?;
            }
            "FREEZING" => backoff(attempt),
            // Someone thawed it meanwhile: ask again.
            "THAWED" => write(&file, "FROZEN")?,
            _ => {
                return Err(FreezerError::Unexpected {
                    path: file,
                    content: state,
                })
            }
        }
    }
    Err(FreezerError::Stuck {
        path: file,
        state,
        attempts: V1_FREEZE_ATTEMPTS,
    })
}

/// Yield first (freezing usually completes within a few scheduler
/// rounds), then sleep a little longer each time, up to 10 ms.
fn backoff(attempt: u32) {
    if attempt < 20 {
        std::thread::yield_now();
    } else {
        let micros = u64::from(attempt).saturating_mul(50).min(10_000);
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
}

/// v2: write `cgroup.freeze`, then wait until `cgroup.events` says
/// `frozen 0|1`: the kernel notifies pollers of that file (POLLPRI) when it
/// changes.
fn v2_set(dir: &Path, frozen: bool) -> Result<(), FreezerError> {
    let events_path = dir.join(V2_EVENTS);
    let events = std::fs::File::open(&events_path).map_err(io_err("open", &events_path))?;
    write(&dir.join(V2_FREEZE), if frozen { "1" } else { "0" })?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let mut content = String::new();
    for _ in 0..V2_WAIT_ROUNDS {
        content = pread_all(&events, &events_path)?;
        if content.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        wait_modified(&events, &events_path)?;
    }
    Err(FreezerError::Stuck {
        path: events_path,
        state: content.replace('\n', ", "),
        attempts: V2_WAIT_ROUNDS,
    })
}

/// Block until kernfs signals a change of the file (or a short timeout,
/// after which the caller reads it again anyway).
fn wait_modified(file: &std::fs::File, path: &Path) -> Result<(), FreezerError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
    match poll(&mut fds, PollTimeout::from(V2_POLL_TIMEOUT_MS)) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(FreezerError::Sys {
            op: "poll",
            path: path.to_path_buf(),
            errno,
        }),
    }
}

/// Read a kernfs file from its start through one open fd (re-reading from
/// offset 0 is what re-arms its poll notification).
fn pread_all(file: &std::fs::File, path: &Path) -> Result<String, FreezerError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4096];
    let n = file.read_at(&mut buf, 0).map_err(io_err("read", path))?;
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn read(path: &Path) -> Result<String, FreezerError> {
    crate::utils::read_kernel_record(path).map_err(io_err("read", path))
}

fn read_if_exists(path: &Path) -> Result<Option<String>, FreezerError> {
    match crate::utils::read_kernel_record(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // ENODEV: the cgroup is being removed.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn write(path: &Path, value: &str) -> Result<(), FreezerError> {
    std::fs::write(path, value).map_err(io_err("write", path))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> FreezerError + 'a {
    move |e| FreezerError::Sys {
        op,
        path: path.to_path_buf(),
        errno: crate::utils::io_errno(&e),
    }
}

#[cfg(test)]
mod tests {
    //! Real cgroups (as root): a cgroup of the test's own in the v1 freezer
    //! hierarchy and one in the cgroup2 tree, each holding a busybox sleep.

    use super::*;
    use std::process::{Child, Command};

    /// A cgroup directory of this test holding one `sleep`; on drop the
    /// sleep is killed (after a thaw) and the directory removed.
    struct TestCgroup {
        freezer: Freezer,
        child: Child,
    }

    impl TestCgroup {
        fn new(freezer: Freezer) -> Option<TestCgroup> {
            std::fs::create_dir(freezer.dir()).ok()?;
            let child = Command::new("/bin/busybox")
                .args(["sleep", "1000"])
                .spawn()
                .unwrap();
            let cg = TestCgroup { freezer, child };
            write(
                &cg.freezer.dir().join("cgroup.procs"),
                &cg.child.id().to_string(),
            )
            .unwrap();
            Some(cg)
        }

        /// v1: the task sleeps in the refrigerator (state D, whatever it
        /// did before); v2: `cgroup.events` says `frozen 1` (v2-frozen tasks
        /// sleep in a job-control trap and show S).
        fn kernel_says_frozen(&self) -> bool {
            match &self.freezer {
                Freezer::V1(_) => self.task_state() == "D",
                Freezer::V2(dir) => read(&dir.join(V2_EVENTS)).unwrap().contains("frozen 1"),
            }
        }

        /// The task's state letter from /proc/<pid>/stat.
        fn task_state(&self) -> String {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after[..1].to_string()
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = self.freezer.thaw();
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir(self.freezer.dir());
        }
    }

    fn name(kind: &str) -> String {
        format!("rrun-test-freezer-{kind}-{}", std::process::id())
    }

    fn roundtrip(cg: &TestCgroup) {
        assert!(!cg.freezer.is_frozen().unwrap());
        cg.freezer.freeze().unwrap();
        assert!(cg.freezer.is_frozen().unwrap());
        assert!(cg.kernel_says_frozen(), "the kernel does not say frozen");
        cg.freezer.freeze().unwrap();
        cg.freezer.thaw().unwrap();
        assert!(!cg.freezer.is_frozen().unwrap());
        assert!(!cg.kernel_says_frozen(), "still frozen after thaw");
    }

    #[test]
    fn v1_freezer_freezes_and_thaws() {
        let Some(root) = mounts().v1.clone() else {
            eprintln!("no v1 freezer hierarchy: skipped");
            return;
        };
        let cg = TestCgroup::new(Freezer::V1(root.join(name("v1")))).expect("mkdir");
        roundtrip(&cg);
    }

    #[test]
    fn v2_freezer_freezes_and_thaws() {
        let Some(root) = mounts().v2.clone() else {
            eprintln!("no cgroup2 mount: skipped");
            return;
        };
        if !root.join("cgroup.procs").exists() {
            return;
        }
        let cg = TestCgroup::new(Freezer::V2(root.join(name("v2")))).expect("mkdir");
        assert!(cg.freezer.dir().join(V2_FREEZE).exists());
        roundtrip(&cg);
    }

    #[test]
    fn missing_cgroups_are_not_paused_and_bad_paths_refused() {
        assert!(!is_paused(Path::new("/rrun-test-freezer-none-here")));
        assert!(!is_paused(Path::new("/")));
        assert!(freezer_for(Path::new("/")).is_err());
        assert!(freezer_for(Path::new("")).is_err());
        assert!(freezer_for(Path::new("/a/../..")).is_err());
        let f = freezer_for(Path::new("/rrun-test-freezer-none-here")).unwrap();
        assert!(f.freeze().is_err(), "freezing a missing cgroup must fail");
    }
}
