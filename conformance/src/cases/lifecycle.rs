//! runtime.md: state, lifecycle and the operations.

use crate::ensure;
use crate::harness::{ctx, pid_alive, wait_until, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A long-running process that marks on the host when it started.
fn marking_sleeper(marker_dir: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("echo started > {marker_dir}/started; exec sleep 1000"),
    ]
}

fn wait_file(path: &Path) -> bool {
    wait_until(Duration::from_secs(20), || path.exists())
}

pub fn create_start_kill_delete(env: &Env) -> CaseResult {
    // Whether this runtime takes the suite's own ociVersion (the bundles
    // of one that refuses it say the newest it takes instead).
    env.check(
        "oci-version",
        crate::harness::oci_version_refused(&env.runtime.name).map(|why| {
            format!(
                "refuses {why}; its bundles say ociVersion {}",
                crate::harness::oci_version_of(&env.runtime.name)
            )
        }),
    );
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let out_dir = b.share_dir("/out")?;
    let args = marking_sleeper("/out");
    b.set_args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    b.write()?;
    env.create(&b, &id)?;
    let st = env.state(&id)?;
    ensure!(
        st["status"] == "created",
        "status after create is {}, want created",
        st["status"]
    );
    let pid = st["pid"].as_i64().unwrap_or(0);
    ensure!(
        pid > 0 && pid_alive(pid),
        "state pid after create is {pid}, want a live process"
    );
    ensure!(
        !out_dir.join("started").exists(),
        "the user process ran during create"
    );
    env.start(&id)?;
    ensure!(
        wait_file(&out_dir.join("started")),
        "the user process never ran after start"
    );
    let st = env.state(&id)?;
    ensure!(
        st["status"] == "running",
        "status after start is {}, want running",
        st["status"]
    );
    let kill = env.cli(&["kill", &id, "KILL"]);
    ensure!(kill.code == 0, "kill KILL: {}", kill.summary());
    env.wait_status(&id, "stopped")?;
    ensure!(
        !pid_alive(pid),
        "pid {pid} still alive after kill and status stopped"
    );
    let again = env.cli(&["kill", &id, "KILL"]);
    ensure!(again.code != 0, "kill of a stopped container succeeded");
    ensure!(
        env.status(&id)? == "stopped",
        "kill of a stopped container changed its status"
    );
    let del = env.cli(&["delete", &id]);
    ensure!(
        del.code == 0,
        "delete of a stopped container: {}",
        del.summary()
    );
    let gone = env.cli(&["state", &id]);
    ensure!(
        gone.code != 0,
        "state after delete succeeded: {}",
        gone.stdout.trim()
    );
    ensure!(
        gone.error_text().contains("does not exist"),
        "state after delete: error {:?} does not say 'does not exist'",
        gone.error_text()
    );
    ensure!(
        !env.root.join(&id).exists(),
        "state dir {} still exists after delete",
        env.root.join(&id).display()
    );
    Ok(Outcome::Pass)
}

pub fn config_frozen(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let out_dir = b.share_dir("/out")?;
    b.set_args(&["sh", "-c", "echo original > /out/which"]);
    b.write()?;
    env.create(&b, &id)?;
    b.set_args(&["sh", "-c", "echo modified > /out/which"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "CHANGED=1"]);
    b.write()?;
    env.start(&id)?;
    let which = out_dir.join("which");
    ensure!(wait_file(&which), "the process never wrote /out/which");
    ensure!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&which)
            .is_ok_and(|s| s.ends_with('\n'))),
        "/out/which never completed"
    );
    let text = ctx(fs::read_to_string(&which), "read /out/which")?;
    ensure!(
        text.trim() == "original",
        "process ran the config.json written after create ({})",
        text.trim()
    );
    Ok(Outcome::Pass)
}

