//! The scale benchmark: many containers at once, per runtime.
//!
//! * A burst: `--containers` (200) containers of `sleep` created and
//!   started `--parallel` (16) at a time, by as many threads, then all
//!   stopped and removed 16 at a time (`kill KILL`, wait for the init to
//!   exit, `delete`, as an engine does): containers per second. `--rounds`
//!   (3) bursts per runtime, interleaved round-robin; medians.
//! * A full root: `--listed` (1,000) created containers in the runtime's
//!   `--root`, then `list` and `state` of one of them timed `--runs` (10)
//!   times after warm-up; medians. One runtime at a time (thousands of
//!   waiting inits of every runtime at once would be a memory test), each
//!   in its own `--root`.
//!
//! As in the lifecycle benchmark: a private mount namespace where a hybrid
//! host looks like cgroup v1, an absolute cgroupsPath
//! `/rrun-bench/<id>` per container, and, on success or error, every
//! container that may exist removed with `delete --force`, the cgroup
//! parents we caused removed, the temporary directory too.

use crate::isolation::Session;
use crate::lifecycle::prepare_runtimes;
use crate::report::{self, fmt, median, ms, print_machine};
use crate::runtime::{reap_exited_children, wait_init, Runtime, INVOKE_TIMEOUT};
use crate::{default_runtimes, machine, parse_runtime, workspace_dir, WARMUP_ROUNDS};
use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const USAGE: &str = "rrun-bench scale [--containers N] [--parallel N] [--rounds N] [--listed N]
                        [--runs N] [--runtime NAME=PATH]... [--make-bundle PATH]
  --containers N       containers per burst (default 200)
  --parallel N         commands at once (default 16)
  --rounds N           bursts per runtime, interleaved (default 3)
  --listed N           created containers in the root for list and state (default 1000)
  --runs N             timed list and state commands per runtime (default 10)
  --runtime, --make-bundle: as lifecycle's";

/// The process of the burst's containers: they all run at once.
const SLEEPER: &[&str] = &["sleep", "1000000"];

/// How long an init may take to exit after `kill KILL`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors shown when a parallel phase fails (the rest are counted).
const ERRORS_SHOWN: usize = 5;

struct Options {
    containers: usize,
    parallel: usize,
    rounds: usize,
    listed: usize,
    runs: usize,
    runtimes: Vec<(String, String)>,
    make_bundle: PathBuf,
}

fn parse_options(argv: &[String]) -> Result<Options> {
    let mut options = Options {
        containers: 200,
        parallel: 16,
        rounds: 3,
        listed: 1000,
        runs: 10,
        runtimes: Vec::new(),
        make_bundle: workspace_dir().join("scripts/make-bundle.sh"),
    };
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\nusage: {USAGE}"))
        };
        let mut number = || -> Result<usize> {
            let v = value()?;
            v.parse()
                .with_context(|| format!("{arg} {v}: not a number"))
        };
        match arg.as_str() {
            "--containers" => options.containers = number()?,
            "--parallel" => options.parallel = number()?,
            "--rounds" => options.rounds = number()?,
            "--listed" => options.listed = number()?,
            "--runs" => options.runs = number()?,
            "--runtime" => options.runtimes.push(parse_runtime(value()?)?),
            "--make-bundle" => options.make_bundle = value()?.into(),
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg}\nusage: {USAGE}"),
        }
    }
    let counts = [
        options.containers,
        options.parallel,
        options.rounds,
        options.listed,
        options.runs,
    ];
    if counts.contains(&0) {
        bail!("--containers, --parallel, --rounds, --listed and --runs must be at least 1");
    }
    if options.runtimes.is_empty() {
        options.runtimes = default_runtimes();
    }
    Ok(options)
}

/// One runtime's containers that may exist: id and, once created, its
/// init's pid (our child once `create` returned: we are a subreaper).
#[derive(Default)]
struct Fleet {
    live: Mutex<BTreeMap<String, Option<Pid>>>,
}

