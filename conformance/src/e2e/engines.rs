//! The engines: a private containerd and dockerd (own sockets, roots,
//! state and exec directories, cgroup parents) and a rootful podman with
//! its own root, runroot and tmpdir; their setup, command prefixes,
//! container lookups, cleanup and teardown.

use super::image;
use super::ns::{self, Names, WORK};
use super::proc::{self, Output, Spec};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";
pub const PODMAN: &str = "/usr/bin/podman";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    Docker,
    Containerd,
    Podman,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Docker, Engine::Containerd, Engine::Podman];

    /// The command the user types, as the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Containerd => "ctr",
            Engine::Podman => "podman",
        }
    }

    pub fn from_name(s: &str) -> Option<Engine> {
        match s {
            "docker" | "dockerd" => Some(Engine::Docker),
            "containerd" | "ctr" => Some(Engine::Containerd),
            "podman" => Some(Engine::Podman),
            _ => None,
        }
    }
}

/// A runtime under test: its name (docker's --runtime) and binary.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

/// Everything started for the run.
pub struct Engines {
    /// The run's ctr namespace and cgroup parents ([`Names`]). No cgroup of
    /// a run has "rrun" in its name: scripts/test.sh, running at the same
    /// time on a developer's machine, takes those for its leftovers.
    pub names: Names,
    pub work: PathBuf,
    /// Where command outputs go.
    pub out: PathBuf,
    pub env: Vec<(String, String)>,
    containerd: Option<Daemon>,
    dockerd: Option<Daemon>,
    /// Why an engine cannot run checks (setup failed).
    pub broken: HashMap<Engine, String>,
    pub logjson: LogWatch,
    pub runtimes: Vec<Runtime>,
}

pub fn work() -> PathBuf {
    PathBuf::from(WORK)
}

fn sock(name: &str) -> String {
    format!("{WORK}/{name}")
}

impl Engines {
    pub fn new(runtimes: &[Runtime], names: Names) -> Result<Engines> {
        let work = work();
        let out = work.join("out");
        std::fs::create_dir_all(&out)?;
        std::fs::create_dir_all(work.join("home/.docker"))?;
        // podman reads DOCKER_CONFIG's config.json for credentials too.
        std::fs::write(work.join("home/.docker/config.json"), "{}")?;
        let mut path = String::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        // docker's built-in "runc" is looked up on PATH: the runc under test first.
        if let Some(runc) = runtimes.iter().find(|r| r.name == "runc") {
            if let Some(dir) = runc.path.parent() {
                path = format!("{}:{path}", dir.display());
            }
        }
        let env = vec![
            ("PATH".to_string(), path),
            ("HOME".to_string(), work.join("home").display().to_string()),
            (
                "DOCKER_CONFIG".to_string(),
                work.join("home/.docker").display().to_string(),
            ),
            ("CONTAINERS_CONF".to_string(), "/dev/null".to_string()),
            ("TMPDIR".to_string(), "/tmp".to_string()),
        ];
        Ok(Engines {
            names,
            logjson: LogWatch::start(work.join("containerd/state/io.containerd.runtime.v2.task")),
            work,
            out,
            env,
            containerd: None,
            dockerd: None,
            broken: HashMap::new(),
            runtimes: runtimes.to_vec(),
        })
    }

    /// Runs a command with the engines' environment.
    pub fn run(
        &self,
        argv: &[String],
        stdin: Option<&str>,
        tty: bool,
        timeout: Duration,
    ) -> Output {
        proc::run(
            &Spec {
                argv,
                stdin,
                tty,
                timeout,
                env: &self.env,
            },
            &self.out,
        )
    }

    fn run_ok(&self, argv: &[String], timeout: Duration) -> Result<Output> {
        let o = self.run(argv, None, false, timeout);
        if o.code != Some(0) {
            bail!("{}: {}: {}", o.line, o.status(), o.stderr.trim());
        }
        Ok(o)
    }

