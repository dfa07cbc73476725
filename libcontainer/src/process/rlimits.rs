//! process.rlimits: every POSIX rlimit type, set on the init itself so that
//! execve hands them to the container process.

use nix::sys::resource::{setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use super::ProcessError;

/// Sets every rlimit in order. Raising a hard limit needs CAP_SYS_RESOURCE
/// in the init's user namespace; without it setrlimit fails with EPERM and
/// that is an error, as in runc: the container must not run with limits
/// other than the ones it asked for.
pub fn apply(limits: &[PosixRlimit]) -> Result<(), ProcessError> {
    limits.iter().try_for_each(apply_one)
}

fn apply_one(limit: &PosixRlimit) -> Result<(), ProcessError> {
    // u64::MAX is RLIM_INFINITY on Linux, so the spec's values map 1:1.
    setrlimit(resource_of(limit.typ()), limit.soft(), limit.hard()).map_err(|errno| {
        ProcessError::Rlimit {
            rlimit: limit.typ().to_string(),
            soft: limit.soft(),
            hard: limit.hard(),
            errno,
        }
    })
}

fn resource_of(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}
