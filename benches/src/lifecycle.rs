//! The lifecycle benchmark: the runtimes' own CLI, without an engine.
//!
//! Every runtime runs the same busybox bundle, interleaved round-robin, in a
//! private mount namespace where a hybrid host looks like cgroup v1 (crun
//! 1.8 refuses hybrid). Each runtime has its own `--root` and every
//! container its own absolute cgroupsPath `/rrun-bench/<runtime>-<n>`.

use crate::isolation::{self, CgroupParents};
use crate::report::{self, ms, Row, Samples};
use crate::runtime::{reap_exited_children, InitHandle, Invocation, Runtime};
use crate::{default_runtimes, machine, parse_runtime, resolve_exe, workspace_dir, WARMUP_ROUNDS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Options {
    runs: usize,
    runtimes: Vec<(String, String)>,
    make_bundle: PathBuf,
}

pub const USAGE: &str =
    "rrun-bench [lifecycle] [--runs N] [--runtime NAME=PATH]... [--make-bundle PATH]
  --runs N             measured rounds per runtime (default 30)
  --runtime NAME=PATH  a runtime to measure (repeatable; default:
                       rrun=<workspace>/target/release/rrun (or under $CARGO_TARGET_DIR),
                       runc=runc, crun=crun)
  --make-bundle PATH   the bundle script (default: <workspace>/scripts/make-bundle.sh)";

fn parse_options(argv: &[String]) -> Result<Options> {
    let mut options = Options {
        runs: 30,
        runtimes: Vec::new(),
        make_bundle: workspace_dir().join("scripts/make-bundle.sh"),
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
            "--make-bundle" => options.make_bundle = value()?.into(),
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

/// `rrun-bench [lifecycle] ...`; `argv` without the program and mode.
pub fn main(argv: &[String]) -> Result<()> {
    let options = parse_options(argv)?;
    if !nix::unistd::geteuid().is_root() {
        bail!("rrun-bench must run as root (it creates real containers)");
    }
    // Both calls need a single-threaded process: do them before anything else.
    let view = isolation::enter_private_mount_namespace()?;
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    let load_at_start = report::load_average();

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
    report::print(&machine(options.runs, view, load_at_start), &rows, &notes);
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