    /// The command prefix of an engine, for a runtime.
    pub fn prefix(&self, engine: Engine, rt: &Runtime) -> Vec<String> {
        let s = |x: &str| x.to_string();
        match engine {
            Engine::Docker => vec![
                s(DOCKER),
                s("-H"),
                format!("unix://{}", sock("docker.sock")),
            ],
            Engine::Containerd => vec![
                s(CTR),
                s("--address"),
                sock("containerd.sock"),
                s("--namespace"),
                s(self.names.ctr_ns),
            ],
            Engine::Podman => {
                let w = |d: &str| self.work.join(d).display().to_string();
                vec![
                    s(PODMAN),
                    s("--root"),
                    w("podman/root"),
                    s("--runroot"),
                    w("podman/runroot"),
                    s("--tmpdir"),
                    w("podman/tmp"),
                    s("--cgroup-manager"),
                    s("cgroupfs"),
                    s("--events-backend"),
                    s("file"),
                    s("--storage-driver"),
                    s("overlay"),
                    s("--runtime"),
                    rt.path.display().to_string(),
                    // The runtime's log, as the runc-v2 shim asks for it.
                    s("--runtime-flag"),
                    format!("log={}", self.podman_runtime_log(rt).display()),
                    s("--runtime-flag"),
                    s("log-format=json"),
                ]
            }
        }
    }

    /// The runtime's --log under podman.
    pub fn podman_runtime_log(&self, rt: &Runtime) -> PathBuf {
        self.work.join(format!("podman-{}-log.json", rt.name))
    }

    /// ctr's --runc-root for a runtime: the runtime's state directory.
    pub fn ctr_runc_root(&self, rt: &Runtime) -> PathBuf {
        self.work.join("ctr-runc-root").join(&rt.name)
    }

    /// Where a runtime keeps its containers' state under an engine: what
    /// must be empty once a check cleaned up.
    pub fn state_dir(&self, engine: Engine, rt: &Runtime) -> PathBuf {
        match engine {
            // dockerd 20.10 gives every runtime the same --root, its default
            // runtime's.
            Engine::Docker => self.work.join("docker-exec/runtime-runc/moby"),
            Engine::Containerd => self.ctr_runc_root(rt).join(self.names.ctr_ns),
            // podman hands the runtime no --root: its default.
            Engine::Podman => {
                let base = rt
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                PathBuf::from("/run").join(base)
            }
        }
    }

    /// The cgroup parent (absolute, below each hierarchy) of an engine.
    pub fn cgroup_parent(&self, engine: Engine) -> String {
        let parent = match engine {
            Engine::Docker => self.names.docker,
            Engine::Containerd => self.names.ctr_ns,
            Engine::Podman => self.names.podman,
        };
        format!("/{parent}")
    }

    pub fn setup(&mut self, engines: &[Engine], rootfs_given: Option<&Path>) -> Result<()> {
        let tar = image::rootfs_tar(&self.work, rootfs_given)?;
        let need_containerd =
            engines.contains(&Engine::Docker) || engines.contains(&Engine::Containerd);
        if need_containerd {
            if let Err(e) = self.start_containerd() {
                let msg = format!("containerd did not start: {e:#}");
                self.broken.insert(Engine::Containerd, msg.clone());
                self.broken.insert(Engine::Docker, msg);
            }
        }
        if engines.contains(&Engine::Containerd) && !self.broken.contains_key(&Engine::Containerd) {
            let r = image::oci_archive(&self.work, &tar).and_then(|a| {
                let mut argv = self.prefix(Engine::Containerd, &self.runtimes[0]);
                argv.extend(["images".into(), "import".into(), a.display().to_string()]);
                self.run_ok(&argv, Duration::from_secs(60)).map(|_| ())
            });
            if let Err(e) = r {
                self.broken
                    .insert(Engine::Containerd, format!("ctr images import: {e:#}"));
            }
        }
        if engines.contains(&Engine::Docker) && !self.broken.contains_key(&Engine::Docker) {
            let r = self.start_dockerd().and_then(|_| {
                let mut argv = self.prefix(Engine::Docker, &self.runtimes[0]);
                argv.extend([
                    "import".into(),
                    "--change".into(),
                    format!("ENV {}", image::PATH_ENV),
                    tar.display().to_string(),
                    image::DOCKER_REF.into(),
                ]);
                self.run_ok(&argv, Duration::from_secs(60)).map(|_| ())
            });
            if let Err(e) = r {
                self.broken.insert(Engine::Docker, format!("{e:#}"));
            }
        }
        if engines.contains(&Engine::Podman) {
            let mut argv = self.prefix(Engine::Podman, &self.runtimes[0]);
            argv.extend([
                "import".into(),
                "--change".into(),
                format!("ENV {}", image::PATH_ENV),
                tar.display().to_string(),
                image::PODMAN_REF.into(),
            ]);
            if let Err(e) = self.run_ok(&argv, Duration::from_secs(60)) {
                self.broken
                    .insert(Engine::Podman, format!("podman import: {e:#}"));
            }
        }
        Ok(())
    }

