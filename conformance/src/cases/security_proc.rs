//! The runtime writes security settings through the container's /proc
//! (LSM labels in runc; sysctls and oom_score_adj in rrun). An image or a
//! config that makes that /proc something else turns those writes into
//! writes of the attacker's files, or into writes of other /proc files:
//!
//! * CVE-2019-16884: a mount over /proc that is not procfs (a volume).
//! * CVE-2023-27561 (CVE-2019-19921 again): /proc a symlink into a volume
//!   that another container swaps while the runtime mounts and writes.
//! * CVE-2023-28642: /proc (or /sys) a symlink in the image.
//! * CVE-2025-52881: writes to /proc redirected to another /proc file by
//!   a mount over the file written.
//!
//! The fake /proc files are in the case's work dir; the /proc files the
//! redirections aim at are the container's own hostname and domainname
//! (its own UTS namespace).

use super::security_attack::{
    bind, clear_refusal, diff, make_shared_dir, remove_mount, snapshot, Attacker, Tally,
    ATTACKER_SECS, STOP,
};
use crate::ensure;
use crate::harness::{ctx, parse_report, Bundle, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// statfs magic of procfs, as the checker prints it.
const PROC_MAGIC: &str = "0x9fa0";
/// Victim runs against the /proc symlink-exchange racer.
const PROC_RACE_RUNS: u32 = 30;

/// A fake /proc tree with the files the runtime writes.
fn fake_proc(dir: &Path) -> Result<(), String> {
    for (file, content) in [
        ("sys/net/ipv4/ip_forward", "0\n"),
        ("sys/kernel/core_pattern", "fake\n"),
        ("self/oom_score_adj", "0\n"),
        ("self/attr/current", "unconfined\n"),
        ("self/attr/exec", "\n"),
    ] {
        let path = dir.join(file);
        ctx(
            fs::create_dir_all(path.parent().unwrap_or(dir)),
            "mkdir fake /proc",
        )?;
        ctx(fs::write(&path, content), "write fake /proc file")?;
    }
    Ok(())
}

fn report_args(b: &mut Bundle) {
    b.set_args(&[
        "/checker",
        "report",
        "stat:/proc",
        "stat:/proc/sys",
        "sysctl:net.ipv4.ip_forward",
    ]);
}

/// One variant that must be refused: runs it and says what went wrong,
/// or records the refusal line.
fn must_refuse(env: &Env, name: &str, b: &Bundle, id: &str) -> Option<String> {
    if let Err(e) = b.write() {
        return Some(format!("{name}: {e}"));
    }
    let out = env.run(b, id);
    if out.code == 0 {
        let r = parse_report(&out.stdout).unwrap_or(Value::Null);
        return Some(format!(
            "{name}: ran (want a refusal); /proc in the container: {}",
            r["stat"]["/proc"]
        ));
    }
    match clear_refusal(&out) {
        Ok(line) => {
            env.note(format!("{name}: refused: {line}"));
            None
        }
        Err(e) => Some(format!("{name}: {e}")),
    }
}

pub fn cve_2019_16884(env: &Env) -> CaseResult {
    let fake = env.work.join("fakeproc");
    fake_proc(&fake)?;
    let before = snapshot(&fake);
    let mut problems = Vec::new();
    // A volume mounted over /proc (the proc mount is there, below it).
    // "bare": no maskedPaths, readonlyPaths or read-only root, whose mounts
    // would fail on the fake /proc first (they go through /proc/self/fd)
    // and hide what the runtime then writes.
    let tmpfs =
        json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]});
    let variants: [(&str, Value, bool, bool, bool); 5] = [
        (
            "volume on /proc + sysctl",
            bind(&fake, "/proc"),
            true,
            false,
            false,
        ),
        (
            "volume on /proc + oomScoreAdj",
            bind(&fake, "/proc"),
            false,
            true,
            false,
        ),
        (
            "volume on /proc + oomScoreAdj, bare",
            bind(&fake, "/proc"),
            false,
            true,
            true,
        ),
        ("tmpfs on /proc", tmpfs.clone(), false, false, false),
        ("tmpfs on /proc, bare", tmpfs, false, false, true),
    ];
    for (i, (name, mount, sysctl, oom, bare)) in variants.into_iter().enumerate() {
        let id = env.id(&format!("v{i}"));
        let mut b = env.bundle(&id)?;
        b.add_mount(mount);
        if sysctl {
            b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        }
        if oom {
            b.config["process"]["oomScoreAdj"] = json!(100);
        }
        if bare {
            b.config["linux"]["maskedPaths"] = json!([]);
            b.config["linux"]["readonlyPaths"] = json!([]);
            b.config["root"]["readonly"] = json!(false);
        }
        report_args(&mut b);
        problems.extend(must_refuse(env, name, &b, &id));
    }
    // No proc mount at all: /proc is the image's directory, with a file
    // where the runtime would write oom_score_adj. Running is fine; writing
    // there is not.
    let id = env.id("image");
    let mut b = env.bundle(&id)?;
    remove_mount(&mut b, "/proc");
    fake_proc(&b.rootfs().join("proc"))?;
    let image_before = snapshot(&b.rootfs().join("proc"));
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["oomScoreAdj"] = json!(100);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    report_args(&mut b);
    b.write()?;
    let out = env.run(&b, &id);
    let image_after = snapshot(&b.rootfs().join("proc"));
    if image_before != image_after {
        problems.push(format!(
            "no proc mount + oomScoreAdj: the runtime wrote the image's /proc: {}",
            diff(&image_before, &image_after)
        ));
    } else if out.code != 0 {
        match clear_refusal(&out) {
            Ok(line) => env.note(format!("no proc mount + oomScoreAdj: refused: {line}")),
            Err(e) => problems.push(format!("no proc mount + oomScoreAdj: {e}")),
        }
    }
    let after = snapshot(&fake);
    ensure!(
        before == after,
        "the volume's files were written through /proc: {}",
        diff(&before, &after)
    );
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