/// The keys and values runc gives for the same bundle (when runc is around).
fn runc_state_of(env: &Env, bundle_dir: &str, id: &str) -> Option<Value> {
    let runc = which("runc")?;
    let root = env.work.join("runc-oracle-root");
    let run = |args: &[&str]| {
        Command::new(&runc)
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()
    };
    // The created init inherits create's stdio: never give it a pipe we wait on.
    let child = Command::new(&runc)
        .arg("--root")
        .arg(&root)
        .args(["create", "--bundle", bundle_dir, id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let created = crate::harness::wait_child(child, Duration::from_secs(60)) == 0;
    let state = if created { run(&["state", id]) } else { None };
    let _ = run(&["delete", "--force", id]);
    let _ = fs::remove_dir_all(&root);
    serde_json::from_slice(&state?.stdout).ok()
}

pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

pub fn state_fields(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["annotations"] = json!({"org.rrun.test": "value-1", "second": "2"});
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    let st = env.state(&id)?;
    let version = st["ociVersion"].as_str().unwrap_or("");
    ensure!(
        version.split('.').count() >= 3 && version.starts_with(|c: char| c.is_ascii_digit()),
        "ociVersion {version:?} is not SemVer"
    );
    ensure!(st["id"] == id.as_str(), "state id {} != {id}", st["id"]);
    ensure!(
        ["creating", "created", "running", "stopped"]
            .contains(&st["status"].as_str().unwrap_or("")),
        "status {} is not a spec status",
        st["status"]
    );
    ensure!(
        st["bundle"] == b.dir_str().as_str(),
        "state bundle {} != {}",
        st["bundle"],
        b.dir_str()
    );
    ensure!(
        st["annotations"] == b.config["annotations"],
        "state annotations {} != config {}",
        st["annotations"],
        b.config["annotations"]
    );
    let pid = st["pid"].as_i64().unwrap_or(0);
    let pid_str = pid.to_string();
    let host_pid_ns = crate::harness::ns_inode("self", "pid");
    ensure!(
        pid > 0 && pid_alive(pid),
        "state pid {pid} is not a live host process"
    );
    ensure!(
        crate::harness::ns_inode(&pid_str, "pid") != host_pid_ns,
        "state pid {pid} is not in the container's pid namespace"
    );
    let procs_file = crate::harness::cgroup_dirs(&env.cgroups_path(&id))
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .find(|p| p.exists());
    let procs =
        procs_file.ok_or_else(|| format!("no cgroup directory for {}", env.cgroups_path(&id)))?;
    let text = fs::read_to_string(&procs).unwrap_or_default();
    ensure!(
        text.lines().any(|l| l == pid_str),
        "state pid {pid} not in {}",
        procs.display()
    );
    // The oracle gets its own cgroup: the bundle is the same, the config
    // change cannot affect the container created above.
    let oracle_id = env.id("oracle");
    b.config["linux"]["cgroupsPath"] = json!(env.cgroups_path(&oracle_id));
    b.write()?;
    if let Some(oracle) = runc_state_of(env, &b.dir_str(), &oracle_id) {
        compare_with_oracle(&st, &oracle)?;
    }
    Ok(Outcome::Pass)
}

fn compare_with_oracle(st: &Value, oracle: &Value) -> Result<(), String> {
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    ensure!(
        keys(st) == keys(oracle),
        "state keys {:?} != runc's {:?}",
        keys(st),
        keys(oracle)
    );
    for key in ["status", "bundle", "rootfs", "owner", "annotations"] {
        ensure!(
            st[key] == oracle[key],
            "state {key} {} != runc's {}",
            st[key],
            oracle[key]
        );
    }
    Ok(())
}

pub fn start_running_fails(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    let before = env.state(&id)?;
    let again = env.cli(&["start", &id]);
    ensure!(again.code != 0, "second start succeeded");
    ensure!(
        !again.error_text().is_empty(),
        "second start failed without an error message"
    );
    let after = env.state(&id)?;
    ensure!(
        after["status"] == "running" && after["pid"] == before["pid"],
        "second start changed the container: {before} -> {after}"
    );
    Ok(Outcome::Pass)
}

pub fn delete_running_fails(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
    let del = env.cli(&["delete", &id]);
    ensure!(del.code != 0, "delete of a running container succeeded");
    ensure!(
        env.status(&id)? == "running" && pid_alive(pid),
        "failed delete changed the running container"
    );
    let force = env.cli(&["delete", "--force", &id]);
    ensure!(
        force.code == 0,
        "delete --force of a running container: {}",
        force.summary()
    );
    ensure!(
        env.cli(&["state", &id]).code != 0,
        "container still exists after delete --force"
    );
    ensure!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "pid {pid} alive after delete --force"
    );
    Ok(Outcome::Pass)
}

fn children_of(pid: i64) -> Vec<i64> {
    let mut all = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return all;
    };
    for t in tasks.flatten() {
        let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        all.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i64>().ok()),
        );
    }
    all
}

