//! Container operations, one file each, over the state directory under a
//! runtime root (`--root`). Each checks the current status first and
//! refuses what the spec does not allow in it.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod list;
mod pause;
mod ps;
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

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    ExeGuard(#[from] crate::exe_guard::ExeGuardError),
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    /// The status does not allow the operation; runc's words.
    #[error("{message}")]
    WrongStatus {
        id: String,
        status: Status,
        message: String,
    },
    #[error("container {id}: {op} {path}: {errno}")]
    Sys {
        id: String,
        op: &'static str,
        path: String,
        errno: nix::errno::Errno,
    },
    /// The bootstrap or init reported an error, or a hook failed.
    #[error("{0}")]
    Setup(String),
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
