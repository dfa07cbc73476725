//! CVE-2019-5736: a process in the container overwrites the runtime's
//! binary on the host through /proc/<pid>/exe of a runtime process that
//! entered the container. Both ways in are attacked: `create` (the init
//! waiting for `start`) and `exec` (a process entering a running
//! container, caught by an attacker that watches /proc, and the
//! `#!/proc/self/exe` trick of the advisory that makes the entering
//! process execute the runtime's own image in the container).
//!
//! Both run against a copy of the runtime: a vulnerable runtime can only
//! destroy the copy, whose bytes are compared before and after.

use super::security_attack::{Attacker, ATTACKER_SECS, STOP};
use crate::ensure;
use crate::harness::{ctx, wait_child, wait_until, CaseResult, Env, Outcome, Runtime};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How many `exec`s the watching attacker races against.
const EXEC_ROUNDS: usize = 40;

pub fn cve_2019_5736(env: &Env) -> CaseResult {
    let copy_path = env.work.join("runtime-copy");
    ctx(
        fs::copy(&env.runtime.path, &copy_path),
        "copy the runtime binary",
    )?;
    ctx(
        fs::set_permissions(&copy_path, fs::Permissions::from_mode(0o755)),
        "chmod runtime copy",
    )?;
    let before = ctx(fs::read(&copy_path), "read runtime copy")?;
    let copy = Runtime {
        name: env.runtime.name.clone(),
        path: copy_path.clone(),
    };
    let guard_env = ctx(
        Env::new(&copy, env.case, &env.root, &env.work, &env.checker),
        "guard env",
    )?;
    let create = attack_create(&guard_env);
    let exec = attack_exec(&guard_env);
    let left = guard_env.finish();
    let after = ctx(fs::read(&copy_path), "read runtime copy")?;
    ensure!(
        before == after,
        "the runtime binary on the host was modified ({} -> {} bytes)",
        before.len(),
        after.len()
    );
    match &create {
        Ok(attempts) => env.note(format!(
            "create: {}",
            crate::harness::truncate(attempts, 600)
        )),
        Err(e) => env.note(format!("create: {e}")),
    }
    match &exec {
        Ok(summary) => env.note(format!("exec: {}", crate::harness::truncate(summary, 600))),
        Err(e) => env.note(format!("exec: {e}")),
    }
    env.check("create", create.as_ref().err().cloned());
    env.check("exec", exec.as_ref().err().cloned());
    create?;
    exec?;
    ensure!(left.is_none(), "cleanup: {}", left.unwrap_or_default());
    Ok(Outcome::Pass)
}

/// The init waits for `start` in the container: an attacker entered with
/// nsenter keeps an O_PATH handle of /proc/<init>/exe and tries to write
/// through it before and after the init execs the container's process.
fn attack_create(env: &Env) -> Result<String, String> {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0).to_string();
    let mut attacker = ctx(
        Command::new("nsenter")
            .args([
                "--target",
                &pid,
                "--mount",
                "--pid",
                "--ipc",
                "--uts",
                "--net",
                "--root",
                "--wd",
                "/checker",
                "overwrite-exe",
                "1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn(),
        "spawn nsenter",
    )?;
    let lines = read_lines(attacker.stdout.take().ok_or("no attacker stdout")?);
    let ready = lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_default();
    if !ready.contains("\"ready\"") {
        let _ = attacker.kill();
        let _ = attacker.wait();
        return Err(format!("attacker did not get ready: {ready:?}"));
    }
    env.start(&id)?;
    // Wait until the init has exec'd the user process (busybox sleep).
    wait_until(Duration::from_secs(20), || {
        fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.display().to_string().contains("busybox"))
    });
    if let Some(mut stdin) = attacker.stdin.take() {
        let _ = stdin.write_all(b"g");
    }
    let verdict = lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_default();
    let code = wait_child(attacker, Duration::from_secs(20));
    let v: Value = serde_json::from_str(&verdict)
        .map_err(|e| format!("attacker verdict {verdict:?} (exit {code}): {e}"))?;
    ensure!(
        v["write_succeeded"] == false,
        "a write to the runtime image succeeded from the container: {}",
        v["attempts"]
    );
    let summary: Vec<String> = v["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    format!(
                        "p{} {} {}={}",
                        x["phase"],
                        x["what"].as_str().unwrap_or(""),
                        x["path"].as_str().unwrap_or(""),
                        if x["ok"] == true {
                            "ok".to_string()
                        } else {
                            format!("errno {}", x["errno"])
                        }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(summary.join("; "))
}

/// A running container whose process watches /proc and opens the exe of
/// every process that enters it (`race-exe`), while the runner execs
/// into it: `/evil`, a script whose interpreter is `/proc/self/exe` (the
/// entering process's own image: the runtime's), and `/bin/true`.
fn attack_exec(env: &Env) -> Result<String, String> {
    let attacker = Attacker::start(env, "watcher", &["race-exe", STOP, ATTACKER_SECS], |b| {
        let evil = b.rootfs().join("evil");
        ctx(fs::write(&evil, "#!/proc/self/exe\n"), "write /evil")?;
        ctx(
            fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)),
            "chmod /evil",
        )
    })?;
    let mut codes = std::collections::BTreeMap::<i32, u32>::new();
    for round in 0..EXEC_ROUNDS {
        let program = if round % 2 == 0 { "/evil" } else { "/bin/true" };
        let out = env.cli(&["exec", &attacker.id, program]);
        *codes.entry(out.code).or_default() += 1;
    }
    let v = attacker.stop(env)?;
    ensure!(
        v["write_succeeded"] == false,
        "a write to a runtime image succeeded from the container: {}",
        v["written"]
    );
    Ok(format!(
        "{EXEC_ROUNDS} execs (exit codes {codes:?}); the watcher saw {} processes, exe links {}, \
         open errnos {}, write errnos {}, {} handles kept, after exit {}",
        v["processes"],
        v["links"],
        v["open_errnos"],
        v["write_errnos"],
        v["kept"],
        v["after_exit_errnos"]
    ))
}

fn read_lines(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
