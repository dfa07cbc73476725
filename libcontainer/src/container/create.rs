//! `create`: build a container up to the point where its init waits for
//! `start`. The caller-side half of the process model in ARCHITECTURE.md.
//! On any failure nothing is left: no init, no cgroup, no state directory.

use super::spawn::{spawn_bootstrap, Bootstrap};
use super::ContainerError;
use crate::cgroups::resources::Host;
use crate::cgroups::{self, Cgroup};
use crate::channel::{Channel, Message};
use crate::config::Config;
use crate::init::{hook_runner, BootstrapConfig, FdLayout};
use crate::state::{Owned, State, StateDir, Status};
use crate::utils::io_errno;
use crate::utils::{self, pidfd_send_signal, pidfd_wait_exit, process_start_time};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What [`create`] makes: the container `id` from `bundle`, recorded
/// under `root`. `Default` gives runc's defaults for everything else.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// The runtime root (`--root`).
    pub root: PathBuf,
    /// The container id: letters, digits, `_`, `+`, `-` and `.`, unique
    /// under `root`.
    pub id: String,
    /// The bundle: the directory holding `config.json` (relative paths are
    /// taken from the caller's cwd).
    pub bundle: PathBuf,
    /// A file to write the init's pid to (atomically, as runc), for
    /// engines that poll for it.
    pub pid_file: Option<PathBuf>,
    /// When `process.terminal` is set: the unix socket (`--console-socket`)
    /// the pty master is sent to, as runc sends it.
    pub console_socket: Option<PathBuf>,
    /// Or an already connected socket to send the pty master to (`rrun
    /// run` in the foreground uses a socketpair).
    pub console_socket_fd: Option<RawFd>,
    /// `--no-pivot`: enter the rootfs with `MS_MOVE` and chroot instead of
    /// pivot_root (for a rootfs on a ramfs, where pivot_root fails).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one per container.
    pub no_new_keyring: bool,
    /// fds of the caller that become fds 3, 4, ... of the container
    /// process (`--preserve-fds N` passes 3..3+N).
    pub preserve_fds: Vec<RawFd>,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`, managed
    /// through systemd.
    pub systemd_cgroup: bool,
    /// The container process's stdin, stdout and stderr (a shim's FIFOs);
    /// `None`: the caller's own, as runc's CLI passes them on.
    pub stdio: Option<StdioFds>,
}

/// Three fds of the caller that become a process's fds 0, 1 and 2; the
/// caller keeps them open until the call returns (they are copied).
#[derive(Debug, Clone, Copy)]
pub struct StdioFds {
    /// Becomes fd 0.
    pub stdin: RawFd,
    /// Becomes fd 1.
    pub stdout: RawFd,
    /// Becomes fd 2.
    pub stderr: RawFd,
}

/// A created container: its init's pid (in the caller's pid namespace)
/// and a pidfd for it. The init is a child of the caller.
pub struct Created {
    /// The init's pid; its exit reaches the caller's `waitpid`.
    pub pid: i32,
    /// A pidfd of the init: poll it for the exit, or signal through it
    /// ([`crate::utils::pidfd_send_signal`]) with no risk of a reused pid.
    pub pidfd: OwnedFd,
}

/// Create the container: load and validate `<bundle>/config.json`, make
/// `<root>/<id>/` and the cgroup, and start the init, which sets the
/// container up (namespaces, mounts, the prestart and createRuntime hooks,
/// which run in a helper process) and then waits for [`super::start()`]
/// before it runs `process.args`.
///
/// Blocks until the init is ready or has failed. The init is a child of
/// the caller (it is created with CLONE_PARENT by a helper the caller
/// spawns from its own binary: [`crate::init::entry::run_if_requested`]
/// must run in `main`). On error nothing is left, but an init that had
/// been started was killed: its exit, under a pid [`Created`] never gave,
/// reaches the caller's reaper.
pub fn create(opts: &CreateOptions) -> Result<Created, ContainerError> {
    create_from(opts, &Config::load(&opts.bundle)?)
}

/// [`create`] with the bundle's config already loaded (`rrun run` reads it
/// first to know whether it must make a pty pair).
pub fn create_from(opts: &CreateOptions, config: &Config) -> Result<Created, ContainerError> {
    // Refuse a bad cgroupsPath or a controller this host lacks before
    // anything (state directory, process, cgroup) exists.
    let cgroup_path = cgroups::resolve(&config.spec, &opts.id, opts.systemd_cgroup)?;
    // One mountinfo read for the check and the cgroup itself.
    let host = Host::probe().map_err(cgroups::CgroupError::from)?;
    if let Some(resources) = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
    {
        cgroups::check_resources_on(&host, resources)?;
    }
    let dir = StateDir::create(&opts.root, &opts.id)?;
    crate::fault_point!("create:state-dir-made");
    let mut cleanup = Cleanup::new(&opts.id);
    let result = create_in(opts, config, &cgroup_path, host, &dir, &mut cleanup);
    if result.is_err() {
        cleanup.run();
        let _ = dir.remove();
    }
    result
}

/// Wait until a child we SIGKILLed is gone; reap it too when nobody else
/// will (see [`crate::init::reap_own_helpers`]).
pub(super) fn wait_process_gone(pidfd: &OwnedFd) {
    let _ = pidfd_wait_exit(pidfd, -1);
    if crate::init::reaps_own_helpers() {
        let _ = crate::utils::wait_pidfd_exit_code(pidfd);
    }
}

/// What a failed create must undo, filled in as the create goes.
struct Cleanup {
    id: String,
    init: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
}

impl Cleanup {
    fn new(id: &str) -> Cleanup {
        Cleanup {
            id: id.to_string(),
            init: None,
            cgroup: None,
        }
    }

    fn run(&mut self) {
        if let Some(pidfd) = self.init.take() {
            let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
            wait_process_gone(&pidfd);
        }
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(e) = cgroup.remove() {
                tracing::warn!("container {}: cleanup: {e}", self.id);
            }
        }
    }
}

fn create_in(
    opts: &CreateOptions,
    config: &Config,
    cgroup_path: &Path,
    host: Host,
    dir: &StateDir,
    cleanup: &mut Cleanup,
) -> Result<Created, ContainerError> {
    let id = &opts.id;
    let fifo = make_exec_fifo(id, &dir.fifo_path())?;
    crate::fault_point!("create:fifo-made");
    let console = console_socket(opts, config)?;

    let cgroup_created = !cgroups::exists(cgroup_path);
    let mut owned = Owned {
        cgroup_path: cgroup_path.to_path_buf(),
        cgroup_created,
        systemd_cgroup: opts.systemd_cgroup,
        pid: 0,
        init_start_time: 0,
    };
    dir.save_owned(&owned)?;
    crate::fault_point!("create:owned-saved");

    let (ours, theirs) = Channel::pair()?;
    let bootstrap = spawn_bootstrap(id, &theirs, opts.stdio.as_ref())?;
    drop(theirs);
    crate::fault_point!("create:bootstrap-spawned");

    let cgroup = Cgroup::open_on(cgroup_path, host)?;
    crate::trace::step("create:cgroup-manager-built");
    let resources = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    let joined = prepare_cgroup(&cgroup, bootstrap.id(), resources);
    if cgroup_created {
        cleanup.cgroup = Some(cgroup);
    }
    let cgroup_join = joined?;
    crate::fault_point!("create:cgroup-made");

    let layout = FdLayout {
        exec_fifo: true,
        console_socket: console.is_some(),
        preserved: opts.preserve_fds.len(),
    };
    let mut fds = vec![fifo.as_raw_fd()];
    fds.extend(console.as_ref().map(|c| c.as_raw_fd()));
    fds.extend(&opts.preserve_fds);
    let message = Message::Bootstrap(Box::new(BootstrapConfig {
        id: id.clone(),
        spec: config.spec.clone(),
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        no_pivot: opts.no_pivot,
        shares_mounts: config.shares_mounts,
        no_new_keyring: opts.no_new_keyring,
        cgroup_join,
        seccomp: config.seccomp.clone(),
        fds: layout,
        trace: crate::trace::enabled(),
    }));
    ours.send(&message, &fds)?;
    drop(fifo);
    drop(console);
    crate::fault_point!("create:bootstrap-sent");

    let received = receive_init(&ours, &bootstrap);
    if crate::init::reaps_own_helpers() {
        // It exits right after handing us the init (or failing to).
        bootstrap.wait();
    }
    let (pid, pidfd) = received?;
    cleanup.init = Some(pidfd);
    crate::fault_point!("create:init-received");
    // The status of the container is derived from this start time: without
    // it a live init would read as stopped for good.
    let (start_time, _) = process_start_time(pid).ok_or_else(|| {
        ContainerError::Setup(format!(
            "container init {pid}: cannot read /proc/{pid}/stat"
        ))
    })?;
    owned.pid = pid;
    owned.init_start_time = start_time;
    dir.save_owned(&owned)?;
    crate::fault_point!("create:owned-pid-saved");

    let mut state = State {
        oci_version: crate::OCI_VERSION.to_string(),
        id: id.clone(),
        status: Status::Creating,
        pid,
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: utils::rfc3339_nano(SystemTime::now()),
        annotations: config.spec.annotations().clone().unwrap_or_default(),
        init_start_time: start_time,
        cgroup_path: cgroup_path.to_path_buf(),
        cgroup_created,
        systemd_cgroup: opts.systemd_cgroup,
        hooks: config.spec.hooks().clone(),
    };
    if let Some(filter) = config.seccomp.as_ref().filter(|f| f.notifies()) {
        let metadata = config
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().as_deref());
        send_seccomp_agent(&ours, filter, metadata, &state)?;
    }
    let init = cleanup.init.as_ref().expect("init pidfd is set above");
    serve_init(&ours, config, &state, init)?;
    crate::fault_point!("create:init-ready");

    state.status = Status::Created;
    if let Some(resources) = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
    {
        super::update::save(&dir.path, id, resources)?;
    }
    super::exec::save_defaults(dir, config)?;
    dir.save(&state)?;
    crate::fault_point!("create:state-saved");
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(id, pid_file, pid)?;
        crate::fault_point!("create:pid-file-written");
    }
    // Success: the init lives on; only the cgroup handle is let go.
    cleanup.cgroup = None;
    let pidfd = cleanup.init.take().expect("init pidfd is set above");
    Ok(Created { pid, pidfd })
}

/// Make the cgroup and apply `resources`. On v1 and hybrid hosts the
/// bootstrap then enters it itself (see [`Cgroup::prepare_self_join`]: it
/// saves the kernel's RCU wait of moving another process); elsewhere it is
/// put there now, by pid.
fn prepare_cgroup(
    cgroup: &Cgroup,
    bootstrap_pid: i32,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<Option<crate::cgroups::SelfJoin>, ContainerError> {
    let self_join = cgroup.prepare_self_join()?;
    if self_join.is_none() {
        cgroup.join(bootstrap_pid)?;
    }
    if let Some(resources) = resources {
        cgroup.apply(resources)?;
        cgroup.restrict_devices(resources)?;
    }
    Ok(self_join)
}

/// The FIFO `start` writes to. We open its read end (non-blocking, so the
/// open does not wait for a writer) and hand it to the init.
fn make_exec_fifo(id: &str, path: &Path) -> Result<OwnedFd, ContainerError> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622)).map_err(ContainerError::sys(
        id,
        "mkfifo",
        path.display(),
    ))?;
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ContainerError::sys(id, "open", path.display()))?;
    // SAFETY: open just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The socket the pty master goes to: runc's rules, a terminal needs one.
fn console_socket(
    opts: &CreateOptions,
    config: &Config,
) -> Result<Option<OwnedFd>, ContainerError> {
    let terminal = config
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if !terminal {
        return Ok(None);
    }
    console_socket_from(
        &opts.id,
        opts.console_socket.as_deref(),
        opts.console_socket_fd,
    )
    .map(Some)
}

/// The socket for a pty master: a copy of an already connected `fd`, or a
/// connection to `path` (`--console-socket`).
pub(super) fn console_socket_from(
    id: &str,
    path: Option<&Path>,
    fd: Option<RawFd>,
) -> Result<OwnedFd, ContainerError> {
    if let Some(fd) = fd {
        let dup = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
            .map_err(ContainerError::sys(id, "dup console socket", fd))?;
        // SAFETY: F_DUPFD_CLOEXEC just made this fd for us alone.
        return Ok(unsafe { OwnedFd::from_raw_fd(dup) });
    }
    match path {
        Some(path) => connect_console(id, path),
        None => Err(ContainerError::Setup(
            "process.terminal is set but no --console-socket was given".into(),
        )),
    }
}

fn connect_console(id: &str, path: &Path) -> Result<OwnedFd, ContainerError> {
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        ContainerError::sys(id, "connect --console-socket", path.display())(io_errno(&e))
    })?;
    Ok(stream.into())
}

/// The bootstrap's answer: the init's pid and pidfd. `bootstrap` is the
/// bootstrap process, so that a bootstrap gone without a word ends the wait
/// even while the init (or a container process that took a copy of the
/// socket) keeps the connection open.
pub(super) fn receive_init(
    chan: &Channel,
    bootstrap: &Bootstrap,
) -> Result<(i32, OwnedFd), ContainerError> {
    let peer = utils::pidfd_open(bootstrap.id()).ok();
    match next_message(chan, peer.as_ref().map(|p| p.as_fd())) {
        Ok((Message::InitSpawned { pid }, mut fds)) if fds.len() == 1 => {
            Ok((pid, fds.pop().expect("one fd")))
        }
        Ok((Message::Error { message }, _)) => Err(ContainerError::Setup(message)),
        Ok((other, _)) => Err(ContainerError::Setup(format!(
            "bootstrap: unexpected message {other:?}"
        ))),
        Err(e) => Err(ContainerError::Setup(format!(
            "bootstrap exited before starting the container init ({e})"
        ))),
    }
}

/// The next message from the bootstrap, init or exec'd process; the trace
/// steps they send on the way join ours.
pub(super) fn next_message(
    chan: &Channel,
    peer: Option<std::os::fd::BorrowedFd>,
) -> Result<(Message, Vec<OwnedFd>), crate::channel::ChannelError> {
    loop {
        match chan.recv_from::<Message>(peer)? {
            (Message::Steps { steps }, _) => crate::trace::merge(steps),
            other => return Ok(other),
        }
    }
}

/// Connect to the seccomp agent at `listenerPath` (a host path: the init
/// could not reach it from the container's root) and give the connection to
/// the process (the init, or an exec'd one) with the container process
/// state it will send there, with the notify fd, once it has loaded the
/// filter. An agent that is not there fails here.
pub(super) fn send_seccomp_agent(
    chan: &Channel,
    filter: &crate::seccomp::Filter,
    metadata: Option<&str>,
    state: &State,
) -> Result<(), ContainerError> {
    use crate::seccomp::notify::{connect_listener, ContainerProcessState};
    let path = filter.listener_path().unwrap_or(Path::new(""));
    let process_state =
        ContainerProcessState::new(state.pid, metadata, state.oci(Status::Creating));
    let process_state = serde_json::to_string(&process_state)
        .map_err(|e| ContainerError::Setup(format!("encoding the seccomp process state: {e}")))?;
    let socket = connect_listener(path).map_err(|e| ContainerError::Setup(e.to_string()))?;
    chan.send(
        &Message::SeccompAgent { process_state },
        &[socket.as_raw_fd()],
    )?;
    Ok(())
}

/// Answer the init until it is Ready: run prestart and createRuntime hooks
/// when it asks, relay its errors. `init` is its pidfd: an init that
/// dies ends the wait.
fn serve_init(
    chan: &Channel,
    config: &Config,
    state: &State,
    init: &OwnedFd,
) -> Result<(), ContainerError> {
    loop {
        match next_message(chan, Some(init.as_fd())) {
            Ok((Message::Ready, _)) => return Ok(()),
            Ok((Message::Warning { message }, _)) => {
                tracing::warn!("container {}: {message}", state.id)
            }
            Ok((Message::RunCreateRuntimeHooks, _)) => {
                let json = state.hook_json(Status::Creating);
                if let Some(hooks) = config.spec.hooks() {
                    #[allow(deprecated)]
                    for (list, phase) in [
                        (hooks.prestart(), "prestart"),
                        (hooks.create_runtime(), "createRuntime"),
                    ] {
                        hook_runner::run_hooks(list.as_deref().unwrap_or_default(), &json, phase)
                            .map_err(ContainerError::Setup)?;
                    }
                }
                crate::fault_point!("create:hooks-run");
                chan.send(&Message::Resume { state: json }, &[])?;
            }
            Ok((Message::Error { message }, _)) => return Err(ContainerError::Setup(message)),
            Ok((other, _)) => {
                return Err(ContainerError::Setup(format!(
                    "container init: unexpected message {other:?}"
                )))
            }
            Err(e) => {
                return Err(ContainerError::Setup(format!(
                    "container init exited during setup ({e})"
                )))
            }
        }
    }
}

/// runc writes the pid file atomically too: engines poll for it.
pub(super) fn write_pid_file(id: &str, path: &Path, pid: i32) -> Result<(), ContainerError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    utils::write_atomic(&path, pid.to_string().as_bytes())
        .map_err(|e| ContainerError::sys(id, "write --pid-file", path.display())(io_errno(&e)))
}
