//! `exec` (runc's command, which engines use for `docker exec`, health
//! checks and `kubectl exec`): a new process in a running container. Every
//! case starts the checker as a long-running init and execs into it.

use crate::ensure;
use crate::harness::{ns_inode, processes_in_cgroup, Bundle, CaseResult, Env, Outcome};
use serde_json::{json, Value};

/// A started container whose init sleeps; returns the bundle and the init's pid.
fn running(env: &Env, id: &str, change: impl FnOnce(&mut Bundle)) -> Result<(Bundle, i64), String> {
    let mut b = env.bundle(id)?;
    b.set_args(&["/checker", "sleep"]);
    change(&mut b);
    b.write()?;
    env.create(&b, id)?;
    env.start(id)?;
    let pid = env.state(id)?["pid"].as_i64().unwrap_or(0);
    ensure!(pid > 0, "no init pid for {id}");
    Ok((b, pid))
}

/// `exec --process FILE id`, with `process` written to FILE.
fn exec_process(
    env: &Env,
    b: &Bundle,
    id: &str,
    process: &Value,
    extra: &[&str],
) -> crate::harness::Output {
    let file = b.dir.join("process.json");
    let _ = std::fs::write(&file, process.to_string());
    let file = file.display().to_string();
    let mut args = vec!["exec", "--process", &file];
    args.extend_from_slice(extra);
    args.push(id);
    env.cli(&args)
}

/// The container's own process with other args: what an engine sends.
fn process_with(b: &Bundle, args: &[&str]) -> Value {
    let mut p = b.config["process"].clone();
    p["args"] = json!(args);
    p
}

fn report_of(out: &crate::harness::Output) -> Result<Value, String> {
    ensure!(out.code == 0, "exec: {}", out.summary());
    crate::harness::parse_report(&out.stdout)
}

/// Every namespace of the exec'd process is the init's, user and cgroup
/// included, and it is in the init's cgroups in every hierarchy.
pub fn namespaces_and_cgroups(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (b, init) = running(env, &id, |b| {
        b.set_namespaces(&["pid", "network", "ipc", "uts", "mount", "cgroup", "user"]);
        b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    })?;
    let pid_file = b.dir.join("exec.pid");
    let pid_arg = pid_file.display().to_string();
    let sleeper = process_with(&b, &["/checker", "sleep"]);
    let out = exec_process(
        env,
        &b,
        &id,
        &sleeper,
        &["--detach", "--pid-file", &pid_arg],
    );
    ensure!(out.code == 0, "exec --detach: {}", out.summary());
    let pid = std::fs::read_to_string(&pid_file).map_err(|e| format!("--pid-file: {e}"))?;
    let pid = pid.trim().to_string();
    let init = init.to_string();
    for ns in ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        let (theirs, ours) = (ns_inode(&init, ns), ns_inode(&pid, ns));
        ensure!(
            theirs.is_some() && theirs == ours,
            "{ns} namespace: exec'd process {ours:?}, init {theirs:?}"
        );
    }
    let cgroup = |p: &str| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
    ensure!(
        cgroup(&pid) == cgroup(&init),
        "cgroups differ: exec'd {:?}, init {:?}",
        cgroup(&pid),
        cgroup(&init)
    );
    Ok(Outcome::Pass)
}

