//! The container's state directory `<root>/<id>/`: `state.json` (written
//! atomically), `owned.json` (what `delete --force` needs when state.json
//! is lost), `exec.fifo` while the container is created, and an flock on
//! the directory that serializes commands on one id. Embedders read it
//! through [`crate::container::state`] and [`crate::container::list`]; the
//! files are the library's.

use crate::utils::{self, process_start_time};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXEC_FIFO: &str = "exec.fifo";
pub(crate) const OWNED_FILE: &str = "owned.json";

/// Said of an id whose create was killed half-way: `state` must not send
/// an engine off to create it again (the id is still taken).
const INTERRUPTED_HINT: &str =
    " (a create of it was interrupted; delete --force removes what it left)";

/// A container's status (runtime.md "State"), plus runc's `paused`.
/// What is recorded is corrected when read (see [`crate::container::state`]):
/// `paused` while the cgroup is frozen, `stopped` once the init is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is in progress (the hooks see it; a create killed half-way
    /// leaves it).
    Creating,
    /// The init waits for `start`.
    Created,
    /// `start` released the init; it runs the container's process.
    Running,
    /// The container's cgroup is frozen (`pause`).
    Paused,
    /// The init has exited (even if not reaped yet).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What went wrong with a container's state directory. The texts are
/// runc's where engines match them ("does not exist", "exists already").
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No container `id` under the root (or its create was not finished).
    #[error("container does not exist: {id}{}", if *interrupted { INTERRUPTED_HINT } else { "" })]
    NotExist {
        /// The id asked for.
        id: String,
        /// Its directory is there without a state file: a create of this
        /// id was killed half-way, and the id stays taken until `delete`
        /// with `force` removes what it left.
        interrupted: bool,
    },
    /// `create` of an id that is taken.
    #[error("container with id {id} exists already")]
    Exists {
        /// The id asked for.
        id: String,
    },
    /// An id runc would refuse: empty, `.`, `..`, or with characters other
    /// than letters, digits, `_`, `+`, `-` and `.`.
    #[error("invalid container id {id:?}: {why}")]
    InvalidId {
        /// The id given.
        id: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A system call on the state directory failed.
    #[error("container {id}: {op} {path}: {errno}")]
    Sys {
        /// The container.
        id: String,
        /// The call (`mkdir`, `flock`, `read`...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The errno it failed with.
        errno: Errno,
    },
    /// A state file does not parse (`delete` with `force` still ends the
    /// container from what else was recorded).
    #[error("container {id}: corrupt {path}: {why}")]
    Corrupt {
        /// The container.
        id: String,
        /// The file.
        path: PathBuf,
        /// The parser's words.
        why: String,
    },
}

/// What rrun keeps about a container. The first fields are the OCI state
/// (runtime.md "State") plus runc's extras; the rest is rrun's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The spec version rrun implements ([`crate::OCI_VERSION`]).
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The status as last recorded: see [`Status`] for the one to use.
    pub status: Status,
    /// The init's pid, in the caller's pid namespace.
    pub pid: i32,
    /// The absolute bundle directory.
    pub bundle: PathBuf,
    /// The absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    /// When the init was created, RFC 3339 with nanoseconds in UTC
    /// ([`crate::utils::rfc3339_nano`]).
    pub created: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Start time of the init (clock ticks since boot): with `pid`, it
    /// identifies the init so that a reused pid cannot pass for it.
    pub init_start_time: u64,
    /// The resolved cgroup path, and whether rrun created it (then delete
    /// removes it; a cgroup rrun did not create is never removed).
    pub cgroup_path: PathBuf,
    /// Whether rrun created the cgroup (see `cgroup_path`).
    pub cgroup_created: bool,
    /// The cgroup is managed through systemd (`--systemd-cgroup`): then
    /// `cgroup_path` is `slice:prefix:name`.
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// Hooks that run after create: poststart and poststop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
}

/// What a container owns outside its state directory: its cgroup (when rrun
/// made it) and its init. `create` writes it before it makes either, and
/// again once the init exists, so that `delete --force` can end both even
/// when state.json is missing, truncated or corrupt.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Owned {
    pub cgroup_path: PathBuf,
    pub cgroup_created: bool,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// 0 until the init exists.
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub init_start_time: u64,
}

impl Owned {
    /// A state with only what `delete` needs to end the container: no
    /// bundle, annotations or hooks (those were in state.json).
    pub fn into_state(self, id: &str) -> State {
        State {
            oci_version: crate::OCI_VERSION.to_string(),
            id: id.to_string(),
            status: Status::Running,
            pid: self.pid,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            annotations: HashMap::new(),
            init_start_time: self.init_start_time,
            cgroup_path: self.cgroup_path,
            cgroup_created: self.cgroup_created,
            systemd_cgroup: self.systemd_cgroup,
            hooks: None,
        }
    }
}

