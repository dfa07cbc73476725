//! The task service: containerd's task API over the library, in process.
//! Each method does its work with the library directly (create, start,
//! exec, kill, delete, pause, resume, ps, update, stats); what the shim
//! keeps is in `process`.

use crate::events::Event;
use crate::process::{self, Container, Phase, Proc, Shared};
use crate::stdio;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::oci::{Options, ProcessDetails};
use containerd_shim::protos::shim::shim::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::protos::types::empty::Empty;
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use containerd_shim::{ExitSignal, Task, TtrpcContext, TtrpcResult};
use libcontainer::container::{self as lib, ContainerError, CreateOptions, ExecOptions};
use libcontainer::state::StateError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the library keeps its containers' state, as the runc shim's
/// `/run/containerd/runc`: `<root>/<namespace>/<id>`.
pub const DEFAULT_ROOT: &str = "/run/containerd/rrun";
/// The runc shim's options type (the CRI plugin and `ctr` send it for
/// runc; the fields that mean something here are honoured).
const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
/// The type of an exec'd process's `ProcessInfo.info` (its exec id), as
/// the runc shim sends it.
const PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";
/// How long delete waits for a killed created init's exit to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(10);

pub struct Service {
    shared: Arc<Shared>,
    exit: Arc<ExitSignal>,
}

pub fn err(code: Code, message: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.to_string()))
}

fn not_found(what: &str) -> ttrpc::Error {
    err(Code::NOT_FOUND, format!("{what}: not found"))
}

/// The library's errors as the codes containerd maps to its errdefs.
fn lib_err(e: ContainerError) -> ttrpc::Error {
    let code = match &e {
        ContainerError::State(StateError::NotExist { .. }) => Code::NOT_FOUND,
        ContainerError::State(StateError::Exists { .. }) => Code::ALREADY_EXISTS,
        ContainerError::State(StateError::InvalidId { .. }) => Code::INVALID_ARGUMENT,
        ContainerError::Config(_) | ContainerError::BadSignal(_) => Code::INVALID_ARGUMENT,
        ContainerError::WrongStatus { .. } => Code::FAILED_PRECONDITION,
        _ => Code::UNKNOWN,
    };
    err(code, e)
}

fn io_err(what: &str, e: std::io::Error) -> ttrpc::Error {
    err(Code::UNKNOWN, format!("{what}: {e}"))
}

/// Marks a request as served when it ends (see `events` and `trim`).
struct Activity<'a>(&'a Shared);

impl Drop for Activity<'_> {
    fn drop(&mut self) {
        self.0.queue.activity();
    }
}

impl Service {
    fn activity(&self) -> Activity<'_> {
        Activity(&self.shared)
    }

    pub fn new(shared: Arc<Shared>, exit: Arc<ExitSignal>) -> Service {
        Service { shared, exit }
    }

    fn ns(&self) -> &str {
        &self.shared.namespace
    }

    /// The library root of container `id`.
    fn root_of(&self, id: &str) -> TtrpcResult<PathBuf> {
        self.shared
            .lock()
            .containers
            .get(id)
            .map(|c| c.root.clone())
            .ok_or_else(|| not_found(&format!("container {id}")))
    }
}

/// The runc shim's options, if containerd sent them.
pub fn parse_options(any: Option<&Any>) -> TtrpcResult<Options> {
    match any {
        Some(any) if any.type_url.ends_with(RUNC_OPTIONS) => Options::parse_from_bytes(&any.value)
            .map_err(|e| err(Code::INVALID_ARGUMENT, format!("runtime options: {e}"))),
        _ => Ok(Options::default()),
    }
}

pub fn state_root(options_root: &str, namespace: &str) -> PathBuf {
    let base = if options_root.is_empty() {
        DEFAULT_ROOT
    } else {
        options_root
    };
    Path::new(base).join(namespace)
}

