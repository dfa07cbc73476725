//! Helpers shared by the library's integration tests (each `tests/*.rs` is
//! its own crate and uses only some of them).
#![allow(dead_code)]

#[path = "isolate.rs"]
pub mod isolate;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult};
use std::fs;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f` in a forked child and returns what it returned there.
pub fn in_child(f: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    // SAFETY: the child only runs `f` and then _exit()s; glibc keeps malloc
    // usable after fork, and the child takes no lock the harness may hold
    // (it prints nothing).
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(read_end);
            let result = catch_unwind(AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("the child panicked".into()));
            let message = match result {
                Ok(text) => format!("O{text}"),
                Err(text) => format!("E{text}"),
            };
            let _ = nix::unistd::write(&write_end, message.as_bytes());
            // SAFETY: _exit ends the child without running the harness's
            // atexit handlers or destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut message = String::new();
            fs::File::from(read_end)
                .read_to_string(&mut message)
                .expect("reading the child's report");
            assert_eq!(
                waitpid(child, None).expect("waitpid"),
                WaitStatus::Exited(child, 0)
            );
            match message.split_at_checked(1) {
                Some(("O", text)) => Ok(text.into()),
                Some(("E", text)) => Err(text.into()),
                _ => panic!("the child reported nothing"),
            }
        }
    }
}
