//! The container process's own attributes, applied by the container init
//! after pivot_root and before it waits for `start`, then the final execve.
//!
//! Order (called by `init::container`), as runc does:
//! [`prepare`] (rlimits, oomScoreAdj, ioPriority, scheduler, personality,
//! cwd check) → [`resolve_executable`] (so that `create` fails early) →
//! [`drop_privileges`] (additionalGids, gid, uid with capabilities kept
//! across setuid, umask, then the five capability sets, noNewPrivileges) →
//! wait for start → startContainer hooks → [`prepare_exec`] (cwd, fds,
//! argv and envp in memory) → seccomp filter → last capset → [`Execve::run`].

pub mod attrs;
pub mod exec;
pub mod rlimits;
pub mod user;

use std::path::PathBuf;

use nix::errno::Errno;
use oci_spec::runtime::{Capability, LinuxPersonality, Process};

pub use exec::{prepare_exec, resolve_executable, Execve};

use crate::capabilities::{self, CapabilitiesError, PendingCapset};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("setting process.rlimits {rlimit} (soft {soft}, hard {hard}): {errno}")]
    Rlimit {
        rlimit: String,
        soft: u64,
        hard: u64,
        errno: Errno,
    },
    #[error("setting process.oomScoreAdj {value}: {source}")]
    OomScoreAdj {
        value: i32,
        source: crate::procfs::ProcfsError,
    },
    #[error("setting process.apparmorProfile {profile:?}: {source}")]
    AppArmor {
        profile: String,
        source: crate::procfs::ProcfsError,
    },
    #[error("setting process.ioPriority (class {class}, priority {priority}): {reason}")]
    IoPriority {
        class: String,
        priority: i64,
        reason: String,
    },
    #[error("setting process.scheduler (policy {policy}): {reason}")]
    Scheduler { policy: String, reason: String },
    #[error("setting linux.personality {what}: {reason}")]
    Personality { what: String, reason: String },
    #[error("process.cwd {cwd:?} in the container: {reason}")]
    Cwd { cwd: PathBuf, reason: String },
    #[error("process.args must name the program to run")]
    NoArgs,
    /// runc's wording, so that tools matching on it keep working.
    #[error("exec: {name:?}: executable file not found in $PATH")]
    ExecutableNotFound { name: String },
    #[error("exec: {name:?}: stat {}: {errno}", path.display())]
    ExecutableUnusable {
        name: String,
        path: PathBuf,
        errno: Errno,
    },
    #[error("setting process.user {what}: {errno}")]
    User { what: String, errno: Errno },
    #[error(transparent)]
    Capabilities(#[from] CapabilitiesError),
    #[error("setting process.noNewPrivileges: {0}")]
    NoNewPrivileges(Errno),
    #[error("marking file descriptors from {first} close-on-exec: {errno}")]
    CloseRange { first: u32, errno: Errno },
    #[error("process.{field} contains a NUL byte: {value:?}")]
    NulByte { field: &'static str, value: String },
    #[error("exec {arg0:?} ({executable:?}): {errno}")]
    Exec {
        arg0: String,
        executable: String,
        errno: Errno,
    },
}

/// Applies what must be in place before privileges are dropped: rlimits
/// (raising a hard limit needs CAP_SYS_RESOURCE), oomScoreAdj, ioPriority,
/// scheduler, `linux.personality`, and checks that `cwd` exists.
///
/// `personality` is `spec.linux.personality`: the spec keeps it outside
/// `process`, but it is an attribute of the process like the others.
pub fn prepare(
    process: &Process,
    personality: Option<&LinuxPersonality>,
) -> Result<(), ProcessError> {
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits)?;
    }
    if let Some(value) = process.oom_score_adj() {
        attrs::set_oom_score_adj(value)?;
    }
    if let Some(priority) = process.io_priority() {
        attrs::set_io_priority(priority)?;
    }
    if let Some(scheduler) = process.scheduler() {
        attrs::set_scheduler(scheduler)?;
    }
    if let Some(personality) = personality {
        attrs::set_personality(personality)?;
    }
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        attrs::set_apparmor_profile(profile)?;
    }
    attrs::check_cwd(process.cwd())
}

/// Becomes the container user and leaves only the capabilities asked for:
/// additionalGids, gid, uid (capabilities kept across the uid change),
/// umask, the five capability sets, then noNewPrivileges.
///
/// With `seccomp_without_nnp` (a seccomp profile and noNewPrivileges
/// false) CAP_SYS_ADMIN stays permitted and effective: the kernel lets only
/// a task holding it load a filter without no_new_privs, and the filter is
/// loaded right before execve. The returned capset then finishes the drop
/// after the filter is in place.
pub fn drop_privileges(
    process: &Process,
    seccomp_without_nnp: bool,
) -> Result<Option<PendingCapset>, ProcessError> {
    user::switch_user(process.user())?;
    user::set_umask(process.user().umask());
    let caps = process.capabilities().as_ref();
    if seccomp_without_nnp {
        let pending = capabilities::apply_keeping(caps, Some(Capability::SysAdmin))?;
        return Ok(Some(pending));
    }
    capabilities::apply(caps)?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(ProcessError::NoNewPrivileges)?;
    }
    Ok(None)
}