/// The OCI state JSON as runc prints it for `state`, and gives to hooks.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    /// The spec version rrun implements.
    pub oci_version: &'a str,
    /// The container id.
    pub id: &'a str,
    /// The init's pid; 0 once stopped (runc's output).
    pub pid: i32,
    /// The status, as derived now.
    pub status: Status,
    /// The absolute bundle directory.
    pub bundle: &'a Path,
    /// The absolute rootfs directory (runc's extra).
    pub rootfs: &'a Path,
    /// When the init was created (RFC 3339, UTC).
    pub created: &'a str,
    /// The config's annotations; left out when there are none.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    /// runc's `owner` field, for the same JSON: always empty.
    pub owner: &'a str,
}

impl State {
    /// The OCI view of this state with `status` (the derived one).
    pub fn oci(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: "",
        }
    }

    /// The state JSON given to hooks (compact; hooks read it from stdin).
    pub(crate) fn hook_json(&self, status: Status) -> String {
        let mut oci = self.oci(status);
        oci.pid = self.pid;
        serde_json::to_string(&oci).unwrap_or_default()
    }

    /// Whether the init recorded here is still alive (not a zombie, same
    /// start time: a reused pid does not count).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && matches!(process_start_time(self.pid),
                Some((start, zombie)) if start == self.init_start_time && !zombie)
    }
}

/// A locked state directory. The lock is released on drop.
pub(crate) struct StateDir {
    pub id: String,
    pub path: PathBuf,
    _lock: Flock<File>,
}

/// Container ids as runc accepts them: `^[\w+-\.]+$`, and not `.` or `..`.
pub(crate) fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |why| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            why,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

impl StateDir {
    /// Create and lock `<root>/<id>`; fails if the id exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        let path = root.join(id);
        let sys = |op, path: &Path, errno| StateError::Sys {
            id: id.to_string(),
            op,
            path: path.to_path_buf(),
            errno,
        };
        if let Err(e) = std::fs::create_dir_all(root) {
            return Err(sys("mkdir", root, crate::utils::io_errno(&e)));
        }
        // The directory appears under its id already locked: it is made
        // and locked under a private name, then renamed without replacing.
        // (Made in place, a `delete --force` could take it between mkdir and
        // flock for a half-made one, and another create then lock the
        // directory of a third.)
        static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CLAIMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claim = root.join(format!("{CLAIM_PREFIX}{id}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&claim);
        nix::unistd::mkdir(&claim, Mode::from_bits_truncate(0o711))
            .map_err(|e| sys("mkdir", &claim, e))?;
        crate::fault_point!("create:state-dir-claimed");
        let renamed = Self::lock(id, claim.clone()).and_then(|dir| {
            crate::utils::rename_noreplace(&claim, &path).map_err(|e| match e {
                Errno::EEXIST => StateError::Exists { id: id.to_string() },
                e => sys("rename", &path, e),
            })?;
            Ok(StateDir { path, ..dir })
        });
        if renamed.is_err() {
            let _ = std::fs::remove_dir_all(&claim);
        }
        renamed
    }

    /// Lock `<root>/<id>` if it exists without a state file: what a create
    /// that was killed half-way leaves. Waits for a create in progress (it
    /// holds the lock); `None` for a finished one or no directory.
    pub fn open_half_made(root: &Path, id: &str) -> Result<Option<StateDir>, StateError> {
        if validate_id(id).is_err() || !root.join(id).is_dir() {
            return Ok(None);
        }
        let dir = match Self::lock(id, root.join(id)) {
            Err(StateError::NotExist { .. }) => return Ok(None),
            other => other?,
        };
        if dir.path.join(STATE_FILE).exists() {
            return Ok(None);
        }
        Ok(Some(dir))
    }

    /// Open and lock an existing `<root>/<id>` that holds a state file.
    pub fn open(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id).map_err(|_| StateError::NotExist {
            id: id.to_string(),
            interrupted: false,
        })?;
        let dir = Self::lock(id, root.join(id))?;
        if !dir.path.join(STATE_FILE).exists() {
            // Locked and still there: no create is at work on it.
            return Err(StateError::NotExist {
                id: id.to_string(),
                interrupted: true,
            });
        }
        Ok(dir)
    }

