//! The processes that build a container (see ARCHITECTURE.md):
//! `entry` dispatches a re-executed binary, `bootstrap` is stage 1 in the
//! host's namespaces, `container` is the container init, `hook_runner`
//! runs caller-side hooks in a process of its own.
//!
//! For embedders: [`entry::run_if_requested`], which every embedding
//! binary calls first in `main`, and [`reap_own_helpers`].

#[doc(hidden)] // building block, pub for the project's tests only
pub mod bootstrap;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod container;
pub mod entry;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod exec;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod hook_runner;
pub(crate) mod warnings;

use oci_spec::runtime::Spec;
use std::sync::atomic::{AtomicBool, Ordering};

static REAP_OWN_HELPERS: AtomicBool = AtomicBool::new(false);

/// Tell the library that this process has no reaper of its own (a
/// command-line tool): it then waits for the helper processes it spawns
/// (the bootstrap, the hook runner) itself, so that none lingers as a
/// zombie still charged to the container's pids cgroup. A program that
/// reaps its children with `waitpid(-1)`, like containerd's shim, must
/// leave this off: its reaper takes them.
pub fn reap_own_helpers(on: bool) {
    REAP_OWN_HELPERS.store(on, Ordering::Relaxed);
}

pub(crate) fn reaps_own_helpers() -> bool {
    REAP_OWN_HELPERS.load(Ordering::Relaxed)
}
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything the bootstrap and the init need, sent by the caller.
#[doc(hidden)] // init's message, pub for the project's tests only
#[derive(Debug, Serialize, Deserialize)]
pub struct BootstrapConfig {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    /// No mount namespace of the container's own: chroot, never mount.
    pub shares_mounts: bool,
    pub no_new_keyring: bool,
    /// On v1 and hybrid hosts, how the bootstrap enters the container's
    /// cgroups itself (on others the caller has put it there).
    pub cgroup_join: Option<crate::cgroups::SelfJoin>,
    /// `linux.seccomp`, compiled and checked by the caller.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// Which fds ride with the message, in this order.
    pub fds: FdLayout,
    /// The caller traces steps ([`crate::trace`]): send ours.
    #[serde(default)]
    pub trace: bool,
}

/// Everything the bootstrap and the process need to enter a running
/// container (`exec`). The fds: the init's pidfd, the console socket (if
/// `console_socket`), then the `preserved` fds.
#[doc(hidden)] // init's message, pub for the project's tests only
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecConfig {
    pub id: String,
    /// The container's init, in the caller's pid namespace (its pidfd
    /// rides with the message).
    pub init_pid: i32,
    /// The process to run, complete (flags merged by the caller).
    pub process: oci_spec::runtime::Process,
    /// The container's cgroups, entered by the bootstrap itself.
    pub cgroup_join: crate::cgroups::SelfJoin,
    /// The container is paused (`--ignore-paused`): its frozen cgroup is
    /// left out of `cgroup_join` (the bootstrap would freeze there), the
    /// caller moves the process into it after Ready, and the process waits
    /// for `Proceed` before it execs (frozen until the container resumes).
    pub frozen: bool,
    /// The container's `linux.seccomp`, as compiled at create.
    pub seccomp: Option<crate::seccomp::Filter>,
    pub console_socket: bool,
    pub preserved: usize,
    /// The caller traces steps ([`crate::trace`]): send ours.
    #[serde(default)]
    pub trace: bool,
}

#[doc(hidden)] // init's message, pub for the project's tests only
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FdLayout {
    pub exec_fifo: bool,
    pub console_socket: bool,
    /// `--preserve-fds`: these become fds 3.. of the container process.
    pub preserved: usize,
}

/// The steps this helper recorded, to the caller that traces them.
pub(crate) fn send_steps(
    chan: &crate::channel::Channel,
) -> Result<(), crate::channel::ChannelError> {
    if crate::trace::enabled() {
        let steps = crate::trace::take();
        chan.send(&crate::channel::Message::Steps { steps }, &[])?;
    }
    Ok(())
}

impl BootstrapConfig {
    /// Whether a new cgroup namespace is left out of clone3 and unshared by
    /// the init once born: when the init is cloned into its cgroup2
    /// directory, a namespace made by clone would be rooted at the
    /// bootstrap's cgroup instead of the container's (as runc's init, the
    /// init unshares it itself).
    pub(crate) fn unshares_cgroupns_late(&self, plan: &crate::namespaces::Plan) -> bool {
        plan.clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            && self
                .cgroup_join
                .as_ref()
                .is_some_and(|join| join.clones_into_cgroup())
    }
}

/// Errors of the bootstrap and init stages; sent to the caller as text.
#[doc(hidden)] // init's message, pub for the project's tests only
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Channel(#[from] crate::channel::ChannelError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::SysctlError),
    #[error(transparent)]
    Terminal(#[from] crate::terminal::TerminalError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::FilterError),
    #[error(transparent)]
    Capabilities(#[from] crate::capabilities::CapabilitiesError),
    #[error("{op}: {errno}")]
    Sys {
        op: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("{0}")]
    Protocol(String),
}

pub(crate) fn sys(op: &'static str) -> impl Fn(nix::errno::Errno) -> InitError {
    move |errno| InitError::Sys { op, errno }
}
