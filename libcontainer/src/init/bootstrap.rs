//! Stage 1: a fresh, single-threaded process in the host's namespaces,
//! running the guarded image. It joins the namespaces given by path, makes
//! the time namespace, clones the container init as a sibling (a child of
//! the caller, CLONE_PARENT) in its new namespaces, writes the init's id
//! maps, hands the caller the init's pid and pidfd, and exits.

use super::{sys, BootstrapConfig, InitError};
use crate::channel::{Channel, Message};
use crate::namespaces::{self, Plan};
use crate::rootfs::idmap::IdmappedTrees;
use crate::trace::{self, Helper};
use crate::utils::{clone3_fork, Forked};
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};

pub fn main(channel_fd: OwnedFd) -> ! {
    let chan = Channel::from_fd(channel_fd);
    match run(&chan) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            let _ = chan.send(
                &Message::Error {
                    message: e.to_string(),
                },
                &[],
            );
            std::process::exit(1)
        }
    }
}

fn run(chan: &Channel) -> Result<(), InitError> {
    // A readable name in ps (the exec path was /proc/self/fd/N).
    let _ = nix::sys::prctl::set_name(c"rrun:init");
    // Nobody in the container may ptrace us or open our /proc files.
    nix::sys::prctl::set_dumpable(false).map_err(sys("prctl(PR_SET_DUMPABLE)"))?;
    let (msg, fds) = chan.recv::<Message>()?;
    let config = match msg {
        Message::Bootstrap(config) => {
            if config.trace {
                trace::enable_in_helper(Helper::Bootstrap, "bootstrap:started");
                trace::step("bootstrap:config-received");
            }
            config
        }
        Message::Exec(config) => return super::exec::bootstrap(chan, *config, fds),
        other => {
            return Err(InitError::Protocol(format!(
                "expected bootstrap, got {other:?}"
            )))
        }
    };
    // Before any setns: the cgroup paths are the host's (a joined mount
    // namespace would resolve them elsewhere).
    let into_cgroup = match &config.cgroup_join {
        Some(join) => join_cgroups(join)?,
        None => None,
    };
    crate::fault_point!("bootstrap:cgroups-joined");
    // Our /proc writes (oom_score_adj, timens_offsets, the id maps) go
    // through a procfs of our own pid namespace, opened before any setns:
    // a joined mount namespace's /proc is not ours to trust (see procfs).
    let proc = crate::procfs::ProcfsHandle::open().map_err(namespaces::NamespaceError::from)?;
    // Before any namespace, inherited by the init (see the function).
    if let Some(value) = config
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
    {
        crate::process::attrs::set_oom_score_adj_early(&proc, value)?;
    }
    // Id-mapped mounts are made in the host's user and mount namespaces
    // (see rootfs::idmap); the init inherits the trees with its clone.
    let idmapped = if config.shares_mounts {
        IdmappedTrees::default()
    } else {
        // SAFETY: the bootstrap is single-threaded.
        unsafe { IdmappedTrees::prepare(&config.spec, &config.bundle, &proc) }?
    };
    let plan = Plan::new(&config.spec);
    plan.join_all()?;
    if plan.new_time {
        namespaces::unshare_time(&proc, config.spec.linux().as_ref())?;
    }
    crate::fault_point!("bootstrap:namespaces-joined");
    // The init waits for EOF on this pipe: by then its id maps are written
    // and the caller has been told about it.
    let (maps_done_r, maps_done_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let mut clone_flags = plan.clone_flags;
    if config.unshares_cgroupns_late(&plan) {
        clone_flags.remove(nix::sched::CloneFlags::CLONE_NEWCGROUP);
    }
    let flags = clone_flags.bits() as u64 | libc::CLONE_PARENT as u64;
    let cgroup_fd = into_cgroup.as_ref().map(AsRawFd::as_raw_fd);
    // SAFETY: the bootstrap is single-threaded: it is a freshly executed
    // process that has started no thread.
    match unsafe { clone3_fork(flags, cgroup_fd) }.map_err(sys("clone3"))? {
        Forked::Child => {
            trace::became(Helper::Init);
            drop(maps_done_w);
            drop(into_cgroup);
            // The bootstrap's procfs (our parent's pid namespace) is not
            // the init's: it opens its own.
            drop(proc);
            wait_for_eof(&maps_done_r);
            drop(maps_done_r);
            super::container::main(chan, *config, fds, plan, idmapped)
        }
        Forked::Parent { pid, pidfd } => {
            drop(maps_done_r);
            crate::fault_point!("bootstrap:init-cloned");
            // Report before releasing the init: both write to the same
            // channel, and the caller must read InitSpawned before the
            // init's first message.
            let reported = finish_parent(&proc, pid, &config, &plan)
                .and_then(|()| Ok(super::send_steps(chan)?))
                .and_then(|()| Ok(chan.send(&Message::InitSpawned { pid }, &[pidfd.as_raw_fd()])?));
            if let Err(e) = reported {
                let _ = crate::utils::pidfd_send_signal(&pidfd, libc::SIGKILL);
                return Err(e);
            }
            crate::fault_point!("bootstrap:init-reported");
            drop(maps_done_w);
            Ok(())
        }
    }
}

/// Enter the container's cgroups: "0" to each v1 `tasks` file moves this
/// (single-threaded) process without the kernel's slow threadgroup lock;
/// returns the hybrid cgroup2 directory for clone3(CLONE_INTO_CGROUP).
pub(super) fn join_cgroups(join: &crate::cgroups::SelfJoin) -> Result<Option<OwnedFd>, InitError> {
    for tasks in &join.tasks {
        std::fs::write(tasks, "0").map_err(|e| {
            let errno = crate::utils::io_errno(&e);
            InitError::Protocol(format!("joining cgroup {}: {errno}", tasks.display()))
        })?;
    }
    let Some(dir) = &join.unified else {
        return Ok(None);
    };
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| InitError::Protocol(format!("opening cgroup {}: {errno}", dir.display())))?;
    // SAFETY: open just returned this fd to us.
    Ok(Some(unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

fn finish_parent(
    proc: &crate::procfs::ProcfsHandle,
    pid: i32,
    config: &BootstrapConfig,
    plan: &Plan,
) -> Result<(), InitError> {
    if plan.new_user() {
        if let Some(linux) = config.spec.linux() {
            namespaces::write_id_maps(proc, pid, linux)?;
        }
    }
    Ok(())
}

pub(super) fn wait_for_eof(fd: &OwnedFd) {
    let mut buf = [0u8; 1];
    while let Err(nix::errno::Errno::EINTR) | Ok(1) = nix::unistd::read(fd.as_raw_fd(), &mut buf) {}
}
