//! config.md hooks and the hook steps of runtime.md's lifecycle.
//!
//! Every hook is `/bin/sh -c 'cat > DIR/<name>.json; echo <name> >> DIR/order'`:
//! it saves the state it got on stdin and appends its name to an order file
//! in a host dir that is also bind-mounted into the container at /hookout
//! (startContainer runs inside the container and resolves its paths there).

use crate::ensure;
use crate::harness::{ctx, wait_until, Bundle, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const IN_CONTAINER: &str = "/hookout";

/// (check name, problem if it failed) per hook phase.
type PhaseChecks = Vec<(&'static str, Option<String>)>;

fn recording_hook(dir: &str, name: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")]})
}

fn failing_hook() -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; exit 1"]})
}

fn order_of(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A bundle whose process records `process` in the order file, then sleeps.
fn hook_bundle(env: &Env, id: &str) -> Result<(Bundle, PathBuf), String> {
    let mut b = env.bundle(id)?;
    let dir = b.share_dir(IN_CONTAINER)?;
    b.set_args(&[
        "sh",
        "-c",
        "echo process >> /hookout/order; exec sleep 1000",
    ]);
    Ok((b, dir))
}

/// Drive one container with a recording hook in every phase through
/// create, start, kill and delete. Returns the hook dir and every ordering
/// problem seen (the state check is a separate case, so a runtime that runs
/// a hook at the wrong time is not also failed on its stdin).
fn hook_flow(env: &Env, id: &str) -> Result<(PathBuf, String, PhaseChecks), String> {
    let (mut b, dir) = hook_bundle(env, id)?;
    let host = dir.display().to_string();
    b.config["hooks"] = json!({
        "prestart": [recording_hook(&host, "prestart-1"), recording_hook(&host, "prestart-2")],
        "createRuntime": [recording_hook(&host, "createRuntime")],
        "createContainer": [recording_hook(&host, "createContainer")],
        "startContainer": [recording_hook(IN_CONTAINER, "startContainer")],
        "poststart": [recording_hook(&host, "poststart")],
        "poststop": [recording_hook(&host, "poststop")]
    });
    b.write()?;
    env.create(&b, id)?;
    let after_create = order_of(&dir);
    env.start(id)?;
    let after_start = order_of(&dir);
    let ran = wait_until(Duration::from_secs(20), || {
        order_of(&dir).iter().any(|h| h == "process")
    });
    ensure!(ran, "the process never ran");
    let kill = env.cli(&["kill", id, "KILL"]);
    ensure!(kill.code == 0, "kill: {}", kill.summary());
    env.wait_status(id, "stopped")?;
    let before_delete = order_of(&dir);
    let del = env.cli(&["delete", id]);
    ensure!(del.code == 0, "delete: {}", del.summary());
    let after_delete = order_of(&dir);
    let problems = order_checks(&after_create, &after_start, &before_delete, &after_delete);
    Ok((dir, b.dir_str(), problems))
}

/// One named check per hook phase, from the order file as it was after
/// create, after start, before and after delete.
fn order_checks(
    create: &[String],
    start: &[String],
    stopped: &[String],
    deleted: &[String],
) -> PhaseChecks {
    let at = |list: &[String], name: &str| list.iter().position(|h| h == name);
    let check = |ok: bool, what: &str| {
        (!ok).then(|| {
            format!(
                "{what}; after create {create:?}, after start {start:?}, after delete {deleted:?}"
            )
        })
    };
    let in_create = |name: &str| at(create, name).is_some();
    vec![
        (
            "in-phase-order",
            check(
                at(create, "prestart-1") < at(create, "prestart-2") && in_create("prestart-1"),
                "prestart hooks not run in listed order",
            ),
        ),
        (
            "prestart",
            check(
                in_create("prestart-2") && at(create, "prestart-2") < at(create, "createRuntime"),
                "prestart not run by create before createRuntime",
            ),
        ),
        (
            "createRuntime",
            check(
                in_create("createRuntime"),
                "createRuntime not run by create",
            ),
        ),
        (
            "createContainer",
            check(
                in_create("createContainer")
                    && at(create, "createRuntime") < at(create, "createContainer"),
                "createContainer not run by create after createRuntime",
            ),
        ),
        (
            "startContainer",
            check(
                !in_create("startContainer")
                    && at(start, "startContainer").is_some()
                    && at(start, "startContainer") < at(start, "process").or(Some(usize::MAX)),
                "startContainer not run by start before the process",
            ),
        ),
        (
            "poststart",
            check(
                !in_create("poststart") && at(start, "poststart") > at(start, "startContainer"),
                "poststart not run by start (after startContainer, before start returned)",
            ),
        ),
        (
            "poststop",
            check(
                at(stopped, "poststop").is_none()
                    && deleted.last().map(String::as_str) == Some("poststop"),
                "poststop not run by delete as the last hook",
            ),
        ),
    ]
}

pub fn order(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (_, _, checks) = hook_flow(env, &id)?;
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|(n, p)| p.as_ref().map(|p| format!("{n}: {p}")))
        .collect();
    for (name, problem) in checks {
        env.check(name, problem);
    }
    ensure!(failed.is_empty(), "{}", failed.join(" | "));
    Ok(Outcome::Pass)
}

pub fn state_stdin(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (dir, bundle, _) = hook_flow(env, &id)?;
    check_states(&dir, &id, &bundle)
}

/// Every hook got valid state JSON naming this container and bundle.
fn check_states(dir: &Path, id: &str, bundle: &str) -> CaseResult {
    for name in [
        "prestart-1",
        "prestart-2",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let text = fs::read_to_string(dir.join(format!("{name}.json"))).unwrap_or_default();
        let st: Value = ctx(
            serde_json::from_str(&text),
            &format!("{name} hook stdin {text:?}"),
        )?;
        ensure!(st["id"] == id, "{name} hook state id {} != {id}", st["id"]);
        ensure!(
            st["bundle"] == bundle,
            "{name} hook state bundle {} != {bundle}",
            st["bundle"]
        );
        ensure!(
            st["ociVersion"].is_string() && st["status"].is_string(),
            "{name} hook state lacks ociVersion/status: {st}"
        );
        if name != "poststop" {
            ensure!(
                st["pid"].as_i64().unwrap_or(0) > 0,
                "{name} hook state pid {} not > 0",
                st["pid"]
            );
        }
    }
    Ok(Outcome::Pass)
}

pub fn prestart_failure(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (mut b, dir) = hook_bundle(env, &id)?;
    let host = dir.display().to_string();
    b.config["hooks"] =
        json!({"prestart": [failing_hook()], "poststop": [recording_hook(&host, "poststop")]});
    b.write()?;
    let out = env.cli(&["create", "--bundle", &b.dir_str(), &id]);
    ensure!(
        out.code != 0,
        "create succeeded although a prestart hook failed"
    );
    super::errors::nothing_left(env, &b, &id)?;
    ensure!(
        !order_of(&dir).iter().any(|h| h == "process"),
        "the user process ran although prestart failed"
    );
    Ok(Outcome::Pass)
}

pub fn poststart_failure(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (mut b, dir) = hook_bundle(env, &id)?;
    let host = dir.display().to_string();
    b.config["hooks"] =
        json!({"poststart": [failing_hook(), recording_hook(&host, "poststart-2")]});
    b.write()?;
    env.create(&b, &id)?;
    let out = env.cli(&["start", &id]);
    env.note(format!(
        "start with a failing poststart hook: {}",
        out.summary()
    ));
    ensure!(
        order_of(&dir).iter().any(|h| h == "poststart-2"),
        "the hook after the failing poststart hook did not run (start: {})",
        out.summary()
    );
    ensure!(
        out.code == 0,
        "start failed on a poststart hook failure (spec: warn and continue): {}",
        out.summary()
    );
    ensure!(
        env.status(&id)? == "running",
        "container not running after a poststart hook failure"
    );
    Ok(Outcome::Pass)
}

pub fn poststop_failure(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (mut b, dir) = hook_bundle(env, &id)?;
    let host = dir.display().to_string();
    b.config["hooks"] = json!({"poststop": [failing_hook(), recording_hook(&host, "poststop-2")]});
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    let kill = env.cli(&["kill", &id, "KILL"]);
    ensure!(kill.code == 0, "kill: {}", kill.summary());
    env.wait_status(&id, "stopped")?;
    let out = env.cli(&["delete", &id]);
    env.note(format!(
        "delete with a failing poststop hook: {}",
        out.summary()
    ));
    ensure!(
        order_of(&dir).iter().any(|h| h == "poststop-2"),
        "the hook after the failing poststop hook did not run"
    );
    ensure!(
        env.cli(&["state", &id]).code != 0,
        "container still exists after delete"
    );
    ensure!(
        out.code == 0,
        "delete failed on a poststop hook failure (spec: warn and continue): {}",
        out.summary()
    );
    Ok(Outcome::Pass)
}

pub fn timeout(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (mut b, dir) = hook_bundle(env, &id)?;
    let host = dir.display().to_string();
    // The hook records its pid, then outlives its timeout. The timeout is
    // a few seconds, not one: on a loaded 2-core machine starting the hook
    // itself can take a second, and then it would never record its pid.
    let slow = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo $$ > {host}/hookpid; exec sleep 100")], "timeout": 4});
    b.config["hooks"] = json!({"createRuntime": [slow]});
    b.write()?;
    let out = env.cli(&["create", "--bundle", &b.dir_str(), &id]);
    let pid: i64 = fs::read_to_string(dir.join("hookpid"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    ensure!(pid > 0, "the hook never ran");
    let killed = wait_until(Duration::from_secs(5), || !crate::harness::pid_alive(pid));
    if !killed {
        // SAFETY: kill(2) on the hook's pid we recorded; a stray signal is the worst case.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    ensure!(
        killed,
        "the hook (pid {pid}) still runs after create returned ({})",
        out.summary()
    );
    ensure!(
        out.code != 0,
        "create succeeded although its hook timed out"
    );
    super::errors::nothing_left(env, &b, &id)?;
    Ok(Outcome::Pass)
}
