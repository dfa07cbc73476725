//! The container init: in the container's namespaces (and cgroups, from
//! birth), a child of the caller. It builds the container in the spec's
//! order, reports Ready, waits on exec.fifo for `start`, and execs the
//! container's process.

use super::{sys, BootstrapConfig, InitError};
use crate::capabilities::PendingCapset;
use crate::channel::{Channel, Message};
use crate::namespaces::Plan;
use crate::rootfs::idmap::IdmappedTrees;
use crate::rootfs::RootfsContext;
use crate::seccomp::Armed;
use crate::{hooks, process, rootfs, sysctl, terminal};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Hook, Process};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The fds that came with the bootstrap message, by role.
struct InitFds {
    exec_fifo: Option<OwnedFd>,
    console_socket: Option<OwnedFd>,
    preserved: Vec<OwnedFd>,
}

impl InitFds {
    fn split(config: &BootstrapConfig, fds: Vec<OwnedFd>) -> Result<InitFds, InitError> {
        let layout = &config.fds;
        let wanted =
            usize::from(layout.exec_fifo) + usize::from(layout.console_socket) + layout.preserved;
        if fds.len() != wanted {
            return Err(InitError::Protocol(format!(
                "expected {wanted} fds with the bootstrap message, got {}",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        Ok(InitFds {
            exec_fifo: layout.exec_fifo.then(|| fds.next()).flatten(),
            console_socket: layout.console_socket.then(|| fds.next()).flatten(),
            preserved: fds.collect(),
        })
    }
}

pub fn main(
    chan: &Channel,
    config: BootstrapConfig,
    fds: Vec<OwnedFd>,
    plan: Plan,
    idmapped: IdmappedTrees,
) -> ! {
    let ready = match build(chan, &config, fds, &plan, &idmapped) {
        Ok(ready) => ready,
        Err(e) => {
            let _ = send_warnings(chan);
            let message = format!("container init: {e}");
            let _ = chan.send(&Message::Error { message }, &[]);
            std::process::exit(1)
        }
    };
    // The caller has returned from create: errors can only go to stderr
    // now, and the channel must not be written again (fd 3 may be a
    // preserved fd of the container by the time of exec).
    let err = match start(&config, ready) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("rrun: container init: {err}");
    std::process::exit(127)
}

/// What the init carries from setup to start.
struct Ready {
    fds: InitFds,
    state: String,
    executable: std::ffi::CString,
    /// The seccomp filter, to install right before execve.
    seccomp: Option<Armed>,
    /// The end of the privilege drop, when CAP_SYS_ADMIN was kept to load
    /// the filter without no_new_privs.
    final_capset: Option<PendingCapset>,
}

fn build(
    chan: &Channel,
    config: &BootstrapConfig,
    fds: Vec<OwnedFd>,
    plan: &Plan,
    idmapped: &IdmappedTrees,
) -> Result<Ready, InitError> {
    crate::fault_point!("init:started");
    let fds = InitFds::split(config, fds)?;
    let spec = &config.spec;
    let process = process_of(config)?;
    let seccomp = arm_seccomp(chan, config.seccomp.as_ref())?;
    if plan.in_user_ns() {
        become_root_of_user_ns()?;
    }
    if config.unshares_cgroupns_late(plan) {
        // Left out of clone3 by the bootstrap: rooted at our cgroups now.
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(sys("unshare(CLONE_NEWCGROUP)"))?;
    }
    // The procfs handle for /proc writes, from our namespaces before any
    // mount (see procfs); on failure the first write retries and reports.
    let _ = crate::procfs::handle();
    if !config.no_new_keyring {
        join_new_session_keyring(&config.id)?;
    }
    crate::fault_point!("init:namespaces-set");
    let ctx = RootfsContext {
        spec,
        rootfs: &config.rootfs,
        bundle: &config.bundle,
        in_user_ns: plan.in_user_ns(),
        in_cgroup_ns: plan.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP),
        no_pivot: config.no_pivot,
        idmapped,
    };
    if !config.shares_mounts {
        rootfs::prepare(&ctx)?;
    }
    crate::fault_point!("init:mounts-made");
    let state = exchange_state_for_hooks(chan, spec)?;
    let spec_hooks = spec.hooks().as_ref();
    run_hooks(
        spec_hooks.and_then(|h| h.create_container().as_deref()),
        &state,
        "createContainer",
    )?;
    crate::fault_point!("init:hooks-run");
    if config.shares_mounts {
        enter_shared_root(&ctx, &fds, process)?;
    } else {
        rootfs::pivot(&ctx)?;
        crate::fault_point!("init:pivoted");
        setup_console(&fds, process, true)?;
        set_hostnames(spec)?;
        sysctl::apply(spec)?;
        rootfs::finalize(&ctx)?;
    }
    crate::fault_point!("init:rootfs-done");
    let personality = spec.linux().as_ref().and_then(|l| l.personality().as_ref());
    process::prepare(process, personality)?;
    crate::trace::step("init:process-prepared");
    let executable = process::resolve_executable(process)?;
    // Enter the cwd while still root, in case the user may not walk there;
    // `process::exec` enters it again after the drop (runc's order).
    let _ = nix::unistd::chdir(process.cwd());
    let nnp = process.no_new_privileges().unwrap_or(false);
    let final_capset = process::drop_privileges(process, seccomp.is_some() && !nnp)?;
    crate::fault_point!("init:privileges-dropped");
    send_warnings(chan)?;
    super::send_steps(chan)?;
    chan.send(&Message::Ready, &[])?;
    Ok(Ready {
        fds,
        state,
        executable,
        seccomp,
        final_capset,
    })
}

/// What the setup warned about goes to the caller's log.
pub(super) fn send_warnings(chan: &Channel) -> Result<(), InitError> {
    for message in super::warnings::take() {
        chan.send(&Message::Warning { message }, &[])?;
    }
    Ok(())
}

/// The seccomp filter the caller compiled, armed for its installation at
/// the end of `start`; for a profile with NOTIFY rules the caller's next
/// message brings the connection to the agent.
pub(super) fn arm_seccomp(
    chan: &Channel,
    filter: Option<&crate::seccomp::Filter>,
) -> Result<Option<Armed>, InitError> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let agent = if filter.notifies() {
        match chan.recv::<Message>()? {
            (Message::SeccompAgent { process_state }, mut fds) if fds.len() == 1 => {
                Some((fds.remove(0), process_state.into_bytes()))
            }
            (other, _) => {
                return Err(InitError::Protocol(format!(
                    "expected the seccomp agent connection, got {other:?}"
                )))
            }
        }
    } else {
        None
    };
    Ok(Some(filter.arm(agent)?))
}

fn start(config: &BootstrapConfig, ready: Ready) -> Result<std::convert::Infallible, InitError> {
    crate::fault_point!("init:waiting-for-start");
    if let Some(fifo) = &ready.fds.exec_fifo {
        wait_for_start(fifo)?;
    }
    crate::fault_point!("init:start-received");
    let hooks = config.spec.hooks().as_ref();
    run_hooks(
        hooks.and_then(|h| h.start_container().as_deref()),
        &ready.state,
        "startContainer",
    )?;
    let preserved = place_preserved_fds(&ready.fds.preserved)?;
    let execve = process::prepare_exec(process_of(config)?, ready.executable, preserved)?;
    // Before the filter, which may deny the point's kill.
    crate::fault_point!("init:before-exec");
    // From here on only the calls a seccomp profile cannot be spared:
    // seccomp (and sendmsg to the agent), capset, execve. Everything they
    // need is in memory already.
    if let Some(filter) = &ready.seccomp {
        filter.install()?;
    }
    if let Some(capset) = &ready.final_capset {
        capset.commit()?;
    }
    Err(execve.run().into())
}

/// Without a mount namespace of its own the container sees the caller's
/// mounts: nothing is mounted (config::validate refused every field that
/// would need it), the console is the host's pty without a /dev/console
/// bind, /proc/sys is the caller's /proc (the rootfs may have none), and
/// the rootfs becomes `/` by chroot, which changes this process only.
fn enter_shared_root(
    ctx: &RootfsContext,
    fds: &InitFds,
    process: &Process,
) -> Result<(), InitError> {
    setup_console(fds, process, false)?;
    set_hostnames(ctx.spec)?;
    sysctl::apply(ctx.spec)?;
    rootfs::chroot(ctx.rootfs)?;
    Ok(())
}

/// With `process.terminal`: a new pty whose master goes to the console
/// socket and whose slave becomes stdio (and /dev/console with `bind`).
fn setup_console(fds: &InitFds, process: &Process, bind: bool) -> Result<(), InitError> {
    if process.terminal() != Some(true) {
        return Ok(());
    }
    let socket = fds.console_socket.as_ref().ok_or_else(|| {
        InitError::Protocol("process.terminal is set but no --console-socket was given".into())
    })?;
    terminal::setup_console(socket, process, bind)?;
    Ok(())
}

fn process_of(config: &BootstrapConfig) -> Result<&Process, InitError> {
    config
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Protocol("no process in config".into()))
}

/// In a new user namespace we start as the mapped creator; become uid and
/// gid 0 of the namespace, as runc does, before touching anything.
pub(super) fn become_root_of_user_ns() -> Result<(), InitError> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(sys("setresgid(0) in the user namespace"))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(sys("setresuid(0) in the user namespace"))?;
    Ok(())
}

