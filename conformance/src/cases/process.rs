//! config.md: root, process (cwd, env, args, user, umask, capabilities,
//! rlimits, noNewPrivileges, oomScoreAdj), hostname and domainname.

use crate::ensure;
use crate::harness::{CaseResult, Env, Outcome};
use serde_json::{json, Value};

const EROFS: i64 = 30;
const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_RESOURCE: u32 = 24;

/// A line of the runner's own /proc/self/status (what the container inherits).
fn own_status(key: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

pub fn root_readonly(env: &Env) -> CaseResult {
    for readonly in [true, false] {
        let id = env.id(if readonly { "ro" } else { "rw" });
        let mut b = env.bundle(&id)?;
        b.config["root"]["readonly"] = json!(readonly);
        b.set_args(&["/checker", "report", "path:/", "path:/etc/passwd"]);
        let r = env.report(&b, &id)?;
        for p in ["/", "/etc/passwd"] {
            let probe = &r["paths"][p];
            if readonly {
                ensure!(
                    probe["write_errno"] == EROFS,
                    "root.readonly=true but {p} is not EROFS: {probe}"
                );
            } else {
                ensure!(
                    probe["writable"] == true,
                    "root.readonly=false but {p} is not writable: {probe}"
                );
            }
        }
    }
    Ok(Outcome::Pass)
}

pub fn env_cwd_args(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let vars = [
        "PATH=/usr/bin:/:/bin",
        "RRUN_A=1",
        "RRUN_B=two words",
        "RRUN_EMPTY=",
    ];
    b.config["process"]["env"] = json!(vars);
    b.config["process"]["cwd"] = json!("/home");
    // A relative executable is looked up in the process's PATH (/checker is in "/").
    let args = ["checker", "report", "arg with space", ""];
    b.set_args(&args);
    let r = env.report(&b, &id)?;
    ensure!(r["cwd"] == "/home", "cwd is {}, want /home", r["cwd"]);
    let argv: Vec<&str> = r["argv"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ensure!(
        argv.get(1..) == Some(&args[1..]),
        "argv {argv:?}, want {:?}",
        &args[1..]
    );
    let got: Vec<&str> = r["env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for v in vars {
        ensure!(got.contains(&v), "env lacks {v:?}: {got:?}");
    }
    Ok(Outcome::Pass)
}

pub fn user(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
    let r = env.report(&b, &id)?;
    ensure!(
        r["uid"] == json!([1000, 1000, 1000, 1000]),
        "Uid {} want 1000 x4",
        r["uid"]
    );
    ensure!(
        r["gid"] == json!([1001, 1001, 1001, 1001]),
        "Gid {} want 1001 x4",
        r["gid"]
    );
    ensure!(
        r["groups"] == json!([10, 20]),
        "Groups {} want [10, 20]",
        r["groups"]
    );
    ensure!(r["umask"] == "0027", "Umask {} want 0027", r["umask"]);
    Ok(Outcome::Pass)
}

pub fn umask_default(env: &Env) -> CaseResult {
    let id = env.id("c");
    let b = env.bundle(&id)?;
    let r = env.report(&b, &id)?;
    let mine = own_status("Umask");
    ensure!(
        r["umask"] == mine.as_str(),
        "Umask {} with no process.user.umask, the caller's is {mine}",
        r["umask"]
    );
    Ok(Outcome::Pass)
}

fn cap_sets(r: &Value) -> [u64; 5] {
    ["CapBnd", "CapInh", "CapPrm", "CapEff", "CapAmb"]
        .map(|k| r["caps"][k].as_u64().unwrap_or(u64::MAX))
}

pub fn capabilities(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set});
    let r = env.report(&b, &id)?;
    let want = CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE;
    let got = cap_sets(&r);
    ensure!(
        got == [want; 5],
        "Bnd/Inh/Prm/Eff/Amb = {got:x?}, want all {want:#x}"
    );
    Ok(Outcome::Pass)
}

/// Distinct sets for a non-root user: after execve the kernel keeps
/// bounding and inheritable, and permitted = effective = ambient.
pub fn capabilities_ambient(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let two = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": two, "permitted": two, "effective": two,
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    let r = env.report(&b, &id)?;
    let want = [
        CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE,
        CAP_KILL | CAP_NET_BIND_SERVICE,
        CAP_NET_BIND_SERVICE,
        CAP_NET_BIND_SERVICE,
        CAP_NET_BIND_SERVICE,
    ];
    let got = cap_sets(&r);
    ensure!(
        got == want,
        "Bnd/Inh/Prm/Eff/Amb = {got:x?}, want {want:x?}"
    );
    Ok(Outcome::Pass)
}

