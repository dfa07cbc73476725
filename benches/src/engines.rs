//! The engine benchmark (issue 10): `docker run --rm <busybox> true` and
//! `ctr run --rm <busybox> <id> true` through containerd's stock runc-v2
//! shim, with each runtime.
//!
//! The engines are rrun-e2e's (conformance/src/e2e, the conformance crate's
//! library): a private dockerd and containerd in private mount and pid
//! namespaces, with their own sockets, roots and cgroup parents, the busybox
//! image imported from a rootfs tar; nothing is left on the machine. They
//! start once for the whole run. Before they start, the cgroup2 mount of a
//! hybrid host is hidden in that mount namespace, so that the engines and
//! every runtime see cgroup v1 and crun runs.
//!
//! A row of the table is a "route": how containers reach a runtime. Today
//! a runtime binary under the stock runc-v2 shim ([`Via::RuncShim`]) or a
//! containerd shim of its own ([`Via::Shim`], issue 12's); a column is an
//! engine command ([`Command`]), which builds its command line per route or
//! has none for it (n/a).

use crate::isolation;
use crate::report::{self, ms, EngineRow};
use crate::runtime::version_line;
use crate::{default_runtimes, machine, parse_runtime, resolve_exe, WARMUP_ROUNDS};
use anyhow::{bail, Context, Result};
use conformance::e2e::engines::{Engine, Engines, Runtime, CONTAINERD, DOCKERD};
use conformance::e2e::{image, ns};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The names the benchmark's engines are known by on the host (cgroups are
/// not namespaced): not rrun-e2e's, so that one may run while the other
/// does, and without "rrun" (scripts/test.sh takes those for leftovers).
const NAMES: ns::Names = ns::Names {
    ctr_ns: "bench-engines",
    docker: "bench-engines-docker",
    podman: "bench-engines-podman",
};

/// Deadline of one measured command: a hung engine fails the run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub const USAGE: &str =
    "rrun-bench engines [--runs N] [--runtime NAME=PATH]... [--shim NAME=TYPE]...
  --runs N             measured rounds (default 20): every route runs every command N times
  --runtime NAME=PATH  a runtime binary under containerd's stock runc-v2 shim: docker
                       --runtime NAME (registered by path; runc is dockerd's built-in),
                       ctr run --runc-binary PATH (repeatable; default: as lifecycle's)
  --shim NAME=TYPE     a containerd shim of its own: ctr run --runtime TYPE (e.g.
                       io.containerd.rrun.v2, found as containerd-shim-rrun-v2 on PATH,
                       or the shim's absolute path); Docker 20.10 cannot take one (n/a)";

struct Options {
    runs: usize,
    runtimes: Vec<(String, String)>,
    shims: Vec<(String, String)>,
}

fn parse_options(argv: &[String]) -> Result<Options> {
    let mut options = Options {
        runs: 20,
        runtimes: Vec::new(),
        shims: Vec::new(),
    };
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\nusage: {USAGE}"))
        };
        match arg.as_str() {
            "--runs" => options.runs = value()?.parse().context("--runs: not a number")?,
            "--runtime" => options.runtimes.push(parse_runtime(value()?)?),
            "--shim" => {
                let spec = value()?;
                let (name, kind) = spec.split_once('=').context("--shim wants NAME=TYPE")?;
                options.shims.push((name.to_owned(), kind.to_owned()));
            }
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg}\nusage: {USAGE}"),
        }
    }
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if options.runtimes.is_empty() {
        options.runtimes = default_runtimes();
    }
    Ok(options)
}

/// How a route's containers reach their runtime.
enum Via {
    /// containerd's stock runc-v2 shim running this runtime binary.
    RuncShim(Runtime),
    /// A containerd shim of its own, by runtime type (`io.containerd.X.v2`
    /// or the binary's absolute path), and the binary found for it.
    Shim(String, PathBuf),
}

/// A row of the table.
struct Route {
    name: String,
    via: Via,
}

/// A column of the table: an engine command that runs one container of
/// `true` and removes it.
#[derive(Clone, Copy)]
enum Command {
    DockerRunRm,
    CtrRunRm,
}

impl Command {
    const ALL: [Command; 2] = [Command::DockerRunRm, Command::CtrRunRm];

