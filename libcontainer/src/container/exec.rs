//! `exec`: run a new process in a created or running container, with the
//! container's namespaces, cgroups and seccomp filter. The caller-side
//! half; the processes are in `init::exec`. As with create, nothing is
//! forked from the caller: a guarded copy of our binary enters the
//! container, and the new process is the caller's child (CLONE_PARENT),
//! so that an embedder's reaper gets its exit.

use super::create::{receive_init, wait_process_gone};
use super::spawn::spawn_bootstrap;
use super::ContainerError;
use crate::cgroups::SelfJoin;
use crate::channel::{Channel, Message};
use crate::init::ExecConfig;
use crate::seccomp::Filter;
use crate::state::{State, StateDir, Status};
use crate::utils::{pidfd_open, pidfd_send_signal, process_start_time};
use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// What an exec'd process gets from the container's config, kept from
/// create in `<root>/<id>/exec.json`: the bundle may change or go.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecDefaults {
    /// `linux.seccomp`, compiled at create: every exec'd process gets it,
    /// as runc applies it.
    pub seccomp: Option<Filter>,
    /// `linux.seccomp.listenerMetadata`, sent to the agent with each new
    /// notify fd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
}

pub(crate) const EXEC_FILE: &str = "exec.json";

/// What [`exec`] runs, and in which container.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// The runtime root (`--root`).
    pub root: PathBuf,
    /// The container to enter.
    pub id: String,
    /// The process, complete: `--process` or the container's process with
    /// the command line's flags applied.
    pub process: Process,
    /// A file to write the new process's pid to (atomically).
    pub pid_file: Option<PathBuf>,
    /// Where the pty master goes when `process.terminal` is set: a socket
    /// path (`--console-socket`) or an already connected socket.
    pub console_socket: Option<PathBuf>,
    /// Or an already connected socket to send the pty master to (copied;
    /// the caller keeps its own).
    pub console_socket_fd: Option<RawFd>,
    /// fds of the caller that become fds 3, 4, ... of the process.
    pub preserve_fds: Vec<RawFd>,
    /// Exec into a paused container (the process then starts frozen).
    pub ignore_paused: bool,
    /// The process's stdin, stdout and stderr; `None`: the caller's own.
    pub stdio: Option<super::StdioFds>,
}

/// The new process: its pid (in the caller's pid namespace) and a pidfd.
/// It is a child of the caller.
pub struct Executed {
    /// The process's pid; its exit reaches the caller's `waitpid`.
    pub pid: i32,
    /// A pidfd of the process, to poll for its exit or signal it.
    pub pidfd: OwnedFd,
}

/// Run `process` in a created or running container: in its namespaces,
/// cgroups and root, with its seccomp filter (a paused one only with
/// `ignore_paused`). `process` is taken as it is: the container's own
/// `process` is not merged in.
///
/// Blocks until the process is set up and runs `process.args` (execve
/// done or about to be). It is a child of the caller, as the init is (see
/// [`super::create()`]); it lives in the container's pid namespace, so it
/// dies with the init when that namespace is the container's own. On
/// error a process that had been started was killed, and its exit reaches
/// the caller's reaper under a pid never given.
pub fn exec(opts: &ExecOptions) -> Result<Executed, ContainerError> {
    let id = &opts.id;
    crate::config::validate_process_only(&opts.process)?;
    let (state, defaults, init, frozen) = {
        // Locked only while reading: execs into one container may overlap.
        let dir = StateDir::open(&opts.root, id)?;
        let state = dir.load()?;
        let frozen = check_status(&dir, &state, opts.ignore_paused)? == Status::Paused;
        let init = open_init(&state)?;
        (state, load_defaults(&dir)?, init, frozen)
    };
    let console = console_socket(opts)?;
    let (cgroup_join, join_late) = cgroup_join(&state, frozen)?;
    let (ours, theirs) = Channel::pair()?;
    let bootstrap = spawn_bootstrap(id, &theirs, opts.stdio.as_ref())?;
    drop(theirs);
    crate::fault_point!("exec:bootstrap-spawned");
    let config = ExecConfig {
        id: id.clone(),
        init_pid: state.pid,
        process: opts.process.clone(),
        cgroup_join,
        frozen,
        seccomp: defaults.seccomp.clone(),
        console_socket: console.is_some(),
        preserved: opts.preserve_fds.len(),
        trace: crate::trace::enabled(),
    };
    let mut fds = vec![init.as_raw_fd()];
    fds.extend(console.as_ref().map(|c| c.as_raw_fd()));
    fds.extend(&opts.preserve_fds);
    ours.send(&Message::Exec(Box::new(config)), &fds)?;
    drop(console);
    drop(init);
    crate::fault_point!("exec:bootstrap-sent");
    let received = receive_init(&ours, &bootstrap);
    if crate::init::reaps_own_helpers() {
        bootstrap.wait();
    }
    let (pid, pidfd) = received?;
    crate::fault_point!("exec:process-received");
    if let Err(e) = finish(
        &ours,
        opts,
        &state,
        &defaults,
        (pid, &pidfd),
        frozen,
        &join_late,
    ) {
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        wait_process_gone(&pidfd);
        return Err(e);
    }
    Ok(Executed { pid, pidfd })
}

