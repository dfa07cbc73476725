//! The container process's own attributes, applied by the container init
//! after pivot_root and before it waits for `start`, then the final execve.
//!
//! Order (called by `init::container`), as runc does:
//! [`prepare`] (rlimits, oomScoreAdj, ioPriority, scheduler, personality,
//! umask, cwd check) → [`drop_privileges`] (additionalGids, gid, uid with
//! capabilities kept across setuid, then the five capability sets,
//! noNewPrivileges) → wait for start → startContainer hooks → [`exec`].

pub mod attrs;
pub mod exec;
pub mod rlimits;
pub mod user;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    #[error("{0}")]
    Invalid(String),
}
