//! The container's state directory `<root>/<id>/`: `state.json` (written
//! atomically), `owned.json` (what `delete --force` needs when state.json
//! is lost), `exec.fifo` while the container is created, and an flock on
//! the directory that serializes commands on one id.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
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

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist: {id}")]
    NotExist { id: String },
    #[error("container with id {id} exists already")]
    Exists { id: String },
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },
    #[error("container {id}: {op} {path}: {errno}")]
    Sys {
        id: String,
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("container {id}: corrupt {path}: {why}")]
    Corrupt {
        id: String,
        path: PathBuf,
        why: String,
    },
}

/// What rrun keeps about a container. The first fields are the OCI state
/// (runtime.md "State") plus runc's extras; the rest is rrun's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Start time of the init (clock ticks since boot): with `pid`, it
    /// identifies the init so that a reused pid cannot pass for it.
    pub init_start_time: u64,
    /// The resolved cgroup path, and whether rrun created it (then delete
    /// removes it; a cgroup rrun did not create is never removed).
    pub cgroup_path: PathBuf,
    pub cgroup_created: bool,
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
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
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
        match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o711)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Err(StateError::Exists { id: id.to_string() }),
            Err(e) => return Err(sys("mkdir", &path, e)),
        }
        Self::lock(id, path).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(root.join(id));
        })
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
        validate_id(id).map_err(|_| StateError::NotExist { id: id.to_string() })?;
        let dir = Self::lock(id, root.join(id))?;
        if !dir.path.join(STATE_FILE).exists() {
            return Err(StateError::NotExist { id: id.to_string() });
        }
        Ok(dir)
    }

    fn lock(id: &str, path: PathBuf) -> Result<StateDir, StateError> {
        let file = match nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            // SAFETY: open just returned this fd; File takes sole ownership.
            Ok(fd) => unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                return Err(StateError::NotExist { id: id.to_string() })
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
        if crate::cgroups::freezer::is_paused(&state.cgroup_path) {
            return Status::Paused;
        }
        if !state.init_alive() {
            return Status::Stopped;
        }
        match state.status {
            Status::Creating | Status::Created if self.fifo_path().exists() => Status::Created,
            Status::Created => Status::Running,
            // Recorded `paused` never counts: the freezer was just read.
            Status::Paused => Status::Running,
            other => other,
        }
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

/// The ids of every rrun container under `root`. Directories of other
/// runtimes (dockerd gives every runtime the same root) are skipped: they
/// have no rrun state file that parses.
pub(crate) fn list_ids(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}
