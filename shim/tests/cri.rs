//! Kubernetes' path to rrun: the kubelet's CRI calls, over gRPC, to
//! containerd 1.6's CRI plugin, which runs the pods with one of two runtime
//! handlers: `rrun` (this shim, `io.containerd.rrun.v2`) and
//! `rrun-runc-shim` (the stock runc-v2 shim with `BinaryName` = the rrun
//! binary). Every check runs once per handler and must pass with both.
//!
//! As root, the test re-executes itself in private mount, pid and network
//! namespaces (`unshare`, with conformance's namespace, process and image
//! helpers, as `tests/containerd.rs` does): a tmpfs on /run, overlays on
//! /etc, /var and /tmp, a private containerd with its own sockets, root and
//! state, and its CRI plugin. The pods are host-network pods
//! (`NamespaceOption.network = NODE`), and the node's network is the test's
//! own namespace: no CNI, no interface but its loopback (up, for the CRI
//! streaming server). No image registry is reachable: the sandbox image (a
//! static `pause` built from `cri/pause.c` with the C compiler) and the
//! busybox image are imported with `ctr -n k8s.io images import`, and the
//! CRI plugin's `sandbox_image` names the first. Every pod's cgroup parent
//! is `/<run's parent>/<pod>`; the host-side process removes the run's
//! parent at the end.
//!
//! After every check nothing may be left: no shim, sandbox or container
//! process, no mount of a rootfs, a pod's /dev/shm or anything of the CRI
//! plugin's, no container cgroup, no FIFO, no shim socket, no runtime,
//! containerd or CRI state.
//!
//! `harness = false`: the output ends with `cri: N passed, N failed`;
//! `CRI_TESTS_FILTER=text` runs only the checks whose title has it. With
//! `--ignored` it runs the benchmark instead (`CRI_BENCH_PODS` pods per
//! handler, 50 by default): see the shim's README.

#[path = "../../conformance/src/e2e/proc.rs"]
#[allow(dead_code)]
mod proc;

#[path = "../../conformance/src/e2e/image.rs"]
#[allow(dead_code)]
mod image;

#[path = "../../conformance/src/e2e/ns.rs"]
#[allow(dead_code)]
mod ns;

/// CRI `runtime.v1`: messages and clients generated from the CRI protos
/// (see `cri/README.md`).
#[allow(clippy::all, dead_code)]
mod v1 {
    include!("cri/runtime.v1.rs");
}

use proc::{Output, Spec};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use v1::image_service_client::ImageServiceClient;
use v1::runtime_service_client::RuntimeServiceClient;

const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const RUNC_V2_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
/// The test's own directory, on the namespace's private /run.
const WORK: &str = "/run/cri-tests";
/// The CRI plugin's containerd namespace.
const K8S_NS: &str = "k8s.io";
/// The sandbox image: `cri/pause.c`, static, as `/pause`.
const PAUSE_REF: &str = "docker.io/rrun-e2e/pause:latest";
/// Where the shim keeps the library's state (its default root).
const SHIM_ROOT: &str = "/run/containerd/rrun";
/// Where the shims' ttrpc sockets are.
const SOCKET_DIR: &str = "/run/containerd/s";
/// Where `ctr` makes FIFOs (the CRI plugin makes its own under its state).
const FIFO_DIR: &str = "/run/containerd/fifo";
/// The cgroup parent of the run's pods (one directory per hierarchy).
const PARENT_ENV: &str = "CRI_TESTS_PARENT";
/// "bench" when the run is the benchmark.
const MODE_ENV: &str = "CRI_TESTS_MODE";
/// Only the checks whose title contains this.
const FILTER_ENV: &str = "CRI_TESTS_FILTER";
/// How many pods per handler the benchmark starts.
const BENCH_PODS_ENV: &str = "CRI_BENCH_PODS";
/// A path where containerd's log is copied at the end of the run.
const KEEP_LOG_ENV: &str = "CRI_TESTS_LOG";
/// How long one CRI call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    let stage = std::env::var(ns::STAGE_ENV).unwrap_or_default();
    let code = match stage.as_str() {
        "" => outer(),
        "init" => ns::init(&[]).unwrap_or_else(|e| {
            eprintln!("cri tests: {e:#}");
            2
        }),
        "harness" => harness(),
        other => {
            eprintln!("cri tests: unknown {} {other}", ns::STAGE_ENV);
            2
        }
    };
    std::process::exit(code);
}

fn skip(why: &str) -> i32 {
    println!("cri tests skipped: {why}");
    println!("cri: 0 passed, 0 failed");
    0
}

/// Host side: check what the run needs, run it in private namespaces,
/// then remove the cgroup parent its pods had and check that nothing else is.
fn outer() -> i32 {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not root (containerd and containers need it)");
    }
    for bin in [
        CONTAINERD,
        CTR,
        RUNC_V2_SHIM,
        "/usr/bin/unshare",
        "/bin/busybox",
        "/usr/bin/cc",
        "/usr/lib/x86_64-linux-gnu/libc.a",
    ] {
        if !Path::new(bin).exists() {
            return skip(&format!(
                "{bin} is missing (apt-get install containerd util-linux busybox-static gcc libc6-dev)"
            ));
        }
    }
    let bench = std::env::args()
        .skip(1)
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let parent = format!("critest{}", std::process::id());
    let exe = std::env::current_exe().expect("current_exe");
    let status = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--net",
            "--fork",
            "--mount-proc",
            "--",
        ])
        .arg(&exe)
        .env(ns::STAGE_ENV, "init")
        .env(PARENT_ENV, &parent)
        .env(MODE_ENV, if bench { "bench" } else { "test" })
        .status();
    let mut code = match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("cri tests: running unshare: {e}");
            return 2;
        }
    };
    // Every process of the run is gone with its pid namespace. What is
    // left is the parent and the pods' directories, which the runtimes
    // made on the way to the containers' (the kubelet's, in a cluster; the
    // harness removes them after each check).
    let left = remove_cgroup_parent(&parent);
    if !left.is_empty() {
        println!("LEFT BEHIND on the host: {}", left.join(" "));
        code = code.max(1);
    }
    code
}

/// rmdir `/sys/fs/cgroup/*/<parent>` and below (only ours: the run made
/// them); returns the cgroups below it that were still there, and what
/// could not be removed.
fn remove_cgroup_parent(parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = hierarchy.path().join(parent);
        if !dir.is_dir() {
            continue;
        }
        for sub in ns::subdirs_deepest_first(&dir) {
            left.push(format!("cgroup {}", sub.display()));
            while std::fs::remove_dir(&sub).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        while std::fs::remove_dir(&dir).is_err() {
            if Instant::now() >= deadline {
                left.push(format!("cgroup {} (not removable)", dir.display()));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    left
}

/// The CRI runtime handler a pod runs with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Handler {
    /// `rrun`: this shim.
    Shim,
    /// `rrun-runc-shim`: the runc-v2 shim running the rrun binary.
    RuncV2,
}

impl Handler {
    fn name(self) -> &'static str {
        match self {
            Handler::Shim => "rrun",
            Handler::RuncV2 => "rrun-runc-shim",
        }
    }

    /// The shim binary containerd starts for the handler's pods.
    fn shim_binary(self) -> &'static str {
        match self {
            Handler::Shim => "containerd-shim-rrun-v2",
            Handler::RuncV2 => "containerd-shim-runc-v2",
        }
    }

    /// One letter for the pods' names.
    fn letter(self) -> &'static str {
        match self {
            Handler::Shim => "s",
            Handler::RuncV2 => "r",
        }
    }
}

/// A CRI client: containerd's gRPC socket, answered on a current-thread
/// runtime that the synchronous checks block on.
struct Cri {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

impl Cri {
    fn connect(socket: &Path) -> Result<Cri, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
                .map_err(|e| format!("endpoint: {e}"))?;
        let channel = rt
            .block_on(endpoint.connect())
            .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
        Ok(Cri { rt, channel })
    }