pub fn kill_all(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    // The shell ignores SIGTERM as pid 1; its children do not.
    b.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0);
    let mut kids = Vec::new();
    ensure!(
        wait_until(Duration::from_secs(10), || {
            kids = children_of(pid);
            kids.len() >= 2
        }),
        "container init {pid} never got its two children"
    );
    let kill = env.cli(&["kill", "--all", &id, "KILL"]);
    ensure!(kill.code == 0, "kill --all KILL: {}", kill.summary());
    let all_gone = wait_until(Duration::from_secs(10), || {
        !pid_alive(pid) && kids.iter().all(|k| !pid_alive(*k))
    });
    ensure!(
        all_gone,
        "processes still alive after kill --all: init {pid} {}, children {kids:?}",
        pid_alive(pid)
    );
    env.wait_status(&id, "stopped")?;
    Ok(Outcome::Pass)
}

pub fn delete_missing(env: &Env) -> CaseResult {
    let id = env.id("never-created");
    let plain = env.cli(&["delete", &id]);
    ensure!(
        plain.code == 1,
        "delete of a missing id exited {} (want 1)",
        plain.code
    );
    ensure!(
        !plain.error_text().is_empty(),
        "delete of a missing id printed no error"
    );
    let force = env.cli(&["delete", "--force", &id]);
    ensure!(
        force.code == 0,
        "delete --force of a missing id: {}",
        force.summary()
    );
    Ok(Outcome::Pass)
}

pub fn create_duplicate_id(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    let before = env.state(&id)?;
    let second = env.cli(&["create", "--bundle", &b.dir_str(), &id]);
    ensure!(second.code != 0, "create with an existing id succeeded");
    ensure!(
        !second.error_text().is_empty(),
        "duplicate create printed no error"
    );
    let after = env.state(&id)?;
    ensure!(
        after == before,
        "duplicate create changed the first container: {before} -> {after}"
    );
    Ok(Outcome::Pass)
}

pub fn missing_id(env: &Env) -> CaseResult {
    for args in [
        &["state"][..],
        &["start"],
        &["kill"],
        &["delete"],
        &["create", "--bundle", "/nonexistent"],
    ] {
        let out = env.cli(args);
        ensure!(
            out.code != 0,
            "`{}` without an id succeeded",
            args.join(" ")
        );
    }
    let id = env.id("never-created");
    for op in ["start", "kill", "state"] {
        let out = env.cli(&[op, &id]);
        ensure!(out.code != 0, "{op} of a missing container succeeded");
    }
    Ok(Outcome::Pass)
}

pub fn run_exit_code(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sh", "-c", "exit 3"]);
    b.write()?;
    let out = env.run(&b, &id);
    ensure!(
        out.code == 3,
        "run of `sh -c 'exit 3'` exited {} ({})",
        out.code,
        out.summary()
    );
    Ok(Outcome::Pass)
}

pub fn list(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_args(&["sleep", "1000"]);
    b.write()?;
    env.create(&b, &id)?;
    let quiet = env.cli(&["list", "-q"]);
    ensure!(
        quiet.code == 0 && quiet.stdout.lines().any(|l| l == id),
        "list -q does not show {id}: {:?}",
        quiet.stdout
    );
    let json_out = env.cli(&["list", "--format", "json"]);
    let parsed: Value = ctx(
        serde_json::from_str(&json_out.stdout),
        "parse list --format json",
    )?;
    let entry = parsed
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id.as_str()));
    ensure!(
        entry.is_some_and(|e| e["status"] == "created"),
        "list --format json has no created entry for {id}: {parsed}"
    );
    Ok(Outcome::Pass)
}

pub fn version(env: &Env) -> CaseResult {
    let out = env.cli(&["--version"]);
    ensure!(out.code == 0, "--version: {}", out.summary());
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines.first().is_some_and(|l| l.contains(" version ")),
        "first line {:?} is not `X version V`",
        lines.first()
    );
    ensure!(
        lines.iter().any(|l| l.starts_with("commit: ")),
        "no `commit:` line in {:?}",
        out.stdout
    );
    ensure!(
        lines.iter().any(|l| l.starts_with("spec: 1.")),
        "no `spec: 1.x` line in {:?}",
        out.stdout
    );
    Ok(Outcome::Pass)
}