/// Mount containerd's rootfs mounts (the snapshot) at `<bundle>/rootfs`.
fn mount_rootfs(req: &CreateTaskRequest) -> TtrpcResult<Option<PathBuf>> {
    if req.rootfs.is_empty() {
        return Ok(None);
    }
    let target = Path::new(&req.bundle).join("rootfs");
    std::fs::create_dir_all(&target).map_err(|e| io_err("mkdir rootfs", e))?;
    for m in &req.rootfs {
        let fs_type = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let source = (!m.source.is_empty()).then_some(m.source.as_str());
        if let Err(e) = containerd_shim::mount::mount_rootfs(fs_type, source, &m.options, &target) {
            unmount(&target);
            return Err(err(
                Code::UNKNOWN,
                format!("mount {} on {}: {e}", m.type_, target.display()),
            ));
        }
    }
    Ok(Some(target))
}

pub fn unmount(target: &Path) {
    let Some(t) = target.to_str() else { return };
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(t), libc::MNT_DETACH) {
        containerd_shim::warn!("unmount {t}: {e}");
    }
}

/// The container shares a pid namespace (none of its own): the kernel
/// will not kill what the init leaves when it exits.
fn shares_pid_namespace(spec: &oci_spec::runtime::Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType;
    !spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
        })
}

fn pid_of(p: &Proc) -> u32 {
    p.pid.max(0) as u32
}

