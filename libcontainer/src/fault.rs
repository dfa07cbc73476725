//! Fault injection for the tests (cargo feature `fault-injection`): the
//! [`fault_point!`](crate::fault_point) calls mark each step of create,
//! start, exec, kill and delete, on the caller's side and in the bootstrap,
//! init and exec'd process. A test names one point in `RRUN_FAULT`
//! (`create:cgroup-made`), and the process that reaches it SIGKILLs
//! itself there, as an engine killing rrun (or the OOM killer, an init)
//! at that moment would. The tests then check that `state` answers,
//! `delete --force` leaves nothing and the id can be used again.
//!
//! Without the feature the macro expands to nothing: neither the variable
//! nor the names of the points are in the binary (a release build never
//! has the feature; only test builds turn it on).

/// The environment variable that names the point to die at.
#[cfg(feature = "fault-injection")]
pub const FAULT_ENV: &str = "RRUN_FAULT";

/// Die here, by SIGKILL, when `RRUN_FAULT` names this point.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var_os(FAULT_ENV).is_some_and(|wanted| wanted == name) {
        // SIGKILL, not exit: no destructor, no unwinding, no flush; what
        // an engine's kill -9 would leave.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGKILL);
        // Still here: this is pid 1 of a new pid namespace, which the
        // kernel shields from signals sent from inside it. Leave as
        // abruptly as can be, with the status of a SIGKILLed process.
        // SAFETY: _exit ends the process at once; nothing runs after it.
        unsafe { libc::_exit(128 + libc::SIGKILL) }
    }
}

/// A fault-injection point named `"<operation>:<step>"` (see the module),
/// nothing without the `fault-injection` feature; and always a step of the
/// step trace ([`crate::trace`], when tracing is on).
#[macro_export]
#[doc(hidden)]
macro_rules! fault_point {
    ($name:literal) => {
        $crate::trace::step($name);
        #[cfg(feature = "fault-injection")]
        $crate::fault::point($name);
    };
}
