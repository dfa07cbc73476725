//! A small seccomp agent for tests: listens on a unix socket for runtimes
//! (rrun or runc) that send a container process state with a seccomp notify
//! fd, and answers the container's notifications:
//!
//! * `mkdir`   → fails with ENOMEDIUM (an errno no real mkdir gives here),
//! * `mkdirat` → "succeeds" with 0 without creating anything,
//! * anything else → runs as if unfiltered (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//!
//! So a container that runs `mkdir /x` and sees ENOMEDIUM, or sees success
//! and no /x, saw the agent's answer.
//!
//! ```text
//! seccomp-agent --socket /run/agent.sock [--state-file FILE]
//! ```
//! `--state-file` receives the JSON of each container process state (the
//! last one wins), for a test to check `metadata` and `state`.
//!
//! It lives in libcontainer's examples (built by `cargo test -p
//! libcontainer`, at `target/debug/examples/seccomp-agent`) because it uses
//! the library's agent-side helpers; the conformance crate does not depend
//! on libcontainer.

use std::error::Error;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use libcontainer::seccomp::notify::{self, Answer};

struct Options {
    socket: PathBuf,
    state_file: Option<PathBuf>,
}

fn parse_args() -> Result<Options, Box<dyn Error>> {
    let mut socket = None;
    let mut state_file = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg:?} needs a value"))?;
        match arg.to_str() {
            Some("--socket") => socket = Some(PathBuf::from(value)),
            Some("--state-file") => state_file = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {arg:?}").into()),
        }
    }
    Ok(Options {
        socket: socket.ok_or("--socket PATH is required")?,
        state_file,
    })
}

/// The agent's policy (x86_64 syscall numbers; other arches run unfiltered).
fn answer(notif: &libc::seccomp_notif) -> Answer {
    if notif.data.arch != AUDIT_ARCH_X86_64 {
        return Answer::Continue;
    }
    match i64::from(notif.data.nr) {
        libc::SYS_mkdir => Answer::Errno(libc::ENOMEDIUM),
        libc::SYS_mkdirat => Answer::Value(0),
        _ => Answer::Continue,
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn main() -> Result<(), Box<dyn Error>> {
    let options = parse_args()?;
    notify::check_notif_sizes()?;
    let _ = std::fs::remove_file(&options.socket);
    let listener = UnixListener::bind(&options.socket)
        .map_err(|e| format!("listen on {}: {e}", options.socket.display()))?;
    eprintln!("seccomp-agent: listening on {}", options.socket.display());
    for conn in listener.incoming() {
        let mut conn = conn?;
        let received = match notify::receive_from_runtime(&mut conn) {
            Ok(received) => received,
            Err(e) => {
                eprintln!("seccomp-agent: {e}");
                continue;
            }
        };
        eprintln!(
            "seccomp-agent: notify fd for pid {} (metadata {:?})",
            received.state.pid, received.state.metadata
        );
        if let Some(path) = &options.state_file {
            std::fs::write(path, serde_json::to_vec(&received.state)?)?;
        }
        std::thread::spawn(move || {
            if let Err(e) = notify::serve(received.notify_fd.as_fd(), answer) {
                eprintln!("seccomp-agent: {e}");
            }
        });
    }
    Ok(())
}
