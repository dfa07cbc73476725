//! `rrun-e2e`: rrun under real engines (issue 10). Runs every check of
//! Docker 20.10, containerd 1.6 (ctr + the runc-v2 shim) and podman 4.3
//! with each runtime side by side and prints one table: check, then one
//! column per runtime. See conformance/README.md.
//!
//! `engines`, `image`, `ns` and `proc` are public: rrun-bench's engine
//! benchmark (benches/src/engines.rs) starts the same private engines.

mod check;
mod containerd;
mod docker;
pub mod engines;
pub mod image;
pub mod ns;
mod podman;
pub mod proc;

use anyhow::{bail, Context, Result};
use check::{Check, Outcome};
use engines::{Engine, Engines, Runtime};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: rrun-e2e [--runtime NAME=PATH]... [--require NAME] [--engine docker|containerd|podman]...
                [--filter SUBSTR] [--rootfs-tar FILE] [--keep-logs DIR] [--list]
  --runtime     a runtime to check, a column of the table (default: runc from PATH, then
                rrun next to this binary); docker knows it by NAME (runc is docker's own)
  --require     the runtime whose failures fail the run (default: rrun)
  --engine      only these engines (default: all three)
  --filter      only the checks whose title contains SUBSTR
  --rootfs-tar  the busybox rootfs to import (default: made from /bin/busybox)
  --keep-logs   copy the daemons' logs and configs there at the end (not under /tmp or /run)
  --list        print the checks and exit
Runs as root; every engine runs in private mount and pid namespaces.";

struct Args {
    runtimes: Vec<Runtime>,
    require: String,
    engines: Vec<Engine>,
    filter: Option<String>,
    rootfs_tar: Option<PathBuf>,
    keep_logs: Option<PathBuf>,
    list: bool,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file());
    found
}

fn parse_args(argv: &[String]) -> Result<Args> {
    let mut a = Args {
        runtimes: Vec::new(),
        require: "rrun".into(),
        engines: Vec::new(),
        filter: None,
        rootfs_tar: None,
        keep_logs: None,
        list: false,
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runtime" => {
                let v = value()?;
                let (name, path) = v
                    .split_once('=')
                    .with_context(|| format!("--runtime {v}: want NAME=PATH"))?;
                let path = std::fs::canonicalize(path)
                    .with_context(|| format!("--runtime {v}: no such file"))?;
                a.runtimes.push(Runtime {
                    name: name.into(),
                    path,
                });
            }
            "--require" => a.require = value()?.clone(),
            "--engine" => {
                let v = value()?;
                a.engines
                    .push(Engine::from_name(v).with_context(|| format!("unknown engine {v}"))?);
            }
            "--filter" => a.filter = Some(value()?.clone()),
            "--rootfs-tar" => a.rootfs_tar = Some(std::fs::canonicalize(value()?)?),
            "--keep-logs" => {
                let d = PathBuf::from(value()?);
                std::fs::create_dir_all(&d)?;
                let d = std::fs::canonicalize(d)?;
                if d.starts_with("/tmp") || d.starts_with("/run") {
                    bail!(
                        "--keep-logs {}: /tmp and /run are private to the run",
                        d.display()
                    );
                }
                a.keep_logs = Some(d);
            }
            "--list" => a.list = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if a.runtimes.is_empty() {
        if let Some(runc) = which("runc") {
            a.runtimes.push(Runtime {
                name: "runc".into(),
                path: runc,
            });
        }
        let exe = std::env::current_exe()?;
        let rrun = exe.with_file_name("rrun");
        if rrun.is_file() {
            a.runtimes.push(Runtime {
                name: "rrun".into(),
                path: rrun,
            });
        }
    }
    if a.runtimes.is_empty() {
        bail!("no runtime to check: give --runtime NAME=PATH");
    }
    if a.engines.is_empty() {
        a.engines = Engine::ALL.to_vec();
    }
    a.engines.sort();
    a.engines.dedup();
    Ok(a)
}

fn all_checks(args: &Args) -> Vec<Check> {
    let mut all = Vec::new();
    for e in &args.engines {
        all.extend(match e {
            Engine::Docker => docker::checks(),
            Engine::Containerd => containerd::checks(),
            Engine::Podman => podman::checks(),
        });
    }
    if let Some(f) = &args.filter {
        all.retain(|c| c.title().contains(f.as_str()));
    }
    all
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let r = (|| -> Result<i32> {
        let args = parse_args(&argv)?;
        if args.list {
            for c in all_checks(&args) {
                println!("{}{}", c.title(), if c.uses_exec { " (exec)" } else { "" });
            }
            return Ok(0);
        }
        match ns::Stage::current()? {
            ns::Stage::Outer => {
                // SAFETY: geteuid has no preconditions.
                if unsafe { libc::geteuid() } != 0 {
                    bail!("run me as root: I start container engines");
                }
                ns::outer(&argv, &ns::Names::E2E)
            }
            ns::Stage::Init => ns::init(&argv),
            ns::Stage::Harness => harness(&args),
        }
    })();
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rrun-e2e: {e:#}");
            2
        }
    }
}