/// runc's words: created and running containers take an exec. Returns
/// the status.
fn check_status(
    dir: &StateDir,
    state: &State,
    ignore_paused: bool,
) -> Result<Status, ContainerError> {
    let status = dir.current_status(state);
    let message = match status {
        Status::Created | Status::Running => return Ok(status),
        Status::Paused if ignore_paused => return Ok(status),
        Status::Paused => "cannot exec in a paused container (use --ignore-paused to override)",
        Status::Stopped => "cannot exec in a stopped container",
        Status::Creating => "cannot exec in a container that is being created",
    };
    Err(ContainerError::WrongStatus {
        id: state.id.clone(),
        status,
        message: message.to_string(),
    })
}

/// A pidfd of the init, checked to be the init and not a reused pid.
fn open_init(state: &State) -> Result<OwnedFd, ContainerError> {
    let stopped = || ContainerError::WrongStatus {
        id: state.id.clone(),
        status: Status::Stopped,
        message: "cannot exec in a stopped container".into(),
    };
    let pidfd = pidfd_open(state.pid).map_err(|_| stopped())?;
    match process_start_time(state.pid) {
        Some((start, false)) if start == state.init_start_time => Ok(pidfd),
        _ => Err(stopped()),
    }
}

fn load_defaults(dir: &StateDir) -> Result<ExecDefaults, ContainerError> {
    let path = dir.path.join(EXEC_FILE);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| {
            ContainerError::Setup(format!(
                "container {}: corrupt {}: {e}",
                dir.id,
                path.display()
            ))
        }),
        // Nothing was worth keeping at create (no seccomp profile).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ExecDefaults::default()),
        Err(e) => Err(ContainerError::sys(&dir.id, "read", path.display())(
            crate::utils::io_errno(&e),
        )),
    }
}

/// Keep what exec needs from the config (see [`ExecDefaults`]); nothing
/// is written for a config without a seccomp profile.
pub(crate) fn save_defaults(
    dir: &StateDir,
    config: &crate::config::Config,
) -> Result<(), ContainerError> {
    let Some(seccomp) = &config.seccomp else {
        return Ok(());
    };
    let defaults = ExecDefaults {
        seccomp: Some(seccomp.clone()),
        listener_metadata: config
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().clone()),
    };
    let path = dir.path.join(EXEC_FILE);
    let data = serde_json::to_vec(&defaults)
        .map_err(|e| ContainerError::Setup(format!("encoding {}: {e}", path.display())))?;
    crate::utils::write_atomic(&path, &data).map_err(|e| {
        ContainerError::sys(&dir.id, "write", path.display())(crate::utils::io_errno(&e))
    })
}

fn console_socket(opts: &ExecOptions) -> Result<Option<OwnedFd>, ContainerError> {
    if opts.process.terminal() != Some(true) {
        return Ok(None);
    }
    super::create::console_socket_from(
        &opts.id,
        opts.console_socket.as_deref(),
        opts.console_socket_fd,
    )
    .map(Some)
}

