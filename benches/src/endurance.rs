//! The endurance run: `--runs` (1,000) consecutive `run` of /bin/true +
//! `delete --force` with one runtime (rrun by default), each command
//! bounded by `--timeout` (10 s). Counts the failures and the hangs (a
//! command killed at its deadline), reports the median and the maximum
//! time, checks that nothing is left (the `--root`, the cgroup parents),
//! and fails (exit status 1) on any failure, hang or leftover.
//!
//! Same setting as the lifecycle benchmark: a private mount namespace where
//! a hybrid host looks like cgroup v1, a cgroupsPath `/rrun-bench/<id>` per
//! container.

use crate::isolation::Session;
use crate::lifecycle::prepare_runtimes;
use crate::report::{fmt, median, ms, print_machine};
use crate::runtime::{reap_exited_children, Runtime, TimedOut};
use crate::{default_runtimes, machine, parse_runtime, workspace_dir};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const USAGE: &str =
    "rrun-bench endurance [--runs N] [--timeout SECONDS] [--runtime NAME=PATH] [--make-bundle PATH]
  --runs N             consecutive run + delete (default 1000)
  --timeout SECONDS    deadline of each command (default 10): past it, a hang
  --runtime NAME=PATH  the runtime (default: rrun of this workspace's release build)
  --make-bundle PATH   as lifecycle's";

/// Failures shown in the report (the rest are counted).
const SHOWN: usize = 10;

struct Options {
    runs: usize,
    timeout: Duration,
    runtime: (String, String),
    make_bundle: PathBuf,
}

fn parse_options(argv: &[String]) -> Result<Options> {
    let mut runs = 1000;
    let mut timeout = Duration::from_secs(10);
    let mut runtime = None;
    let mut make_bundle = workspace_dir().join("scripts/make-bundle.sh");
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\nusage: {USAGE}"))
        };
        match arg.as_str() {
            "--runs" => runs = value()?.parse().context("--runs: not a number")?,
            "--timeout" => {
                let secs: f64 = value()?.parse().context("--timeout: not a number")?;
                timeout = Duration::try_from_secs_f64(secs).context("--timeout")?;
            }
            "--runtime" => {
                if runtime.is_some() {
                    bail!("endurance takes one --runtime");
                }
                runtime = Some(parse_runtime(value()?)?);
            }
            "--make-bundle" => make_bundle = value()?.into(),
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg}\nusage: {USAGE}"),
        }
    }
    if runs == 0 || timeout.is_zero() {
        bail!("--runs and --timeout must be above 0");
    }
    let runtime = match runtime {
        Some(r) => r,
        None => default_runtimes()
            .into_iter()
            .next()
            .context("no default runtime")?,
    };
    Ok(Options {
        runs,
        timeout,
        runtime,
        make_bundle,
    })
}

/// What went wrong in one iteration.
enum Trouble {
    Failed(String),
    Hung(String),
}

#[derive(Default)]
struct Tally {
    /// run + delete, milliseconds, of the iterations that succeeded.
    ms: Vec<f64>,
    failures: usize,
    hangs: usize,
    /// The first [`SHOWN`] troubles, with their iteration.
    shown: Vec<String>,
}

/// `rrun-bench endurance ...`; `argv` without the program and mode.
pub fn main(argv: &[String]) -> Result<()> {
    let options = parse_options(argv)?;
    let session = Session::begin("endurance")?;
    let mut notes = Vec::new();
    let mut runtimes = Vec::new();
    let started = Instant::now();
    let result = prepare_runtimes(
        std::slice::from_ref(&options.runtime),
        &options.make_bundle,
        &session.tmp,
        &mut runtimes,
        &mut notes,
    )
    .map(|()| endure(&options, &mut runtimes[0]));
    let took = started.elapsed();
    let mut left = Vec::new();
    if let Some(rt) = runtimes.first_mut() {
        left.extend(leftovers_in_root(rt));
        for id in std::mem::take(&mut rt.live) {
            if let Err(e) = rt.invoke(&["delete", "--force", &id]) {
                left.push(format!("{e:#}"));
            }
        }
    }
    left.extend(session.end());
    let tally = result?;
    let rt = &runtimes[0];
    print_machine(
        "rrun endurance",
        &machine(options.runs, session.view, session.load_at_start),
    );
    println!(
        "- {} consecutive `{} run` of /bin/true + `delete --force`, each command bounded by \
         {} s",
        options.runs,
        rt.name,
        options.timeout.as_secs_f64()
    );
    println!("- {}: {}", rt.name, rt.version());
    println!("- took {:.0} s", took.as_secs_f64());
    println!();
    println!("| runtime | runs | failures | hangs | run + delete, median (ms) | max (ms) | left behind |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let max = tally.ms.iter().copied().fold(f64::NAN, f64::max);
    println!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        rt.name,
        options.runs,
        tally.failures,
        tally.hangs,
        fmt(median(&tally.ms), 2),
        fmt(max, 2),
        left.len()
    );
    for line in tally.shown.iter().chain(&left) {
        println!("- {line}");
    }
    let more = (tally.failures + tally.hangs).saturating_sub(tally.shown.len());
    if more > 0 {
        println!("- ({more} more not shown)");
    }
    if tally.failures + tally.hangs > 0 || !left.is_empty() {
        bail!(
            "endurance: {} failures, {} hangs, {} things left behind",
            tally.failures,
            tally.hangs,
            left.len()
        );
    }
    Ok(())
}

fn endure(options: &Options, rt: &mut Runtime) -> Tally {
    let mut tally = Tally::default();
    let log = rt.dir().join("endurance.log");
    for n in 0..options.runs {
        if n % 100 == 0 {
            eprintln!("rrun-bench: endurance {n}/{}", options.runs);
        }
        match once(rt, &log, options.timeout) {
            Ok(elapsed) => tally.ms.push(ms(elapsed)),
            Err(trouble) => {
                let text = match trouble {
                    Trouble::Failed(text) => {
                        tally.failures += 1;
                        format!("run {n}: failed: {text}")
                    }
                    Trouble::Hung(text) => {
                        tally.hangs += 1;
                        format!("run {n}: hung: {text}")
                    }
                };
                eprintln!("rrun-bench: {text}");
                if tally.shown.len() < SHOWN {
                    tally.shown.push(text);
                }
            }
        }
        reap_exited_children();
    }
    tally
}

/// One `run` + `delete --force`; the container is forgotten only once
/// deleted (what is left is deleted at the end).
fn once(rt: &mut Runtime, log: &Path, timeout: Duration) -> Result<Duration, Trouble> {
    let classify = |e: anyhow::Error| {
        if e.downcast_ref::<TimedOut>().is_some() {
            Trouble::Hung(format!("{e:#}"))
        } else {
            Trouble::Failed(format!("{e:#}"))
        }
    };
    let id = rt
        .new_container()
        .map_err(|e| Trouble::Failed(format!("{e:#}")))?;
    let started = Instant::now();
    let bundle = rt.bundle_arg();
    let run = rt.invoke_with(&["run", "--bundle", &bundle, &id], log, timeout);
    let delete = rt.invoke_with(&["delete", "--force", &id], log, timeout);
    let elapsed = started.elapsed();
    run.map_err(classify)?;
    delete.map_err(classify)?;
    rt.forget(&id);
    Ok(elapsed)
}

/// What the runtime still lists in its `--root` (nothing, after every
/// container was deleted), read from the directory itself.
fn leftovers_in_root(rt: &Runtime) -> Vec<String> {
    let root = rt.state_root();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !rt.live.contains(name))
        .map(|name| format!("{} left in {}", name, root.display()))
        .collect()
}