type Results = HashMap<(usize, String), Outcome>;

fn harness(args: &Args) -> Result<i32> {
    let t0 = Instant::now();
    let checks = all_checks(args);
    let mut engines = Engines::new(&args.runtimes, ns::Names::E2E)?;
    eprintln!(
        "rrun-e2e: {} checks x {} runtimes ({}); setting up {}",
        checks.len(),
        args.runtimes.len(),
        args.runtimes
            .iter()
            .map(|r| format!("{}={}", r.name, r.path.display()))
            .collect::<Vec<_>>()
            .join(", "),
        args.engines
            .iter()
            .map(|e| e.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let versions = versions(args);
    eprintln!("rrun-e2e: {versions}");
    let setup = engines.setup(&args.engines, args.rootfs_tar.as_deref());
    let setup_time = t0.elapsed();
    eprintln!("rrun-e2e: setup took {:.1}s", setup_time.as_secs_f64());
    let mut fixed: HashMap<String, String> = HashMap::new();
    fixed.insert(
        "hostnet".into(),
        std::fs::read_link("/proc/self/ns/net")?
            .display()
            .to_string(),
    );
    fixed.insert("cgparent".into(), engines.cgroup_parent(Engine::Podman));
    fixed.insert("ctrns".into(), engines.names.ctr_ns.into());
    fixed.insert(
        "ctrstate".into(),
        engines.work.join("containerd/state").display().to_string(),
    );
    let mut results: Results = HashMap::new();
    let mut per_runtime: HashMap<String, Duration> = HashMap::new();
    if let Err(e) = &setup {
        for rt in &args.runtimes {
            for i in 0..checks.len() {
                results.insert((i, rt.name.clone()), failed(format!("setup: {e:#}")));
            }
        }
    } else {
        for (i, c) in checks.iter().enumerate() {
            for rt in &args.runtimes {
                let o = if let Some(why) = engines.broken.get(&c.engine) {
                    failed(why.clone())
                } else {
                    let mut f = fixed.clone();
                    f.insert(
                        "img".into(),
                        match c.engine {
                            Engine::Docker => image::DOCKER_REF,
                            Engine::Containerd => image::CTR_REF,
                            Engine::Podman => image::PODMAN_REF,
                        }
                        .into(),
                    );
                    // No runtime name in it: it is part of ctr's cgroup paths (see
                    // Engines::names).
                    let k = args
                        .runtimes
                        .iter()
                        .position(|r| r.name == rt.name)
                        .unwrap_or(0);
                    let name = format!("e2e-{i}-rt{k}");
                    let dir = engines
                        .work
                        .join("checks")
                        .join(&name)
                        .display()
                        .to_string();
                    check::run(&engines, c, rt, name, dir, &f)
                };
                // A hung engine fails the checks left at once, not one
                // deadline each.
                if o.timed_out && !engines.answers(c.engine, rt) {
                    engines.broken.insert(
                        c.engine,
                        format!(
                            "{} stopped answering during {:?}",
                            c.engine.label(),
                            c.title()
                        ),
                    );
                }
                *per_runtime.entry(rt.name.clone()).or_default() += o.elapsed;
                eprintln!(
                    "{:<4} {:<6} {} ({:.1}s){}",
                    if o.pass { "pass" } else { "FAIL" },
                    rt.name,
                    c.title(),
                    o.elapsed.as_secs_f64(),
                    if o.pass {
                        String::new()
                    } else {
                        format!(": {}", o.reason)
                    }
                );
                results.insert((i, rt.name.clone()), o);
            }
        }
    }
    let t_teardown = Instant::now();
    let (left, notes) = engines.teardown(args.keep_logs.as_deref());
    let teardown_time = t_teardown.elapsed();
    println!("{versions}");
    let failed_required = print_report(args, &checks, &results);
    println!();
    println!(
        "time: {:.0}s in all: setup {:.1}s, checks {}, teardown {:.1}s",
        t0.elapsed().as_secs_f64(),
        setup_time.as_secs_f64(),
        args.runtimes
            .iter()
            .map(|r| format!(
                "{} {:.1}s",
                r.name,
                per_runtime
                    .get(&r.name)
                    .copied()
                    .unwrap_or_default()
                    .as_secs_f64()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        teardown_time.as_secs_f64()
    );
    for n in &notes {
        println!("teardown: {n} (inside the run's mount namespace; detached)");
    }
    if left.is_empty() {
        println!("teardown: engines stopped; no container, process, mount or cgroup left");
    } else {
        println!("teardown: LEFT BEHIND (removed now): {}", left.join("; "));
    }
    Ok(i32::from(
        failed_required || !left.is_empty() || setup.is_err(),
    ))
}

/// One line: the engines' and runtimes' versions.
fn versions(args: &Args) -> String {
    let text = |argv: &[&str]| -> String {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let o = proc::run(
            &proc::Spec {
                argv: &argv,
                stdin: None,
                tty: false,
                timeout: Duration::from_secs(10),
                env: &[],
            },
            &engines::work().join("out"),
        );
        format!("{}{}", o.stdout, o.stderr)
    };
    let first = |t: String| t.lines().next().unwrap_or("?").trim().to_string();
    let mut parts = Vec::new();
    for e in &args.engines {
        let bin = match e {
            Engine::Docker => engines::DOCKERD,
            Engine::Containerd => engines::CONTAINERD,
            Engine::Podman => engines::PODMAN,
        };
        parts.push(first(text(&[bin, "--version"])));
    }
    for rt in &args.runtimes {
        let p = rt.path.display().to_string();
        let t = text(&[&p, "--version"]);
        let commit = t
            .lines()
            .find_map(|l| l.strip_prefix("commit: "))
            .map(|c| format!(" (commit {})", c.trim()))
            .unwrap_or_default();
        parts.push(format!("{}: {}{commit} at {p}", rt.name, first(t)));
    }
    format!("versions: {}", parts.join("; "))
}

fn failed(reason: String) -> Outcome {
    Outcome {
        pass: false,
        reason,
        details: Vec::new(),
        elapsed: Duration::ZERO,
        timed_out: false,
    }
}

/// The table, the known failures, every failure's details and the
/// summaries. True iff the required runtime failed a check.
fn print_report(args: &Args, checks: &[Check], results: &Results) -> bool {
    let title_w = checks
        .iter()
        .map(|c| c.title().len())
        .max()
        .unwrap_or(5)
        .max(5);
    let cell = |c: &Check, rt: &Runtime, o: Option<&Outcome>| -> String {
        match o {
            None => "-".into(),
            Some(o) if o.pass => "pass".into(),
            Some(_) if c.known.iter().any(|(r, _)| *r == rt.name) => "FAIL (known, host)".into(),
            Some(_) if c.uses_exec => "FAIL (exec)".into(),
            Some(_) => "FAIL".into(),
        }
    };
    let col_w = 18;
    let mut header = format!("| {:<title_w$} |", "check");
    let mut rule = format!("|{}|", "-".repeat(title_w + 2));
    for rt in &args.runtimes {
        header.push_str(&format!(" {:<col_w$} |", rt.name));
        rule.push_str(&format!("{}|", "-".repeat(col_w + 2)));
    }
    println!();
    println!("{header}");
    println!("{rule}");
    for (i, c) in checks.iter().enumerate() {
        let mut row = format!("| {:<title_w$} |", c.title());
        for rt in &args.runtimes {
            row.push_str(&format!(
                " {:<col_w$} |",
                cell(c, rt, results.get(&(i, rt.name.clone())))
            ));
        }
        println!("{row}");
    }
    let known: Vec<String> = checks
        .iter()
        .flat_map(|c| {
            c.known
                .iter()
                .map(move |(r, why)| format!("{} with {r}: {why}", c.title()))
        })
        .collect();
    if !known.is_empty() {
        println!();
        println!("known failures on this host (not required):");
        for k in known {
            println!("  - {k}");
        }
    }
    let mut any_failure = false;
    for rt in &args.runtimes {
        for (i, c) in checks.iter().enumerate() {
            if let Some(o) = results.get(&(i, rt.name.clone())) {
                if !o.pass {
                    if !any_failure {
                        println!();
                        println!("failures (what the engine printed, then what the runtime and the engine logged):");
                        any_failure = true;
                    }
                    println!("- {} with {}: {}", c.title(), rt.name, o.reason);
                    for d in &o.details {
                        println!("    {d}");
                    }
                }
            }
        }
    }
    println!();
    let mut failed_required = false;
    for rt in &args.runtimes {
        let outs: Vec<(&Check, &Outcome)> = checks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| results.get(&(i, rt.name.clone())).map(|o| (c, o)))
            .collect();
        let passed = outs.iter().filter(|(_, o)| o.pass).count();
        let failed = outs.len() - passed;
        let known = outs
            .iter()
            .filter(|(c, o)| !o.pass && c.known.iter().any(|(r, _)| *r == rt.name))
            .count();
        let exec = outs.iter().filter(|(c, o)| !o.pass && c.uses_exec).count();
        let required = rt.name == args.require;
        if required && failed > 0 {
            failed_required = true;
        }
        println!(
            "{}{}: {passed} passed, {failed} failed ({known} known on this host, {exec} of checks using exec)",
            rt.name,
            if required { " (required)" } else { "" }
        );
    }
    if let Some(rt) = args.runtimes.iter().find(|r| r.name == args.require) {
        let n = checks.len();
        let passed = (0..n)
            .filter(|i| results.get(&(*i, rt.name.clone())).is_some_and(|o| o.pass))
            .count();
        println!("e2e: {passed} passed, {} failed", n - passed);
    }
    failed_required
}
