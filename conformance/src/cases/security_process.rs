//! The container's process must start with nothing of the host's and no
//! more privilege than the config gives it:
//!
//! * CVE-2024-21626: a host directory fd the runtime holds (its own, or
//!   one leaked to it) reached through `process.cwd` = /proc/self/fd/N,
//!   for `run` and `exec` (`--cwd` directly, and through a symlink the
//!   container planted where an admin's `exec --cwd` will go).
//! * CVE-2022-27650 (crun): inheritable and ambient sets not empty when
//!   the config leaves them out; a binary with inheritable file
//!   capabilities, run by a non-root user, then gains them.
//! * CVE-2022-29162 (runc): `exec --cap` giving the process inheritable
//!   capabilities.

use super::security_attack::{clear_refusal, fds_of, set_file_caps};
use crate::ensure;
use crate::harness::{ctx, parse_report, CallOpts, CaseResult, Env, Outcome, Output};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::io::AsRawFd;

/// The fds a case leaks into the runtime's process on purpose: a host
/// directory at each of these numbers.
const LEAKED: std::ops::RangeInclusive<i32> = 3..=9;
/// The cwd numbers tried are 3..=max(this, the init's highest fd + 4).
const MIN_LAST_FD: u32 = 16;

pub fn cve_2024_21626(env: &Env) -> CaseResult {
    // The host secret, and a directory holding it that leaks at LEAKED.
    let host_dir = env.work.join("host");
    ctx(fs::create_dir_all(&host_dir), "mkdir host dir")?;
    let marker = host_dir.join("host-secret");
    let secret = format!("host secret {}\n", std::process::id());
    ctx(fs::write(&marker, &secret), "write host secret")?;
    let dir = ctx(fs::File::open(&host_dir), "open host dir")?;
    let leak = || CallOpts {
        fds: LEAKED.map(|n| (dir.as_raw_fd(), n)).collect(),
    };
    let reach = format!("reach:{}", marker.display());
    // Which fds does the runtime's init hold while the container waits?
    let id = env.id("probe");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    for n in 3..=40 {
        ctx(
            symlink(
                format!("/proc/self/fd/{n}"),
                b.rootfs().join(format!("fd{n}")),
            ),
            "symlink /fdN",
        )?;
    }
    b.write()?;
    let created = env.cli_opts(&["create", "--bundle", &b.dir_str(), &id], leak());
    ensure!(created.code == 0, "create {id}: {}", created.summary());
    let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
    let init_fds = fds_of(pid);
    let last = init_fds
        .last()
        .copied()
        .unwrap_or(0)
        .saturating_add(4)
        .max(MIN_LAST_FD);
    env.note(format!(
        "the init waiting for start holds fds {init_fds:?}; cwd tried: /proc/self/fd/3..={last}"
    ));
    env.start(&id)?;
    let mut problems = Vec::new();
    let mut refused = std::collections::BTreeSet::new();
    let mut judge = |what: String, out: &Output| {
        if out.code != 0 {
            match clear_refusal(out) {
                Ok(line) => {
                    refused.insert(
                        line.chars()
                            .filter(|c| !c.is_ascii_digit())
                            .collect::<String>(),
                    );
                }
                Err(e) => problems.push(format!("{what}: {e}")),
            }
            return;
        }
        match parse_report(&out.stdout) {
            Ok(r) => {
                if r["reach"]
                    .as_object()
                    .is_some_and(|m| m.values().any(|v| v["reached"] == true))
                {
                    problems.push(format!(
                        "{what}: the process read the host's file: {} (cwd {})",
                        r["reach"], r["cwd"]
                    ));
                } else if r["cwd"].is_null() {
                    problems.push(format!("{what}: the process's cwd is outside its root"));
                }
            }
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    };
    // run: process.cwd = /proc/self/fd/N, host dirs leaked to the runtime.
    for n in 3..=last {
        let rid = env.id(&format!("run{n}"));
        let mut rb = env.bundle(&rid)?;
        rb.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        rb.set_args(&["/checker", "report", &reach]);
        rb.write()?;
        let out = env.cli_opts(&["run", "--bundle", &rb.dir_str(), &rid], leak());
        judge(format!("run, cwd /proc/self/fd/{n}"), &out);
    }
    // exec --cwd /proc/self/fd/N, and --cwd /fdN, the container's symlink
    // to it.
    for n in 3..=last {
        for cwd in [format!("/proc/self/fd/{n}"), format!("/fd{n}")] {
            let out = env.cli_opts(
                &["exec", "--cwd", &cwd, &id, "/checker", "report", &reach],
                leak(),
            );
            judge(format!("exec --cwd {cwd}"), &out);
        }
    }
    drop(dir);
    if !refused.is_empty() {
        env.note(format!(
            "refused with: {}",
            crate::harness::truncate(&refused.into_iter().collect::<Vec<_>>().join(" | "), 500)
        ));
    }
    ensure!(
        fs::read_to_string(&marker).unwrap_or_default() == secret,
        "the host secret was changed"
    );
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

/// Every capability the kernel knows, as the file's inheritable set: a
/// process whose inheritable set is not empty gains those caps when it
/// runs the file.
const ALL_CAPS: u64 = (1 << 41) - 1;
const UID: u32 = 1000;

/// Puts `/capbin` (the checker with inheritable file caps) in the rootfs.
fn add_capbin(env: &Env, rootfs: &std::path::Path) -> Result<(), String> {
    let capbin = rootfs.join("capbin");
    ctx(fs::copy(&env.checker, &capbin), "copy checker to /capbin")?;
    ctx(
        fs::set_permissions(&capbin, fs::Permissions::from_mode(0o755)),
        "chmod /capbin",
    )?;
    set_file_caps(&capbin, ALL_CAPS)
}

/// The five sets of a report, as numbers.
fn caps_of(r: &Value) -> [u64; 5] {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .map(|k| r["caps"][k].as_u64().unwrap_or(u64::MAX))
}

/// What is wrong with the capabilities of a report of `/checker` (its
/// own sets) or of `/capbin` (what the file capabilities gave it).
fn caps_problem(what: &str, r: &Value, capbin: bool) -> Option<String> {
    let [inh, prm, eff, _, amb] = caps_of(r);
    if capbin {
        (prm != 0 || eff != 0).then(|| {
            format!(
                "{what}: /capbin (inheritable file caps) run by uid {UID} gained \
                 permitted {prm:#x} effective {eff:#x}"
            )
        })
    } else {
        (inh != 0 || amb != 0)
            .then(|| format!("{what}: inheritable {inh:#x}, ambient {amb:#x} (want both empty)"))
    }
}

fn report_of(what: &str, out: &Output) -> Result<Value, String> {
    ensure!(
        !super::security_attack::crashed(out.code, &out.error_text()),
        "{what}: the runtime crashed: {}",
        crate::harness::truncate(&out.error_text().replace('\n', " | "), 200)
    );
    ensure!(out.code == 0, "{what}: {}", out.summary());
    parse_report(&out.stdout).map_err(|e| format!("{what}: {e}"))
}

/// A container running `sleep` as uid 1000 (capabilities as given, no
/// no_new_privs so that file capabilities apply), with /capbin.
fn sleeper(env: &Env, suffix: &str, caps: Option<Value>) -> Result<String, String> {
    let id = env.id(suffix);
    let mut b = env.bundle(&id)?;
    add_capbin(env, &b.rootfs())?;
    b.config["process"]["user"] = json!({"uid": UID, "gid": UID});
    b.config["process"]["noNewPrivileges"] = json!(false);
    match caps {
        Some(c) => b.config["process"]["capabilities"] = c,
        None => {
            if let Some(p) = b.config["process"].as_object_mut() {
                p.remove("capabilities");
            }
        }
    }
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    Ok(id)
}

/// bounding, effective and permitted, no inheritable, no ambient.
fn caps_without_inheritable() -> Value {
    let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"]);
    json!({"bounding": caps, "effective": caps, "permitted": caps})
}

pub fn cve_2022_27650(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // run: the config gives no inheritable and no ambient set.
    for (what, args) in [
        ("run /checker", ["/checker", "report"]),
        ("run /capbin", ["/capbin", "report"]),
    ] {
        let id = env.id(if what.ends_with("capbin") {
            "capbin"
        } else {
            "plain"
        });
        let mut b = env.bundle(&id)?;
        add_capbin(env, &b.rootfs())?;
        b.config["process"]["user"] = json!({"uid": UID, "gid": UID});
        b.config["process"]["noNewPrivileges"] = json!(false);
        b.config["process"]["capabilities"] = caps_without_inheritable();
        b.set_args(&args);
        match env.report(&b, &id) {
            Ok(r) => problems.extend(caps_problem(what, &r, what.ends_with("capbin"))),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    // exec --process with the same sets.
    let id = sleeper(env, "sleeper", Some(caps_without_inheritable()))?;
    for (what, arg0) in [("exec /checker", "/checker"), ("exec /capbin", "/capbin")] {
        let process = json!({
            "user": {"uid": UID, "gid": UID}, "args": [arg0, "report"], "cwd": "/",
            "env": ["PATH=/bin"], "noNewPrivileges": false,
            "capabilities": caps_without_inheritable(),
        });
        let file = env
            .work
            .join(format!("process-{}.json", arg0.trim_start_matches('/')));
        ctx(fs::write(&file, process.to_string()), "write process.json")?;
        let out = env.cli(&["exec", "--process", &file.display().to_string(), &id]);
        match report_of(what, &out) {
            Ok(r) => problems.extend(caps_problem(what, &r, arg0 == "/capbin")),
            Err(e) => problems.push(e),
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

pub fn cve_2022_29162(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    // exec --cap into a container whose config has no capabilities
    // object, and into one with sets but no inheritable.
    for (suffix, caps) in [("nocaps", None), ("caps", Some(caps_without_inheritable()))] {
        let id = sleeper(env, suffix, caps)?;
        for arg0 in ["/checker", "/capbin"] {
            let what = format!("exec --cap CAP_NET_RAW {arg0} ({suffix})");
            let user = format!("{UID}:{UID}");
            let out = env.cli(&[
                "exec",
                "--cap",
                "CAP_NET_RAW",
                "--user",
                &user,
                &id,
                arg0,
                "report",
            ]);
            match report_of(&what, &out) {
                Ok(r) => problems.extend(caps_problem(&what, &r, arg0 == "/capbin")),
                Err(e) => problems.push(e),
            }
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}
