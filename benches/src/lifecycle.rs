//! rrun-bench: lifecycle latency of rrun against runc and crun.
//!
//! Every runtime runs the same busybox bundle, interleaved round-robin, in a
//! private mount namespace where a hybrid host looks like cgroup v1 (crun
//! 1.8 refuses hybrid). Each runtime has its own `--root` and every
//! container its own absolute cgroupsPath `/rrun-bench/<runtime>-<n>`.
//! Must run as root. Prints a markdown report on stdout.

mod isolation;
mod report;
mod runtime;

use anyhow::{bail, Context, Result};
use isolation::{CgroupParents, CgroupView};
use report::{ms, Machine, Row, Samples};
use runtime::{reap_exited_children, InitHandle, Invocation, Runtime};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Unrecorded rounds first, so page-cache and first-exec costs do not land
/// on whichever runtime happens to go first.
const WARMUP_ROUNDS: usize = 2;

struct Options {
    runs: usize,
    runtimes: Vec<(String, String)>,
    make_bundle: PathBuf,
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

const USAGE: &str = "usage: rrun-bench [--runs N] [--runtime NAME=PATH]... [--make-bundle PATH]
  --runs N             measured rounds per runtime (default 30)
  --runtime NAME=PATH  a runtime to measure (repeatable; default:
                       rrun=<workspace>/target/release/rrun (or under $CARGO_TARGET_DIR),
                       runc=runc, crun=crun)
  --make-bundle PATH   the bundle script (default: <workspace>/scripts/make-bundle.sh)";

fn parse_options() -> Result<Options> {
    let mut options = Options {
        runs: 30,
        runtimes: Vec::new(),
        make_bundle: workspace_dir().join("scripts/make-bundle.sh"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--runs" => options.runs = value()?.parse().context("--runs: not a number")?,
            "--runtime" => {
                let spec = value()?;
                let (name, path) = spec.split_once('=').context("--runtime wants NAME=PATH")?;
                options.runtimes.push((name.to_owned(), path.to_owned()));
            }
            "--make-bundle" => options.make_bundle = value()?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if options.runtimes.is_empty() {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace_dir().join("target"), PathBuf::from);
        let rrun = target.join("release/rrun");
        options.runtimes = vec![
            ("rrun".into(), rrun.to_string_lossy().into_owned()),
            ("runc".into(), "runc".into()),
            ("crun".into(), "crun".into()),
        ];
    }
    Ok(options)
}

/// A path with a slash is taken as is; a bare name is looked up in PATH.
fn resolve_exe(path: &str) -> Option<PathBuf> {
    if path.contains('/') {
        let p = PathBuf::from(path);
        return p.is_file().then(|| p.canonicalize().unwrap_or(p));
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
}

fn main() -> Result<()> {
    let options = parse_options()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("rrun-bench must run as root (it creates real containers)");
    }
    // Both calls need a single-threaded process: do them before anything else.
    let view = isolation::enter_private_mount_namespace()?;
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;

    let tmp = std::env::temp_dir().join(format!("rrun-bench-{}", std::process::id()));
    let parents = CgroupParents::record()?;
    let mut notes = Vec::new();
    let mut runtimes = Vec::new();
    let result = prepare_runtimes(&options, &tmp, &mut runtimes, &mut notes)
        .and_then(|()| measure(&options, &mut runtimes));
    let problems = clean_up(&mut runtimes, &parents, &tmp);
    let samples = result?;
    if !problems.is_empty() {
        bail!("cleanup left things behind:\n{}", problems.join("\n"));
    }
    let rows: Vec<Row<'_>> = runtimes
        .iter()
        .zip(&samples)
        .map(|(rt, samples)| Row {
            name: &rt.name,
            version: rt.version(),
            samples,
        })
        .collect();
    report::print(&machine(&options, view), &rows, &notes);
    Ok(())
}

fn prepare_runtimes(
    options: &Options,
    tmp: &Path,
    runtimes: &mut Vec<Runtime>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for (name, path) in &options.runtimes {
        let Some(exe) = resolve_exe(path) else {
            let note = format!("{name} skipped: {path} not found");
            eprintln!("rrun-bench: {note}");
            notes.push(note);
            continue;
        };
        runtimes.push(Runtime::prepare(name, exe, tmp, &options.make_bundle)?);
    }
    if runtimes.is_empty() {
        bail!("no runtime to measure");
    }
    Ok(())
}

/// The measured loop: per round, every runtime in turn (starting with a
/// different one each round) does (a), (b) and (c) once.
fn measure(options: &Options, runtimes: &mut [Runtime]) -> Result<Vec<Samples>> {
    let state_ids = runtimes
        .iter_mut()
        .map(|rt| create_parked(rt).with_context(|| format!("{}: create for state", rt.name)))
        .collect::<Result<Vec<_>>>()?;
    let mut samples: Vec<Samples> = runtimes.iter().map(|_| Samples::default()).collect();
    let total = WARMUP_ROUNDS + options.runs;
    for round in 0..total {
        if round % 10 == 0 {
            eprintln!("rrun-bench: round {round}/{total}");
        }
        for k in 0..runtimes.len() {
            let i = (round + k) % runtimes.len();
            let (rt, state_id) = (&mut runtimes[i], state_ids[i].as_str());
            let s = &mut samples[i];
            let name = rt.name.clone();
            let (run, run_rss) =
                run_and_delete(rt).with_context(|| format!("{name}: run + delete"))?;
            let (lifecycle, create_rss) = create_start_wait_delete(rt)
                .with_context(|| format!("{name}: create + start + wait + delete"))?;
            let state = rt
                .invoke(&["state", state_id])
                .with_context(|| format!("{name}: state"))?;
            if round >= WARMUP_ROUNDS {
                s.run_ms.push(run);
                s.run_rss_kib.push(run_rss as f64);
                s.lifecycle_ms.push(lifecycle);
                s.create_rss_kib.push(create_rss as f64);
                s.state_ms.push(ms(state.elapsed));
            }
        }
    }
    Ok(samples)
}

/// A created (never started) container for the `state` measurements.
fn create_parked(rt: &mut Runtime) -> Result<String> {
    let id = rt.new_container()?;
    rt.invoke(&["create", "--bundle", &rt.bundle_arg(), &id])?;
    Ok(id)
}

/// (a): `run` of /bin/true, then `delete --force` (runc and crun already
/// removed the container when `run` returned; --force makes that a no-op).
fn run_and_delete(rt: &mut Runtime) -> Result<(f64, u64)> {
    let id = rt.new_container()?;
    let started = Instant::now();
    let run: Invocation = rt.invoke(&["run", "--bundle", &rt.bundle_arg(), &id])?;
    rt.invoke(&["delete", "--force", &id])?;
    let elapsed = ms(started.elapsed());
    rt.forget(&id);
    reap_exited_children();
    Ok((elapsed, run.max_rss_kib))
}

/// (b): `create`, `start`, wait for the init (/bin/true) to exit, `delete`.
fn create_start_wait_delete(rt: &mut Runtime) -> Result<(f64, u64)> {
    let id = rt.new_container()?;
    let pid_file = rt.pid_file().to_string_lossy().into_owned();
    let started = Instant::now();
    let create = rt.invoke(&[
        "create",
        "--bundle",
        &rt.bundle_arg(),
        "--pid-file",
        &pid_file,
        &id,
    ])?;
    let init = InitHandle::open(rt.read_init_pid()?)?;
    rt.invoke(&["start", &id])?;
    init.wait_for_exit()?;
    rt.invoke(&["delete", &id])?;
    let elapsed = ms(started.elapsed());
    rt.forget(&id);
    reap_exited_children();
    Ok((elapsed, create.max_rss_kib))
}

/// Deletes every container that may still exist, reaps, removes the cgroup
/// parents we caused and the temp dir. Returns what could not be cleaned.
fn clean_up(runtimes: &mut [Runtime], parents: &CgroupParents, tmp: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for rt in runtimes.iter_mut() {
        for id in std::mem::take(&mut rt.live) {
            if let Err(e) = rt.invoke(&["delete", "--force", &id]) {
                problems.push(format!("{e:#}"));
            }
        }
    }
    reap_exited_children();
    problems.extend(parents.remove());
    if tmp.exists() {
        if let Err(e) = std::fs::remove_dir_all(tmp) {
            problems.push(format!("rm -r {}: {e}", tmp.display()));
        }
    }
    problems
}

fn machine(options: &Options, view: CgroupView) -> Machine {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(0);
    let cgroups = match view {
        CgroupView::HybridShownAsV1 => "hybrid host, measured as v1 (cgroup2 mount hidden)",
        CgroupView::AsHost => "as the host has them",
    };
    Machine {
        date,
        kernel,
        cores,
        cgroups,
        runs: options.runs,
    }
}