/// A session keyring of the container's own, as runc makes by default, so
/// that containers do not share the caller's keys. Kernels or seccomp
/// profiles without keyctl (ENOSYS, EPERM) simply keep the old one.
fn join_new_session_keyring(id: &str) -> Result<(), InitError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) with a NUL-terminated name.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match nix::errno::Errno::result(ret) {
        Ok(_) | Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(sys("keyctl(KEYCTL_JOIN_SESSION_KEYRING)")(e)),
    }
}

/// prestart and createRuntime hooks run in the caller (runtime namespace);
/// ask for them, and get the state JSON for our own hooks back. Skipped
/// entirely when the config has no hooks.
fn exchange_state_for_hooks(
    chan: &Channel,
    spec: &oci_spec::runtime::Spec,
) -> Result<String, InitError> {
    let Some(h) = spec.hooks() else {
        return Ok(String::new());
    };
    #[allow(deprecated)]
    let any = [
        h.prestart(),
        h.create_runtime(),
        h.create_container(),
        h.start_container(),
    ]
    .iter()
    .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
    if !any {
        return Ok(String::new());
    }
    chan.send(&Message::RunCreateRuntimeHooks, &[])?;
    match chan.recv::<Message>()?.0 {
        Message::Resume { state } => Ok(state),
        other => Err(InitError::Protocol(format!(
            "expected resume, got {other:?}"
        ))),
    }
}