    fn rs(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    fn is(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// One CRI call with a deadline; its error says which call failed and
/// the gRPC status containerd answered.
async fn ask<T>(
    what: &str,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Err(_) => Err(format!("{what}: no answer in {RPC_TIMEOUT:?}")),
        Ok(Err(s)) => Err(format!("{what}: {:?}: {}", s.code(), s.message())),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

struct Env {
    work: PathBuf,
    out: PathBuf,
    /// The cgroup parent of every pod of the run.
    parent: String,
    rrun: Option<PathBuf>,
    env: Vec<(String, String)>,
    containerd: Mutex<Option<Child>>,
    cri: Option<Cri>,
}

impl Env {
    fn cri(&self) -> &Cri {
        self.cri.as_ref().expect("CRI client connected at setup")
    }

    fn socket(&self) -> PathBuf {
        self.work.join("containerd.sock")
    }

    fn config(&self) -> PathBuf {
        self.work.join("containerd.toml")
    }

    fn log(&self) -> PathBuf {
        self.work.join("containerd.log")
    }

    fn runc_root(&self) -> PathBuf {
        self.work.join("runc-root")
    }

    fn task_dir(&self) -> PathBuf {
        self.work
            .join("state/io.containerd.runtime.v2.task")
            .join(K8S_NS)
    }

    fn logs(&self) -> PathBuf {
        self.work.join("pod-logs")
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Output {
        proc::run(
            &Spec {
                argv,
                stdin: None,
                tty: false,
                timeout,
                env: &self.env,
            },
            &self.out,
        )
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let mut argv: Vec<String> = vec![
            CTR.into(),
            "--address".into(),
            self.socket().display().to_string(),
            "--namespace".into(),
            K8S_NS.into(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        self.run(&argv, Duration::from_secs(60))
    }

    fn start_containerd(&self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| e.to_string())?;
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(self.config())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        *self.containerd.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.ctr(&["version"]).code == Some(0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "containerd not ready after 30 s: {}",
                    tail(&self.log(), 5)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_containerd(&self) {
        let Some(mut child) = self.containerd.lock().unwrap().take() else {
            return;
        };
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Until the CRI answers: after a restart of containerd, the client's
    /// channel fails a call, then connects again.
    fn wait_cri(&self) -> CheckResult {
        let cri = self.cri();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = cri.block(ask(
                "Version",
                cri.rs().version(v1::VersionRequest {
                    version: "v1".into(),
                }),
            ));
            match r {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `/sys/fs/cgroup/<controller>/<parent>/<pod>`.
    fn pod_cgroup(&self, controller: &str, pod: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.parent)
            .join(pod)
    }

    /// What the runtimes, shims and the CRI plugin left of the checks' pods.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for p in ns::processes_left() {
            if !p.ends_with(" containerd") {
                left.push(format!("process {p}"));
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mountinfo.lines() {
            if let Some(target) = line.split(' ').nth(4) {
                if target.contains("io.containerd.runtime.v2.task")
                    || target.contains("io.containerd.grpc.v1.cri")
                    || target.starts_with("/run/netns")
                    || target.starts_with(SHIM_ROOT)
                {
                    left.push(format!("mount {target}"));
                }
            }
        }
        // A container's cgroup is /<parent>/<pod>/<id>; the pod's directory
        // is the kubelet's (the harness removes it after the check).
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for pod in std::fs::read_dir(hierarchy.path().join(&self.parent))
                .into_iter()
                .flatten()
                .flatten()
            {
                for sub in ns::subdirs_deepest_first(&pod.path()) {
                    left.push(format!("cgroup {}", sub.display()));
                }
            }
        }
        let cri = "io.containerd.grpc.v1.cri";
        let dirs = [
            Path::new(SHIM_ROOT).join(K8S_NS),
            self.runc_root().join(K8S_NS),
            self.task_dir(),
            PathBuf::from(SOCKET_DIR),
            PathBuf::from(FIFO_DIR),
            self.work.join("state").join(cri).join("containers"),
            self.work.join("state").join(cri).join("sandboxes"),
            self.work.join("root").join(cri).join("containers"),
            self.work.join("root").join(cri).join("sandboxes"),
            PathBuf::from("/run/netns"),
        ];
        for dir in dirs {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                left.push(e.path().display().to_string());
            }
        }
        let o = self.ctr(&["containers", "ls", "-q"]);
        for id in o.stdout.split_whitespace() {
            left.push(format!("containerd container {id}"));
        }
        let o = self.ctr(&["snapshots", "ls"]);
        for line in o.stdout.lines().filter(|l| l.contains("Active")) {
            left.push(format!(
                "snapshot {}",
                line.split_whitespace().next().unwrap_or("")
            ));
        }
        let cri = self.cri();
        match cri.block(ask(
            "ListPodSandbox",
            cri.rs()
                .list_pod_sandbox(v1::ListPodSandboxRequest::default()),
        )) {
            Ok(r) => left.extend(r.items.iter().map(|p| format!("CRI pod {}", p.id))),
            Err(e) => left.push(e),
        }
        match cri.block(ask(
            "ListContainers",
            cri.rs()
                .list_containers(v1::ListContainersRequest::default()),
        )) {
            Ok(r) => left.extend(
                r.containers
                    .iter()
                    .map(|c| format!("CRI container {}", c.id)),
            ),
            Err(e) => left.push(e),
        }
        left
    }

    /// rmdir the pods' cgroup directories (the kubelet's job); only once
    /// no container cgroup is below them.
    fn remove_pod_cgroups(&self) {
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for pod in std::fs::read_dir(hierarchy.path().join(&self.parent))
                .into_iter()
                .flatten()
                .flatten()
            {
                if ns::subdirs_deepest_first(&pod.path()).is_empty() {
                    let _ = std::fs::remove_dir(pod.path());
                }
            }
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn namespaces() -> v1::NamespaceOption {
    v1::NamespaceOption {
        network: v1::NamespaceMode::Node as i32,
        pid: v1::NamespaceMode::Container as i32,
        ipc: v1::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A host-network pod's sandbox config, as the kubelet makes it.
fn sandbox_config(env: &Env, name: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: format!("{name}-uid"),
            namespace: "default".into(),
            attempt: 0,
        }),
        // The kubelet leaves a host-network pod's hostname empty: the
        // pod has the node's (and no UTS namespace of its own, in which
        // a runtime could set one).
        hostname: String::new(),
        log_directory: env.logs().join(name).display().to_string(),
        labels: HashMap::from([("rrun-test".into(), name.into())]),
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: format!("/{}/{name}", env.parent),
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container's config in a pod.
fn container_config(
    name: &str,
    command: &[&str],
    resources: Option<v1::LinuxContainerResources>,
) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: image::CTR_REF.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(v1::LinuxContainerConfig {
            resources,
            security_context: Some(v1::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// RunPodSandbox, CreateContainer and StartContainer of one pod with one
/// container: what the benchmark does per pod. Returns the pod's id.
async fn pod_with_container(
    channel: Channel,
    handler: Handler,
    config: v1::PodSandboxConfig,
    command: &[&str],
) -> Result<String, String> {
    let mut rs = RuntimeServiceClient::new(channel);
    let pod = ask(
        "RunPodSandbox",
        rs.run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.name().into(),
        }),
    )
    .await?
    .pod_sandbox_id;
    let id = ask(
        "CreateContainer",
        rs.create_container(v1::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("main", command, None)),
            sandbox_config: Some(config),
        }),
    )
    .await?
    .container_id;
    ask(
        "StartContainer",
        rs.start_container(v1::StartContainerRequest { container_id: id }),
    )
    .await?;
    Ok(pod)
}

/// StopPodSandbox and RemovePodSandbox, as the kubelet deletes a pod.
async fn remove_pod(channel: Channel, pod: String) -> Result<(), String> {
    let mut rs = RuntimeServiceClient::new(channel);
    ask(
        "StopPodSandbox",
        rs.stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        }),
    )
    .await?;
    ask(
        "RemovePodSandbox",
        rs.remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: pod,
        }),
    )
    .await?;
    Ok(())
}

/// A pod of a check.
struct Pod {
    id: String,
    name: String,
    config: v1::PodSandboxConfig,
}

/// One check's view: its handler and its pods.
struct Ck<'a> {
    env: &'a Env,
    handler: Handler,
    /// Prefix of the check's pod names.
    name: String,
    /// Every pod the check made, for the cleanup.
    made: Mutex<Vec<String>>,
}

type CheckResult = Result<(), String>;

impl Ck<'_> {
    fn cri(&self) -> &Cri {
        self.env.cri()
    }

    fn run_pod(&self, suffix: &str) -> Result<Pod, String> {
        self.run_pod_with(suffix, |_| {})
    }

    /// RunPodSandbox of a config that `edit` changed.
    fn run_pod_with(
        &self,
        suffix: &str,
        edit: impl FnOnce(&mut v1::PodSandboxConfig),
    ) -> Result<Pod, String> {
        let name = format!("{}{suffix}", self.name);
        let mut config = sandbox_config(self.env, &name);
        edit(&mut config);
        let cri = self.cri();
        let id = cri
            .block(ask(
                "RunPodSandbox",
                cri.rs().run_pod_sandbox(v1::RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: self.handler.name().into(),
                }),
            ))?
            .pod_sandbox_id;
        self.made.lock().unwrap().push(id.clone());
        Ok(Pod { id, name, config })
    }

    fn create(
        &self,
        pod: &Pod,
        name: &str,
        command: &[&str],
        resources: Option<v1::LinuxContainerResources>,
    ) -> Result<String, String> {
        self.create_config(pod, container_config(name, command, resources))
    }

    fn create_config(&self, pod: &Pod, config: v1::ContainerConfig) -> Result<String, String> {
        let cri = self.cri();
        Ok(cri
            .block(ask(
                "CreateContainer",
                cri.rs().create_container(v1::CreateContainerRequest {
                    pod_sandbox_id: pod.id.clone(),
                    config: Some(config),
                    sandbox_config: Some(pod.config.clone()),
                }),
            ))?
            .container_id)
    }

    fn start(&self, id: &str) -> CheckResult {
        let cri = self.cri();
        cri.block(ask(
            "StartContainer",
            cri.rs().start_container(v1::StartContainerRequest {
                container_id: id.into(),
            }),
        ))?;
        Ok(())
    }

    /// CreateContainer and StartContainer.
    fn run(&self, pod: &Pod, name: &str, command: &[&str]) -> Result<String, String> {
        let id = self.create(pod, name, command, None)?;
        self.start(&id)?;
        Ok(id)
    }

    /// ContainerStatus (verbose) and the pid its info gives.
    fn status(&self, id: &str) -> Result<(v1::ContainerStatus, u32), String> {
        let cri = self.cri();
        let r = cri.block(ask(
            "ContainerStatus",
            cri.rs().container_status(v1::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            }),
        ))?;
        let status = r.status.ok_or("ContainerStatus: no status")?;
        Ok((status, pid_of(&r.info)))
    }

    /// The pid of a running container's process.
    fn pid(&self, id: &str) -> Result<u32, String> {
        let (status, pid) = self.status(id)?;
        if status.state != v1::ContainerState::ContainerRunning as i32 || pid == 0 {
            return Err(format!(
                "container {id}: state {}, pid {pid}, wanted running",
                state_name(status.state)
            ));
        }
        Ok(pid)
    }

    /// PodSandboxStatus (verbose): its state and the sandbox's pid.
    fn pod_status(&self, pod: &Pod) -> Result<(i32, u32), String> {
        let cri = self.cri();
        let r = cri.block(ask(
            "PodSandboxStatus",
            cri.rs().pod_sandbox_status(v1::PodSandboxStatusRequest {
                pod_sandbox_id: pod.id.clone(),
                verbose: true,
            }),
        ))?;
        let status = r.status.ok_or("PodSandboxStatus: no status")?;
        Ok((status.state, pid_of(&r.info)))
    }

    /// The container's status once it has exited.
    fn wait_exited(&self, id: &str, within: Duration) -> Result<v1::ContainerStatus, String> {
        let deadline = Instant::now() + within;
        loop {
            let (status, _) = self.status(id)?;
            if status.state == v1::ContainerState::ContainerExited as i32 {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "container {id} still {} after {within:?}",
                    state_name(status.state)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<v1::ExecSyncResponse, String> {
        let cri = self.cri();
        cri.block(ask(
            "ExecSync",
            cri.rs().exec_sync(v1::ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            }),
        ))
    }

    fn stop(&self, id: &str, timeout: i64) -> CheckResult {
        let cri = self.cri();
        cri.block(ask(
            "StopContainer",
            cri.rs().stop_container(v1::StopContainerRequest {
                container_id: id.into(),
                timeout,
            }),
        ))?;
        Ok(())
    }

    fn remove(&self, id: &str) -> CheckResult {
        let cri = self.cri();
        cri.block(ask(
            "RemoveContainer",
            cri.rs().remove_container(v1::RemoveContainerRequest {
                container_id: id.into(),
            }),
        ))?;
        Ok(())
    }

    fn stop_pod(&self, pod: &Pod) -> CheckResult {
        let cri = self.cri();
        cri.block(ask(
            "StopPodSandbox",
            cri.rs().stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            }),
        ))?;
        Ok(())
    }

    fn remove_pod(&self, pod: &Pod) -> CheckResult {
        let cri = self.cri();
        cri.block(ask(
            "RemovePodSandbox",
            cri.rs().remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            }),
        ))?;
        Ok(())
    }

