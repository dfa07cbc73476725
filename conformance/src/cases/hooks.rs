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

fn recording_hook(dir: &str, name: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")]})
}

fn failing_hook() -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; exit 1"]})
}

fn order(dir: &Path) -> Vec<String> {
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

pub fn order_and_state(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (mut b, dir) = hook_bundle(env, &id)?;
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
    env.create(&b, &id)?;
    let after_create = order(&dir);
    ensure!(
        after_create
            == [
                "prestart-1",
                "prestart-2",
                "createRuntime",
                "createContainer"
            ],
        "hooks run by create: {after_create:?}"
    );
    env.start(&id)?;
    let after_start = order(&dir);
    ensure!(
        after_start.iter().any(|h| h == "poststart"),
        "poststart had not run when start returned: {after_start:?}"
    );
    ensure!(
        wait_until(Duration::from_secs(20), || order(&dir)
            .iter()
            .any(|h| h == "process")),
        "the process never ran"
    );
    let all = order(&dir);
    let pos = |name: &str| all.iter().position(|h| h == name).unwrap_or(usize::MAX);
    ensure!(
        pos("startContainer") == 4
            && pos("startContainer") < pos("process")
            && pos("startContainer") < pos("poststart"),
        "order after start: {all:?}"
    );
    let kill = env.cli(&["kill", &id, "KILL"]);
    ensure!(kill.code == 0, "kill: {}", kill.summary());
    env.wait_status(&id, "stopped")?;
    let del = env.cli(&["delete", &id]);
    ensure!(del.code == 0, "delete: {}", del.summary());
    let last = order(&dir);
    ensure!(
        last.last().map(String::as_str) == Some("poststop"),
        "poststop was not the last hook when delete returned: {last:?}"
    );
    check_states(&dir, &id, &b.dir_str())
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
        !order(&dir).iter().any(|h| h == "process"),
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
        order(&dir).iter().any(|h| h == "poststart-2"),
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
        order(&dir).iter().any(|h| h == "poststop-2"),
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
    // The hook records its pid, then outlives its one-second timeout.
    let slow = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo $$ > {host}/hookpid; exec sleep 100")], "timeout": 1});
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