    fn spawn_daemon(&self, argv: &[String], log: PathBuf) -> Result<Daemon> {
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", argv[0]))?;
        Ok(Daemon { child, log })
    }

    /// Polls `argv` until it succeeds.
    fn wait_ready(
        &self,
        what: &str,
        argv: &[String],
        daemon: &mut Daemon,
        limit: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let o = self.run(argv, None, false, Duration::from_secs(5));
            if o.code == Some(0) {
                return Ok(());
            }
            if let Ok(Some(st)) = daemon.child.try_wait() {
                bail!("{what} exited ({st}): {}", tail(&daemon.log, 5));
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} not ready after {}s: {}; log: {}",
                    limit.as_secs(),
                    o.stderr.trim(),
                    tail(&daemon.log, 5)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_containerd(&mut self) -> Result<()> {
        let w = |d: &str| self.work.join(d).display().to_string();
        // The CRI plugin's runtimes are how Kubernetes (a RuntimeClass whose
        // handler is the runtime's name) reaches a runtime through the
        // stock runc-v2 shim: options.BinaryName. ctr passes its own options
        // (--runc-binary); the CRI plugin is loaded with these so that the
        // recipe is checked to parse.
        let mut cri = String::new();
        for rt in &self.runtimes {
            cri.push_str(&format!(
                "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{n}]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{n}.options]\n  BinaryName = \"{p}\"\n",
                n = rt.name,
                p = rt.path.display()
            ));
        }
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_tcp_service = true\n{cri}",
            w("containerd/root"),
            w("containerd/state"),
            sock("containerd.sock"),
            sock("containerd.sock.ttrpc"),
            sock("containerd-debug.sock"),
        );
        let cfg = self.work.join("containerd.toml");
        std::fs::write(&cfg, config)?;
        let argv: Vec<String> = vec![
            CONTAINERD.into(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        let mut d = self.spawn_daemon(&argv, self.work.join("containerd.log"))?;
        let mut probe = self.prefix(Engine::Containerd, &self.runtimes[0]);
        probe.push("version".into());
        let r = self.wait_ready("containerd", &probe, &mut d, Duration::from_secs(30));
        self.containerd = Some(d);
        r
    }

    fn start_dockerd(&mut self) -> Result<()> {
        let w = |d: &str| self.work.join(d).display().to_string();
        let mut runtimes = serde_json::Map::new();
        for rt in &self.runtimes {
            // "runc" is dockerd's built-in name (found on PATH); registering
            // it again is refused.
            if rt.name != "runc" {
                runtimes.insert(
                    rt.name.clone(),
                    serde_json::json!({"path": rt.path.display().to_string()}),
                );
            }
        }
        let daemon_json = serde_json::json!({
            "runtimes": runtimes,
            "cgroup-parent": self.cgroup_parent(Engine::Docker),
        });
        let cfg = self.work.join("daemon.json");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&daemon_json)?)?;
        let argv: Vec<String> = [
            DOCKERD,
            "--config-file",
            &cfg.display().to_string(),
            "--data-root",
            &w("docker"),
            "--exec-root",
            &w("docker-exec"),
            "--pidfile",
            &w("docker.pid"),
            "--host",
            &format!("unix://{}", sock("docker.sock")),
            "--containerd",
            &sock("containerd.sock"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--storage-driver",
            "overlay2",
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut argv = argv;
        // The command-line way to register a runtime, under a second name.
        for rt in &self.runtimes {
            argv.push("--add-runtime".into());
            argv.push(format!("{}-add-runtime={}", rt.name, rt.path.display()));
        }
        let mut d = self.spawn_daemon(&argv, self.work.join("dockerd.log"))?;
        let mut probe = self.prefix(Engine::Docker, &self.runtimes[0]);
        probe.push("version".into());
        let r = self.wait_ready("dockerd", &probe, &mut d, Duration::from_secs(60));
        self.dockerd = Some(d);
        r
    }

    /// The daemons' and podman's runtime logs' sizes now (to show what they
    /// logged during a check).
    pub fn log_marks(&self) -> Vec<(PathBuf, u64)> {
        [&self.containerd, &self.dockerd]
            .into_iter()
            .flatten()
            .map(|d| d.log.clone())
            .chain(self.runtimes.iter().map(|rt| self.podman_runtime_log(rt)))
            .map(|log| {
                let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
                (log, len)
            })
            .collect()
    }

    /// Error and warning lines the daemons logged since `marks`.
    pub fn log_since(&self, marks: &[(PathBuf, u64)], max: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for (path, from) in marks {
            let text = std::fs::read(path).unwrap_or_default();
            let from = (*from as usize).min(text.len());
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            for l in String::from_utf8_lossy(&text[from..]).lines() {
                if [
                    "level=error",
                    "level=warning",
                    "\"level\":\"error\"",
                    "\"level\":\"warning\"",
                ]
                .iter()
                .any(|w| l.contains(w))
                {
                    lines.push(format!("{name}: {}", l.trim()));
                }
            }
        }
        let skip = lines.len().saturating_sub(max);
        lines.split_off(skip)
    }

    /// The engine answers a version query within 10 s.
    pub fn answers(&self, engine: Engine, rt: &Runtime) -> bool {
        let mut argv = self.prefix(engine, rt);
        argv.push("version".into());
        self.run(&argv, None, false, Duration::from_secs(10)).code == Some(0)
    }

    /// The host pid of a container's init.
    pub fn pid(&self, engine: Engine, rt: &Runtime, name: &str) -> Result<u32> {
        let mut argv = self.prefix(engine, rt);
        match engine {
            Engine::Docker | Engine::Podman => {
                argv.extend([
                    "inspect".into(),
                    "-f".into(),
                    "{{.State.Pid}}".into(),
                    name.into(),
                ]);
                let o = self.run_ok(&argv, Duration::from_secs(20))?;
                let pid: u32 = o.stdout.trim().parse().context("inspect .State.Pid")?;
                if pid == 0 {
                    bail!("{name} is not running (pid 0)");
                }
                Ok(pid)
            }
            Engine::Containerd => {
                argv.extend(["task".into(), "ls".into()]);
                let o = self.run_ok(&argv, Duration::from_secs(20))?;
                o.stdout
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        (f.len() >= 2 && f[0] == name).then(|| f[1].parse().ok())?
                    })
                    .next()
                    .with_context(|| format!("no task {name} in ctr task ls"))
            }
        }
    }

