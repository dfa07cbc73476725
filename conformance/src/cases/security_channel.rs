//! A compromised container talks to the runtime only through what the
//! spec allows. What the runtime's own processes send back to the caller
//! from inside the container (rrun's channel frames, runc's init pipe)
//! and the pty master sent over the console socket are input from the
//! container: a hostile one must not crash or hang the caller.
//!
//! The attacker is a container with CAP_SYS_PTRACE whose pid namespace
//! the victim joins (a pod with a shared pid namespace): it sees the
//! victim's init while the runtime sets it up, takes its sockets with
//! pidfd_getfd(2) and writes into them first (`rrun-checker inject`).
//! The victim is `run` in the foreground with a terminal and no console
//! socket, so the caller receives the pty master itself; it runs on a
//! pty of the runner's whose output is read and thrown away (a /dev/zero
//! "master" must not fill a disk) and is killed after VICTIM_LIMIT.

use super::security_attack::{crashed, run_on_pty, Attacker, ATTACKER_SECS, STOP};
use crate::ensure;
use crate::harness::{CaseResult, Env, Outcome, TIMED_OUT};
use serde_json::json;
use std::fs;
use std::time::Duration;

/// What the attacker writes, one victim each (see `inject` in the
/// checker): into every socket of the runtime's process as soon as it
/// appears, into every socket once the setup is under way (`late`), and
/// into the console socket alone (`rest`: the channel is spared).
const MODES: [&str; 9] = [
    "garbage",
    "oversized",
    "partial",
    "garbage,late",
    "partial,late",
    "garbage,rest",
    "partial,rest",
    "fd-zero,rest",
    "many-fds,rest",
];
/// A caller still there after this is hung (a run takes well under a second).
const VICTIM_LIMIT: Duration = Duration::from_secs(5);

pub fn untrusted_messages(env: &Env) -> CaseResult {
    let mut problems = Vec::new();
    for mode in MODES {
        let attacker = Attacker::start(
            env,
            &format!("injector-{}", mode.replace(',', "-")),
            &["inject", mode, STOP, ATTACKER_SECS],
            |a| {
                let caps = json!(["CAP_SYS_PTRACE", "CAP_KILL"]);
                a.config["process"]["capabilities"] =
                    json!({"bounding": caps, "effective": caps, "permitted": caps});
                Ok(())
            },
        )?;
        let apid = env.state(&attacker.id)?["pid"].as_i64().unwrap_or(0);
        let tag = mode.replace(',', "-");
        let vid = env.id(&format!("victim-{tag}"));
        let mut vb = env.bundle(&vid)?;
        vb.config["linux"]["namespaces"] = json!([
            {"type": "pid", "path": format!("/proc/{apid}/ns/pid")},
            {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
        ]);
        vb.config["process"]["terminal"] = json!(true);
        vb.set_args(&["/checker", "report"]);
        vb.write()?;
        let log = env.work.join(format!("victim-{tag}.log"));
        let err = env.work.join(format!("victim-{tag}.err"));
        let args: Vec<String> = [
            "--root",
            &env.root.display().to_string(),
            "--log",
            &log.display().to_string(),
            "--log-format",
            "json",
            "run",
            "--bundle",
            &vb.dir_str(),
            &vid,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (code, secs, printed) = run_on_pty(&env.runtime.path, &args, &err, VICTIM_LIMIT)?;
        let verdict = attacker.stop(env)?;
        let hits = verdict["hits"].as_array().map_or(0, Vec::len);
        let said = fs::read_to_string(&err)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| fs::read_to_string(&log).ok())
            .unwrap_or_default();
        let first = crate::harness::truncate(said.lines().next().unwrap_or("").trim(), 200);
        let hit_list: Vec<String> = verdict["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                format!(
                    "{}:{} {}",
                    h["comm"].as_str().unwrap_or(""),
                    h["fd"],
                    h["sent"]
                )
            })
            .collect();
        env.note(format!(
            "{mode}: exit {code} after {secs:.1}s, {printed} bytes to the terminal: {first:?}; \
             sockets written: {}",
            crate::harness::truncate(&hit_list.join(", "), 300)
        ));
        if hits == 0 {
            env.note(format!(
                "{mode}: the attacker reached no socket (getfd errors {})",
                verdict["getfd_errnos"]
            ));
        }
        if code == TIMED_OUT {
            problems.push(format!(
                "{mode}: the caller hung (killed after {}s) once the container wrote into {hits} \
                 of its sockets",
                VICTIM_LIMIT.as_secs()
            ));
        } else if crashed(code, &said) {
            problems.push(format!(
                "{mode}: the caller crashed (exit {code}): {first:?}"
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}
