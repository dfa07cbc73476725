//! The step trace (`rrun --debug`): where each millisecond of a command
//! goes. Every [`fault_point!`](crate::fault_point) is also a step, and a
//! few more are marked with [`step`]. The bootstrap and the init record
//! their own steps and send them to the caller (`Message::Steps`) just
//! before they hand over (InitSpawned, Ready), so one report covers the
//! three processes.
//!
//! Times are CLOCK_MONOTONIC, which all three share (a container with a
//! time namespace of its own shifts it only for what runs after execve).
//! Off by default: then a step costs one relaxed atomic load.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

static ENABLED: AtomicBool = AtomicBool::new(false);
static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());
/// Index in [`PROCESSES`] of the process this is.
static PROCESS: AtomicU8 = AtomicU8::new(0);
const PROCESSES: [&str; 4] = ["caller", "bootstrap", "init", "exec"];

/// At most this many steps are kept per process, and taken from the init
/// (its messages are untrusted input).
pub const MAX_STEPS: usize = 256;
const MAX_NAME: usize = 64;

/// One step: which process reached which point, when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    /// `caller`, `bootstrap` or `init` (or `exec` for an exec'd process).
    pub process: String,
    /// The point, `"<operation>:<step>"`.
    pub name: String,
    /// CLOCK_MONOTONIC, in nanoseconds.
    pub at_ns: u64,
}

/// Start recording (the CLI's `--debug`; an embedder may call it too),
/// and mark `name` now, after a `"started"` step at the time of
/// [`note_begin`] if the process called it.
pub fn enable(name: &str) {
    ENABLED.store(true, Ordering::Relaxed);
    let began = BEGAN_NS.load(Ordering::Relaxed);
    if began != 0 {
        record_at("started", began);
    }
    step(name);
}

/// When this process began to run Rust code (set by a helper first thing:
/// it learns whether to trace only from the caller's first message).
static BEGAN_NS: AtomicU64 = AtomicU64::new(0);

/// Note the time the process began to run Rust code: before it knows
/// whether it traces (a helper learns it from its caller's first message,
/// the CLI from its arguments).
pub fn note_begin() {
    BEGAN_NS.store(monotonic_ns(), Ordering::Relaxed);
}

/// A helper process (bootstrap, init, exec'd process) whose caller traces:
/// record from now on, under that process's name, starting with `name`
/// at the time of [`note_begin`].
pub(crate) fn enable_in_helper(process: Helper, name: &str) {
    PROCESS.store(process as u8, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
    if let Ok(mut steps) = STEPS.lock() {
        steps.clear();
    }
    record_at(name, BEGAN_NS.load(Ordering::Relaxed));
}

/// The processes that record steps besides the caller.
#[derive(Clone, Copy)]
pub(crate) enum Helper {
    Bootstrap = 1,
    Init = 2,
    Exec = 3,
}

/// The init and an exec'd process are clones of the bootstrap: they carry
/// its steps, which are its to send, not theirs.
pub(crate) fn became(process: Helper) {
    PROCESS.store(process as u8, Ordering::Relaxed);
    if let Ok(mut steps) = STEPS.lock() {
        steps.clear();
    }
}

/// Whether steps are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Mark a step now (nothing when tracing is off).
pub fn step(name: &str) {
    if enabled() {
        record_at(name, monotonic_ns());
    }
}

fn record_at(name: &str, at_ns: u64) {
    let process = PROCESSES[PROCESS.load(Ordering::Relaxed) as usize % PROCESSES.len()];
    let Ok(mut steps) = STEPS.lock() else { return };
    if steps.len() < MAX_STEPS {
        steps.push(Step {
            process: process.to_string(),
            name: name.to_string(),
            at_ns,
        });
    }
}

/// The steps recorded so far in this process, which are forgotten here.
pub fn take() -> Vec<Step> {
    STEPS
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
}

/// Add steps another process sent (bounded, names cut short).
pub fn merge(remote: Vec<Step>) {
    if !enabled() {
        return;
    }
    let Ok(mut steps) = STEPS.lock() else { return };
    for mut step in remote.into_iter().take(MAX_STEPS) {
        if steps.len() >= 2 * MAX_STEPS {
            break;
        }
        step.process.truncate(MAX_NAME);
        step.name.truncate(MAX_NAME);
        steps.push(step);
    }
}

/// The steps of every process in time order, one line each: the time
/// since the first step and since the one before, in milliseconds.
pub fn report(mut steps: Vec<Step>) -> Vec<String> {
    steps.sort_by_key(|s| s.at_ns);
    let first = steps.first().map_or(0, |s| s.at_ns);
    let mut previous = first;
    steps
        .iter()
        .map(|s| {
            let line = format!(
                "step {:>8.3} ms  +{:>7.3} ms  {:<9} {}",
                ms(s.at_ns.saturating_sub(first)),
                ms(s.at_ns.saturating_sub(previous)),
                s.process,
                s.name
            );
            previous = s.at_ns;
            line
        })
        .collect()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// CLOCK_MONOTONIC now (a vDSO call, no system call).
pub(crate) fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_orders_steps_and_bounds_what_others_send() {
        let step = |process: &str, name: &str, at_ns| Step {
            process: process.into(),
            name: name.into(),
            at_ns,
        };
        let lines = report(vec![
            step("init", "init:b", 3_000_000),
            step("caller", "caller:a", 1_000_000),
        ]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("caller:a") && lines[0].contains("0.000 ms"));
        assert!(lines[1].contains("init:b") && lines[1].contains("+  2.000 ms"));

        ENABLED.store(true, Ordering::Relaxed);
        merge(vec![
            step(&"p".repeat(1000), &"n".repeat(1000), 1);
            10 * MAX_STEPS
        ]);
        let kept = take();
        assert!(kept.len() <= 2 * MAX_STEPS);
        assert!(kept.iter().all(|s| s.name.len() <= MAX_NAME));
    }
}