    fn title(self) -> &'static str {
        match self {
            Command::DockerRunRm => "docker run --rm",
            Command::CtrRunRm => "ctr run --rm",
        }
    }

    /// The command line for one container `id` of `route`; None when this
    /// command cannot take that route.
    fn argv(self, engines: &Engines, route: &Route, id: &str) -> Option<Vec<String>> {
        // The prefix depends on the runtime for podman only.
        let any = &engines.runtimes[0];
        let s = |x: &str| x.to_owned();
        match (self, &route.via) {
            // No --name: dockerd names it; --network none: dockerd runs
            // with --bridge=none (no bridge, no iptables).
            (Command::DockerRunRm, Via::RuncShim(rt)) => {
                let mut argv = engines.prefix(Engine::Docker, any);
                argv.extend([s("run"), s("--rm"), s("--runtime"), rt.name.clone()]);
                argv.extend([s("--network"), s("none"), s(image::DOCKER_REF), s("true")]);
                Some(argv)
            }
            // Docker 20.10 runs every runtime through the runc-v2 shim
            // (daemon.json's runtimeType came with Docker 23).
            (Command::DockerRunRm, Via::Shim(..)) => None,
            (Command::CtrRunRm, Via::RuncShim(rt)) => {
                let mut argv = engines.prefix(Engine::Containerd, any);
                argv.extend([s("run"), s("--rm")]);
                argv.extend([s("--runc-binary"), rt.path.display().to_string()]);
                argv.extend([
                    s("--runc-root"),
                    engines.ctr_runc_root(rt).display().to_string(),
                ]);
                argv.extend([s(image::CTR_REF), s(id), s("true")]);
                Some(argv)
            }
            (Command::CtrRunRm, Via::Shim(kind, _)) => {
                let mut argv = engines.prefix(Engine::Containerd, any);
                argv.extend([s("run"), s("--rm"), s("--runtime"), kind.clone()]);
                argv.extend([s(image::CTR_REF), s(id), s("true")]);
                Some(argv)
            }
        }
    }
}

/// `rrun-bench engines ...`: `argv` is the whole argument list (the stages
/// re-execute the binary with it). Returns the exit status.
pub fn main(argv: &[String]) -> i32 {
    let run = || -> Result<i32> {
        let options = parse_options(&argv[1..])?;
        match ns::Stage::current()? {
            ns::Stage::Outer => {
                if !nix::unistd::geteuid().is_root() {
                    bail!("rrun-bench must run as root (it starts container engines)");
                }
                check_visible(&options)?;
                ns::outer(argv, &NAMES)
            }
            ns::Stage::Init => ns::init(argv),
            ns::Stage::Harness => harness(&options),
        }
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rrun-bench: {e:#}");
            2
        }
    }
}

/// The harness stage's own namespaces are ns::init's: pid 1 of its pid
/// namespace is the init stage of this benchmark. Checked before anything
/// is unmounted (the host's mounts may all be private too).
fn check_private_namespaces() -> Result<()> {
    let want = format!("{}=init", ns::STAGE_ENV);
    let ours = std::fs::read("/proc/1/environ")
        .is_ok_and(|environ| environ.split(|b| *b == 0).any(|v| v == want.as_bytes()));
    if !ours {
        bail!(
            "pid 1 is not the init stage of rrun-bench engines (no {want} in /proc/1/environ): \
             the harness stage runs in its namespaces only; run rrun-bench engines without {}",
            ns::STAGE_ENV
        );
    }
    Ok(())
}

/// The engines' namespace has its own tmpfs on /tmp and /run: this binary
/// and the runtimes must live elsewhere (a CARGO_TARGET_DIR under /tmp
/// would vanish there).
fn check_visible(options: &Options) -> Result<()> {
    let exe = std::env::current_exe().context("current_exe")?;
    let runtimes = options
        .runtimes
        .iter()
        .filter_map(|(_, path)| resolve_exe(path));
    // containerd takes a shim's absolute path as the runtime type too.
    let shims = options
        .shims
        .iter()
        .filter_map(|(_, kind)| shim_binary(kind));
    for path in std::iter::once(exe).chain(runtimes).chain(shims) {
        if path.starts_with("/tmp") || path.starts_with("/run") {
            bail!(
                "{}: /tmp and /run are private tmpfs in the engines' namespace, \
                 where this file would not be: build or install it elsewhere",
                path.display()
            );
        }
    }
    Ok(())
}

fn routes(options: &Options, notes: &mut Vec<String>) -> Vec<Route> {
    let mut routes = Vec::new();
    for (name, path) in &options.runtimes {
        let Some(exe) = resolve_exe(path) else {
            let note = format!("{name} skipped: {path} not found");
            eprintln!("rrun-bench: {note}");
            notes.push(note);
            continue;
        };
        let path = exe.canonicalize().unwrap_or(exe);
        routes.push(Route {
            name: name.clone(),
            via: Via::RuncShim(Runtime {
                name: name.clone(),
                path,
            }),
        });
    }
    for (name, kind) in &options.shims {
        let Some(binary) = shim_binary(kind) else {
            let note = format!(
                "{name} skipped: no {} beside {} or on PATH",
                shim_file_name(kind),
                default_runtime_dir().display()
            );
            eprintln!("rrun-bench: {note}");
            notes.push(note);
            continue;
        };
        routes.push(Route {
            name: name.clone(),
            via: Via::Shim(kind.clone(), binary),
        });
    }
    routes
}