pub fn cve_2023_28642(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // runc's own regression tests: /proc -> an existing directory of the
    // image, /proc -> a dangling path, /sys -> a directory.
    let variants = [
        ("/proc -> /bad-proc", "proc", "/bad-proc", true),
        ("/proc -> /symlink (dangling)", "proc", "/symlink", false),
        ("/sys -> /bad-sys", "sys", "/bad-sys", true),
    ];
    for (i, (name, entry, target, make_target)) in variants.into_iter().enumerate() {
        let id = env.id(&format!("v{i}"));
        let mut b = env.bundle(&id)?;
        let rootfs = b.rootfs();
        ctx(fs::remove_dir(rootfs.join(entry)), "rmdir rootfs entry")?;
        if make_target {
            ctx(
                fs::create_dir_all(rootfs.join(target.trim_start_matches('/'))),
                "mkdir symlink target",
            )?;
        }
        ctx(symlink(target, rootfs.join(entry)), "symlink rootfs entry")?;
        b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        report_args(&mut b);
        problems.extend(must_refuse(env, name, &b, &id));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

/// Files under `dir` by their path below the first component, with their
/// contents: the attacker exchanges the two top-level directories, so
/// their names say nothing.
fn contents_below_top(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, what) in snapshot(dir) {
        let below = path
            .split_once('/')
            .map_or("", |(_, rest)| rest)
            .to_string();
        if !below.is_empty() {
            out.entry(below).or_default().push(what);
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

pub fn cve_2023_27561(env: &Env) -> CaseResult {
    let vol = env.work.join("vol");
    make_shared_dir(&vol.join("p"))?;
    fake_proc(&vol.join("fake"))?;
    let before = contents_below_top(&vol);
    let attacker = Attacker::start(
        env,
        "racer",
        &["swap", STOP, ATTACKER_SECS, "/vol/p", "/vol/fake"],
        |b| {
            b.add_mount(bind(&vol, "/vol"));
            Ok(())
        },
    )?;
    let id = env.id("victim");
    let mut b = env.bundle(&id)?;
    let rootfs = b.rootfs();
    ctx(fs::remove_dir(rootfs.join("proc")), "rmdir rootfs/proc")?;
    ctx(
        symlink("/vol/p", rootfs.join("proc")),
        "symlink rootfs/proc",
    )?;
    // The volume first, so that /proc resolves into it when proc is mounted.
    if let Some(list) = b.config["mounts"].as_array_mut() {
        list.insert(0, bind(&vol, "/vol"));
    }
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["process"]["oomScoreAdj"] = json!(100);
    report_args(&mut b);
    b.write()?;
    let mut tally = Tally::default();
    let mut problems = Vec::new();
    for _ in 0..PROC_RACE_RUNS {
        tally.runs += 1;
        let out = env.run(&b, &id);
        if out.code == 0 {
            tally.ran += 1;
            let r = parse_report(&out.stdout).unwrap_or(Value::Null);
            if problems.len() < 3 {
                problems.push(format!(
                    "ran with /proc a symlink into a volume (want a refusal); /proc is {}",
                    r["stat"]["/proc"]
                ));
            }
        } else {
            match clear_refusal(&out) {
                Ok(_) => tally.refusal(&out),
                Err(e) => problems.push(e),
            }
        }
    }
    let racer = attacker.stop(env)?;
    env.note(format!(
        "{}; racer: {} swaps",
        tally.summary(),
        racer["swaps"]
    ));
    let after = contents_below_top(&vol);
    ensure!(
        before == after,
        "the volume's files were written through /proc: {before:?} -> {after:?}"
    );
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

pub fn cve_2025_52881(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // The sysctl file is covered by the host's kernel.domainname: a write
    // through the path changes the container's domainname instead.
    let id = env.id("sysctl");
    let mut b = env.bundle(&id)?;
    b.config["domainname"] = json!("victim-domain");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.add_mount(
        json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                       "source": "/proc/sys/kernel/domainname", "options": ["bind"]}),
    );
    report_args(&mut b);
    problems.extend(redirect_check(
        env,
        "sysctl net.ipv4.ip_forward",
        &b,
        &id,
        |r| {
            (r["domainname"] != "victim-domain")
                .then(|| format!("the container's domainname became {}", r["domainname"]))
        },
    ));
    // oom_score_adj covered by kernel.hostname.
    let id = env.id("oom");
    let mut b = env.bundle(&id)?;
    b.config["hostname"] = json!("victim-host");
    b.config["process"]["oomScoreAdj"] = json!(7);
    b.add_mount(
        json!({"destination": "/proc/self/oom_score_adj", "type": "bind",
                       "source": "/proc/sys/kernel/hostname", "options": ["bind"]}),
    );
    report_args(&mut b);
    problems.extend(redirect_check(env, "oomScoreAdj", &b, &id, |r| {
        (r["hostname"] != "victim-host" || r["oom_score_adj"] != 7).then(|| {
            format!(
                "the container's hostname is {}, its oom_score_adj {}",
                r["hostname"], r["oom_score_adj"]
            )
        })
    }));
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

/// A config whose /proc file is overmounted: refused, or run with the
/// write where it belongs (`wrong` says what is off in the report).
fn redirect_check(
    env: &Env,
    name: &str,
    b: &Bundle,
    id: &str,
    wrong: impl Fn(&Value) -> Option<String>,
) -> Option<String> {
    if let Err(e) = b.write() {
        return Some(format!("{name}: {e}"));
    }
    let out = env.run(b, id);
    if out.code != 0 {
        return match clear_refusal(&out) {
            Ok(line) => {
                env.note(format!("{name}: refused: {line}"));
                None
            }
            Err(e) => Some(format!("{name}: {e}")),
        };
    }
    let r = match parse_report(&out.stdout) {
        Ok(r) => r,
        Err(e) => return Some(format!("{name}: {e}")),
    };
    if r["stat"]["/proc"]["fstype"] != PROC_MAGIC {
        return Some(format!(
            "{name}: /proc is not procfs: {}",
            r["stat"]["/proc"]
        ));
    }
    wrong(&r).map(|w| format!("{name}: the write went to another /proc file: {w}"))
}