    /// A cgroup v1 file of container `id` of pod `pod`.
    fn cgroup(&self, controller: &str, pod: &Pod, id: &str, file: &str) -> String {
        let path = self
            .env
            .pod_cgroup(controller, &pod.name)
            .join(id)
            .join(file);
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Wait until the container's log (CRI format) has `text`.
    fn log_has(&self, pod: &Pod, name: &str, text: &str) -> CheckResult {
        let path = self.env.logs().join(&pod.name).join(format!("{name}.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.contains(text) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{} holds {log:?}, wanted {text:?}", path.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Remove every pod of the check, whatever its state (RemovePodSandbox
    /// removes its containers).
    fn cleanup(&self) {
        let cri = self.cri();
        for id in self.made.lock().unwrap().iter() {
            let _ = cri.block(remove_pod(cri.channel.clone(), id.clone()));
        }
    }
}

/// The pid in a verbose status's info (containerd's JSON).
fn pid_of(info: &HashMap<String, String>) -> u32 {
    info.get("info")
        .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
        .and_then(|v| v["pid"].as_u64())
        .unwrap_or(0) as u32
}

fn state_name(state: i32) -> &'static str {
    v1::ContainerState::try_from(state)
        .map(|s| s.as_str_name())
        .unwrap_or("?")
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// `/proc/<pid>/ns/<ns>`'s target, e.g. `net:[4026531840]`.
fn ns_of(pid: u32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

/// A process's parent pid.
fn ppid_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn cmdline_of(pid: u32) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .replace('\0', " ")
        .trim()
        .to_string()
}

type CheckFn = fn(&Ck) -> CheckResult;

fn checks() -> Vec<(&'static str, CheckFn)> {
    vec![
        ("a pod's lifecycle, as the kubelet drives it", lifecycle),
        (
            "two containers in a pod: its net and ipc namespaces, one shim",
            two_containers,
        ),
        ("a container that exits: exit code, reason, log", exits),
        ("StopContainer: SIGKILL after the grace period", grace),
        (
            "ExecSync past its timeout: the process killed",
            exec_timeout,
        ),
        (
            "Exec: the streaming server's websocket (v4.channel.k8s.io)",
            exec_stream,
        ),
        ("an OOM-killed container: reason OOMKilled", oom),
        ("a container with a terminal: its output in the log", tty),
        (
            "shareProcessNamespace: the pod's one pid namespace",
            shared_pid,
        ),
        (
            "containerd restarted: the CRI plugin recovers the running pod",
            restart,
        ),
    ]
}

const MIB: i64 = 1024 * 1024;

/// RunPodSandbox, CreateContainer, StartContainer, ContainerStatus,
/// ExecSync, ContainerStats, UpdateContainerResources, StopContainer,
/// RemoveContainer, StopPodSandbox, RemovePodSandbox.
fn lifecycle(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let (state, sandbox) = ck.pod_status(&pod)?;
    expect(state == v1::PodSandboxState::SandboxReady as i32, || {
        format!("PodSandboxStatus: state {state}, wanted SANDBOX_READY")
    })?;
    expect(cmdline_of(sandbox) == "/pause", || {
        format!(
            "the sandbox's process {sandbox}: {:?}, wanted /pause",
            cmdline_of(sandbox)
        )
    })?;
    let id = ck.create(
        &pod,
        "main",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo started; while :; do sleep 1 & wait $!; done",
        ],
        Some(v1::LinuxContainerResources {
            memory_limit_in_bytes: 256 * MIB,
            cpu_shares: 1024,
            ..Default::default()
        }),
    )?;
    let (status, _) = ck.status(&id)?;
    expect(
        status.state == v1::ContainerState::ContainerCreated as i32,
        || format!("after CreateContainer: {}", state_name(status.state)),
    )?;
    ck.start(&id)?;
    let pid = ck.pid(&id)?;
    let (status, _) = ck.status(&id)?;
    expect(status.started_at > 0, || "started_at 0".into())?;
    // The process is in its cgroup below the pod's, with its limit.
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let wanted = format!("/{}/{}/{id}", ck.env.parent, pod.name);
    expect(
        cgroup
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&wanted)),
        || format!("/proc/{pid}/cgroup {cgroup:?}, wanted memory:{wanted}"),
    )?;
    let limit = ck.cgroup("memory", &pod, &id, "memory.limit_in_bytes");
    expect(limit.trim() == (256 * MIB).to_string(), || {
        format!("memory.limit_in_bytes {limit:?}, wanted 256 MiB")
    })?;
    // Its output reaches the CRI log through the shim's stdio.
    ck.log_has(&pod, "main", " stdout F started")?;
    let r = ck.exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10)?;
    expect(
        r.stdout == b"out\n" && r.stderr == b"err\n" && r.exit_code == 3,
        || {
            format!(
                "ExecSync: stdout {:?}, stderr {:?}, exit {}; wanted out, err, 3",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr),
                r.exit_code
            )
        },
    )?;
    let cri = ck.cri();
    let stats = cri
        .block(ask(
            "ContainerStats",
            cri.rs().container_stats(v1::ContainerStatsRequest {
                container_id: id.clone(),
            }),
        ))?
        .stats
        .ok_or("ContainerStats: no stats")?;
    let attr_id = stats.attributes.as_ref().map(|a| a.id.as_str());
    let working_set = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map(|v| v.value);
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map(|v| v.value);
    expect(
        attr_id == Some(id.as_str())
            && working_set.is_some_and(|w| w > 0)
            && cpu.is_some_and(|c| c > 0),
        || format!("ContainerStats: {stats:?}, wanted its id, a working set and CPU time"),
    )?;
    // What the kubelet's CRI stats provider asks: the pod's containers'
    // stats, and the pod's own (its cgroup, and the sandbox's task).
    let listed = cri
        .block(ask(
            "ListContainerStats",
            cri.rs()
                .list_container_stats(v1::ListContainerStatsRequest {
                    filter: Some(v1::ContainerStatsFilter {
                        pod_sandbox_id: pod.id.clone(),
                        ..Default::default()
                    }),
                }),
        ))?
        .stats;
    expect(
        listed.len() == 1
            && listed[0].attributes.as_ref().map(|a| a.id.as_str()) == Some(id.as_str())
            && listed[0]
                .memory
                .as_ref()
                .and_then(|m| m.working_set_bytes.as_ref())
                .is_some(),
        || format!("ListContainerStats of the pod: {listed:?}, wanted its container's"),
    )?;
    let pod_stats = cri
        .block(ask(
            "PodSandboxStats",
            cri.rs().pod_sandbox_stats(v1::PodSandboxStatsRequest {
                pod_sandbox_id: pod.id.clone(),
            }),
        ))?
        .stats;
    let linux = pod_stats.as_ref().and_then(|s| s.linux.as_ref());
    expect(
        linux
            .and_then(|l| l.memory.as_ref())
            .and_then(|m| m.working_set_bytes.as_ref())
            .is_some_and(|w| w.value > 0)
            && linux.is_some_and(|l| l.containers.len() == 1),
        || format!("PodSandboxStats: {pod_stats:?}, wanted the pod's memory and its container"),
    )?;
    cri.block(ask(
        "UpdateContainerResources",
        cri.rs()
            .update_container_resources(v1::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(v1::LinuxContainerResources {
                    memory_limit_in_bytes: 64 * MIB,
                    cpu_shares: 512,
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    ..Default::default()
                }),
                ..Default::default()
            }),
    ))?;
    let limit = ck.cgroup("memory", &pod, &id, "memory.limit_in_bytes");
    expect(limit.trim() == (64 * MIB).to_string(), || {
        format!("memory.limit_in_bytes {limit:?} after the update, wanted 64 MiB")
    })?;
    let shares = ck.cgroup("cpu", &pod, &id, "cpu.shares");
    let quota = ck.cgroup("cpu", &pod, &id, "cpu.cfs_quota_us");
    expect(shares.trim() == "512" && quota.trim() == "50000", || {
        format!(
            "cpu.shares {shares:?}, cpu.cfs_quota_us {quota:?} after the update, wanted 512, 50000"
        )
    })?;
    // SIGTERM, which the container's trap turns into exit 0.
    let t0 = Instant::now();
    ck.stop(&id, 10)?;
    let took = t0.elapsed();
    let status = ck.wait_exited(&id, Duration::from_secs(5))?;
    expect(
        status.exit_code == 0 && took < Duration::from_secs(5),
        || {
            format!(
                "StopContainer took {took:?}, exit code {} (reason {:?}): wanted 0 on SIGTERM",
                status.exit_code, status.reason
            )
        },
    )?;
    expect(!Path::new(&format!("/proc/{pid}")).exists(), || {
        format!("process {pid} still there after StopContainer")
    })?;
    ck.remove(&id)?;
    let gone = ck.status(&id);
    expect(gone.as_ref().is_err_and(|e| e.contains("NotFound")), || {
        format!("ContainerStatus after RemoveContainer: {gone:?}, wanted NotFound")
    })?;
    ck.stop_pod(&pod)?;
    let (state, _) = ck.pod_status(&pod)?;
    expect(state == v1::PodSandboxState::SandboxNotready as i32, || {
        format!("PodSandboxStatus after StopPodSandbox: state {state}, wanted NOTREADY")
    })?;
    expect(!Path::new(&format!("/proc/{sandbox}")).exists(), || {
        format!("the sandbox's process {sandbox} still there after StopPodSandbox")
    })?;
    ck.remove_pod(&pod)
}