fn run_hooks(list: Option<&[Hook]>, state: &str, phase: &str) -> Result<(), InitError> {
    match list {
        Some(list) if !list.is_empty() => Ok(hooks::run(list, state.as_bytes(), phase)?),
        _ => Ok(()),
    }
}

/// config::validate made sure a uts namespace of our own is there.
fn set_hostnames(spec: &oci_spec::runtime::Spec) -> Result<(), InitError> {
    let hostname = spec.hostname().as_deref().filter(|h| !h.is_empty());
    let domainname = spec.domainname().as_deref().filter(|h| !h.is_empty());
    if let Some(name) = hostname {
        nix::unistd::sethostname(name).map_err(sys("sethostname"))?;
    }
    if let Some(name) = domainname {
        // SAFETY: a valid buffer and its length.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
            return Err(sys("setdomainname")(nix::errno::Errno::last()));
        }
    }
    Ok(())
}

/// Block until `start` writes its byte to exec.fifo. The fd is the read
/// end, opened non-blocking by the caller; poll() sleeps until a writer
/// has written (a FIFO that never had a writer reports no hangup).
fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitError> {
    let mut pfd = libc::pollfd {
        fd: fifo.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd on our stack.
        let ret = unsafe { libc::poll(&mut pfd, 1, -1) };
        if ret < 0 {
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINTR => continue,
                e => return Err(sys("poll exec.fifo")(e)),
            }
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(InitError::Protocol(
                    "exec.fifo closed without a start".into(),
                ))
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys("read exec.fifo")(e)),
        }
    }
}

/// Move the `--preserve-fds` to 3, 4, ... (first out of the way, above
/// the target range, so that no dup2 clobbers a source). Returns how many.
pub(super) fn place_preserved_fds(fds: &[OwnedFd]) -> Result<u32, InitError> {
    let n = fds.len() as RawFd;
    let mut high = Vec::with_capacity(fds.len());
    for fd in fds {
        let moved = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3 + n))
            .map_err(sys("fcntl(F_DUPFD_CLOEXEC)"))?;
        high.push(moved);
    }
    for (i, fd) in high.into_iter().enumerate() {
        // dup2 leaves the new fd without close-on-exec: it reaches the process.
        nix::unistd::dup2(fd, 3 + i as RawFd).map_err(sys("dup2 preserved fd"))?;
    }
    Ok(n as u32)
}