pub fn capabilities_ungrantable(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    // CAP_SYS_RESOURCE is grantable only where the runner's (so the
    // runtime's) bounding set has it (the test machine's lacks it); the
    // other is no capability at all.
    let set = json!(["CAP_KILL", "CAP_SYS_RESOURCE", "CAP_RRUN_BOGUS"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "permitted": set});
    let r = env.report(&b, &id)?;
    let eff = r["caps"]["CapEff"].as_u64().unwrap_or(0);
    ensure!(
        eff & CAP_KILL != 0,
        "CapEff {eff:#x} lacks the grantable CAP_KILL"
    );
    let held = crate::harness::host::holds_in_bounding_set(CAP_SYS_RESOURCE);
    ensure!(
        (eff & (1 << CAP_SYS_RESOURCE) != 0) == held,
        "CapEff {eff:#x}: CAP_SYS_RESOURCE should be {} (the runtime's bounding set {} it)",
        if held { "granted" } else { "skipped" },
        if held { "has" } else { "lacks" }
    );
    Ok(Outcome::Pass)
}

fn host_hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid, writable rlimit.
    unsafe { libc::getrlimit(resource, &mut lim) };
    lim.rlim_max
}

pub fn rlimits(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    // Only lower hard limits: raising one needs CAP_SYS_RESOURCE.
    let nofile_hard = host_hard_limit(libc::RLIMIT_NOFILE).min(1024);
    let core_hard = host_hard_limit(libc::RLIMIT_CORE).min(4096);
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": nofile_hard / 2, "hard": nofile_hard},
        {"type": "RLIMIT_CORE", "soft": core_hard / 4, "hard": core_hard}
    ]);
    let r = env.report(&b, &id)?;
    ensure!(
        r["rlimits"]["RLIMIT_NOFILE"] == json!([nofile_hard / 2, nofile_hard]),
        "RLIMIT_NOFILE {} want [{}, {nofile_hard}]",
        r["rlimits"]["RLIMIT_NOFILE"],
        nofile_hard / 2
    );
    ensure!(
        r["rlimits"]["RLIMIT_CORE"] == json!([core_hard / 4, core_hard]),
        "RLIMIT_CORE {} want [{}, {core_hard}]",
        r["rlimits"]["RLIMIT_CORE"],
        core_hard / 4
    );
    Ok(Outcome::Pass)
}

pub fn no_new_privileges(env: &Env) -> CaseResult {
    let inherited = own_status("NoNewPrivs") == "1";
    for nnp in [true, false] {
        let id = env.id(if nnp { "on" } else { "off" });
        let mut b = env.bundle(&id)?;
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let r = env.report(&b, &id)?;
        let want = u64::from(nnp || inherited);
        ensure!(
            r["no_new_privs"] == want,
            "noNewPrivileges={nnp}: NoNewPrivs is {}, want {want}",
            r["no_new_privs"]
        );
    }
    Ok(Outcome::Pass)
}

pub fn oom_score_adj(env: &Env) -> CaseResult {
    let id = env.id("set");
    let mut b = env.bundle(&id)?;
    b.config["process"]["oomScoreAdj"] = json!(500);
    let r = env.report(&b, &id)?;
    ensure!(
        r["oom_score_adj"] == 500,
        "oom_score_adj {} with oomScoreAdj 500",
        r["oom_score_adj"]
    );
    let id = env.id("unset");
    let b = env.bundle(&id)?;
    let r = env.report(&b, &id)?;
    let mine: i64 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    ensure!(
        r["oom_score_adj"] == mine,
        "oom_score_adj {} with oomScoreAdj unset, the caller's is {mine}",
        r["oom_score_adj"]
    );
    Ok(Outcome::Pass)
}

pub fn hostname(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["hostname"] = json!("rrun-host");
    let r = env.report(&b, &id)?;
    ensure!(
        r["hostname"] == "rrun-host",
        "hostname {} want rrun-host",
        r["hostname"]
    );
    Ok(Outcome::Pass)
}

pub fn domainname(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["domainname"] = json!("rrun-domain");
    let r = env.report(&b, &id)?;
    ensure!(
        r["domainname"] == "rrun-domain",
        "domainname {} want rrun-domain",
        r["domainname"]
    );
    Ok(Outcome::Pass)
}