    /// Open and flock `path`. The directory may be removed (a delete) or
    /// replaced (a delete, then a new create) while this waits for the
    /// lock: the lock counts only if what it holds is still at `path`.
    fn lock(id: &str, path: PathBuf) -> Result<StateDir, StateError> {
        loop {
            let dir = Self::lock_once(id, path.clone())?;
            let held = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&*dir._lock));
            match (held, nix::sys::stat::stat(&path)) {
                (Ok(a), Ok(b)) if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) => return Ok(dir),
                (Ok(_), Ok(_)) => continue,
                (_, Err(Errno::ENOENT)) | (_, Err(Errno::ENOTDIR)) => {
                    return Err(StateError::NotExist {
                        id: id.to_string(),
                        interrupted: false,
                    })
                }
                (Err(errno), _) | (_, Err(errno)) => {
                    return Err(StateError::Sys {
                        id: id.to_string(),
                        op: "stat",
                        path,
                        errno,
                    })
                }
            }
        }
    }

    fn lock_once(id: &str, path: PathBuf) -> Result<StateDir, StateError> {
        let file = match nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            // SAFETY: open just returned this fd; File takes sole ownership.
            Ok(fd) => unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                return Err(StateError::NotExist {
                    id: id.to_string(),
                    interrupted: false,
                })
            }
            Err(errno) => {
                return Err(StateError::Sys {
                    id: id.to_string(),
                    op: "open",
                    path,
                    errno,
                })
            }
        };
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StateError::Sys {
                id: id.to_string(),
                op: "flock",
                path: path.clone(),
                errno,
            })?;
        Ok(StateDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path.join(STATE_FILE);
        let data = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StateError::NotExist {
                id: self.id.clone(),
                interrupted: false,
            },
            _ => StateError::Sys {
                id: self.id.clone(),
                op: "read",
                path: path.clone(),
                errno: crate::utils::io_errno(&e),
            },
        })?;
        serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            path,
            why: e.to_string(),
        })
    }

    /// Record what the container owns (see [`Owned`]). Not synced: it
    /// must survive rrun being killed, not the machine crashing (cgroups
    /// and processes do not survive that either).
    pub fn save_owned(&self, owned: &Owned) -> Result<(), StateError> {
        let path = self.path.join(OWNED_FILE);
        let data = serde_json::to_vec(owned).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            path: path.clone(),
            why: e.to_string(),
        })?;
        utils::write_atomic(&path, &data).map_err(|e| StateError::Sys {
            id: self.id.clone(),
            op: "write",
            path,
            errno: crate::utils::io_errno(&e),
        })
    }

    /// What [`StateDir::save_owned`] recorded.
    pub fn load_owned(&self) -> Result<Owned, StateError> {
        let path = self.path.join(OWNED_FILE);
        let data = std::fs::read(&path).map_err(|e| StateError::Sys {
            id: self.id.clone(),
            op: "read",
            path: path.clone(),
            errno: crate::utils::io_errno(&e),
        })?;
        serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            path,
            why: e.to_string(),
        })
    }

    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path.join(STATE_FILE);
        let data = serde_json::to_vec(state).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            path: path.clone(),
            why: e.to_string(),
        })?;
        utils::write_atomic(&path, &data).map_err(|e| StateError::Sys {
            id: self.id.clone(),
            op: "write",
            path,
            errno: crate::utils::io_errno(&e),
        })
    }

    /// The status as it is now: `paused` while the container's cgroup is
    /// frozen (checked first, as runc does: frozen processes cannot have
    /// exited), else the recorded one corrected by whether the init still
    /// lives and whether it still waits on exec.fifo.
    pub fn current_status(&self, state: &State) -> Status {
        status_now(&self.path, state)
    }

    /// Remove the directory (the lock goes with it).
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.path).map_err(|e| StateError::Sys {
            id: self.id.clone(),
            op: "remove",
            path: self.path.clone(),
            errno: crate::utils::io_errno(&e),
        })
    }
}

/// What a state directory is called until [`StateDir::create`] renames
/// it to its id: `.claim-<id>-<pid>-<n>`.
const CLAIM_PREFIX: &str = ".claim-";

/// The status of the container whose state directory is `dir`, from its
/// init and its freezer now (`state.status` is what was recorded).
pub(crate) fn status_now(dir: &Path, state: &State) -> Status {
    if crate::cgroups::freezer::is_paused(&state.cgroup_path) {
        return Status::Paused;
    }
    if !state.init_alive() {
        return Status::Stopped;
    }
    match state.status {
        Status::Creating | Status::Created if dir.join(EXEC_FIFO).exists() => Status::Created,
        Status::Created => Status::Running,
        // Recorded `paused` never counts: the freezer was just read.
        Status::Paused => Status::Running,
        other => other,
    }
}

/// Remove the directories that creates of `id` killed before they renamed
/// their claim (see [`StateDir::create`]) left under `root`: those whose
/// creator is gone. A live creator's is left alone (a reused pid only
/// delays its removal to a later call).
pub(crate) fn remove_stale_claims(root: &Path, id: &str) {
    let prefix = format!("{CLAIM_PREFIX}{id}-");
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // `<pid>-<n>`: ids may hold '-', but the prefix is the whole id.
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<i32>().ok()))
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// The ids of the directories under `root` that may be rrun containers:
/// directories of other runtimes (dockerd gives every runtime the same
/// root) are told apart by the caller, having no rrun state file that
/// parses.
pub(crate) fn list_ids(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    // Directories only (readdir's type, no stat); whether one is an rrun
    // container is known when its state file is read.
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| !id.starts_with(CLAIM_PREFIX) && validate_id(id).is_ok())
        .collect();
    ids.sort();
    ids
}
