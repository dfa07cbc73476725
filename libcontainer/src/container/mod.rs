//! Container operations, one file each, over the state directory under a
//! runtime root (`--root`). Each checks the current status first and
//! refuses what the spec does not allow in it.
//!
//! They are synchronous and may run on any thread, several at once: each
//! locks the container's state directory while it reads or changes it.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod list;
mod pause;
mod ps;
mod spawn;
mod start;
mod update;

pub use create::{create, create_from, CreateOptions, Created, StdioFds};
pub use delete::delete;
pub use events::*;
pub use exec::{exec, ExecOptions, Executed};
pub use kill::{kill, parse_signal};
pub use list::{list, state, Listed};
pub use pause::*;
pub use ps::*;
pub use start::start;
pub use update::*;

use crate::cgroups::CgroupError;
use crate::config::ConfigError;
use crate::state::{StateError, Status};

/// Why an operation failed. Its text is one line naming the container and
/// what failed, in runc's words where engines look for them. A failed
/// `create` or `exec` has left nothing behind (no process, no cgroup, no
/// state directory of a new container).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The state directory: no such container ([`StateError::NotExist`]),
    /// the id is taken or invalid, or its files cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The bundle's `config.json` cannot be read, is invalid, or asks for
    /// something rrun does not support: an error of the caller's input.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Making, changing, freezing, reading or removing the container's
    /// cgroup failed, or `linux.resources` asks for what the host lacks.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The read-only image of this binary that enters containers could not
    /// be made (`create` and `exec` only).
    #[error(transparent)]
    ExeGuard(#[from] crate::exe_guard::ExeGuardError),
    /// The channel to the bootstrap or the container process failed (the
    /// process died before it answered).
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    /// The status does not allow the operation; runc's words.
    #[error("{message}")]
    WrongStatus {
        /// The container.
        id: String,
        /// Its status when the operation was refused.
        status: Status,
        /// What `Display` prints, as runc words it.
        message: String,
    },
    /// A system call failed.
    #[error("container {id}: {op} {path}: {errno}")]
    Sys {
        /// The container.
        id: String,
        /// The call or step that failed (`mkfifo`, `pidfd_open`...).
        op: &'static str,
        /// What it was made on: a path, a pid or an fd.
        path: String,
        /// The errno it failed with.
        errno: nix::errno::Errno,
    },
    /// The bootstrap or init reported an error, or a hook failed.
    #[error("{0}")]
    Setup(String),
    /// [`parse_signal`] was given neither a signal name nor a number in
    /// 1-64.
    #[error("unknown signal {0:?}")]
    BadSignal(String),
}

impl ContainerError {
    pub(crate) fn sys(
        id: &str,
        op: &'static str,
        path: impl std::fmt::Display,
    ) -> impl Fn(nix::errno::Errno) -> ContainerError {
        let id = id.to_string();
        let path = path.to_string();
        move |errno| ContainerError::Sys {
            id: id.clone(),
            op,
            path: path.clone(),
            errno,
        }
    }
}