/// What `--process` asks: user, groups, env, cwd, capabilities, rlimits,
/// no_new_privs; and only stdio reaches it.
pub fn process(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (b, _) = running(env, &id, |_| {})?;
    let mut p = process_with(&b, &["/checker", "report"]);
    p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
    p["env"] = json!(["PATH=/bin", "EXEC_VAR=yes"]);
    p["cwd"] = json!("/tmp");
    p["capabilities"] =
        json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": [], "permitted": []});
    p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    p["noNewPrivileges"] = json!(true);
    let r = report_of(&exec_process(env, &b, &id, &p, &[]))?;
    ensure!(
        r["uid"][0] == 1000 && r["gid"][0] == 1000,
        "uid {} gid {}",
        r["uid"],
        r["gid"]
    );
    let groups: Vec<i64> = r["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    ensure!(groups == [10, 20], "groups {groups:?}, want [10, 20]");
    ensure!(r["cwd"] == "/tmp", "cwd {}", r["cwd"]);
    ensure!(
        r["env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("EXEC_VAR=yes"))),
        "env {}",
        r["env"]
    );
    ensure!(
        r["caps"]["CapBnd"] == json!((1u64 << 5) | 1),
        "bounding {}",
        r["caps"]
    );
    ensure!(r["no_new_privs"] == 1, "no_new_privs {}", r["no_new_privs"]);
    ensure!(
        r["rlimits"]["RLIMIT_NOFILE"] == json!([256, 512]),
        "rlimits {}",
        r["rlimits"]
    );
    let fds: Vec<&String> = r["fds"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    ensure!(
        fds == ["0", "1", "2"],
        "fds {}: only stdio may reach it",
        r["fds"]
    );
    Ok(Outcome::Pass)
}

/// The container's seccomp filter applies to exec'd processes too.
pub fn seccomp(env: &Env) -> CaseResult {
    let id = env.id("c");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
    });
    let (b, _) = running(env, &id, |b| b.config["linux"]["seccomp"] = profile)?;
    // getpriority(PRIO_PROCESS, 0): x86_64 number 140.
    let p = process_with(&b, &["/checker", "syscall", "140", "0", "0"]);
    let out = exec_process(env, &b, &id, &p, &[]);
    ensure!(out.code == 0, "exec: {}", out.summary());
    let first: Value = out
        .stdout
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    ensure!(
        first["errno"] == 42,
        "getpriority in the exec'd process: {first}, want errno 42"
    );
    Ok(Outcome::Pass)
}

/// exec passes the process's exit code through.
pub fn exit_code(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (b, _) = running(env, &id, |_| {})?;
    let out = exec_process(
        env,
        &b,
        &id,
        &process_with(&b, &["/checker", "exit", "7"]),
        &[],
    );
    ensure!(
        out.code == 7,
        "exit code {}, want 7: {}",
        out.code,
        out.summary()
    );
    Ok(Outcome::Pass)
}

/// A paused container refuses exec (runc's words), a stopped one too, and
/// a failed exec leaves no process in the container.
pub fn refusals_leave_nothing(env: &Env) -> CaseResult {
    let id = env.id("c");
    let (b, init) = running(env, &id, |_| {})?;
    let cgroup = env.cgroups_path(&id);
    let before = processes_in_cgroup(&cgroup);
    let out = exec_process(env, &b, &id, &process_with(&b, &["/no/such/program"]), &[]);
    ensure!(out.code != 0, "exec of a missing program succeeded");
    env.note(format!("missing program: {}", out.error_text()));
    ensure!(
        processes_in_cgroup(&cgroup) == before,
        "a failed exec left a process"
    );
    let out = env.cli(&["pause", &id]);
    ensure!(out.code == 0, "pause: {}", out.summary());
    let out = exec_process(
        env,
        &b,
        &id,
        &process_with(&b, &["/checker", "exit", "0"]),
        &[],
    );
    ensure!(out.code != 0, "exec into a paused container succeeded");
    ensure!(
        out.error_text().contains("paused"),
        "refusal does not say paused: {}",
        out.error_text()
    );
    ensure!(
        processes_in_cgroup(&cgroup) == before,
        "a refused exec left a process"
    );
    let out = env.cli(&["resume", &id]);
    ensure!(out.code == 0, "resume: {}", out.summary());
    let _ = env.cli(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped")?;
    let out = exec_process(
        env,
        &b,
        &id,
        &process_with(&b, &["/checker", "exit", "0"]),
        &[],
    );
    ensure!(out.code != 0, "exec into a stopped container succeeded");
    ensure!(
        !crate::harness::pid_alive(init),
        "the init {init} still runs"
    );
    Ok(Outcome::Pass)
}