/// How the process enters the container's cgroups, found from the path
/// recorded at create: every v1 hierarchy's `tasks` (the bootstrap writes
/// "0", moving itself) and the cgroup2 directory to clone it into. For a
/// `frozen` container, the frozen cgroup (the v1 freezer, or the cgroup2
/// directory on a unified host) is returned apart, as the file the caller
/// writes the process's pid to once it is set up.
fn cgroup_join(state: &State, frozen: bool) -> Result<(SelfJoin, Vec<PathBuf>), ContainerError> {
    use libcgroups::common::{get_cgroup_setup, CgroupSetup};
    let rel = crate::cgroups::relative_dir(&state.cgroup_path)?;
    let host =
        crate::cgroups::resources::Host::probe().map_err(crate::cgroups::CgroupError::from)?;
    let mut join = SelfJoin::default();
    let mut late = Vec::new();
    for mount in host.v1_mount_points() {
        let dir = mount.join(&rel);
        if !dir.is_dir() {
            continue;
        }
        if frozen && dir.join("freezer.state").exists() {
            late.push(dir.join("tasks"));
        } else {
            join.tasks.push(dir.join("tasks"));
        }
    }
    let unified = match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => Some(Path::new("/sys/fs/cgroup").join(&rel)),
        Ok(CgroupSetup::Hybrid) => Some(Path::new("/sys/fs/cgroup/unified").join(&rel)),
        _ => None,
    };
    let unified = unified.filter(|dir| dir.is_dir());
    match unified {
        Some(dir) if frozen && dir.join("cgroup.freeze").exists() && late.is_empty() => {
            late.push(dir.join("cgroup.procs"))
        }
        other => join.unified = other,
    }
    Ok((join, late))
}

/// After the bootstrap handed over the process: the seccomp agent (for a
/// NOTIFY profile), wait for Ready, the frozen cgroup of a paused
/// container (`join_late`), then the pid file.
fn finish(
    chan: &Channel,
    opts: &ExecOptions,
    state: &State,
    defaults: &ExecDefaults,
    (pid, pidfd): (i32, &OwnedFd),
    frozen: bool,
    join_late: &[PathBuf],
) -> Result<(), ContainerError> {
    if let Some(filter) = defaults.seccomp.as_ref().filter(|f| f.notifies()) {
        let mut process_state = state.clone();
        process_state.pid = pid;
        super::create::send_seccomp_agent(
            chan,
            filter,
            defaults.listener_metadata.as_deref(),
            &process_state,
        )?;
    }
    loop {
        match super::create::next_message(chan, Some(pidfd.as_fd())) {
            Ok((Message::Ready, _)) => break,
            Ok((Message::Warning { message }, _)) => {
                tracing::warn!("container {}: exec: {message}", opts.id)
            }
            Ok((Message::Error { message }, _)) => return Err(ContainerError::Setup(message)),
            Ok((other, _)) => {
                return Err(ContainerError::Setup(format!(
                    "exec: unexpected message {other:?}"
                )))
            }
            Err(e) => {
                return Err(ContainerError::Setup(format!(
                    "exec: the process exited during setup ({e})"
                )))
            }
        }
    }
    crate::fault_point!("exec:process-ready");
    if frozen {
        for procs in join_late {
            std::fs::write(procs, pid.to_string()).map_err(|e| {
                ContainerError::sys(&opts.id, "join frozen cgroup", procs.display())(
                    crate::utils::io_errno(&e),
                )
            })?;
        }
        crate::fault_point!("exec:frozen-cgroup-joined");
        chan.send(&Message::Proceed, &[])?;
    }
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(&opts.id, path, pid)?;
        crate::fault_point!("exec:pid-file-written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_json() {
        let text = r#"{"seccomp":null,"listenerMetadata":"m"}"#;
        let d: ExecDefaults = serde_json::from_str(text).unwrap();
        assert_eq!(d.listener_metadata.as_deref(), Some("m"));
        assert!(d.seccomp.is_none());
    }
}
