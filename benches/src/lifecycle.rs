//! The lifecycle benchmark: the runtimes' own CLI, without an engine.
//!
//! Every runtime runs the same busybox bundle, interleaved round-robin, in a
//! private mount namespace where a hybrid host looks like cgroup v1 (crun
//! 1.8 refuses hybrid). Each runtime has its own `--root` and every
//! container its own absolute cgroupsPath `/rrun-bench/<runtime>-<n>`.
//!
//! Per round and runtime: `run` + `delete`, `create` + `start` + wait +
//! `delete`, `state` of a created container, `exec` of /bin/true in a
//! running one; and, in the same rotation, the floor: `unshare -pmnui
//! --fork /bin/true`, the kernel's cost of the namespaces and an exec.
//! After the timed rounds, the system calls of `run` and `delete`, counted
//! by `strace -f -c` (untimed: strace slows everything). The report ends
//! with issue 14's goals, rrun against crun and the floor.

use crate::isolation::Session;
use crate::report::{self, ms, Row, Samples};
use crate::runtime::{
    reap_exited_children, time_command, version_line, InitHandle, Invocation, Runtime,
    INVOKE_TIMEOUT,
};
use crate::{default_runtimes, machine, parse_runtime, resolve_exe, workspace_dir, WARMUP_ROUNDS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The floor: new pid, mount, net, ipc and uts namespaces and an exec of
/// /bin/true, the least any runtime's `run` does (util-linux's unshare).
const FLOOR: &[&str] = &["unshare", "-pmnui", "--fork", "/bin/true"];

/// The floor's row name.
const FLOOR_NAME: &str = "floor";

/// Traced `run` + `delete` per runtime (the counts hardly vary).
const SYSCALL_RUNS: usize = 3;

/// The process of the container that `exec` enters.
const SLEEPER: &[&str] = &["sleep", "1000000"];

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
    let session = Session::begin("lifecycle")?;
    let tmp = session.tmp.as_path();
    let mut notes = Vec::new();
    let mut runtimes = Vec::new();
    let floor = resolve_exe(FLOOR[0]);
    if floor.is_none() {
        notes.push(format!("floor skipped: {} not found", FLOOR[0]));
    }
    let strace = resolve_exe("strace");
    if strace.is_none() {
        notes.push("system calls not counted: strace not found (apt-get install strace)".into());
    }
    let result = prepare_runtimes(
        &options.runtimes,
        &options.make_bundle,
        tmp,
        &mut runtimes,
        &mut notes,
    )
    .and_then(|()| {
        let mut samples = measure(&options, &mut runtimes, floor.is_some(), tmp)?;
        if strace.is_some() {
            count_syscalls(&mut runtimes, floor.is_some(), tmp, &mut samples)?;
        }
        Ok(samples)
    });
    let problems = clean_up(&mut runtimes, &session);
    if result.is_err() {
        for problem in &problems {
            eprintln!("rrun-bench: cleanup after the error: {problem}");
        }
    }
    let samples = result?;
    if !problems.is_empty() {
        bail!("cleanup left things behind:\n{}", problems.join("\n"));
    }
    let mut rows: Vec<Row<'_>> = runtimes
        .iter()
        .zip(&samples)
        .map(|(rt, samples)| Row {
            name: &rt.name,
            version: rt.version(),
            samples,
        })
        .collect();
    if let (Some(exe), Some(samples)) = (&floor, samples.get(runtimes.len())) {
        rows.push(Row {
            name: FLOOR_NAME,
            version: format!(
                "`{}` ({}), in the run + delete column",
                FLOOR.join(" "),
                version_line(exe, "--version", "")
            ),
            samples,
        });
    }
    report::print(
        &machine(options.runs, session.view, session.load_at_start),
        &rows,
        &notes,
    );
    Ok(())
}

/// Builds each runtime's bundle under `tmp`; a runtime not found is a note.
pub fn prepare_runtimes(
    specs: &[(String, String)],
    make_bundle: &Path,
    tmp: &Path,
    runtimes: &mut Vec<Runtime>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for (name, path) in specs {
        let Some(exe) = resolve_exe(path) else {
            let note = format!("{name} skipped: {path} not found");
            eprintln!("rrun-bench: {note}");
            notes.push(note);
            continue;
        };
        runtimes.push(Runtime::prepare(name, exe, tmp, make_bundle)?);
    }
    if runtimes.is_empty() {
        bail!("no runtime to measure");
    }
    Ok(())
}

