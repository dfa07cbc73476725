//! `exec`: a new process in a running container. The bootstrap half runs
//! in the host's namespaces: it enters the container's cgroups itself, joins
//! the init's namespaces through its pidfd (one setns(2), the kernel orders
//! them, user namespace first) and clones the process as a child of the
//! caller; the process half finishes in the container and execs.
//!
//! Why the cgroup namespace is joined by the child: a process born with
//! CLONE_INTO_CGROUP must be able to see its new cgroup from the cgroup
//! namespace it is cloned from, and the container's namespace is rooted
//! at the container's cgroup, where the bootstrap is not.

use super::container::{arm_seccomp, become_root_of_user_ns, place_preserved_fds, send_warnings};
use super::{sys, ExecConfig, InitError};
use crate::channel::{Channel, Message};
use crate::utils::{clone3_fork, pidfd_send_signal, Forked};
use crate::{process, rootfs, terminal};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// The namespaces a process can join, with their names under `/proc/<pid>/ns`.
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
];

/// The fds that came with the exec message, by role.
struct ExecFds {
    init: OwnedFd,
    console_socket: Option<OwnedFd>,
    preserved: Vec<OwnedFd>,
}

impl ExecFds {
    fn split(config: &ExecConfig, fds: Vec<OwnedFd>) -> Result<ExecFds, InitError> {
        let wanted = 1 + usize::from(config.console_socket) + config.preserved;
        if fds.len() != wanted {
            return Err(InitError::Protocol(format!(
                "expected {wanted} fds with the exec message, got {}",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        let init = fds.next().expect("counted above");
        Ok(ExecFds {
            init,
            console_socket: config.console_socket.then(|| fds.next()).flatten(),
            preserved: fds.collect(),
        })
    }
}

/// What the bootstrap learned before joining, for the process.
struct Entered {
    /// The init's namespaces that differ from ours (to join).
    differ: CloneFlags,
    /// The init's root, when it shares our mount namespace (a container
    /// without one was chrooted there): the process chroots there too.
    root: Option<OwnedFd>,
}

/// The bootstrap half: called with the exec message in a fresh,
/// single-threaded process in the host's namespaces.
pub fn bootstrap(chan: &Channel, config: ExecConfig, fds: Vec<OwnedFd>) -> Result<(), InitError> {
    if config.trace {
        crate::trace::enable_in_helper(crate::trace::Helper::Bootstrap, "exec-bootstrap:started");
        crate::trace::step("exec-bootstrap:config-received");
    }
    let fds = ExecFds::split(&config, fds)?;
    // The host's paths, before any setns.
    let into_cgroup = super::bootstrap::join_cgroups(&config.cgroup_join)?;
    crate::fault_point!("exec-bootstrap:cgroups-joined");
    // Before any setns, inherited by the process, as create's bootstrap
    // does (see set_oom_score_adj_early): in the container's user
    // namespace its /proc files are the host root's, EACCES to it.
    if let Some(value) = config.process.oom_score_adj() {
        let proc =
            crate::procfs::ProcfsHandle::open().map_err(crate::namespaces::NamespaceError::from)?;
        process::attrs::set_oom_score_adj_early(&proc, value)?;
    }
    let entered = look_at_init(config.init_pid, &fds.init)?;
    let now = entered.differ - CloneFlags::CLONE_NEWCGROUP;
    if !now.is_empty() {
        nix::sched::setns(fds.init.as_fd(), now).map_err(sys("setns into the container"))?;
    }
    crate::fault_point!("exec-bootstrap:namespaces-joined");
    let (released_r, released_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let flags = libc::CLONE_PARENT as u64;
    let cgroup_fd = into_cgroup.as_ref().map(AsRawFd::as_raw_fd);
    // SAFETY: the bootstrap is single-threaded: it is a freshly executed
    // process that has started no thread.
    match unsafe { clone3_fork(flags, cgroup_fd) }.map_err(sys("clone3"))? {
        Forked::Child => {
            crate::trace::became(crate::trace::Helper::Exec);
            drop(released_w);
            drop(into_cgroup);
            super::bootstrap::wait_for_eof(&released_r);
            drop(released_r);
            main(chan, &config, fds, entered)
        }
        Forked::Parent { pid, pidfd } => {
            drop(released_r);
            crate::fault_point!("exec-bootstrap:process-cloned");
            // Reported before the process is released: both write to the
            // channel, and the caller must read this first.
            let reported = super::send_steps(chan)
                .and_then(|()| chan.send(&Message::InitSpawned { pid }, &[pidfd.as_raw_fd()]));
            if let Err(e) = reported {
                let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
                return Err(e.into());
            }
            drop(released_w);
            Ok(())
        }
    }
}

/// Which of the init's namespaces differ from ours, and its root when it
/// shares our mounts. The pidfd pins the init: once it is checked alive
/// after the look, what `/proc/<pid>` showed was the init's.
fn look_at_init(pid: i32, pidfd: &OwnedFd) -> Result<Entered, InitError> {
    let mut differ = CloneFlags::empty();
    for (name, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        use std::os::unix::fs::MetadataExt;
        match (theirs, ours) {
            (Ok(t), Ok(o)) if (t.dev(), t.ino()) != (o.dev(), o.ino()) => {
                differ |= CloneFlags::from_bits_retain(*flag)
            }
            // A kernel without this namespace type (time before 5.6).
            (Err(e), _) if e.raw_os_error() == Some(libc::ENOENT) && *name == "time" => {}
            (Err(e), _) => {
                return Err(InitError::Protocol(format!(
                    "the container's init {pid}: /proc/{pid}/ns/{name}: {}",
                    crate::utils::io_errno(&e)
                )))
            }
            _ => {}
        }
    }
    let root = if differ.contains(CloneFlags::CLONE_NEWNS) {
        None
    } else {
        let path = format!("/proc/{pid}/root");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open the init's root"))?;
        // SAFETY: open just returned this fd to us.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    pidfd_send_signal(pidfd, 0)
        .map_err(|_| InitError::Protocol(format!("the container's init {pid} exited")))?;
    Ok(Entered { differ, root })
}

/// The process half, in the container's namespaces (but its cgroup one)
/// and cgroups: errors go to the caller, and on success the last thing
/// before execve is the seccomp filter.
fn main(chan: &Channel, config: &ExecConfig, fds: ExecFds, entered: Entered) -> ! {
    match prepare(chan, config, &fds, &entered) {
        Ok(ready) => {
            let err = match exec(ready, &fds) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            // The caller has its answer: stderr is all that is left.
            eprintln!("rrun: exec: {err}");
            std::process::exit(127)
        }
        Err(e) => {
            let _ = send_warnings(chan);
            let message = format!("exec failed: {e}");
            let _ = chan.send(&Message::Error { message }, &[]);
            std::process::exit(1)
        }
    }
}

struct Ready<'a> {
    process: &'a oci_spec::runtime::Process,
    executable: std::ffi::CString,
    seccomp: Option<crate::seccomp::Armed>,
    final_capset: Option<crate::capabilities::PendingCapset>,
}

fn prepare<'a>(
    chan: &Channel,
    config: &'a ExecConfig,
    fds: &ExecFds,
    entered: &Entered,
) -> Result<Ready<'a>, InitError> {
    crate::fault_point!("exec-process:started");
    let process = &config.process;
    let seccomp = arm_seccomp(chan, config.seccomp.as_ref())?;
    if entered.differ.contains(CloneFlags::CLONE_NEWCGROUP) {
        nix::sched::setns(fds.init.as_fd(), CloneFlags::CLONE_NEWCGROUP)
            .map_err(sys("setns into the container's cgroup namespace"))?;
    }
    if let Some(root) = &entered.root {
        nix::unistd::fchdir(root.as_raw_fd()).map_err(sys("fchdir to the container's root"))?;
        rootfs::chroot(std::path::Path::new("."))?;
    }
    if entered.differ.contains(CloneFlags::CLONE_NEWUSER) {
        become_root_of_user_ns()?;
    }
    if process.terminal() == Some(true) {
        let socket = fds.console_socket.as_ref().ok_or_else(|| {
            InitError::Protocol("process.terminal is set but no console socket was given".into())
        })?;
        terminal::setup_console(socket, process, false)?;
    }
    process::prepare(process, None)?;
    let executable = process::resolve_executable(process)?;
    // As root first, in case the user may not walk there (runc's order).
    let _ = nix::unistd::chdir(process.cwd());
    let nnp = process.no_new_privileges().unwrap_or(false);
    let final_capset = process::drop_privileges(process, seccomp.is_some() && !nnp)?;
    crate::fault_point!("exec-process:privileges-dropped");
    send_warnings(chan)?;
    super::send_steps(chan)?;
    chan.send(&Message::Ready, &[])?;
    if config.frozen {
        match chan.recv::<Message>()?.0 {
            Message::Proceed => {}
            other => {
                return Err(InitError::Protocol(format!(
                    "expected proceed, got {other:?}"
                )))
            }
        }
    }
    Ok(Ready {
        process,
        executable,
        seccomp,
        final_capset,
    })
}

fn exec(ready: Ready, fds: &ExecFds) -> Result<std::convert::Infallible, InitError> {
    let preserved = place_preserved_fds(&fds.preserved)?;
    let execve = process::prepare_exec(ready.process, ready.executable, preserved)?;
    // Before the filter, which may deny the point's kill.
    crate::fault_point!("exec-process:before-exec");
    if let Some(filter) = &ready.seccomp {
        filter.install()?;
    }
    if let Some(capset) = &ready.final_capset {
        capset.commit()?;
    }
    Err(execve.run().into())
}
