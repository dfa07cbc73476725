//! `rrun-conformance`: runs the OCI conformance cases against one or more
//! runtimes and prints one row per spec requirement.
//!
//! `rrun-conformance --runtime rrun=/path/to/rrun [--runtime runc=/usr/sbin/runc]
//!                   [--checker PATH] [--filter SUBSTR]`

mod cases;
mod console;
mod harness;
// The runner and every runtime it drives live in a private mount
// namespace entered before main: a runtime's mount bug stays in there.
#[path = "../../libcontainer/tests/common/isolate.rs"]
mod isolate;
mod requirements;
mod spec;
mod table;

use anyhow::{bail, Context, Result};
use harness::{Env, Outcome, Runtime};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The verdict of one case against one runtime.
#[derive(Clone, Debug)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

struct Args {
    runtimes: Vec<Runtime>,
    checker: PathBuf,
    filter: Option<String>,
}

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rrun-conformance: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<i32> {
    let args = parse_args()?;
    let base = PathBuf::from(format!("/tmp/rrun-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("mkdir {}", base.display()))?;
    // Each runtime's bundles say the newest ociVersion it accepts.
    let mut version_notes = Vec::new();
    for rt in &args.runtimes {
        if let Some(note) = harness::probe_oci_version(rt, &base, &args.checker) {
            eprintln!("{}: {note}", rt.name);
            version_notes.push(format!("ociVersion [{}]: {note}", rt.name));
        }
    }
    let (results, mut notes) = run_all(&args, &base);
    version_notes.append(&mut notes);
    let notes = version_notes;
    harness::remove_cgroup_parents();
    let _ = std::fs::remove_dir_all(&base);
    let failed_first = table::print(&args.runtimes, &results, &notes);
    Ok(i32::from(failed_first))
}

fn parse_args() -> Result<Args> {
    let mut runtimes = Vec::new();
    let mut checker = None;
    let mut filter = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runtime" => {
                let v = value("--runtime")?;
                let (name, path) = v
                    .split_once('=')
                    .with_context(|| format!("--runtime {v}: want name=path"))?;
                runtimes.push(Runtime {
                    name: name.to_string(),
                    path: PathBuf::from(path),
                });
            }
            "--checker" => checker = Some(PathBuf::from(value("--checker")?)),
            "--filter" => filter = Some(value("--filter")?),
            "-h" | "--help" => {
                println!("usage: rrun-conformance --runtime NAME=PATH [--runtime NAME=PATH]... [--checker PATH] [--filter SUBSTR]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if runtimes.is_empty() {
        bail!("give at least one --runtime NAME=PATH");
    }
    let checker = match checker {
        Some(c) => c,
        None => default_checker()?,
    };
    if !checker.is_file() {
        bail!(
            "checker {} not found (build it, see conformance/README.md)",
            checker.display()
        );
    }
    Ok(Args {
        runtimes,
        checker,
        filter,
    })
}

/// The static checker next to this binary or in the workspace's target dir.
fn default_checker() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut candidates = vec![exe.with_file_name("rrun-checker")];
    for dir in exe.ancestors() {
        candidates.push(dir.join("x86_64-unknown-linux-gnu/release/rrun-checker"));
        candidates.push(dir.join("target/x86_64-unknown-linux-gnu/release/rrun-checker"));
    }
    candidates
        .into_iter()
        .find(|p| is_static(p))
        .context("no static rrun-checker found; pass --checker")
}

/// A dynamically linked checker cannot run in the busybox rootfs.
fn is_static(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    !bytes.windows(15).any(|w| w == b"/lib64/ld-linux")
}

/// Results keyed by (case name, runtime name).
pub type Results = HashMap<(String, String), Verdict>;

fn run_all(args: &Args, base: &Path) -> (Results, Vec<String>) {
    let mut results = Results::new();
    let mut notes = Vec::new();
    for case in &cases::all() {
        if args
            .filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        for rt in &args.runtimes {
            let (verdict, case_notes, checks) = run_case(case, rt, args, base);
            for (name, problem) in checks {
                let v = problem.map_or(Verdict::Pass, Verdict::Fail);
                results.insert((format!("{}#{name}", case.name), rt.name.clone()), v);
            }
            notes.extend(
                case_notes
                    .into_iter()
                    .map(|n| format!("{} [{}]: {n}", case.name, rt.name)),
            );
            eprintln!(
                "{:<50} {:<6} {}",
                case.name,
                rt.name,
                table::short(&verdict)
            );
            results.insert((case.name.to_string(), rt.name.clone()), verdict);
        }
    }
    (results, notes)
}

type CaseRun = (Verdict, Vec<String>, Vec<(String, Option<String>)>);

fn run_case(case: &cases::Case, rt: &Runtime, args: &Args, base: &Path) -> CaseRun {
    let root = base.join(format!("root-{}", rt.name));
    let env = match Env::new(rt, case.name, &root, base, &args.checker) {
        Ok(env) => env,
        Err(e) => {
            return (
                Verdict::Fail(format!("setup: {e:#}")),
                Vec::new(),
                Vec::new(),
            )
        }
    };
    let result = (case.run)(&env);
    let leftovers = env.finish();
    let verdict = match (result, leftovers) {
        (Err(why), _) => Verdict::Fail(why),
        (Ok(_), Some(left)) => Verdict::Fail(format!("cleanup: {left}")),
        (Ok(Outcome::Pass), None) => Verdict::Pass,
        (Ok(Outcome::Skip(why)), None) => Verdict::Skip(why),
    };
    (verdict, env.take_notes(), env.take_checks())
}