impl Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        let _activity = self.activity();
        let id = req.id.clone();
        if self.shared.lock().containers.contains_key(&id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {id}: already exists"),
            ));
        }
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(err(
                Code::UNIMPLEMENTED,
                "restoring from a checkpoint is not supported by rrun",
            ));
        }
        let options = parse_options(req.options.as_ref())?;
        let root = state_root(&options.root, self.ns());
        if req.options.is_some() {
            // For the `delete` subcommand, which has only the bundle.
            containerd_shim::util::write_options(&req.bundle, &options)
                .map_err(|e| err(Code::UNKNOWN, format!("write options.json: {e}")))?;
        }
        let bundle = PathBuf::from(&req.bundle);
        let config = libcontainer::config::Config::load(&bundle).map_err(|e| lib_err(e.into()))?;
        let mounted = mount_rootfs(&req)?;
        let undo_mount = |e: ttrpc::Error| {
            if let Some(m) = &mounted {
                unmount(m);
            }
            e
        };
        let opened = stdio::open(&stdio::Request {
            stdin: &req.stdin,
            stdout: &req.stdout,
            stderr: &req.stderr,
            terminal: req.terminal,
            id: &id,
            namespace: self.ns(),
        })
        .map_err(|e| undo_mount(io_err("stdio", e)))?;
        let opts = CreateOptions {
            root: root.clone(),
            id: id.clone(),
            bundle: bundle.clone(),
            console_socket_fd: opened.console_socket_fd(),
            no_pivot: options.no_pivot_root,
            no_new_keyring: options.no_new_keyring,
            systemd_cgroup: options.systemd_cgroup,
            stdio: Some(opened.stdio()),
            ..Default::default()
        };
        let since = Instant::now();
        let created = lib::create_from(&opts, &config).map_err(|e| undo_mount(lib_err(e)))?;
        let kept = match opened.finish() {
            Ok(kept) => kept,
            Err(e) => {
                let _ = lib::delete(&root, &id, true);
                return Err(undo_mount(io_err("terminal", e)));
            }
        };

        let mut init = Proc::new("", &req.stdin, &req.stdout, &req.stderr, req.terminal);
        init.pid = created.pid;
        init.pidfd = Some(created.pidfd);
        init.io = kept;
        let mut container = Container::new(&id, bundle, root.clone(), init);
        container.rootfs_mounted = mounted;
        container.kill_all_on_exit = shares_pid_namespace(&config.spec);
        let mut table = self.shared.lock();
        container.init.exit = table.claim(created.pid, since);
        table.containers.insert(id.clone(), container);
        self.shared.publish(Event::Create(TaskCreate {
            container_id: id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: created.pid as u32,
            ..Default::default()
        }));
        let actions = self.shared.settle(&mut table, &id);
        drop(table);
        process::run(actions);
        self.watch_oom(&id, root);
        Ok(CreateTaskResponse {
            pid: created.pid as u32,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let _activity = self.activity();
        if req.exec_id.is_empty() {
            self.start_init(&req.id)
        } else {
            self.start_exec(&req.id, &req.exec_id)
        }
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let _activity = self.activity();
        if req.exec_id.is_empty() {
            self.delete_init(&req.id)
        } else {
            self.delete_exec(&req.id, &req.exec_id)
        }
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let _activity = self.activity();
        let root = self.root_of(&req.id)?;
        let pids = lib::pids(&root, &req.id).map_err(lib_err)?;
        let table = self.shared.lock();
        let execs: Vec<(i32, String)> = table
            .containers
            .get(&req.id)
            .map(|c| {
                c.execs
                    .values()
                    .filter(|e| e.pid != 0)
                    .map(|e| (e.pid, e.exec_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        drop(table);
        let processes = pids
            .into_iter()
            .map(|pid| {
                let info = execs
                    .iter()
                    .find(|(p, _)| *p == pid)
                    .and_then(|(_, exec_id)| {
                        let details = ProcessDetails {
                            exec_id: exec_id.clone(),
                            ..Default::default()
                        };
                        details.write_to_bytes().ok().map(|value| Any {
                            type_url: PROCESS_DETAILS.to_string(),
                            value,
                            ..Default::default()
                        })
                    });
                ProcessInfo {
                    pid: pid as u32,
                    info: info.into(),
                    ..Default::default()
                }
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let root = self.root_of(&req.id)?;
        lib::pause(&root, &req.id).map_err(lib_err)?;
        let _table = self.shared.lock();
        self.shared.publish(Event::Paused(TaskPaused {
            container_id: req.id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let root = self.root_of(&req.id)?;
        lib::resume(&root, &req.id).map_err(lib_err)?;
        let _table = self.shared.lock();
        self.shared.publish(Event::Resumed(TaskResumed {
            container_id: req.id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        Err(err(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by rrun (no CRIU integration)",
        ))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let finished = || err(Code::NOT_FOUND, "process already finished");
        let table = self.shared.lock();
        let c = table
            .containers
            .get(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        if !req.exec_id.is_empty() {
            let e = c
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| not_found(&format!("exec {}", req.exec_id)))?;
            let pidfd = match (&e.pidfd, e.exit) {
                (Some(fd), None) => fd,
                _ => return Err(finished()),
            };
            return match libcontainer::utils::pidfd_send_signal(pidfd, req.signal as i32) {
                Ok(()) => Ok(Empty::new()),
                Err(nix::errno::Errno::ESRCH) => Err(finished()),
                Err(e) => Err(err(
                    Code::UNKNOWN,
                    format!("kill exec {}: {e}", req.exec_id),
                )),
            };
        }
        if c.init.exit.is_some() && !req.all {
            return Err(finished());
        }
        let root = c.root.clone();
        drop(table);
        lib::kill(&root, &req.id, req.signal as i32, req.all).map_err(|e| match e {
            ContainerError::WrongStatus { .. } => finished(),
            e => lib_err(e),
        })?;
        Ok(Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let spec: oci_spec::runtime::Process = match req.spec.as_ref() {
            Some(any) => serde_json::from_slice(&any.value)
                .map_err(|e| err(Code::INVALID_ARGUMENT, format!("exec process spec: {e}")))?,
            None => return Err(err(Code::INVALID_ARGUMENT, "exec without a process spec")),
        };
        let mut table = self.shared.lock();
        let c = table
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        if c.execs.contains_key(&req.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("id {}: already exists", req.exec_id),
            ));
        }
        if c.init.exit.is_some() {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is not running", req.id),
            ));
        }
        let mut e = Proc::new(
            &req.exec_id,
            &req.stdin,
            &req.stdout,
            &req.stderr,
            req.terminal,
        );
        e.spec = Some(spec);
        c.execs.insert(req.exec_id.clone(), e);
        self.shared.publish(Event::ExecAdded(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let table = self.shared.lock();
        let p = table
            .containers
            .get(&req.id)
            .and_then(|c| c.proc(&req.exec_id))
            .ok_or_else(|| not_found(&format!("process {} {}", req.id, req.exec_id)))?;
        p.io.resize(req.width, req.height)
            .map_err(|e| io_err("resize pty", e))?;
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let mut table = self.shared.lock();
        let p = table
            .containers
            .get_mut(&req.id)
            .and_then(|c| c.proc_mut(&req.exec_id))
            .ok_or_else(|| not_found(&format!("process {} {}", req.id, req.exec_id)))?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let root = self.root_of(&req.id)?;
        let Some(any) = req.resources.as_ref() else {
            return Err(err(Code::INVALID_ARGUMENT, "update without resources"));
        };
        let resources = lib::parse_resources("of the update", &any.value).map_err(lib_err)?;
        lib::update(&root, &req.id, &resources).map_err(lib_err)?;
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let _activity = self.activity();
        let table = self.shared.lock();
        let lookup = |t: &crate::process::Table| {
            t.containers
                .get(&req.id)
                .and_then(|c| c.proc(&req.exec_id))
                .map(|p| p.told_exit())
        };
        if lookup(&table).is_none() {
            return Err(not_found(&format!("process {} {}", req.id, req.exec_id)));
        }
        let table = self
            .shared
            .wait_until(table, None, |t| !matches!(lookup(t), Some(None)));
        match lookup(&table) {
            Some(Some(exit)) => Ok(WaitResponse {
                exit_status: exit.status,
                exited_at: MessageField::some(exit.timestamp()),
                ..Default::default()
            }),
            Some(None) => Err(err(Code::UNAVAILABLE, "the shim is shutting down")),
            None => Err(not_found(&format!("process {} {}", req.id, req.exec_id))),
        }
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let _activity = self.activity();
        let root = self.root_of(&req.id)?;
        let stats = lib::stats(&root, &req.id).map_err(lib_err)?;
        let any = crate::metrics::to_any(&stats)
            .map_err(|e| err(Code::UNKNOWN, format!("encoding metrics: {e}")))?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let _activity = self.activity();
        let table = self.shared.lock();
        let task_pid = table
            .containers
            .get(&req.id)
            .map(|c| pid_of(&c.init))
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> TtrpcResult<Empty> {
        let _activity = self.activity();
        let mut table = self.shared.lock();
        // A shim serving a pod stays while any of its containers does.
        if !table.containers.is_empty() {
            return Ok(Empty::new());
        }
        table.shutting_down = true;
        self.shared.changed.notify_all();
        drop(table);
        self.exit.signal();
        Ok(Empty::new())
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let _activity = self.activity();
        let table = self.shared.lock();
        let c = table
            .containers
            .get(&req.id)
            .ok_or_else(|| not_found(&format!("container {}", req.id)))?;
        let p = c
            .proc(&req.exec_id)
            .ok_or_else(|| not_found(&format!("exec {}", req.exec_id)))?;
        let exit = p.told_exit();
        let status = match (exit, p.phase) {
            (Some(_), _) => Status::STOPPED,
            (None, Phase::Created) => Status::CREATED,
            (None, Phase::Running) => Status::RUNNING,
        };
        // Whether a running container is paused is its freezer's to say.
        let ask_library = (status == Status::RUNNING && req.exec_id.is_empty())
            .then(|| (c.root.clone(), c.id.clone()));
        let mut response = StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.display().to_string(),
            pid: pid_of(p),
            status: status.into(),
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
            exit_status: exit.map(|e| e.status).unwrap_or(0),
            exited_at: exit.map(|e| e.timestamp()).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        // Not under the table's lock: the library locks the container's
        // state directory, which a start or delete may hold for a while.
        drop(table);
        if let Some((root, id)) = ask_library {
            if let Ok(libcontainer::state::Status::Paused) =
                lib::state(&root, &id).map(|l| l.status)
            {
                response.status = Status::PAUSED.into();
            }
        }
        Ok(response)
    }
}

impl Service {
    fn start_init(&self, id: &str) -> TtrpcResult<StartResponse> {
        let root = {
            let mut table = self.shared.lock();
            let c = table
                .containers
                .get_mut(id)
                .ok_or_else(|| not_found(&format!("container {id}")))?;
            if c.init.phase != Phase::Created || c.init.starting {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {id} was started already"),
                ));
            }
            c.init.starting = true;
            c.root.clone()
        };
        let result = lib::start(&root, id);
        let mut table = self.shared.lock();
        let Some(c) = table.containers.get_mut(id) else {
            return Err(not_found(&format!("container {id}")));
        };
        c.init.starting = false;
        let pid = c.init.pid;
        if result.is_ok() {
            c.init.phase = Phase::Running;
            self.shared.publish(Event::Start(TaskStart {
                container_id: id.to_string(),
                pid: pid as u32,
                ..Default::default()
            }));
        }
        let actions = self.shared.settle(&mut table, id);
        drop(table);
        process::run(actions);
        result.map_err(lib_err)?;
        Ok(StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<StartResponse> {
        let (root, spec, req) = {
            let mut table = self.shared.lock();
            let c = table
                .containers
                .get_mut(id)
                .ok_or_else(|| not_found(&format!("container {id}")))?;
            if c.init.exit.is_some() {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {id} is not running"),
                ));
            }
            let root = c.root.clone();
            let e = c
                .execs
                .get_mut(exec_id)
                .ok_or_else(|| not_found(&format!("exec {exec_id}")))?;
            if e.phase != Phase::Created || e.starting {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} was started already"),
                ));
            }
            e.starting = true;
            let req = (
                e.stdin.clone(),
                e.stdout.clone(),
                e.stderr.clone(),
                e.terminal,
            );
            (root, e.spec.clone().unwrap_or_default(), req)
        };
        let since = Instant::now();
        let result = stdio::open(&stdio::Request {
            stdin: &req.0,
            stdout: &req.1,
            stderr: &req.2,
            terminal: req.3,
            id,
            namespace: self.ns(),
        })
        .map_err(|e| io_err("stdio", e))
        .and_then(|opened| {
            let mut process = spec;
            process.set_terminal(Some(req.3));
            let opts = ExecOptions {
                root: root.clone(),
                id: id.to_string(),
                process,
                console_socket_fd: opened.console_socket_fd(),
                stdio: Some(opened.stdio()),
                ..Default::default()
            };
            let executed = lib::exec(&opts).map_err(lib_err)?;
            match opened.finish() {
                Ok(kept) => Ok((executed, kept)),
                Err(e) => {
                    // No pty to serve it: it goes (its exit is reaped and
                    // dropped as nobody's).
                    let _ = libcontainer::utils::pidfd_send_signal(&executed.pidfd, libc::SIGKILL);
                    Err(io_err("terminal", e))
                }
            }
        });
        let mut table = self.shared.lock();
        let Some(e) = table
            .containers
            .get_mut(id)
            .and_then(|c| c.execs.get_mut(exec_id))
        else {
            return Err(not_found(&format!("exec {exec_id}")));
        };
        e.starting = false;
        let outcome = match result {
            Ok((executed, kept)) => {
                let pid = executed.pid;
                e.pid = pid;
                e.pidfd = Some(executed.pidfd);
                e.io = kept;
                e.phase = Phase::Running;
                let claimed = table.claim(pid, since);
                let e = table
                    .containers
                    .get_mut(id)
                    .and_then(|c| c.execs.get_mut(exec_id))
                    .expect("the exec is in the table: it was just updated");
                e.exit = e.exit.or(claimed);
                self.shared.publish(Event::ExecStarted(TaskExecStarted {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    pid: pid as u32,
                    ..Default::default()
                }));
                Ok(StartResponse {
                    pid: pid as u32,
                    ..Default::default()
                })
            }
            Err(error) => {
                // Never ran: nothing to tell but the error; Delete takes it.
                e.phase = Phase::Running;
                e.exit = Some(process::Exit {
                    status: 255,
                    at: std::time::SystemTime::now(),
                });
                e.told = true;
                self.shared.changed.notify_all();
                Err(error)
            }
        };
        let actions = self.shared.settle(&mut table, id);
        drop(table);
        process::run(actions);
        outcome
    }

    fn delete_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<DeleteResponse> {
        let mut table = self.shared.lock();
        let c = table
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found(&format!("container {id}")))?;
        let e = c
            .execs
            .get(exec_id)
            .ok_or_else(|| not_found(&format!("exec {exec_id}")))?;
        if e.live() {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("cannot delete running exec {exec_id}"),
            ));
        }
        let mut e = c.execs.remove(exec_id).expect("looked up above");
        let actions = self.shared.settle(&mut table, id);
        drop(table);
        process::run(actions);
        e.io.close();
        let exit = e.told_exit();
        Ok(DeleteResponse {
            pid: pid_of(&e),
            exit_status: exit.map(|x| x.status).unwrap_or(0),
            exited_at: exit.map(|x| x.timestamp()).into(),
            ..Default::default()
        })
    }

    fn delete_init(&self, id: &str) -> TtrpcResult<DeleteResponse> {
        let table = self.shared.lock();
        let c = table
            .containers
            .get(id)
            .ok_or_else(|| not_found(&format!("container {id}")))?;
        let root = c.root.clone();
        let created = c.init.phase == Phase::Created && !c.init.starting;
        if !created && c.init.told_exit().is_none() {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("cannot delete running container {id}"),
            ));
        }
        drop(table);
        // A created container's init is killed by the library's delete.
        lib::delete(&root, id, false).map_err(lib_err)?;
        let table = self.shared.lock();
        let mut table = if created {
            self.shared.wait_until(table, Some(REAP_WAIT), |t| {
                t.containers
                    .get(id)
                    .is_none_or(|c| c.init.told_exit().is_some())
            })
        } else {
            table
        };
        let Some(mut c) = table.containers.remove(id) else {
            return Err(not_found(&format!("container {id}")));
        };
        let exit = c.init.told_exit();
        self.shared.publish(Event::Delete(TaskDelete {
            container_id: id.to_string(),
            pid: pid_of(&c.init),
            exit_status: exit.map(|x| x.status).unwrap_or(0),
            exited_at: exit.map(|x| x.timestamp()).into(),
            ..Default::default()
        }));
        drop(table);
        c.init.io.close();
        for e in c.execs.values_mut() {
            e.io.close();
        }
        if let Some(m) = &c.rootfs_mounted {
            unmount(m);
        }
        Ok(DeleteResponse {
            pid: pid_of(&c.init),
            exit_status: exit.map(|x| x.status).unwrap_or(0),
            exited_at: exit.map(|x| x.timestamp()).into(),
            ..Default::default()
        })
    }

    /// OOM events of container `id`, from the library's watcher, until its
    /// init exits; the init's TaskExit waits for it (see `process`).
    fn watch_oom(&self, id: &str, root: PathBuf) {
        let shared = self.shared.clone();
        let cid = id.to_string();
        let spawned = std::thread::Builder::new()
            .name("oom".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let result = lib::watch(
                    &root,
                    &cid,
                    // Statistics are not wanted: one a day keeps poll quiet.
                    Duration::from_secs(24 * 3600),
                    |event| {
                        if event.kind == "oom" {
                            let _table = shared.lock();
                            shared.publish(Event::Oom(TaskOOM {
                                container_id: cid.clone(),
                                ..Default::default()
                            }));
                        }
                    },
                    |_| {},
                );
                if let Err(e) = result {
                    if !matches!(e, ContainerError::WrongStatus { .. }) {
                        containerd_shim::warn!("container {cid}: OOM events: {e}");
                    }
                }
                shared.oom_done(&cid);
            });
        if spawned.is_err() {
            self.shared.oom_done(id);
        }
    }
}