/// Two containers of a pod: in its network and IPC namespaces (one
/// /dev/shm), each in its own pid namespace; one shim for the pod; then
/// the pod is deleted with its containers running, as the kubelet may.
fn two_containers(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let (_, sandbox) = ck.pod_status(&pod)?;
    let a = ck.run(&pod, "a", &["sleep", "300"])?;
    let b = ck.run(&pod, "b", &["sleep", "300"])?;
    let (pa, pb) = (ck.pid(&a)?, ck.pid(&b)?);
    let me = std::process::id();
    for (ns, with_node) in [("net", true), ("ipc", false)] {
        let (s, x, y, node) = (
            ns_of(sandbox, ns),
            ns_of(pa, ns),
            ns_of(pb, ns),
            ns_of(me, ns),
        );
        expect(s == x && s == y && (s == node) == with_node, || {
            format!(
                "{ns} namespaces: sandbox {s}, a {x}, b {y}, the node's {node}: wanted the pod's{}",
                if with_node {
                    " (the node's)"
                } else {
                    " (not the node's)"
                }
            )
        })?;
    }
    let (x, y, s) = (ns_of(pa, "pid"), ns_of(pb, "pid"), ns_of(sandbox, "pid"));
    expect(x != y && x != s && y != s, || {
        format!("pid namespaces: a {x}, b {y}, sandbox {s}: wanted one each")
    })?;
    // One /dev/shm for the pod.
    let r = ck.exec_sync(&a, &["sh", "-c", "echo shared > /dev/shm/x"], 10)?;
    expect(r.exit_code == 0, || {
        format!("writing /dev/shm/x in a: {r:?}")
    })?;
    let r = ck.exec_sync(&b, &["cat", "/dev/shm/x"], 10)?;
    expect(r.stdout == b"shared\n", || {
        format!("/dev/shm/x in b: {r:?}, wanted what a wrote")
    })?;
    // One shim serves the pod: the sandbox's and both containers' processes
    // are its children (their inits are cloned or reparented to it), and
    // their tasks' address files name one socket.
    let shims: Vec<u32> = [sandbox, pa, pb].iter().map(|&p| ppid_of(p)).collect();
    let shim = shims[0];
    expect(shims.iter().all(|&s| s == shim), || {
        format!("parents of the sandbox, a and b: {shims:?}, wanted one shim")
    })?;
    let cmdline = cmdline_of(shim);
    expect(cmdline.contains(ck.handler.shim_binary()), || {
        format!(
            "the pod's shim {shim} is {cmdline:?}, wanted {}",
            ck.handler.shim_binary()
        )
    })?;
    let address = |id: &str| {
        std::fs::read_to_string(ck.env.task_dir().join(id).join("address")).unwrap_or_default()
    };
    let addresses = [address(&pod.id), address(&a), address(&b)];
    expect(
        !addresses[0].is_empty() && addresses.iter().all(|x| *x == addresses[0]),
        || format!("the tasks' shim addresses: {addresses:?}, wanted one"),
    )?;
    let running: Vec<u32> = shim_pids(ck.handler);
    expect(running == [shim], || {
        format!(
            "{} processes {running:?}, wanted only {shim}",
            ck.handler.shim_binary()
        )
    })?;
    // The pod goes with its containers running: StopPodSandbox kills them.
    ck.stop_pod(&pod)?;
    for (name, id) in [("a", &a), ("b", &b)] {
        let status = ck.wait_exited(id, Duration::from_secs(5))?;
        expect(status.exit_code == 137, || {
            format!(
                "{name} after StopPodSandbox: exit code {}, wanted 137",
                status.exit_code
            )
        })?;
    }
    ck.remove_pod(&pod)?;
    let gone = ck.status(&a);
    expect(gone.as_ref().is_err_and(|e| e.contains("NotFound")), || {
        format!("ContainerStatus of a after RemovePodSandbox: {gone:?}, wanted NotFound")
    })
}

