//! The re-exec entry point. The caller spawns its own binary (guarded, see
//! `exe_guard`) with `STAGE_ENV` set in the child's environment only; this
//! function sends such a process to its stage and never returns there.

use std::os::fd::{FromRawFd, OwnedFd};

/// Set in the environment of a spawned helper to the stage it runs. An
/// embedder must not set it in its own environment: [`run_if_requested`]
/// would take the process for a helper.
pub const STAGE_ENV: &str = "_RRUN_INIT_STAGE";
pub(crate) const STAGE_BOOTSTRAP: &str = "bootstrap";
pub(crate) const STAGE_HOOKS: &str = "hooks";
/// The fd the channel sits on in a spawned bootstrap.
pub(crate) const CHANNEL_FD: i32 = 3;

/// Call first thing in `main`, before any thread starts. Returns at once
/// (after one getenv) when this process is not a container helper;
/// otherwise runs the helper (the bootstrap of a container or an exec, or
/// the hook runner) and exits, never returning.
pub fn run_if_requested() {
    let Some(stage) = std::env::var_os(STAGE_ENV) else {
        return;
    };
    match stage.to_str() {
        Some(STAGE_BOOTSTRAP) => {
            crate::trace::note_begin();
            super::warnings::collect();
            // SAFETY: the caller placed our end of the channel on fd 3 with
            // dup2 right before execve; nothing else in this fresh process owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(CHANNEL_FD) };
            // dup2 cleared close-on-exec; no container process may inherit it.
            let _ = nix::fcntl::fcntl(
                CHANNEL_FD,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            // Whatever else the caller leaked to us (fds without
            // close-on-exec, a jobserver pipe...) would be held open by the
            // init until start: close it. Everything we need arrives over
            // the channel.
            let _ = crate::utils::close_from(CHANNEL_FD as u32 + 1);
            super::bootstrap::main(fd)
        }
        Some(STAGE_HOOKS) => super::hook_runner::main(),
        _ => {
            eprintln!("rrun: unknown {STAGE_ENV} {stage:?}");
            std::process::exit(127)
        }
    }
}
