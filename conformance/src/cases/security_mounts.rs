//! Symlink-exchange races in a volume shared by two containers: the
//! attacker container swaps a directory (or a device, or a pty name) with
//! a symlink, over and over, while the runtime builds the victim
//! container in the same volume, many times.
//!
//! * CVE-2021-30465: mount destinations; a symlink resolved against the
//!   host's root makes the mount land outside the rootfs.
//! * CVE-2024-45310: the directories and files created for mount
//!   destinations; a symlink makes them appear on the host.
//! * CVE-2025-31133: maskedPaths bind the container's /dev/null, which
//!   the image (or a volume on /dev) can make a symlink to a /proc file.
//! * CVE-2025-52565: /dev/console is bound from /dev/pts/$n, which a
//!   volume on /dev/pts can make a symlink to a /proc file.
//!
//! Every symlink aims either into the case's work dir or at the
//! victim's own rootfs path as the host sees it (a mount there shows
//! that the symlink was resolved against the host's root, yet stays in
//! the test's files), or at the container's own hostname in /proc.

use super::security_attack::{
    bind, clear_refusal, make_shared_dir, remove_mount, snapshot, Attacker, Tally, ATTACKER_SECS,
    STOP,
};
use crate::ensure;
use crate::harness::{ctx, parse_report, Bundle, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory/symlink pairs the racer swaps, each a mount destination of
/// every victim run.
const PAIRS: usize = 8;
/// Victim runs against a racer.
const RACE_RUNS: u32 = 30;
/// Victim runs against the /dev/pts racer (a console each: slower).
const CONSOLE_RUNS: u32 = 20;
/// The /proc file the /dev/null and /dev/pts symlinks aim at. The
/// advisories use kernel.core_pattern (host-wide: a container that can
/// write it escapes); the test only reads, but aims at the container's
/// own hostname (its UTS namespace), so that even a write would harm
/// nothing. Bound before the readonlyPaths (the console), it is writable.
const PROC_TARGET: &str = "/proc/sys/kernel/hostname";

/// The two mount-destination races: a volume with PAIRS directories
/// `m<i>` and symlinks `l<i>` -> `target(i)`, swapped by the racer, and a
/// victim that mounts a tmpfs (and, with `files`, binds a host file) at
/// a new name below each `m<i>` in every run.
struct DestinationRace {
    /// Where the volume's symlinks point, by pair.
    target: fn(&Path, &Path, usize) -> PathBuf,
    files: bool,
}

/// Runs the race; returns the victim's rootfs, the tally and the problems
/// seen in the runs that went through.
fn destination_race(
    env: &Env,
    race: &DestinationRace,
) -> Result<(PathBuf, Tally, Vec<String>), String> {
    let vol = env.work.join("vol");
    make_shared_dir(&vol)?;
    let id = env.id("victim");
    let mut b = env.bundle(&id)?;
    let rootfs = b.rootfs();
    let mut swap_args = vec!["swap".to_string(), STOP.into(), ATTACKER_SECS.into()];
    for i in 0..PAIRS {
        make_shared_dir(&vol.join(format!("m{i}")))?;
        let target = (race.target)(&env.work, &rootfs, i);
        ctx(
            symlink(&target, vol.join(format!("l{i}"))),
            "symlink in the volume",
        )?;
        swap_args.push(format!("/vol/m{i}"));
        swap_args.push(format!("/vol/l{i}"));
    }
    let source = env.work.join("bind-source");
    ctx(fs::write(&source, "bind source\n"), "write bind source")?;
    let args: Vec<&str> = swap_args.iter().map(String::as_str).collect();
    let attacker = Attacker::start(env, "racer", &args, |a| {
        a.add_mount(bind(&vol, "/vol"));
        Ok(())
    })?;
    let mut tally = Tally::default();
    let mut problems = Vec::new();
    let base_mounts = {
        let mut m = b.config["mounts"].as_array().cloned().unwrap_or_default();
        m.push(bind(&vol, "/vol"));
        m
    };
    for run in 0..RACE_RUNS {
        let mut mounts = base_mounts.clone();
        for i in 0..PAIRS {
            mounts.push(
                json!({"destination": format!("/vol/m{i}/r{run}"), "type": "tmpfs",
                               "source": "tmpfs", "options": ["size=64k"]}),
            );
            if race.files {
                mounts.push(json!({"destination": format!("/vol/m{i}/f{run}"), "type": "bind",
                                   "source": source.display().to_string(), "options": ["bind", "ro"]}));
            }
        }
        b.config["mounts"] = Value::Array(mounts);
        b.write()?;
        tally.runs += 1;
        let out = env.run(&b, &id);
        if out.code != 0 {
            match clear_refusal(&out) {
                Ok(_) => tally.refusal(&out),
                Err(e) => problems.push(e),
            }
            continue;
        }
        tally.ran += 1;
        let r = parse_report(&out.stdout)?;
        let escaped: Vec<String> = r["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["mount_point"].as_str())
            .filter(|p| p.starts_with("/esc"))
            .map(str::to_string)
            .collect();
        if !escaped.is_empty() && problems.len() < 3 {
            problems.push(format!(
                "run {run}: mounts resolved against the host's root: {escaped:?}"
            ));
        }
    }
    let racer = attacker.stop(env)?;
    env.note(format!(
        "{}; racer: {} swaps",
        tally.summary(),
        racer["swaps"]
    ));
    Ok((rootfs, tally, problems))
}

pub fn cve_2021_30465(env: &Env) -> CaseResult {
    // The symlinks aim at the victim's rootfs by its host path: resolved
    // in the rootfs (right) they make directories deep inside it; resolved
    // against the host's root (the escape) they mount on <rootfs>/esc<i>.
    let race = DestinationRace {
        target: |_, rootfs, i| rootfs.join(format!("esc{i}")),
        files: false,
    };
    let (rootfs, _, mut problems) = destination_race(env, &race)?;
    let landed: Vec<String> = (0..PAIRS)
        .map(|i| format!("esc{i}"))
        .filter(|name| rootfs.join(name).exists())
        .collect();
    if !landed.is_empty() {
        problems.push(format!(
            "symlinks were followed from the host's root: {landed:?} made at the top of the rootfs"
        ));
    }
    let inside = (0..PAIRS)
        .filter(|i| {
            rootfs
                .join(rootfs.strip_prefix("/").unwrap_or(&rootfs))
                .join(format!("esc{i}"))
                .exists()
        })
        .count();
    env.note(format!(
        "{inside} of {PAIRS} symlinks were met and resolved in the rootfs"
    ));
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

pub fn cve_2024_45310(env: &Env) -> CaseResult {
    // The symlinks aim at empty host directories of the work dir: a
    // runtime that creates a destination through them creates it there.
    for i in 0..PAIRS {
        make_shared_dir(&env.work.join(format!("outside{i}")))?;
    }
    let race = DestinationRace {
        target: |work, _, i| work.join(format!("outside{i}")),
        files: true,
    };
    let (_, _, mut problems) = destination_race(env, &race)?;
    let created: Vec<String> = (0..PAIRS)
        .flat_map(|i| {
            let dir = env.work.join(format!("outside{i}"));
            snapshot(&dir)
                .into_keys()
                .map(move |k| format!("outside{i}/{k}"))
        })
        .collect();
    if !created.is_empty() {
        problems.push(format!(
            "created on the host through the volume's symlinks: {}",
            crate::harness::truncate(&created.join(", "), 400)
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

/// maskedPaths of a victim: `/masked` (a file of the image with a secret)
/// and the defaults; returns the bundle with /dev a bind of `dev`.
fn masked_victim(env: &Env, id: &str, dev: &Path) -> Result<Bundle, String> {
    let mut b = env.bundle(id)?;
    ctx(
        fs::write(b.rootfs().join("masked"), "Forbidden information!\n"),
        "write /masked",
    )?;
    if let Some(list) = b.config["linux"]["maskedPaths"].as_array_mut() {
        list.push(json!("/masked"));
    }
    remove_mount(&mut b, "/dev");
    remove_mount(&mut b, "/dev/pts");
    remove_mount(&mut b, "/dev/shm");
    remove_mount(&mut b, "/dev/mqueue");
    if let Some(list) = b.config["mounts"].as_array_mut() {
        list.insert(1, bind(dev, "/dev"));
    }
    b.set_args(&[
        "/checker",
        "report",
        "stat:/masked",
        "read:/masked",
        "stat:/proc/kcore",
    ]);
    Ok(b)
}

/// A masked file must be the real /dev/null (char 1:3) and read empty.
fn masked_problem(r: &Value) -> Option<String> {
    let st = &r["stat"]["/masked"];
    let text = r["files"]["/masked"].as_str().unwrap_or("");
    let is_null = st["kind"] == "c" && st["rdev"] == json!([1, 3]);
    (!is_null || !text.is_empty()).then(|| {
        format!(
            "/masked is {st} and reads {:?}",
            crate::harness::truncate(text, 80)
        )
    })
}

pub fn cve_2025_31133(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // A volume on /dev whose null is a symlink to a /proc file, and one
    // without a null at all: the masks must still hide /masked, or the
    // runtime must refuse.
    for (name, null) in [
        ("/dev/null a symlink", Some(PROC_TARGET)),
        ("/dev/null missing", None),
    ] {
        let dev = env.work.join(format!("dev-{}", null.is_some()));
        make_shared_dir(&dev)?;
        if let Some(target) = null {
            ctx(symlink(target, dev.join("null")), "symlink dev/null")?;
        }
        let id = env.id(if null.is_some() { "symlink" } else { "missing" });
        let b = masked_victim(env, &id, &dev)?;
        b.write()?;
        let out = env.run(&b, &id);
        if out.code != 0 {
            match clear_refusal(&out) {
                Ok(line) => env.note(format!("{name}: refused: {line}")),
                Err(e) => problems.push(format!("{name}: {e}")),
            }
            continue;
        }
        let r = parse_report(&out.stdout)?;
        if let Some(p) = masked_problem(&r) {
            problems.push(format!("{name}: {p}"));
        }
    }
    // The race: the volume on /dev has a real null and a symlink, swapped.
    let vol = env.work.join("vol");
    make_shared_dir(&vol)?;
    mknod_null(&vol.join("null"))?;
    ctx(
        symlink(PROC_TARGET, vol.join("null-evil")),
        "symlink null-evil",
    )?;
    let attacker = Attacker::start(
        env,
        "racer",
        &["swap", STOP, ATTACKER_SECS, "/vol/null", "/vol/null-evil"],
        |a| {
            a.add_mount(bind(&vol, "/vol"));
            Ok(())
        },
    )?;
    let id = env.id("race");
    let b = masked_victim(env, &id, &vol)?;
    b.write()?;
    let mut tally = Tally::default();
    for run in 0..RACE_RUNS {
        tally.runs += 1;
        let out = env.run(&b, &id);
        if out.code != 0 {
            match clear_refusal(&out) {
                Ok(_) => tally.refusal(&out),
                Err(e) => problems.push(format!("race run {run}: {e}")),
            }
            continue;
        }
        tally.ran += 1;
        let r = parse_report(&out.stdout)?;
        if let Some(p) = masked_problem(&r) {
            if problems.len() < 4 {
                problems.push(format!("race run {run}: {p}"));
            }
        }
    }
    let racer = attacker.stop(env)?;
    env.note(format!(
        "race: {}; racer: {} swaps",
        tally.summary(),
        racer["swaps"]
    ));
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

fn mknod_null(path: &Path) -> Result<(), String> {
    let c_path = ctx(
        std::ffi::CString::new(path.display().to_string()),
        "path with a NUL",
    )?;
    // SAFETY: a NUL-terminated path; mknod only reads it.
    let ret = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    ensure!(
        ret == 0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// A victim with a terminal whose /dev is the image's: /dev/ptmx ->
/// pts/ptmx, the container's devpts at /dev/realpts, and /dev/pts the
/// directory `pts` (a volume, or the image's own).
fn console_victim(env: &Env, id: &str, pts: Option<&Path>) -> Result<Bundle, String> {
    let mut b = env.bundle(id)?;
    remove_mount(&mut b, "/dev");
    remove_mount(&mut b, "/dev/pts");
    b.add_mount(
        json!({"destination": "/dev/realpts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
    );
    if let Some(pts) = pts {
        b.add_mount(bind(pts, "/dev/pts"));
    }
    ctx(
        symlink("pts/ptmx", b.rootfs().join("dev/ptmx")),
        "symlink dev/ptmx",
    )?;
    b.config["process"]["terminal"] = json!(true);
    b.set_args(&["/checker", "report", "stat:/dev/console"]);
    b.write()?;
    Ok(b)
}

/// How one console run ended.
enum ConsoleRun {
    Ran(Value),
    /// The runtime refused with this line.
    Refused(crate::harness::Output),
}

/// create with a console socket, start, read the report from the pty.
/// A refusal that is not one clear line is an error.
fn console_run(env: &Env, b: &Bundle, id: &str, run: u32) -> Result<ConsoleRun, String> {
    let sock = env.work.join(format!("console-{run}.sock"));
    let rx = ctx(
        crate::console::receive_master(&sock),
        "listen on console socket",
    )?;
    let created = env.cli(&[
        "create",
        "--bundle",
        &b.dir_str(),
        "--console-socket",
        &sock.display().to_string(),
        id,
    ]);
    if created.code != 0 {
        clear_refusal(&created)?;
        return Ok(ConsoleRun::Refused(created));
    }
    let master = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "no pty master received on the console socket".to_string())??;
    env.start(id)?;
    let text = crate::console::read_all(master, Duration::from_secs(20));
    let _ = env.cli(&["delete", "--force", id]);
    parse_report(&text).map(ConsoleRun::Ran)
}

/// /dev/console must be a pty (char 136:N), never a /proc file.
fn console_problem(r: &Value) -> Option<String> {
    let st = &r["stat"]["/dev/console"];
    (st["kind"] != "c" || st["rdev"][0] != 136)
        .then(|| format!("/dev/console in the container is {st}"))
}

pub fn cve_2025_52565(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // The image's /dev/pts: ptmx leads to the real devpts, every pty name
    // to a /proc file.
    let id = env.id("image");
    let b = console_victim(env, &id, None)?;
    let pts = b.rootfs().join("dev/pts");
    ctx(fs::create_dir_all(&pts), "mkdir rootfs/dev/pts")?;
    ctx(
        symlink("/dev/realpts/ptmx", pts.join("ptmx")),
        "symlink pts/ptmx",
    )?;
    for n in 0..4 {
        ctx(
            symlink(PROC_TARGET, pts.join(n.to_string())),
            "symlink pts/N",
        )?;
    }
    b.write()?;
    match console_run(env, &b, &id, 1000) {
        Ok(ConsoleRun::Ran(r)) => {
            problems.extend(console_problem(&r).map(|p| format!("image: {p}")))
        }
        Ok(ConsoleRun::Refused(out)) => env.note(format!("image: refused: {}", out.summary())),
        Err(e) => problems.push(format!("image: {e}")),
    }
    // The race: a volume on /dev/pts whose `0` is swapped between the
    // real pty and a /proc file while the runtime binds and opens it.
    let vol = env.work.join("vol");
    make_shared_dir(&vol)?;
    ctx(
        symlink("/dev/realpts/ptmx", vol.join("ptmx")),
        "symlink vol/ptmx",
    )?;
    ctx(symlink("/dev/realpts/0", vol.join("0")), "symlink vol/0")?;
    ctx(symlink(PROC_TARGET, vol.join("0x")), "symlink vol/0x")?;
    let attacker = Attacker::start(
        env,
        "racer",
        &["swap", STOP, ATTACKER_SECS, "/vol/0", "/vol/0x"],
        |a| {
            a.add_mount(bind(&vol, "/vol"));
            Ok(())
        },
    )?;
    let id = env.id("race");
    let b = console_victim(env, &id, Some(&vol))?;
    let mut tally = Tally::default();
    for run in 0..CONSOLE_RUNS {
        tally.runs += 1;
        match console_run(env, &b, &id, run) {
            Ok(ConsoleRun::Ran(r)) => {
                tally.ran += 1;
                if let Some(p) = console_problem(&r) {
                    if problems.len() < 4 {
                        problems.push(format!("race run {run}: {p}"));
                    }
                }
            }
            Ok(ConsoleRun::Refused(out)) => tally.refusal(&out),
            Err(e) => problems.push(format!("race run {run}: {e}")),
        }
    }
    let racer = attacker.stop(env)?;
    env.note(format!(
        "race: {}; racer: {} swaps",
        tally.summary(),
        racer["swaps"]
    ));
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}
