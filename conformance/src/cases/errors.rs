//! runtime.md Errors: a bad config makes `create` exit non-zero with an error
//! message and leave nothing behind (no state dir, cgroup, mount or process).

use crate::ensure;
use crate::harness::{
    cgroup_dirs, ctx, host_mounts_under, processes_in_cgroup, processes_rooted_in, wait_until,
    Bundle, CaseResult, Env, Outcome,
};
use serde_json::json;
use std::fs;
use std::time::Duration;

/// No state dir, cgroup dir, host mount or process of the container `id`.
pub fn nothing_left(env: &Env, b: &Bundle, id: &str) -> Result<(), String> {
    let state_dir = env.root.join(id);
    ensure!(
        !state_dir.exists(),
        "state dir {} left behind",
        state_dir.display()
    );
    let mut procs = Vec::new();
    let gone = wait_until(Duration::from_secs(5), || {
        procs = processes_rooted_in(&b.rootfs());
        procs.extend(processes_in_cgroup(&env.cgroups_path(id)));
        procs.is_empty()
    });
    ensure!(
        gone,
        "processes rooted in the bundle left behind: {procs:?}"
    );
    let cgroups: Vec<String> = cgroup_dirs(&env.cgroups_path(id))
        .into_iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    ensure!(cgroups.is_empty(), "cgroup dirs left behind: {cgroups:?}");
    let mounts = host_mounts_under(&b.dir);
    ensure!(
        mounts.is_empty(),
        "host mounts of the bundle left behind: {mounts:?}"
    );
    ensure!(
        env.cli(&["state", id]).code != 0,
        "state {id} succeeds after the failed create"
    );
    Ok(())
}

/// `create` must fail with a message and leave nothing behind.
fn expect_create_error(env: &Env, b: &Bundle, id: &str) -> CaseResult {
    let out = env.cli(&["create", "--bundle", &b.dir_str(), id]);
    ensure!(out.code != 0, "create succeeded");
    let text = out.error_text();
    ensure!(
        !text.is_empty(),
        "create exited {} without an error message on stderr or in the log",
        out.code
    );
    env.note(format!(
        "error: {}",
        crate::harness::truncate(text.lines().next().unwrap_or(""), 200)
    ));
    nothing_left(env, b, id)?;
    Ok(Outcome::Pass)
}

/// Build a bundle, let `change` break its config, expect create to fail.
/// The unbroken bundle is run first as a control: a runtime that rejects
/// every bundle must not pass these cases.
pub fn broken(env: &Env, change: impl FnOnce(&mut Bundle)) -> CaseResult {
    let control = env.id("control");
    let mut b = env.bundle(&control)?;
    b.set_args(&["true"]);
    b.write()?;
    let out = env.run(&b, &control);
    ensure!(
        out.code == 0,
        "control: the unbroken bundle fails too: {}",
        out.summary()
    );
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    change(&mut b);
    b.write()?;
    expect_create_error(env, &b, &id)
}

pub fn bad_json(env: &Env) -> CaseResult {
    let id = env.id("c");
    let b = env.bundle(&id)?;
    ctx(
        fs::write(
            b.dir.join("config.json"),
            "{\"ociVersion\": \"1.2.0\", \"process\": ",
        ),
        "write config.json",
    )?;
    expect_create_error(env, &b, &id)
}

pub fn root_missing(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.config["root"]["path"] = json!("rrun-no-such-rootfs")
    })
}

pub fn unknown_namespace(env: &Env) -> CaseResult {
    broken(env, |b| push_namespace(b, json!({"type": "rrun-bogus"})))
}

pub fn duplicate_namespace(env: &Env) -> CaseResult {
    broken(env, |b| push_namespace(b, json!({"type": "uts"})))
}

fn push_namespace(b: &mut Bundle, ns: serde_json::Value) {
    if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
        list.push(ns);
    }
}

pub fn uidmap_without_userns(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    })
}

pub fn unknown_rlimit(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.config["process"]["rlimits"] =
            json!([{"type": "RLIMIT_RRUN_BOGUS", "soft": 1, "hard": 1}])
    })
}

pub fn duplicate_rlimit(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.config["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512},
            {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}
        ])
    })
}

pub fn unknown_mount_type(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.add_mount(json!({"destination": "/mnt/bogus", "type": "rrunbogusfs", "source": "none"}))
    })
}

pub fn empty_args(env: &Env) -> CaseResult {
    broken(env, |b| b.set_args(&[]))
}

pub fn namespace_path_wrong_type(env: &Env) -> CaseResult {
    let ipc = format!("/proc/{}/ns/ipc", std::process::id());
    broken(env, |b| {
        b.config["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": ipc}
        ])
    })
}

pub fn hostname_without_uts(env: &Env) -> CaseResult {
    broken(env, |b| {
        b.set_namespaces(&["pid", "network", "ipc", "mount"]);
        b.config["hostname"] = json!("rrun-no-uts");
    })
}

pub fn device_path_mismatch(env: &Env) -> CaseResult {
    broken(env, |b| {
        let _ = fs::write(b.rootfs().join("home/rrun-dev"), "a regular file");
        b.config["linux"]["devices"] =
            json!([{"path": "/home/rrun-dev", "type": "c", "major": 1, "minor": 3}]);
    })
}