    /// Removes a check's container, whatever state it is in.
    pub fn remove(&self, engine: Engine, rt: &Runtime, name: &str) {
        let p = self.prefix(engine, rt);
        let cmds: Vec<Vec<&str>> = match engine {
            Engine::Docker => vec![vec!["rm", "-f", "-v", name]],
            Engine::Podman => vec![vec!["rm", "-f", "-t", "0", name]],
            Engine::Containerd => vec![
                vec!["task", "kill", "-a", "-s", "SIGKILL", name],
                vec!["task", "delete", "-f", name],
                vec!["containers", "delete", name],
                vec!["snapshots", "rm", name],
            ],
        };
        for c in cmds {
            let mut argv = p.clone();
            argv.extend(c.iter().map(|s| s.to_string()));
            self.run(&argv, None, false, Duration::from_secs(30));
        }
    }

    /// What a check left: cgroups below the engine's parent (but podman's
    /// own conmon cgroup) and entries in the runtime's state directory.
    pub fn leftovers(&self, engine: Engine, rt: &Runtime) -> Vec<String> {
        let mut left = Vec::new();
        let parent = self.cgroup_parent(engine);
        let parent = parent.trim_start_matches('/');
        if let Ok(hier) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hier.flatten() {
                if let Ok(rd) = std::fs::read_dir(h.path().join(parent)) {
                    for e in rd.flatten() {
                        if e.path().is_dir() && e.file_name() != "conmon" {
                            left.push(format!("cgroup {}", e.path().display()));
                        }
                    }
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.state_dir(engine, rt)) {
            for e in rd.flatten() {
                left.push(format!("runtime state {}", e.path().display()));
            }
        }
        left
    }

    /// Stops what was started: containers first, then dockerd, containerd.
    /// Returns what was left behind, and notes on what the engines leave
    /// by design (dockerd keeps its netns mount), detached here.
    pub fn teardown(&mut self, keep_logs: Option<&Path>) -> (Vec<String>, Vec<String>) {
        let mut left = Vec::new();
        let mut notes = Vec::new();
        let rt = self.runtimes[0].clone();
        if self.dockerd.is_some() {
            let mut ps = self.prefix(Engine::Docker, &rt);
            ps.extend(["ps".into(), "-aq".into()]);
            let o = self.run(&ps, None, false, Duration::from_secs(20));
            for id in o.stdout.split_whitespace() {
                left.push(format!("docker container {id}"));
                self.remove(Engine::Docker, &rt, id);
            }
        }
        if self.containerd.is_some() {
            let mut ls = self.prefix(Engine::Containerd, &rt);
            ls.extend(["containers".into(), "ls".into(), "-q".into()]);
            let o = self.run(&ls, None, false, Duration::from_secs(20));
            for id in o.stdout.split_whitespace() {
                left.push(format!("ctr container {id}"));
                self.remove(Engine::Containerd, &rt, id);
            }
        }
        let podman_root = self.work.join("podman/root");
        if podman_root.exists() {
            let mut ps = self.prefix(Engine::Podman, &rt);
            ps.extend(["ps".into(), "-aq".into()]);
            let o = self.run(&ps, None, false, Duration::from_secs(20));
            for id in o.stdout.split_whitespace() {
                left.push(format!("podman container {id}"));
                self.remove(Engine::Podman, &rt, id);
            }
            // podman's storage mounts (the image layers) stay until reset.
            let mut reset = self.prefix(Engine::Podman, &rt);
            reset.extend(["system".into(), "reset".into(), "--force".into()]);
            self.run(&reset, None, false, Duration::from_secs(60));
        }
        for (name, d) in [
            ("dockerd", self.dockerd.take()),
            ("containerd", self.containerd.take()),
        ] {
            if let Some(d) = d {
                stop(name, d);
            }
        }
        for p in ns::processes_left() {
            if !p.starts_with(&format!("{} ", std::process::id())) {
                left.push(format!("process {p}"));
            }
        }
        // What dockerd or podman did not unmount (the namespace would drop
        // it anyway: recorded, then detached).
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let overlay = format!("{WORK}/.overlay");
        let mut mounts: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(WORK) && !m.starts_with(&overlay))
            .collect();
        mounts.reverse();
        for m in &mounts {
            if m.starts_with(&format!("{WORK}/docker-exec/netns/")) {
                notes.push(format!("dockerd left its mount {m}"));
            } else {
                left.push(format!("mount {m}"));
            }
            if let Ok(c) = std::ffi::CString::new(m.as_str()) {
                // SAFETY: a NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        for d in ns::remove_cgroup_parents(&self.names, Duration::from_secs(5)) {
            if !d.ends_with("/conmon") {
                left.push(format!("cgroup {d}"));
            }
        }
        if let Some(dir) = keep_logs {
            for f in [
                "containerd.log",
                "dockerd.log",
                "containerd.toml",
                "daemon.json",
            ] {
                let _ = std::fs::copy(self.work.join(f), dir.join(f));
            }
        }
        (left, notes)
    }
}

fn stop(name: &str, mut d: Daemon) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = d.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{}: {name} ignored SIGTERM for 20s: killed", ns::me());
    let _ = d.child.kill();
    let _ = d.child.wait();
}

