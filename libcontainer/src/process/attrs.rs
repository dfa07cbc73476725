//! Per-process attributes other than rlimits and credentials:
//! oomScoreAdj, ioPriority, scheduler, personality, apparmorProfile, and
//! the cwd check.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{stat, SFlag};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

use super::ProcessError;

/// Sets oom_score_adj of this process, through the process's procfs
/// handle (`/proc/<pid>/oom_score_adj` of a private procfs instance, see
/// [`crate::procfs`]), never through the container's /proc, which a
/// volume or a mount over the file could turn into another file.
/// Nothing is written when the value is already in place (the bootstrap
/// set it before the namespaces, see [`set_oom_score_adj_early`]).
/// Lowering it below the value inherited needs CAP_SYS_RESOURCE, so a
/// negative value may fail with EACCES.
pub fn set_oom_score_adj(value: i32) -> Result<(), ProcessError> {
    let error = |source| ProcessError::OomScoreAdj { value, source };
    let proc = crate::procfs::handle().map_err(error)?;
    write_oom_score_adj(proc, value).map_err(error)
}

/// The same, from the bootstrap before it joins or creates any namespace
/// (runc does it there too): the init inherits the value. In a new user
/// namespace the init could not write it itself: its /proc files belong
/// to the host's root while it is not dumpable. `proc` is the bootstrap's
/// own handle, not the cached one, so that the init opens its own in the
/// container's namespaces.
pub fn set_oom_score_adj_early(
    proc: &crate::procfs::ProcfsHandle,
    value: i32,
) -> Result<(), ProcessError> {
    write_oom_score_adj(proc, value).map_err(|source| ProcessError::OomScoreAdj { value, source })
}

fn write_oom_score_adj(
    proc: &crate::procfs::ProcfsHandle,
    value: i32,
) -> Result<(), crate::procfs::ProcfsError> {
    let current = proc.read_self("oom_score_adj")?;
    if current.trim().parse::<i32>() == Ok(value) {
        return Ok(());
    }
    proc.write_self("oom_score_adj", &value.to_string())
}

// From include/uapi/linux/ioprio.h.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_LEVELS: i64 = 8;

/// ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | priority).
pub fn set_io_priority(io_priority: &LinuxIOPriority) -> Result<(), ProcessError> {
    let class = io_priority.class();
    let priority = io_priority.priority();
    let error = |reason: String| ProcessError::IoPriority {
        class: class.to_string(),
        priority,
        reason,
    };
    if !(0..IOPRIO_LEVELS).contains(&priority) {
        return Err(error(format!(
            "priority must be 0 to {}",
            IOPRIO_LEVELS - 1
        )));
    }
    let class_number: u32 = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    // The range check above makes the cast lossless.
    let value = (class_number << IOPRIO_CLASS_SHIFT) | priority as u32;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours;
    // who = 0 means the calling process.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if ret < 0 {
        return Err(error(Errno::last().to_string()));
    }
    Ok(())
}

/// struct sched_attr of include/uapi/linux/sched/types.h (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// sched_setattr(self) with the policy, flags, nice, priority and the
/// SCHED_DEADLINE runtime/deadline/period. The kernel validates the
/// combination (e.g. priority 1..99 only for FIFO/RR) and says EINVAL.
pub fn set_scheduler(scheduler: &Scheduler) -> Result<(), ProcessError> {
    let error = |reason: String| ProcessError::Scheduler {
        policy: scheduler.policy().to_string(),
        reason,
    };
    let policy = policy_number(*scheduler.policy())
        .ok_or_else(|| error("this policy does not exist in Linux".into()))?;
    let priority = scheduler.priority().unwrap_or(0);
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: scheduler
            .flags()
            .iter()
            .flatten()
            .fold(0, |bits, flag| bits | flag_bit(*flag)),
        sched_nice: scheduler.nice().unwrap_or(0),
        sched_priority: u32::try_from(priority)
            .map_err(|_| error(format!("priority {priority} is negative")))?,
        sched_runtime: scheduler.runtime().unwrap_or(0),
        sched_deadline: scheduler.deadline().unwrap_or(0),
        sched_period: scheduler.period().unwrap_or(0),
        ..SchedAttr::default()
    };
    // SAFETY: attr is a live, fully initialised sched_attr whose size field
    // tells the kernel how much of it to read; pid 0 is the caller.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if ret < 0 {
        return Err(error(Errno::last().to_string()));
    }
    Ok(())
}

fn policy_number(policy: LinuxSchedulerPolicy) -> Option<u32> {
    match policy {
        LinuxSchedulerPolicy::SchedOther => Some(0),
        LinuxSchedulerPolicy::SchedFifo => Some(1),
        LinuxSchedulerPolicy::SchedRr => Some(2),
        LinuxSchedulerPolicy::SchedBatch => Some(3),
        // SCHED_ISO (4) is reserved but was never implemented in Linux.
        LinuxSchedulerPolicy::SchedIso => None,
        LinuxSchedulerPolicy::SchedIdle => Some(5),
        LinuxSchedulerPolicy::SchedDeadline => Some(6),
    }
}

fn flag_bit(flag: LinuxSchedulerFlag) -> u64 {
    match flag {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

// From include/uapi/linux/personality.h.
const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// personality(LINUX or LINUX32). The spec defines no flag values yet, so
/// any flag is refused rather than silently ignored.
pub fn set_personality(personality: &LinuxPersonality) -> Result<(), ProcessError> {
    let domain = personality.domain();
    if let Some(flag) = personality.flags().iter().flatten().next() {
        return Err(ProcessError::Personality {
            what: format!("flag {flag:?}"),
            reason: "no personality flag is defined by the runtime spec".into(),
        });
    }
    let persona = match domain {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality() only changes the calling process's execution
    // domain; it takes an integer and touches no memory of ours.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(ProcessError::Personality {
            what: format!("domain {domain}"),
            reason: Errno::last().to_string(),
        });
    }
    Ok(())
}

/// The cwd must be an absolute path to a directory of the container, so
/// that a typo fails `create` rather than the final execve.
pub fn check_cwd(cwd: &Path) -> Result<(), ProcessError> {
    let error = |reason: String| ProcessError::Cwd {
        cwd: cwd.to_path_buf(),
        reason,
    };
    if !cwd.is_absolute() {
        return Err(error("must be an absolute path".into()));
    }
    let st = stat(cwd).map_err(|errno| error(errno.to_string()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(error(Errno::ENOTDIR.to_string()));
    }
    Ok(())
}

/// Whether the kernel runs AppArmor (`/sys/module/apparmor/parameters/enabled`
/// says `Y`), which is when Docker and containerd put a profile in
/// `process.apparmorProfile`.
pub fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}

/// `process.apparmorProfile`, as runc applies it: "exec <profile>" written
/// to this process's `attr/apparmor/exec` (`attr/exec` on kernels before
/// 5.8), so that the profile takes effect at the execve of the container's
/// process. Written through the process's procfs handle, never the
/// container's /proc.
pub fn set_apparmor_profile(profile: &str) -> Result<(), ProcessError> {
    let error = |source| ProcessError::AppArmor {
        profile: profile.to_string(),
        source,
    };
    let proc = crate::procfs::handle().map_err(error)?;
    let value = format!("exec {profile}");
    match proc.write_self("attr/apparmor/exec", &value) {
        Err(crate::procfs::ProcfsError::Open {
            errno: Errno::ENOENT,
            ..
        }) => proc.write_self("attr/exec", &value).map_err(error),
        other => other.map_err(error),
    }
}