/// The pids of the handler's shim processes.
fn shim_pids(handler: Handler) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            cmdline_of(p)
                .split(' ')
                .next()
                .is_some_and(|argv0| argv0.ends_with(handler.shim_binary()))
        })
        .collect();
    pids.sort();
    pids
}

fn exits(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let failing = ck.run(
        &pod,
        "failing",
        &["sh", "-c", "echo to-log; echo err-log >&2; exit 7"],
    )?;
    let done = ck.run(&pod, "done", &["true"])?;
    let status = ck.wait_exited(&failing, Duration::from_secs(10))?;
    expect(
        status.exit_code == 7 && status.reason == "Error" && status.finished_at > 0,
        || format!("the failing container's status: {status:?}, wanted exit 7, Error"),
    )?;
    let status = ck.wait_exited(&done, Duration::from_secs(10))?;
    expect(
        status.exit_code == 0 && status.reason == "Completed",
        || format!("the completed container's status: {status:?}, wanted exit 0, Completed"),
    )?;
    ck.log_has(&pod, "failing", " stdout F to-log")?;
    ck.log_has(&pod, "failing", " stderr F err-log")?;
    ck.remove(&failing)?;
    ck.remove(&done)?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// busybox `sleep` as a pid 1 does not die of SIGTERM: StopContainer
/// sends SIGKILL once its timeout has passed.
fn grace(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let id = ck.run(&pod, "main", &["sleep", "300"])?;
    ck.pid(&id)?;
    let t0 = Instant::now();
    ck.stop(&id, 1)?;
    let took = t0.elapsed();
    let status = ck.wait_exited(&id, Duration::from_secs(5))?;
    expect(
        status.exit_code == 137
            && took >= Duration::from_millis(900)
            && took < Duration::from_secs(10),
        || {
            format!(
                "StopContainer (timeout 1 s) took {took:?}, exit code {}: wanted 137 after the second",
                status.exit_code
            )
        },
    )?;
    ck.remove(&id)?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// An exec that outlives ExecSync's timeout is killed, and only it.
fn exec_timeout(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let id = ck.run(&pod, "main", &["sleep", "300"])?;
    let t0 = Instant::now();
    let r = ck.exec_sync(&id, &["sleep", "30"], 1);
    let took = t0.elapsed();
    expect(r.is_err() && took < Duration::from_secs(10), || {
        format!("ExecSync of sleep 30 with timeout 1 s: {r:?} after {took:?}, wanted an error")
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = ck.cgroup("pids", &pod, &id, "cgroup.procs");
        if procs.lines().count() == 1 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "cgroup.procs {procs:?} 10 s after the timeout, wanted the init only"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = ck.exec_sync(&id, &["echo", "still"], 10)?;
    expect(r.stdout == b"still\n" && r.exit_code == 0, || {
        format!("ExecSync after the timeout: {r:?}")
    })?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// The sandbox image: /pause and nothing else (an OCI image archive with
/// one layer, named [`PAUSE_REF`]).
fn pause_archive(work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("pause");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri/pause.c");
    let bin = root.join("pause");
    let (src, out) = (source.display().to_string(), bin.display().to_string());
    proc::must(
        &["cc", "-static", "-Os", "-s", "-o", &out, &src],
        Duration::from_secs(60),
        work,
    )
    .map_err(|e| format!("building the pause program: {e:#}"))?;
    let tar = dir.join("layer.tar");
    let (r, t) = (root.display().to_string(), tar.display().to_string());
    proc::must(
        &["tar", "--numeric-owner", "-C", &r, "-cf", &t, "pause"],
        Duration::from_secs(30),
        work,
    )
    .map_err(|e| format!("{e:#}"))?;
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).map_err(|e| e.to_string())?;
    let blob = |bytes: &[u8], name: &str| -> Result<(String, usize), String> {
        let file = dir.join(name);
        std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
        let f = file.display().to_string();
        let o = proc::must(&["sha256sum", &f], Duration::from_secs(30), work)
            .map_err(|e| format!("{e:#}"))?;
        let digest = o.stdout.split_whitespace().next().unwrap_or("").to_string();
        std::fs::rename(&file, layout.join("blobs/sha256").join(&digest))
            .map_err(|e| e.to_string())?;
        Ok((format!("sha256:{digest}"), bytes.len()))
    };
    let (layer, layer_size) = blob(&std::fs::read(&tar).map_err(|e| e.to_string())?, "layer")?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (cfg, cfg_size) = blob(&serde_json::to_vec(&config).unwrap(), "config")?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    });
    let (man, man_size) = blob(&serde_json::to_vec(&manifest).unwrap(), "manifest")?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man,
            "size": man_size,
            "annotations": {"io.containerd.image.name": PAUSE_REF, "org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(|e| e.to_string())?;
    let archive = dir.join("pause.tar");
    let (l, a) = (layout.display().to_string(), archive.display().to_string());
    proc::must(
        &["tar", "--numeric-owner", "-C", &l, "-cf", &a, "."],
        Duration::from_secs(30),
        work,
    )
    .map_err(|e| format!("{e:#}"))?;
    Ok(archive)
}

/// containerd's configuration: its own sockets, root and state; the CRI
/// plugin with the two handlers and the pause image; no CNI (host-network
/// pods), no AppArmor profile loaded into the kernel.
fn containerd_config(env: &Env, rrun: Option<&Path>) -> String {
    let w = |d: &str| env.work.join(d).display().to_string();
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    let mut runtimes =
        format!("[{cri}.containerd.runtimes.rrun]\n  runtime_type = \"io.containerd.rrun.v2\"\n");
    if let Some(rrun) = rrun {
        runtimes += &format!(
            "[{cri}.containerd.runtimes.rrun-runc-shim]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.rrun-runc-shim.options]\n  BinaryName = \"{}\"\n  Root = \"{}\"\n",
            rrun.display(),
            env.runc_root().display()
        );
    }
    // A sandbox's oomScoreAdj is -998, which only a holder of
    // CAP_SYS_RESOURCE may set; without it (this project's VM) the CRI
    // plugin's knob for such hosts keeps every score at containerd's own.
    let restrict_oom = !has_cap_sys_resource();
    format!(
        "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n\n\
         [{cri}]\n  disable_tcp_service = true\n  disable_apparmor = true\n  sandbox_image = \"{PAUSE_REF}\"\n  restrict_oom_score_adj = {restrict_oom}\n\
         [{cri}.cni]\n  bin_dir = \"{}\"\n  conf_dir = \"{}\"\n\
         [{cri}.containerd]\n  default_runtime_name = \"rrun\"\n  snapshotter = \"overlayfs\"\n{runtimes}\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n",
        w("root"),
        w("state"),
        env.socket().display(),
        w("containerd.sock.ttrpc"),
        w("debug.sock"),
        w("cni/bin"),
        w("cni/net.d"),
        w("opt"),
    )
}

/// Whether this process holds CAP_SYS_RESOURCE (lowering an
/// oom_score_adj needs it).
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// Set up: the loopback up, the images, containerd with its CRI plugin,
/// the images imported and known to the CRI plugin, a client connected.
fn setup(env: &mut Env) -> Result<(), String> {
    let o = env.run(
        &[
            "ip".into(),
            "link".into(),
            "set".into(),
            "lo".into(),
            "up".into(),
        ],
        Duration::from_secs(10),
    );
    if o.code != Some(0) {
        return Err(format!(
            "ip link set lo up: {} {}",
            o.status(),
            o.stderr.trim()
        ));
    }
    let pause = pause_archive(&env.work)?;
    let tar = image::rootfs_tar(&env.work, None).map_err(|e| format!("{e:#}"))?;
    let busybox = image::oci_archive(&env.work, &tar).map_err(|e| format!("{e:#}"))?;
    std::fs::write(env.config(), containerd_config(env, env.rrun.as_deref()))
        .map_err(|e| e.to_string())?;
    env.start_containerd()?;
    for archive in [&pause, &busybox] {
        let o = env.ctr(&["images", "import", &archive.display().to_string()]);
        if o.code != Some(0) {
            return Err(format!(
                "ctr images import: {} {}",
                o.status(),
                o.stderr.trim()
            ));
        }
    }
    env.cri = Some(Cri::connect(&env.socket())?);
    let cri = env.cri();
    let version = cri.block(ask(
        "Version",
        cri.rs().version(v1::VersionRequest {
            version: "v1".into(),
        }),
    ))?;
    println!(
        "CRI: {} {}, API {}",
        version.runtime_name, version.runtime_version, version.runtime_api_version
    );
    // The CRI plugin learns of imported images from containerd's events.
    for image in [PAUSE_REF, image::CTR_REF] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = cri.block(ask(
                "ImageStatus",
                cri.is().image_status(v1::ImageStatusRequest {
                    image: Some(v1::ImageSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                }),
            ))?;
            if r.image.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("ImageStatus: the CRI plugin does not know {image}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn harness() -> i32 {
    let parent = std::env::var(PARENT_ENV).unwrap_or_else(|_| "critests".into());
    let bench = std::env::var(MODE_ENV).as_deref() == Ok("bench");
    let work = PathBuf::from(WORK);
    let out = work.join("out");
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("cri tests: {}: {e}", out.display());
        return 2;
    }
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-rrun-v2"));
    let rrun = std::env::var_os("RRUN")
        .map(PathBuf::from)
        .or_else(|| shim.parent().map(|d| d.join("rrun")))
        .filter(|p| p.is_file());
    let shim_dir = shim
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let mut env = Env {
        out,
        parent,
        rrun,
        env: vec![
            // containerd finds `containerd-shim-rrun-v2` on its PATH.
            (
                "PATH".into(),
                format!("{shim_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ),
            ("HOME".into(), work.display().to_string()),
            ("TMPDIR".into(), "/tmp".into()),
        ],
        containerd: Mutex::new(None),
        cri: None,
        work,
    };
    if !has_cap_sys_resource() {
        println!(
            "no CAP_SYS_RESOURCE here: the CRI plugin runs with restrict_oom_score_adj \
             (a sandbox's oomScoreAdj -998 cannot be set)"
        );
    }
    let t0 = Instant::now();
    if let Err(e) = setup(&mut env) {
        println!("setup failed: {e}");
        for line in log_since(&env.log(), 0, 8) {
            println!("      containerd: {line}");
        }
        env.stop_containerd();
        println!("cri: 0 passed, 1 failed");
        return 1;
    }
    println!("setup: {:.1}s", t0.elapsed().as_secs_f64());
    let mut handlers = vec![Handler::Shim];
    if env.rrun.is_some() {
        handlers.push(Handler::RuncV2);
    } else {
        println!(
            "rrun-runc-shim skipped: no rrun binary next to the shim (cargo build -p rrun, or RRUN=path)"
        );
    }
    let code = if bench {
        run_bench(&env, &handlers)
    } else {
        run_checks(&env, &handlers)
    };
    env.stop_containerd();
    if let Some(keep) = std::env::var_os(KEEP_LOG_ENV) {
        if let Err(e) = std::fs::copy(env.log(), &keep) {
            println!(
                "copying containerd's log to {}: {e}",
                Path::new(&keep).display()
            );
        }
    }
    code
}

fn run_checks(env: &Env, handlers: &[Handler]) -> i32 {
    let (mut passed, mut failed) = (0, 0);
    let mut results: HashMap<(usize, Handler), bool> = HashMap::new();
    let mut all = checks();
    if let Ok(filter) = std::env::var(FILTER_ENV) {
        all.retain(|(title, _)| title.contains(filter.as_str()));
    }
    for (i, (title, check)) in all.iter().enumerate() {
        for &handler in handlers {
            let ck = Ck {
                env,
                handler,
                name: format!("p{i}{}", handler.letter()),
                made: Mutex::new(Vec::new()),
            };
            let t0 = Instant::now();
            let marks = std::fs::metadata(env.log()).map(|m| m.len()).unwrap_or(0);
            let result = check(&ck);
            ck.cleanup();
            let left = wait_clean(env);
            env.remove_pod_cgroups();
            let result = match (result, left.is_empty()) {
                (Ok(()), true) => Ok(()),
                (Ok(()), false) => Err(format!("left behind: {}", left.join(", "))),
                (Err(e), true) => Err(e),
                (Err(e), false) => Err(format!("{e}\n      left behind: {}", left.join(", "))),
            };
            let ok = result.is_ok();
            println!(
                "{} {:<15} {title} ({:.1}s)",
                if ok { "pass" } else { "FAIL" },
                handler.name(),
                t0.elapsed().as_secs_f64()
            );
            if let Err(e) = result {
                println!("      {e}");
                for line in log_since(&env.log(), marks, 8) {
                    println!("      containerd: {line}");
                }
                force_clean(env);
            }
            results.insert((i, handler), ok);
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    println!();
    println!(
        "| check | {} |",
        handlers
            .iter()
            .map(|h| h.name())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(handlers.len()));
    for (i, (title, _)) in all.iter().enumerate() {
        let cells: Vec<&str> = handlers
            .iter()
            .map(|h| if results[&(i, *h)] { "pass" } else { "FAIL" })
            .collect();
        println!("| {title} | {} |", cells.join(" | "));
    }
    println!();
    println!("cri: {passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// Leftovers, given the shims a moment to exit after their last delete.
fn wait_clean(env: &Env) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = env.leftovers();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After a failed check: every pod the CRI plugin knows goes, and every
/// containerd container and task of its namespace.
fn force_clean(env: &Env) {
    let cri = env.cri();
    if let Ok(r) = cri.block(ask(
        "ListPodSandbox",
        cri.rs()
            .list_pod_sandbox(v1::ListPodSandboxRequest::default()),
    )) {
        for pod in r.items {
            let _ = cri.block(remove_pod(cri.channel.clone(), pod.id));
        }
    }
    let o = env.ctr(&["containers", "ls", "-q"]);
    for id in o.stdout.split_whitespace() {
        env.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
        env.ctr(&["task", "delete", "-f", id]);
        env.ctr(&["containers", "delete", id]);
    }
    env.remove_pod_cgroups();
}

/// Error and warning lines containerd logged since byte `from`.
fn log_since(path: &Path, from: u64, max: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let from = (from as usize).min(text.len());
    let lines: Vec<String> = String::from_utf8_lossy(&text[from..])
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=warning"))
        // containerd 1.6 runs `shim delete` whenever a task's connection
        // closes, even after a clean delete; the runc-v2 shim's cleanup
        // then warns "failed to remove runc container ... exit status
        // 255" (with runc itself as well).
        .filter(|l| {
            !l.contains("cleaning up after shim disconnected") && !l.contains("cleanup warnings")
        })
        .map(|l| l.trim().to_string())
        .collect();
    lines[lines.len().saturating_sub(max)..].to_vec()
}

/// What the benchmark measured for one handler.
struct BenchResult {
    pods: usize,
    running: Duration,
    shims: usize,
    rss_kib: u64,
    pss_kib: u64,
    /// CPU time containerd spent while the pods started.
    containerd_cpu: f64,
    /// CPU time of the shims and of their reaped children (the runtime
    /// binary's runs, the library's helpers) once every pod ran.
    shims_cpu: f64,
    removed: Duration,
}

/// A process's CPU time in seconds (user and system), with that of its
/// reaped children when `children`.
fn cpu_seconds(pid: u32, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // After the state: utime, stime, cutime, cstime are the 12th to 15th.
    let take = if children { 4 } else { 2 };
    let ticks: u64 = fields.iter().skip(11).take(take).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// `N` pods (sandbox and one `sleep` container each) started at once
/// through CRI: the time until every container runs, then the shims'
/// resident memory, then the time to delete them all.
fn bench_one(env: &Env, handler: Handler, pods: usize) -> Result<BenchResult, String> {
    let cri = env.cri();
    let containerd = env
        .containerd
        .lock()
        .unwrap()
        .as_ref()
        .map_or(0, |c| c.id());
    let cpu0 = cpu_seconds(containerd, false);
    let t0 = Instant::now();
    let started: Vec<Result<String, String>> = cri.block(async {
        let mut set = tokio::task::JoinSet::new();
        for n in 0..pods {
            let config = sandbox_config(env, &format!("b{}{n}", handler.letter()));
            set.spawn(pod_with_container(
                cri.channel.clone(),
                handler,
                config,
                &["sleep", "3600"],
            ));
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            all.push(r.unwrap_or_else(|e| Err(format!("task: {e}"))));
        }
        all
    });
    let running = t0.elapsed();
    let containerd_cpu = cpu_seconds(containerd, false) - cpu0;
    let ids: Vec<String> = started
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let errors: Vec<&String> = started.iter().filter_map(|r| r.as_ref().err()).collect();
    let listed = cri
        .block(ask(
            "ListContainers",
            cri.rs().list_containers(v1::ListContainersRequest {
                filter: Some(v1::ContainerFilter {
                    state: Some(v1::ContainerStateValue {
                        state: v1::ContainerState::ContainerRunning as i32,
                    }),
                    ..Default::default()
                }),
            }),
        ))
        .map(|r| r.containers.len());
    // Settle (the shim trims its code once idle for a second), then read
    // the shims' memory.
    std::thread::sleep(Duration::from_secs(3));
    let shims = shim_pids(handler);
    let (mut rss_kib, mut pss_kib, mut shims_cpu) = (0, 0, 0.0);
    for &pid in &shims {
        rss_kib += status_kib(&format!("/proc/{pid}/status"), "VmRSS:");
        pss_kib += status_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:");
        shims_cpu += cpu_seconds(pid, true);
    }
    let t1 = Instant::now();
    let removed: Vec<Result<(), String>> = cri.block(async {
        let mut set = tokio::task::JoinSet::new();
        for id in &ids {
            set.spawn(remove_pod(cri.channel.clone(), id.clone()));
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            all.push(r.unwrap_or_else(|e| Err(format!("task: {e}"))));
        }
        all
    });
    let removed_in = t1.elapsed();
    if let Some(e) = errors.first() {
        return Err(format!(
            "{} of {pods} pods failed to start: {e}",
            errors.len()
        ));
    }
    if let Some(Err(e)) = removed.iter().find(|r| r.is_err()) {
        return Err(format!("removing the pods: {e}"));
    }
    match listed {
        Ok(n) if n == pods => {}
        Ok(n) => return Err(format!("{n} containers running, wanted {pods}")),
        Err(e) => return Err(e),
    }
    Ok(BenchResult {
        pods,
        running,
        shims: shims.len(),
        rss_kib,
        pss_kib,
        containerd_cpu,
        shims_cpu,
        removed: removed_in,
    })
}

/// A `Key:   N kB` line of a /proc file.
fn status_kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn run_bench(env: &Env, handlers: &[Handler]) -> i32 {
    let pods: usize = std::env::var(BENCH_PODS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let mut rows = Vec::new();
    let mut failed = 0;
    for &handler in handlers {
        let result = bench_one(env, handler, pods);
        let left = wait_clean(env);
        env.remove_pod_cgroups();
        match result {
            Ok(r) if left.is_empty() => rows.push((handler, r)),
            Ok(_) => {
                println!("FAIL {}: left behind: {}", handler.name(), left.join(", "));
                failed += 1;
            }
            Err(e) => {
                println!("FAIL {}: {e}", handler.name());
                for line in log_since(&env.log(), 0, 8) {
                    println!("      containerd: {line}");
                }
                force_clean(env);
                failed += 1;
            }
        }
    }
    println!();
    println!(
        "| handler | pods | all running | containerd CPU | shims' CPU | shims | shims' RSS | per pod | shims' PSS | all removed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (handler, r) in &rows {
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {} | {:.1} MiB | {:.2} MiB | {:.1} MiB | {:.2} s |",
            handler.name(),
            r.pods,
            r.running.as_secs_f64(),
            r.containerd_cpu,
            r.shims_cpu,
            r.shims,
            r.rss_kib as f64 / 1024.0,
            r.rss_kib as f64 / 1024.0 / r.pods as f64,
            r.pss_kib as f64 / 1024.0,
            r.removed.as_secs_f64()
        );
    }
    println!();
    println!("cri bench: {} passed, {failed} failed", rows.len());
    i32::from(failed > 0)
}

/// Exec as `kubectl exec` reaches it: the CRI answers a URL of its
/// streaming server (on the node's 127.0.0.1, here the test's own network
/// namespace), and a websocket client speaking `v4.channel.k8s.io` gets
/// the process's stdout and stderr on channels 1 and 2 and its exit status
/// on channel 3.
fn exec_stream(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let id = ck.run(&pod, "main", &["sleep", "300"])?;
    let cri = ck.cri();
    let url = cri
        .block(ask(
            "Exec",
            cri.rs().exec(v1::ExecRequest {
                container_id: id.clone(),
                cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                tty: false,
                stdin: false,
                stdout: true,
                stderr: true,
            }),
        ))?
        .url;
    let channels = websocket_exec(&url)?;
    let text =
        |n: u8| String::from_utf8_lossy(channels.get(&n).map_or(&[][..], |v| v)).into_owned();
    let (out, err, status) = (text(1), text(2), text(3));
    expect(
        out == "out\n"
            && err == "err\n"
            && status.contains("NonZeroExitCode")
            && status.contains(r#""message":"3""#),
        || {
            format!(
                "exec through {url}: stdout {out:?}, stderr {err:?}, status {status:?}; \
                 wanted out, err and exit code 3"
            )
        },
    )?;
    // The exec is gone: the container's cgroup has its init only.
    let deadline = Instant::now() + Duration::from_secs(5);
    while ck.cgroup("pids", &pod, &id, "cgroup.procs").lines().count() != 1 {
        if Instant::now() >= deadline {
            return Err("the exec's process outlived its stream".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// A minimal websocket client for the CRI streaming server: GET the URL
/// with an upgrade to `v4.channel.k8s.io`, then read the server's binary
/// frames (a channel byte, then data) until it closes. Returns each
/// channel's bytes.
fn websocket_exec(url: &str) -> Result<HashMap<u8, Vec<u8>>, String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("exec URL {url:?}: wanted http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream =
        std::net::TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: cnJ1bi1jcmktdGVzdC1rZXk=\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the upgrade: {e}"))?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .map_err(|e| format!("reading the upgrade's answer: {e}"))?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade answered {:?}", status.trim()));
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the server closed during the upgrade".into()),
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading the upgrade's headers: {e}")),
        }
    }
    let mut channels: HashMap<u8, Vec<u8>> = HashMap::new();
    loop {
        let mut head = [0u8; 2];
        match reader.read_exact(&mut head) {
            Ok(()) => {}
            // The server may close the connection without a close frame.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading a frame: {e}")),
        }
        let opcode = head[0] & 0x0f;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            reader.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from_be_bytes(b);
        }
        let mut mask = [0u8; 4];
        if head[1] & 0x80 != 0 {
            reader.read_exact(&mut mask).map_err(|e| e.to_string())?;
        }
        let mut payload = vec![0u8; len as usize];
        reader
            .read_exact(&mut payload)
            .map_err(|e| format!("reading a frame's payload: {e}"))?;
        if head[1] & 0x80 != 0 {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        match opcode {
            // Close.
            8 => break,
            // Binary (or its continuation): the channel, then data.
            0 | 2 => {
                if let Some((&channel, data)) = payload.split_first() {
                    channels.entry(channel).or_default().extend_from_slice(data);
                }
            }
            // Ping, pong, text: nothing the server sends on this protocol.
            _ => {}
        }
    }
    Ok(channels)
}

/// The CRI plugin says OOMKilled when the shim's TaskOOM event came
/// before the container's exit.
fn oom(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let id = ck.create(
        &pod,
        "main",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        Some(v1::LinuxContainerResources {
            memory_limit_in_bytes: 16 * MIB,
            ..Default::default()
        }),
    )?;
    ck.start(&id)?;
    let status = ck.wait_exited(&id, Duration::from_secs(10))?;
    expect(
        status.exit_code == 137 && status.reason == "OOMKilled",
        || {
            format!(
                "exit code {}, reason {:?}: wanted 137, OOMKilled",
                status.exit_code, status.reason
            )
        },
    )?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// `tty: true` (and stdin, as `kubectl run -it` asks): the process has a
/// terminal, and what it writes there reaches the CRI log (through the
/// pty and the CRI plugin's stdout FIFO).
fn tty(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let mut config = container_config(
        "term",
        &[
            "sh",
            "-c",
            "[ -t 0 ] && [ -t 1 ] && echo on-a-tty $(tty); exec sleep 300",
        ],
        None,
    );
    config.tty = true;
    config.stdin = true;
    let id = ck.create_config(&pod, config)?;
    ck.start(&id)?;
    ck.log_has(&pod, "term", " stdout F on-a-tty /dev/pts/")?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}

/// A pod with `shareProcessNamespace`: the sandbox's pause is pid 1 of the
/// pod's pid namespace, the containers join it and see each other.
fn shared_pid(ck: &Ck) -> CheckResult {
    let shared = |ns: &mut Option<v1::NamespaceOption>| {
        if let Some(ns) = ns.as_mut() {
            ns.pid = v1::NamespaceMode::Pod as i32;
        }
    };
    let pod = ck.run_pod_with("", |config| {
        if let Some(sc) = config
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
        {
            shared(&mut sc.namespace_options);
        }
    })?;
    let (_, sandbox) = ck.pod_status(&pod)?;
    let mut ids = Vec::new();
    for (name, command) in [("a", ["sleep", "301"]), ("b", ["sleep", "302"])] {
        let mut config = container_config(name, &command, None);
        if let Some(sc) = config
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
        {
            shared(&mut sc.namespace_options);
        }
        let id = ck.create_config(&pod, config)?;
        ck.start(&id)?;
        ids.push(id);
    }
    let pids: Vec<u32> = ids.iter().map(|id| ck.pid(id)).collect::<Result<_, _>>()?;
    let pause_ns = ns_of(sandbox, "pid");
    for (id, pid) in ids.iter().zip(&pids) {
        let ns = ns_of(*pid, "pid");
        expect(ns == pause_ns, || {
            format!("container {id}: pid namespace {ns}, the sandbox's {pause_ns}")
        })?;
    }
    // From b: pid 1 is the pause, and a's sleep is there.
    let r = ck.exec_sync(
        &ids[1],
        &[
            "sh",
            "-c",
            "for p in /proc/[0-9]*; do echo \"${p#/proc/}: $(tr '\\0' ' ' < $p/cmdline)\"; done",
        ],
        10,
    )?;
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    expect(
        lines.contains(&"1: /pause")
            && lines.iter().any(|l| l.ends_with(": sleep 301"))
            && lines.iter().any(|l| l.ends_with(": sleep 302")),
        || format!("the processes b sees: {out:?}, wanted /pause as 1 and both sleeps"),
    )?;
    // The pod's end: the pause exits, the kernel kills the rest of its
    // pid namespace.
    ck.stop_pod(&pod)?;
    for id in &ids {
        ck.wait_exited(id, Duration::from_secs(5))?;
    }
    ck.remove_pod(&pod)
}

/// containerd stops (SIGTERM, as for an upgrade) with a pod running and
/// starts again: the CRI plugin recovers the pod from its state and the
/// shim (its address file), reopens the container's FIFOs, and the
/// kubelet's calls go on: status, exec, a stop that sees the exit.
fn restart(ck: &Ck) -> CheckResult {
    let pod = ck.run_pod("")?;
    let id = ck.run(
        &pod,
        "main",
        &[
            "sh",
            "-c",
            "trap 'exit 9' TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2 & wait $!; done",
        ],
    )?;
    let pid = ck.pid(&id)?;
    let (_, sandbox) = ck.pod_status(&pod)?;
    ck.log_has(&pod, "main", " stdout F tick 1")?;
    ck.env.stop_containerd();
    expect(
        Path::new(&format!("/proc/{pid}")).exists()
            && Path::new(&format!("/proc/{sandbox}")).exists(),
        || "the pod died with containerd".to_string(),
    )?;
    let log = ck.env.logs().join(&pod.name).join("main.log");
    let before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    ck.env.start_containerd()?;
    ck.env.wait_cri()?;
    let again = ck.pid(&id)?;
    expect(again == pid, || {
        format!("pid {again} after the restart, was {pid}")
    })?;
    let (state, _) = ck.pod_status(&pod)?;
    expect(state == v1::PodSandboxState::SandboxReady as i32, || {
        format!("the pod's state after the restart: {state}")
    })?;
    // The log goes on.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() > before + 2 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not grow after the restart ({before} lines)",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = ck.exec_sync(&id, &["echo", "still here"], 10)?;
    expect(r.stdout == b"still here\n", || {
        format!("ExecSync after the restart: {r:?}")
    })?;
    ck.stop(&id, 10)?;
    let status = ck.wait_exited(&id, Duration::from_secs(5))?;
    expect(status.exit_code == 9, || {
        format!(
            "exit code {} after StopContainer, wanted 9 (its TERM trap)",
            status.exit_code
        )
    })?;
    ck.stop_pod(&pod)?;
    ck.remove_pod(&pod)
}
