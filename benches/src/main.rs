//! rrun-bench: rrun against runc and crun, four ways.
//!
//! * `rrun-bench [lifecycle]` (src/lifecycle.rs): the runtimes' own CLI
//!   (`run`, `create` + `start` + `delete`, `state`, `exec`, peak RSS,
//!   system calls) beside the kernel's floor, and issue 14's goals.
//! * `rrun-bench scale` (src/scale.rs): bursts of containers created,
//!   started and removed 16 at a time; `list` and `state` in a root of
//!   1,000 containers.
//! * `rrun-bench endurance` (src/endurance.rs): 1,000 consecutive `run` +
//!   `delete` with rrun; fails on any failure or hang.
//! * `rrun-bench engines` (src/engines.rs): `docker run --rm` and `ctr run
//!   --rm` through containerd's stock runc-v2 shim with each runtime, and
//!   through a shim of its own, the engines started once, privately, by
//!   the e2e harness's code (conformance/src/e2e).
//!
//! The comparisons measure interleaved round-robin after warm-up rounds,
//! with a hybrid cgroup host shown as cgroup v1 (crun 1.8 refuses hybrid)
//! to every runtime alike, and print a markdown report of medians and
//! their ratios on stdout. Must run as root.

mod endurance;
mod engines;
mod isolation;
mod lifecycle;
mod report;
mod runtime;
mod scale;

use anyhow::{Context, Result};
use isolation::CgroupView;
use report::Machine;
use std::path::{Path, PathBuf};

/// Unrecorded rounds first, so page-cache and first-exec costs do not land
/// on whichever runtime happens to go first.
pub const WARMUP_ROUNDS: usize = 2;

fn usage() -> String {
    format!(
        "usage: {}\n   or: {}\n   or: {}\n   or: {}",
        lifecycle::USAGE,
        scale::USAGE,
        endurance::USAGE,
        engines::USAGE
    )
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        // The whole argv: the harness re-executes itself with it.
        Some("engines") => std::process::exit(engines::main(&argv)),
        Some("lifecycle") => lifecycle::main(&argv[1..]),
        Some("scale") => scale::main(&argv[1..]),
        Some("endurance") => endurance::main(&argv[1..]),
        Some("-h" | "--help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => lifecycle::main(&argv),
    }
}

pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `--runtime NAME=PATH`.
pub fn parse_runtime(spec: &str) -> Result<(String, String)> {
    let (name, path) = spec.split_once('=').context("--runtime wants NAME=PATH")?;
    Ok((name.to_owned(), path.to_owned()))
}

/// rrun of this workspace's release build, runc and crun from PATH.
pub fn default_runtimes() -> Vec<(String, String)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_dir().join("target"), PathBuf::from);
    let rrun = target.join("release/rrun");
    vec![
        ("rrun".into(), rrun.to_string_lossy().into_owned()),
        ("runc".into(), "runc".into()),
        ("crun".into(), "crun".into()),
    ]
}

/// A path with a slash is taken as is; a bare name is looked up in PATH.
pub fn resolve_exe(path: &str) -> Option<PathBuf> {
    if path.contains('/') {
        let p = PathBuf::from(path);
        return p.is_file().then(|| p.canonicalize().unwrap_or(p));
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
}

/// The machine lines of a report; `load_at_start` from
/// [`report::load_average`] before the measurements (the date and the
/// load at the end are read now).
pub fn machine(runs: usize, view: CgroupView, load_at_start: String) -> Machine {
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
        CgroupView::V1UnifiedCovered => {
            "v1; the host's /sys/fs/cgroup/unified holds no cgroup2 (covered by a private tmpfs)"
        }
        CgroupView::AsHost => "as the host has them",
    };
    Machine {
        date,
        kernel,
        cores,
        cgroups,
        runs,
        load_at_start,
        load_at_end: report::load_average(),
    }
}