/// The measured loop: per round, every runtime in turn (starting with a
/// different one each round) does (a), (b), (c) and (d) once, and the
/// floor (when `floor`) takes its turn among them. The floor's samples, in
/// `run_ms`, come last.
fn measure(
    options: &Options,
    runtimes: &mut [Runtime],
    floor: bool,
    tmp: &Path,
) -> Result<Vec<Samples>> {
    let state_ids = runtimes
        .iter_mut()
        .map(|rt| create_parked(rt).with_context(|| format!("{}: create for state", rt.name)))
        .collect::<Result<Vec<_>>>()?;
    let exec_ids = runtimes
        .iter_mut()
        .map(|rt| create_running(rt).with_context(|| format!("{}: a container for exec", rt.name)))
        .collect::<Result<Vec<_>>>()?;
    let slots = runtimes.len() + usize::from(floor);
    let mut samples: Vec<Samples> = (0..slots).map(|_| Samples::default()).collect();
    let floor_log = tmp.join("floor.log");
    let total = WARMUP_ROUNDS + options.runs;
    for round in 0..total {
        if round % 10 == 0 {
            eprintln!("rrun-bench: round {round}/{total}");
        }
        let measured = round >= WARMUP_ROUNDS;
        for k in 0..slots {
            let i = (round + k) % slots;
            let s = &mut samples[i];
            if i == runtimes.len() {
                let floor = time_command(FLOOR, &floor_log, INVOKE_TIMEOUT).context("the floor")?;
                reap_exited_children();
                if measured {
                    s.run_ms.push(ms(floor.elapsed));
                }
                continue;
            }
            let (rt, state_id, exec_id) = (&mut runtimes[i], &state_ids[i], &exec_ids[i]);
            let name = rt.name.clone();
            let (run, run_rss) =
                run_and_delete(rt).with_context(|| format!("{name}: run + delete"))?;
            let (lifecycle, create_rss) = create_start_wait_delete(rt)
                .with_context(|| format!("{name}: create + start + wait + delete"))?;
            let state = rt
                .invoke(&["state", state_id])
                .with_context(|| format!("{name}: state"))?;
            let exec = rt
                .invoke(&["exec", exec_id, "/bin/true"])
                .with_context(|| format!("{name}: exec"))?;
            reap_exited_children();
            if measured {
                s.run_ms.push(run);
                s.run_rss_kib.push(run_rss as f64);
                s.lifecycle_ms.push(lifecycle);
                s.create_rss_kib.push(create_rss as f64);
                s.state_ms.push(ms(state.elapsed));
                s.exec_ms.push(ms(exec.elapsed));
            }
        }
    }
    Ok(samples)
}

/// The system calls of `run` of /bin/true (the runtime and the container's
/// processes: `strace -f -c`) and of the `delete --force` after it,
/// [`SYSCALL_RUNS`] times per runtime in turn, and of the floor.
fn count_syscalls(
    runtimes: &mut [Runtime],
    floor: bool,
    tmp: &Path,
    samples: &mut [Samples],
) -> Result<()> {
    eprintln!("rrun-bench: counting system calls (strace -f -c)");
    let counts = tmp.join("strace.txt");
    let counts_arg = counts.to_string_lossy().into_owned();
    let log = tmp.join("strace.log");
    let traced = |argv: &[&str]| -> Result<f64> {
        let mut full = vec!["strace", "-f", "-c", "-o", &counts_arg];
        full.extend_from_slice(argv);
        time_command(&full, &log, INVOKE_TIMEOUT)?;
        reap_exited_children();
        let text = std::fs::read_to_string(&counts)
            .with_context(|| format!("reading {}", counts.display()))?;
        strace_total_calls(&text).with_context(|| format!("no total line in {}", counts.display()))
    };
    for _ in 0..SYSCALL_RUNS {
        for (rt, s) in runtimes.iter_mut().zip(samples.iter_mut()) {
            let id = rt.new_container()?;
            let exe = rt.exe.to_string_lossy().into_owned();
            let root = rt.state_root().to_string_lossy().into_owned();
            let bundle = rt.bundle_arg();
            let run = traced(&[&exe, "--root", &root, "run", "--bundle", &bundle, &id])
                .with_context(|| format!("{}: strace of run", rt.name))?;
            let delete = traced(&[&exe, "--root", &root, "delete", "--force", &id])
                .with_context(|| format!("{}: strace of delete", rt.name))?;
            rt.forget(&id);
            s.run_syscalls.push(run);
            s.delete_syscalls.push(delete);
        }
        if floor {
            let calls = traced(FLOOR).context("strace of the floor")?;
            samples[runtimes.len()].run_syscalls.push(calls);
        }
    }
    Ok(())
}

/// The calls column of the `total` line of `strace -c`'s table:
/// `100.00 0.001234 8 149 15 total` (the errors column may be empty).
fn strace_total_calls(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A created (never started) container for the `state` measurements.
fn create_parked(rt: &mut Runtime) -> Result<String> {
    let id = rt.new_container()?;
    rt.invoke(&["create", "--bundle", &rt.bundle_arg(), &id])?;
    Ok(id)
}

/// A running container (`sleep`) for the `exec` measurements.
fn create_running(rt: &mut Runtime) -> Result<String> {
    let id = rt.new_container_running(Some(SLEEPER))?;
    rt.invoke(&["create", "--bundle", &rt.bundle_arg(), &id])?;
    rt.invoke(&["start", &id])?;
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
fn clean_up(runtimes: &mut [Runtime], session: &Session) -> Vec<String> {
    let mut problems = Vec::new();
    for rt in runtimes.iter_mut() {
        for id in std::mem::take(&mut rt.live) {
            if let Err(e) = rt.invoke(&["delete", "--force", &id]) {
                problems.push(format!("{e:#}"));
            }
        }
    }
    problems.extend(session.end());
    problems
}

#[cfg(test)]
mod tests {
    use super::strace_total_calls;

    #[test]
    fn total_calls_of_strace_c() {
        let with_errors = "  0.00    0.000000           0         2           rseq\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    0.000000           0       149        15 total\n";
        assert_eq!(strace_total_calls(with_errors), Some(149.0));
        let without = "100.00    0.000120           2        60           total\n";
        assert_eq!(strace_total_calls(without), Some(60.0));
        assert_eq!(strace_total_calls("nothing"), None);
    }
}