/// The last `n` lines of a file, joined.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Watches the runc-v2 shims' bundles for `log.json` (the runtime's
/// `--log`) with inotify, and opens each as soon as it is created: a
/// bundle is deleted with its container (at once when `create` fails), and
/// the open file keeps what the runtime wrote readable.
#[derive(Clone)]
pub struct LogWatch {
    seen: Arc<Mutex<Vec<(PathBuf, std::fs::File)>>>,
}

impl LogWatch {
    fn start(task_dir: PathBuf) -> LogWatch {
        let seen: Arc<Mutex<Vec<(PathBuf, std::fs::File)>>> = Arc::default();
        let s = seen.clone();
        let _ = std::fs::create_dir_all(&task_dir);
        std::thread::spawn(move || watch(task_dir, s));
        LogWatch { seen }
    }

    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Per bundle seen since the last reset: its last error line (else its
    /// last line).
    pub fn last_errors(&self) -> Vec<String> {
        use std::os::unix::fs::FileExt;
        let seen = self.seen.lock().unwrap();
        let mut out = Vec::new();
        for (p, f) in seen.iter() {
            let mut buf = vec![0u8; 1 << 16];
            let n = f.read_at(&mut buf, 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let Some(line) = lines
                .iter()
                .rev()
                .find(|l| l.contains("\"error\""))
                .or(lines.last())
            else {
                continue;
            };
            let id = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            out.push(format!("log.json of {id}: {line}"));
        }
        out
    }
}

/// The watcher thread: task dir -> namespace dirs -> bundle dirs -> log.json.
fn watch(task_dir: PathBuf, seen: Arc<Mutex<Vec<(PathBuf, std::fs::File)>>>) {
    // SAFETY: inotify_init1 takes flags.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return;
    }
    // wd -> (dir, depth: 0 task dir, 1 namespace, 2 bundle)
    let mut dirs: HashMap<i32, (PathBuf, u8)> = HashMap::new();
    fn add(
        fd: i32,
        dir: &Path,
        depth: u8,
        dirs: &mut HashMap<i32, (PathBuf, u8)>,
        seen: &Mutex<Vec<(PathBuf, std::fs::File)>>,
    ) {
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return;
        };
        // SAFETY: a valid inotify fd and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_CREATE) };
        if wd < 0 {
            return;
        }
        dirs.insert(wd, (dir.to_path_buf(), depth));
        // What was created before the watch.
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                found(fd, &e.path(), depth + 1, dirs, seen);
            }
        }
    }
    fn found(
        fd: i32,
        path: &Path,
        depth: u8,
        dirs: &mut HashMap<i32, (PathBuf, u8)>,
        seen: &Mutex<Vec<(PathBuf, std::fs::File)>>,
    ) {
        if depth <= 2 && path.is_dir() {
            add(fd, path, depth, dirs, seen);
        } else if depth == 3 && path.file_name().is_some_and(|n| n == "log.json") {
            if let Ok(f) = std::fs::File::open(path) {
                let mut s = seen.lock().unwrap();
                s.retain(|(p, _)| p != path);
                s.push((path.to_path_buf(), f));
            }
        }
    }
    add(fd, &task_dir, 0, &mut dirs, &seen);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: reading into a buffer we own, of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        let mut off = 0usize;
        let head = std::mem::size_of::<libc::inotify_event>();
        while off + head <= n as usize {
            // SAFETY: the kernel wrote whole events; read_unaligned copies one header.
            let ev: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
            let name_bytes = &buf[off + head..off + head + ev.len as usize];
            let name_end = name_bytes
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(name_bytes.len());
            let name = std::ffi::OsStr::from_bytes(&name_bytes[..name_end]);
            if ev.mask & libc::IN_IGNORED != 0 {
                dirs.remove(&ev.wd);
            } else if let Some((dir, depth)) = dirs.get(&ev.wd).cloned() {
                found(fd, &dir.join(name), depth + 1, &mut dirs, &seen);
            }
            off += head + ev.len as usize;
        }
    }
}
