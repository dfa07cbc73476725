//! `containerd-shim-rrun-v2`: a containerd shim v2 (`io.containerd.rrun.v2`)
//! that runs containers with rrun's library in its own process: no runtime
//! binary is executed for create, start, exec, kill or delete.
//!
//! The containerd side (flags, the ttrpc server, the event client, the
//! SIGCHLD reaper) is containerd's Rust shim crate in its synchronous
//! flavour; the library is synchronous too, so no async runtime is needed.
//!
//! * `service` is the task API (one `Service` per shim process, serving
//!   one container, or every container of a pod).
//! * `process` is the table of containers and processes: exits from the
//!   crate's reaper, the order of events, `Wait`.
//! * `stdio` is a process's stdin/stdout/stderr as containerd hands them
//!   over (FIFOs, `file://`, `binary://`) and its pty.
//! * `events` publishes to containerd, reconnecting when it restarts.
//! * `trim` gives back the resident code pages of a shim gone quiet.
//! * `metrics` converts the library's cgroup statistics to containerd's
//!   cgroups v1 or v2 `Metrics`.
//! * `shim` is the `start` and `delete` subcommands.

mod events;
mod logging;
mod metrics;
mod process;
mod service;
mod shim;
mod stdio;
mod trim;

/// The runtime name containerd knows this shim by.
pub const RUNTIME_ID: &str = "io.containerd.rrun.v2";

fn main() {
    // Container helpers re-execute this binary: they never return here.
    libcontainer::init::entry::run_if_requested();
    // One malloc arena for every thread: the shim's threads mostly wait,
    // and an arena per thread costs resident memory for nothing.
    // SAFETY: mallopt takes two integers; no thread runs yet.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    logging::init();
    containerd_shim::run::<shim::RrunShim>(RUNTIME_ID, None);
}
