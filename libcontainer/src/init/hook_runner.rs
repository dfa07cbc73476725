//! Caller-side hooks (prestart, createRuntime, poststart, poststop) run in a
//! short-lived helper process of our own: the caller may be a threaded
//! program whose SIGCHLD reaper takes every child's exit status, so the
//! library never waits for a hook itself. The helper waits for the hooks,
//! its own children, and reports on its stdout; we read that to EOF.

use crate::init::entry::{STAGE_ENV, STAGE_HOOKS};
use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

#[derive(Serialize, Deserialize)]
struct Request {
    phase: String,
    /// poststart and poststop: a failing hook is a warning and the
    /// remaining hooks still run (runtime spec, "Lifecycle").
    keep_going: bool,
    hooks: Vec<Hook>,
    state: String,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    error: Option<String>,
}

/// Run `hooks` with `state` on their stdin, stopping at the first failure;
/// the error says which hook failed and how.
pub fn run_hooks(hooks: &[Hook], state: &str, phase: &str) -> Result<(), String> {
    run(hooks, state, phase, false)
}

/// Run every hook even when some fail (poststart, poststop); the error
/// lists the failures, one per line, for the caller to log as warnings.
pub fn run_all_hooks(hooks: &[Hook], state: &str, phase: &str) -> Result<(), String> {
    run(hooks, state, phase, true)
}

fn run(hooks: &[Hook], state: &str, phase: &str, keep_going: bool) -> Result<(), String> {
    if hooks.is_empty() {
        return Ok(());
    }
    let request = serde_json::to_vec(&Request {
        phase: phase.to_string(),
        keep_going,
        hooks: hooks.to_vec(),
        state: state.to_string(),
    })
    .map_err(|e| format!("{phase} hooks: {e}"))?;
    let mut child = Command::new("/proc/self/exe")
        .env(STAGE_ENV, STAGE_HOOKS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{phase} hooks: spawning the hook runner: {e}"))?;
    let written = child.stdin.take().map(|mut s| s.write_all(&request));
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    // Waited for only when asked (see `init::reap_own_helpers`): in an
    // embedder, its own reaper takes the child.
    if crate::init::reaps_own_helpers() {
        let _ = child.wait();
    }
    match serde_json::from_slice::<Reply>(&out) {
        Ok(Reply { error: None }) => Ok(()),
        Ok(Reply { error: Some(e) }) => Err(e),
        Err(_) => Err(format!(
            "{phase} hooks: the hook runner died without a reply (stdin: {:?})",
            written.map(|r| r.is_ok())
        )),
    }
}

fn run_requested(req: &Request) -> Option<String> {
    let state = req.state.as_bytes();
    if !req.keep_going {
        return crate::hooks::run(&req.hooks, state, &req.phase)
            .err()
            .map(|e| e.to_string());
    }
    let failures: Vec<String> = req
        .hooks
        .iter()
        .filter_map(|h| crate::hooks::run(std::slice::from_ref(h), state, &req.phase).err())
        .map(|e| e.to_string())
        .collect();
    (!failures.is_empty()).then(|| failures.join("\n"))
}

/// The helper's side. Its stdout is the reply pipe; the hooks write their
/// own output to our stderr instead, so that it cannot garble the reply.
pub fn main() -> ! {
    use std::os::fd::FromRawFd;
    let reply_fd = nix::fcntl::fcntl(1, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3));
    let _ = nix::unistd::dup2(2, 1);
    let Ok(reply_fd) = reply_fd else {
        std::process::exit(1)
    };
    // SAFETY: F_DUPFD_CLOEXEC just made this fd for us alone.
    let mut reply_pipe = unsafe { std::fs::File::from_raw_fd(reply_fd) };
    let mut input = Vec::new();
    let reply = match std::io::stdin().read_to_end(&mut input) {
        Err(e) => Reply {
            error: Some(format!("hook runner: reading stdin: {e}")),
        },
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Err(e) => Reply {
                error: Some(format!("hook runner: bad request: {e}")),
            },
            Ok(req) => Reply {
                error: run_requested(&req),
            },
        },
    };
    let out = serde_json::to_vec(&reply).unwrap_or_default();
    let _ = reply_pipe.write_all(&out);
    std::process::exit(0)
}