/// The file containerd runs for runtime type `kind`: `io.containerd.X.vN`
/// is `containerd-shim-X-vN` (containerd 1.6's rule); an absolute path is
/// itself.
fn shim_file_name(kind: &str) -> String {
    let parts: Vec<&str> = kind.split('.').collect();
    match parts.as_slice() {
        [.., name, version] if !kind.starts_with('/') => {
            format!("containerd-shim-{name}-{version}")
        }
        _ => kind.to_owned(),
    }
}

/// Where the default rrun is: this workspace's release build.
fn default_runtime_dir() -> PathBuf {
    default_runtimes()
        .first()
        .and_then(|(_, path)| Path::new(path).parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// The shim binary for `kind`: an absolute path as is; otherwise its file
/// name beside the default rrun (the workspace's own build, which
/// scripts/bench.sh makes), then on this process's PATH.
fn shim_binary(kind: &str) -> Option<PathBuf> {
    if kind.starts_with('/') {
        return resolve_exe(kind);
    }
    let file = shim_file_name(kind);
    let beside = default_runtime_dir().join(&file);
    if beside.is_file() {
        return Some(beside);
    }
    resolve_exe(&file)
}

/// containerd finds a shim by its runtime type on its PATH: the directory
/// of each shim binary goes first on the engines' PATH, so that the
/// binary measured is the one found.
fn put_shims_on_path(engines: &mut Engines, routes: &[Route]) {
    for route in routes {
        let Via::Shim(_, binary) = &route.via else {
            continue;
        };
        let Some(dir) = binary.parent() else {
            continue;
        };
        for (key, value) in &mut engines.env {
            if key == "PATH" && !std::env::split_paths(value).any(|d| d == dir) {
                *value = format!("{}:{value}", dir.display());
            }
        }
    }
}

fn harness(options: &Options) -> Result<i32> {
    check_private_namespaces()?;
    let view = isolation::hide_hybrid_cgroup2()?;
    let mut notes = Vec::new();
    let routes = routes(options, &mut notes);
    let runtimes: Vec<Runtime> = routes
        .iter()
        .filter_map(|r| match &r.via {
            Via::RuncShim(rt) => Some(rt.clone()),
            Via::Shim(..) => None,
        })
        .collect();
    if runtimes.is_empty() {
        bail!("no runtime binary to measure (the engines need at least one, runc)");
    }
    let t0 = Instant::now();
    let mut engines = Engines::new(&runtimes, NAMES)?;
    put_shims_on_path(&mut engines, &routes);
    eprintln!("rrun-bench: starting dockerd and containerd, importing the image");
    let mut result = engines.setup(&[Engine::Docker, Engine::Containerd], None);
    if let Some((engine, why)) = engines.broken.iter().next() {
        result = Err(anyhow::anyhow!("{}: {why}", engine.label()));
    }
    let setup_time = t0.elapsed();
    let load_at_start = report::load_average();
    let t1 = Instant::now();
    let samples = result.and_then(|()| measure(&engines, &routes, options.runs));
    let measure_time = t1.elapsed();
    let t2 = Instant::now();
    let stand_in = isolation::fresh_cgroup2_stand_in(&view);
    let (left, _) = engines.teardown(None);
    let teardown_time = t2.elapsed();
    let samples = samples?;
    stand_in?;
    if !left.is_empty() {
        bail!("left behind (removed now): {}", left.join("; "));
    }
    let mut intro = vec![
        format!("engines: {}", engine_versions()),
        format!(
            "{} runs per runtime and command, after {WARMUP_ROUNDS} warm-up rounds, \
             interleaved round-robin; medians; the engines started once",
            options.runs
        ),
        format!(
            "docker run --rm: `docker run --rm --runtime NAME --network none {} true` \
             (each runtime registered by path in daemon.json; runc is dockerd's built-in)",
            image::DOCKER_REF
        ),
        format!(
            "ctr run --rm: `ctr run --rm --runc-binary PATH --runc-root DIR {} ID true` \
             (containerd's stock runc-v2 shim; a shim of its own: `--runtime TYPE`)",
            image::CTR_REF
        ),
    ];
    for route in &routes {
        intro.push(match &route.via {
            Via::RuncShim(rt) => format!(
                "{}: {} ({})",
                route.name,
                version_line(&rt.path, "--version", ""),
                rt.path.display()
            ),
            Via::Shim(kind, binary) => format!(
                "{}: containerd shim {kind} ({})",
                route.name,
                binary.display()
            ),
        });
    }
    intro.extend(notes.iter().map(|n| format!("note: {n}")));
    intro.push(format!(
        "time: engines' setup {:.1} s, measurements {:.0} s, teardown {:.1} s",
        setup_time.as_secs_f64(),
        measure_time.as_secs_f64(),
        teardown_time.as_secs_f64()
    ));
    let rows: Vec<EngineRow> = routes
        .iter()
        .zip(samples)
        .map(|(route, cells)| EngineRow {
            name: route.name.clone(),
            cells,
        })
        .collect();
    let columns: Vec<&str> = Command::ALL.iter().map(|c| c.title()).collect();
    let machine = machine(options.runs, view, load_at_start);
    report::print_engines(&machine, &intro, &columns, &rows);
    Ok(0)
}

/// dockerd's, containerd's and the runc-v2 shim's versions, one line.
fn engine_versions() -> String {
    let shim = resolve_exe("containerd-shim-runc-v2").map_or_else(
        || "not found".to_owned(),
        |p| version_line(&p, "-v", "Version:"),
    );
    format!(
        "{}; {}; containerd-shim-runc-v2 {shim}",
        version_line(Path::new(DOCKERD), "--version", ""),
        version_line(Path::new(CONTAINERD), "--version", "")
    )
}

/// Per route, per command: the measured milliseconds (None: n/a). Each
/// round runs every command with every route, the routes in turn starting
/// with a different one each round.
fn measure(engines: &Engines, routes: &[Route], runs: usize) -> Result<Vec<Vec<Option<Vec<f64>>>>> {
    let mut samples: Vec<Vec<Option<Vec<f64>>>> = routes
        .iter()
        .map(|_| Command::ALL.iter().map(|_| None).collect())
        .collect();
    let total = WARMUP_ROUNDS + runs;
    let mut next_id = 0usize;
    for round in 0..total {
        if round % 5 == 0 {
            eprintln!("rrun-bench: round {round}/{total}");
        }
        for (c, command) in Command::ALL.iter().enumerate() {
            for k in 0..routes.len() {
                let i = (round + k) % routes.len();
                let route = &routes[i];
                // ctr's container id, and so its cgroup: no "rrun" in it.
                let id = format!("bench-{next_id}");
                next_id += 1;
                let Some(argv) = command.argv(engines, route, &id) else {
                    continue;
                };
                let elapsed = timed(engines, &argv)
                    .with_context(|| format!("{}: {}", route.name, command.title()))?;
                // The e2e harness's watcher keeps each bundle's log.json open
                // for a check's report; nothing to report here.
                engines.logjson.reset();
                let cell = samples[i][c].get_or_insert_with(Vec::new);
                if round >= WARMUP_ROUNDS {
                    cell.push(ms(elapsed));
                }
            }
        }
    }
    Ok(samples)
}

/// Runs an engine command with the engines' environment and times it from
/// before the spawn to its exit, which is waited for on a pidfd (no polling
/// interval in the number). Fails unless it exits 0 within
/// [`COMMAND_TIMEOUT`].
fn timed(engines: &Engines, argv: &[String]) -> Result<Duration> {
    let out_path = engines.out.join("bench.out");
    let err_path = engines.out.join("bench.err");
    let out =
        File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let err =
        File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let mut command = std::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(engines.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let line = argv.join(" ");
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("running {line}"))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let exited = wait_exit(pid, COMMAND_TIMEOUT);
    let status = match exited {
        Ok(true) => child.wait().context("wait")?,
        Ok(false) | Err(_) => {
            // Its process group, as the e2e harness does on a timeout.
            // SAFETY: kill(2) on the process group of our own child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            match exited {
                Err(e) => return Err(e.context(line)),
                _ => bail!("{line}: timed out after {}s", COMMAND_TIMEOUT.as_secs()),
            }
        }
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        bail!("{line}: {status}: {}", stderr.trim());
    }
    Ok(elapsed)
}

/// Waits until process `pid` (our child, not yet reaped) exits: true, or
/// `timeout` passes: false.
fn wait_exit(pid: i32, timeout: Duration) -> Result<bool> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        bail!("pidfd_open({pid}): {}", Errno::last());
    }
    let fd = i32::try_from(fd).context("pidfd out of range")?;
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => bail!("poll(pidfd of {pid}): {e}"),
        }
    }
}