impl Fleet {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<Pid>>> {
        // A worker that panicked aborts the process (panic = "abort"), so a
        // poisoned lock cannot be seen; take the data anyway.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per runtime: the burst's rates and the full root's timings.
#[derive(Default)]
struct Figures {
    /// Containers per second of create + start, of kill + wait + delete,
    /// and of the whole cycle, one per burst.
    up_per_s: Vec<f64>,
    down_per_s: Vec<f64>,
    cycle_per_s: Vec<f64>,
    list_ms: Vec<f64>,
    state_ms: Vec<f64>,
    /// Seconds to create the `--listed` containers and to remove them.
    fill_s: f64,
    empty_s: f64,
}

/// `rrun-bench scale ...`; `argv` without the program and mode.
pub fn main(argv: &[String]) -> Result<()> {
    let options = parse_options(argv)?;
    let session = Session::begin("scale")?;
    let started = Instant::now();
    let mut notes = Vec::new();
    let mut runtimes = Vec::new();
    let mut fleets: Vec<Fleet> = Vec::new();
    let result = prepare_runtimes(
        &options.runtimes,
        &options.make_bundle,
        &session.tmp,
        &mut runtimes,
        &mut notes,
    )
    .and_then(|()| {
        fleets = runtimes.iter().map(|_| Fleet::default()).collect();
        measure(&options, &runtimes, &fleets)
    });
    let problems = clean_up(&runtimes, &fleets, options.parallel, &session);
    if result.is_err() {
        for problem in &problems {
            eprintln!("rrun-bench: cleanup after the error: {problem}");
        }
    }
    let figures = result?;
    if !problems.is_empty() {
        bail!("cleanup left things behind:\n{}", problems.join("\n"));
    }
    let machine = machine(options.runs, session.view, session.load_at_start);
    print(
        &options,
        &machine,
        &runtimes,
        &figures,
        &notes,
        started.elapsed(),
    );
    Ok(())
}

fn measure(options: &Options, runtimes: &[Runtime], fleets: &[Fleet]) -> Result<Vec<Figures>> {
    let mut figures: Vec<Figures> = runtimes.iter().map(|_| Figures::default()).collect();
    for round in 0..options.rounds {
        for k in 0..runtimes.len() {
            let i = (round + k) % runtimes.len();
            let (rt, fleet) = (&runtimes[i], &fleets[i]);
            eprintln!(
                "rrun-bench: burst {}/{} of {}: {} containers",
                round + 1,
                options.rounds,
                rt.name,
                options.containers
            );
            let ids: Vec<String> = (0..options.containers)
                .map(|n| format!("{}-b{round}-{n}", rt.name))
                .collect();
            let up = create_all(rt, fleet, &ids, Some(SLEEPER), options.parallel)
                .with_context(|| format!("{}: burst {round}: create + start", rt.name))?;
            let down = remove_all(rt, fleet, &ids, options.parallel)
                .with_context(|| format!("{}: burst {round}: kill + wait + delete", rt.name))?;
            reap_exited_children();
            let n = options.containers as f64;
            let f = &mut figures[i];
            f.up_per_s.push(n / up.as_secs_f64());
            f.down_per_s.push(n / down.as_secs_f64());
            f.cycle_per_s.push(n / (up + down).as_secs_f64());
        }
    }
    for ((rt, fleet), f) in runtimes.iter().zip(fleets).zip(&mut figures) {
        full_root(options, rt, fleet, f).with_context(|| format!("{}: full root", rt.name))?;
    }
    Ok(figures)
}

/// `--listed` created containers, then `list` and `state` timed, then
/// all removed.
fn full_root(options: &Options, rt: &Runtime, fleet: &Fleet, f: &mut Figures) -> Result<()> {
    eprintln!(
        "rrun-bench: {}: creating {} containers",
        rt.name, options.listed
    );
    let ids: Vec<String> = (0..options.listed)
        .map(|n| format!("{}-l{n}", rt.name))
        .collect();
    f.fill_s = create_all(rt, fleet, &ids, None, options.parallel)?.as_secs_f64();
    let log = rt.dir().join("full-root.log");
    let one = &ids[ids.len() / 2];
    for run in 0..WARMUP_ROUNDS + options.runs {
        let list = rt.invoke_with(&["list"], &log, INVOKE_TIMEOUT)?;
        let state = rt.invoke_with(&["state", one], &log, INVOKE_TIMEOUT)?;
        if run >= WARMUP_ROUNDS {
            f.list_ms.push(ms(list.elapsed));
            f.state_ms.push(ms(state.elapsed));
        }
    }
    eprintln!("rrun-bench: {}: removing the {}", rt.name, options.listed);
    f.empty_s = remove_all(rt, fleet, &ids, options.parallel)?.as_secs_f64();
    reap_exited_children();
    Ok(())
}

/// Creates (and, with `args`, starts) the containers `ids`, `parallel` at
/// a time; the time it took. With `args` None the process is the
/// bundle's `/bin/true` and the containers stay created.
fn create_all(
    rt: &Runtime,
    fleet: &Fleet,
    ids: &[String],
    args: Option<&[&str]>,
    parallel: usize,
) -> Result<Duration> {
    let pids = rt.dir().join("pids");
    std::fs::create_dir_all(&pids).with_context(|| format!("mkdir {}", pids.display()))?;
    // The bundles first, untimed.
    let mut bundles = Vec::with_capacity(ids.len());
    for id in ids {
        let bundle = rt.own_bundle(id, args.unwrap_or(&["/bin/true"]))?;
        bundles.push((id, bundle.to_string_lossy().into_owned()));
    }
    in_parallel(rt, &bundles, parallel, |(id, bundle), log| {
        let pid_file = pids.join(format!("{id}.pid"));
        let pid_arg = pid_file.to_string_lossy();
        fleet.lock().insert((*id).clone(), None);
        let create = ["create", "--bundle", bundle, "--pid-file", &pid_arg, id];
        rt.invoke_with(&create, log, INVOKE_TIMEOUT)?;
        let text = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .with_context(|| format!("bad pid in {}", pid_file.display()))?;
        fleet.lock().insert((*id).clone(), Some(Pid::from_raw(pid)));
        if args.is_some() {
            rt.invoke_with(&["start", id], log, INVOKE_TIMEOUT)?;
        }
        Ok(())
    })
}

/// `kill ID KILL`, wait for the init's exit (and reap it), `delete ID`,
/// for every container of `ids`, `parallel` at a time; the time it took.
fn remove_all(rt: &Runtime, fleet: &Fleet, ids: &[String], parallel: usize) -> Result<Duration> {
    in_parallel(rt, ids, parallel, |id, log| {
        let pid = fleet.lock().get(id).copied().flatten();
        let pid = pid.with_context(|| format!("{id}: no init pid"))?;
        rt.invoke_with(&["kill", id, "KILL"], log, INVOKE_TIMEOUT)?;
        wait_init(pid, EXIT_TIMEOUT).with_context(|| format!("{id}: after kill"))?;
        rt.invoke_with(&["delete", id], log, INVOKE_TIMEOUT)?;
        fleet.lock().remove(id);
        Ok(())
    })
}

/// Runs `work` on every item, `parallel` threads taking the next item in
/// turn, each with its own log file; stops handing out items at the
/// first error. The elapsed time, or the errors.
fn in_parallel<T: Sync>(
    rt: &Runtime,
    items: &[T],
    parallel: usize,
    work: impl Fn(&T, &Path) -> Result<()> + Sync,
) -> Result<Duration> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    let logs = rt.dir().join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("mkdir {}", logs.display()))?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..parallel.min(items.len()) {
            let log = logs.join(format!("worker-{worker}.log"));
            let (next, failed, errors, work) = (&next, &failed, &errors, &work);
            scope.spawn(move || {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = work(item, &log) {
                        failed.store(true, Ordering::Relaxed);
                        let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                        errors.push(format!("{e:#}"));
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(ERRORS_SHOWN);
        let mut text = errors[..errors.len().min(ERRORS_SHOWN)].join("\n");
        if more > 0 {
            text.push_str(&format!("\n({more} more errors)"));
        }
        bail!("{text}");
    }
    Ok(elapsed)
}

/// `delete --force` of every container that may still exist, `parallel`
/// at a time, then the reaping, the cgroup parents we caused and the temp
/// dir. What could not be cleaned.
fn clean_up(
    runtimes: &[Runtime],
    fleets: &[Fleet],
    parallel: usize,
    session: &Session,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (rt, fleet) in runtimes.iter().zip(fleets) {
        let ids: Vec<String> = fleet.lock().keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        eprintln!(
            "rrun-bench: {}: delete --force of {} containers left",
            rt.name,
            ids.len()
        );
        // Every id is tried: errors are collected, not stopping the others.
        let failures = Mutex::new(Vec::new());
        let _ = in_parallel(rt, &ids, parallel, |id, log| {
            if let Err(e) = rt.invoke_with(&["delete", "--force", id], log, INVOKE_TIMEOUT) {
                let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
                failures.push(format!("{e:#}"));
            }
            Ok(())
        });
        problems.extend(failures.into_inner().unwrap_or_else(|e| e.into_inner()));
    }
    problems.extend(session.end());
    problems
}

fn print(
    options: &Options,
    machine: &report::Machine,
    runtimes: &[Runtime],
    figures: &[Figures],
    notes: &[String],
    took: Duration,
) {
    print_machine("rrun at scale", machine);
    println!(
        "- burst: {} containers (`sleep`) created and started {} at a time, then `kill KILL` + \
         wait for the exit + `delete`, {} at a time; {} bursts per runtime, interleaved \
         round-robin; medians",
        options.containers, options.parallel, options.parallel, options.rounds
    );
    println!(
        "- full root: {} created containers in the runtime's own --root, then `list` and \
         `state` of one of them, {} times each after {WARMUP_ROUNDS} warm-up runs, one runtime \
         after the other; medians",
        options.listed, options.runs
    );
    for rt in runtimes {
        println!("- {}: {}", rt.name, rt.version());
    }
    for note in notes {
        println!("- note: {note}");
    }
    println!("- took {:.0} s in all", took.as_secs_f64());
    println!();
    println!(
        "| runtime | create + start (containers/s) | kill + wait + delete (containers/s) | \
         whole cycle (containers/s) | list of {n} (ms) | state among {n} (ms) | \
         creating / removing the {n} (s) |",
        n = options.listed
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (rt, f) in runtimes.iter().zip(figures) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} / {} |",
            rt.name,
            fmt(median(&f.up_per_s), 1),
            fmt(median(&f.down_per_s), 1),
            fmt(median(&f.cycle_per_s), 1),
            fmt(median(&f.list_ms), 2),
            fmt(median(&f.state_ms), 2),
            fmt(f.fill_s, 1),
            fmt(f.empty_s, 1),
        );
    }
    let Some(crun) = runtimes.iter().position(|rt| rt.name == "crun") else {
        println!("\nNo ratios to crun: crun not measured.");
        return;
    };
    let c = &figures[crun];
    // Time per container or per command over crun's: < 1 is faster.
    let per = |rate: &[f64], base: &[f64]| report::ratio(median(base), median(rate));
    println!();
    println!("Ratio to crun of the time per container or per command (< 1: faster than crun):\n");
    println!("| runtime | create + start | kill + wait + delete | whole cycle | list | state |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (rt, f) in runtimes.iter().zip(figures) {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            rt.name,
            per(&f.up_per_s, &c.up_per_s),
            per(&f.down_per_s, &c.down_per_s),
            per(&f.cycle_per_s, &c.cycle_per_s),
            report::ratio(median(&f.list_ms), median(&c.list_ms)),
            report::ratio(median(&f.state_ms), median(&c.state_ms)),
        );
    }
}
