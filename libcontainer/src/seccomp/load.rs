//! Installing a compiled seccomp filter on the calling thread (and, with
//! `SECCOMP_FILTER_FLAG_TSYNC`, on every thread of the process).
//!
//! The filter is loaded with a raw `seccomp(SECCOMP_SET_MODE_FILTER)`, never
//! through a library that sets `no_new_privs` on the way (seccompiler's
//! `apply_filter` does): Docker's default (`noNewPrivileges: false`) must
//! leave a setuid binary in the container able to gain privileges.
//!
//! # Where the filter is loaded
//!
//! Without no_new_privs the kernel lets only a task with CAP_SYS_ADMIN in its
//! user namespace load a filter (EACCES otherwise). The init loads it as its
//! last step before execve, with CAP_SYS_ADMIN kept through the privilege
//! drop when `noNewPrivileges` is false; only capset (that case) and execve
//! follow. See ARCHITECTURE.md ("Seccomp is loaded last") and
//! `seccomp::filter`.
//!
//! # Flags
//!
//! `linux.seccomp.flags` names map to `SECCOMP_FILTER_FLAG_*` bits. An
//! unknown name is an error naming it. A known flag this kernel lacks is an
//! error naming the flag, found by probing the kernel before loading
//! ([`kernel_supports_flag`]). This follows runc, which asks libseccomp
//! whether each flag can be applied (its API level reflects the kernel)
//! and refuses the profile otherwise, rather than silently running the
//! container with less than the profile asked for. (Read from runc's
//! design, not verified here: kernel 6.18 has every flag.)
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` only means something with a
//! notify listener: without a NOTIFY action in the filter it is dropped, as
//! libseccomp does (the kernel would refuse it with EINVAL).
//!
//! A filter with a NOTIFY action is loaded with `_NEW_LISTENER`, and `load`
//! returns the listener fd. With TSYNC too, `_TSYNC_ESRCH` is added (the
//! kernel refuses TSYNC with NEW_LISTENER otherwise, because the return
//! value cannot be both a listener fd and a thread id).

use std::os::fd::{FromRawFd, OwnedFd};

use libc::{c_long, c_ulong, sock_filter, sock_fprog};

use super::bpf::RET_K;
use nix::errno::Errno;

/// The most instructions the kernel takes in one filter.
pub use super::bpf::BPF_MAXINSNS as MAX_INSTRUCTIONS;

const FLAG_TSYNC: &str = "SECCOMP_FILTER_FLAG_TSYNC";
const FLAG_LOG: &str = "SECCOMP_FILTER_FLAG_LOG";
const FLAG_SPEC_ALLOW: &str = "SECCOMP_FILTER_FLAG_SPEC_ALLOW";
const FLAG_WAIT_KILLABLE_RECV: &str = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";
/// The action part of a seccomp verdict (SECCOMP_RET_ACTION_FULL).
const RET_ACTION_FULL: u32 = 0xffff_0000;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("linux.seccomp.flags: unknown flag {flag:?}")]
    UnknownFlag { flag: String },
    #[error("linux.seccomp.flags: {flag} is not supported by this kernel: {errno}")]
    FlagUnsupported { flag: String, errno: Errno },
    #[error("linux.seccomp: the compiled filter is empty")]
    EmptyFilter,
    #[error("linux.seccomp: the compiled filter has {len} instructions, the kernel takes at most {MAX_INSTRUCTIONS}")]
    FilterTooLong { len: usize },
    #[error("linux.seccomp: loading the filter without no_new_privs needs CAP_SYS_ADMIN: {errno}")]
    NotPermitted { errno: Errno },
    #[error("linux.seccomp: this process already has a filter with a notify listener (one is allowed): {errno}")]
    ListenerBusy { errno: Errno },
    #[error(
        "linux.seccomp.flags: {FLAG_TSYNC}: thread {tid} could not be synchronized to the filter"
    )]
    ThreadNotSynchronized { tid: c_long },
    #[error("linux.seccomp.flags: {FLAG_TSYNC}: a thread could not be synchronized to the filter: {errno}")]
    ThreadsNotSynchronized { errno: Errno },
    #[error("linux.seccomp: seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}): {errno}")]
    Sys { flags: c_ulong, errno: Errno },
}

/// Loads `filter` on the calling thread with the profile's `flags`.
/// Returns the notify listener fd when the filter has a NOTIFY action
/// (`SECCOMP_RET_USER_NOTIF`), `None` otherwise.
pub fn load(filter: &[sock_filter], flags: &[String]) -> Result<Option<OwnedFd>, LoadError> {
    let notify = has_notify_action(filter);
    let bits = checked_flag_bits(filter, flags, notify)?;
    install(filter, bits, notify)
}

/// Everything [`load`] checks before it installs: the filter's length,
/// the flags' names, that this kernel has each of them. Returns the
/// `seccomp(2)` flags word for [`install`], so that the check can run long
/// before the filter is installed (at create, in the caller).
/// `notify` is [`has_notify_action`] of the filter.
pub fn checked_flag_bits(
    filter: &[sock_filter],
    flags: &[String],
    notify: bool,
) -> Result<c_ulong, LoadError> {
    check_length(filter)?;
    let bits = flag_bits(flags, notify)?;
    check_kernel_has(flags, notify)?;
    Ok(bits)
}

/// Whether some instruction of `filter` returns SECCOMP_RET_USER_NOTIF.
pub fn has_notify_action(filter: &[sock_filter]) -> bool {
    filter
        .iter()
        .any(|insn| insn.code == RET_K && insn.k & RET_ACTION_FULL == libc::SECCOMP_RET_USER_NOTIF)
}

/// The `SECCOMP_FILTER_FLAG_*` bit of one OCI flag name.
pub fn flag_bit(flag: &str) -> Result<c_ulong, LoadError> {
    match flag {
        FLAG_TSYNC => Ok(libc::SECCOMP_FILTER_FLAG_TSYNC),
        FLAG_LOG => Ok(libc::SECCOMP_FILTER_FLAG_LOG),
        FLAG_SPEC_ALLOW => Ok(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW),
        FLAG_WAIT_KILLABLE_RECV => Ok(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV),
        _ => Err(LoadError::UnknownFlag { flag: flag.into() }),
    }
}

/// Whether this kernel knows the flag named `flag` (an OCI flag name).
/// Probes with a NULL program: the kernel checks the flags before it reads
/// the program, so EFAULT means the flags passed and EINVAL that it lacks one.
pub fn kernel_supports_flag(flag: &str) -> Result<bool, LoadError> {
    let bit = flag_bit(flag)?;
    match probe(bit | companion_bits(bit)) {
        Errno::EFAULT => Ok(true),
        Errno::EINVAL => Ok(false),
        errno => Err(LoadError::Sys { flags: bit, errno }),
    }
}

fn check_length(filter: &[sock_filter]) -> Result<(), LoadError> {
    match filter.len() {
        0 => Err(LoadError::EmptyFilter),
        len if len > MAX_INSTRUCTIONS => Err(LoadError::FilterTooLong { len }),
        _ => Ok(()),
    }
}

/// The bits the kernel is given for `flags`, plus NEW_LISTENER (and
/// TSYNC_ESRCH with TSYNC) when the filter notifies.
fn flag_bits(flags: &[String], notify: bool) -> Result<c_ulong, LoadError> {
    let mut bits = 0;
    for flag in flags {
        bits |= flag_bit(flag)?;
    }
    if !notify {
        // libseccomp only passes it with a listener; the kernel refuses it alone.
        return Ok(bits & !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
    }
    bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    Ok(bits)
}

/// The flags the kernel requires alongside `bit` for a probe to be valid.
fn companion_bits(bit: c_ulong) -> c_ulong {
    if bit == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    }
}

fn check_kernel_has(flags: &[String], notify: bool) -> Result<(), LoadError> {
    for flag in flags {
        if flag == FLAG_WAIT_KILLABLE_RECV && !notify {
            continue;
        }
        if !kernel_supports_flag(flag)? {
            return Err(LoadError::FlagUnsupported {
                flag: flag.clone(),
                errno: Errno::EINVAL,
            });
        }
    }
    if notify && !probe_is_supported(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER) {
        return Err(LoadError::FlagUnsupported {
            flag: "SECCOMP_FILTER_FLAG_NEW_LISTENER (needed by SCMP_ACT_NOTIFY)".into(),
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

fn probe_is_supported(bits: c_ulong) -> bool {
    probe(bits) == Errno::EFAULT
}

/// seccomp(SECCOMP_SET_MODE_FILTER, bits, NULL): never installs anything.
fn probe(bits: c_ulong) -> Errno {
    // SAFETY: a NULL program makes the kernel fail with EFAULT once the
    // flags are accepted, before it allocates or installs anything.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bits,
            std::ptr::null::<sock_fprog>(),
        )
    };
    if ret < 0 {
        Errno::last()
    } else {
        // Cannot happen with a NULL program; treat as "not understood".
        Errno::EINVAL
    }
}

/// Installs `filter` with the flags word from [`checked_flag_bits`]: one
/// `seccomp(2)` call and nothing else (no allocation), so that it can be
/// the init's last step but execve. Returns the listener fd when `notify`.
pub fn install(
    filter: &[sock_filter],
    bits: c_ulong,
    notify: bool,
) -> Result<Option<OwnedFd>, LoadError> {
    let prog = sock_fprog {
        // check_length kept it at most MAX_INSTRUCTIONS, which fits u16.
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel
    // only reads the program (copies it) and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            bits,
            &prog as *const sock_fprog,
        )
    };
    if ret < 0 {
        return Err(classify(bits, Errno::last()));
    }
    if notify {
        // SAFETY: with NEW_LISTENER a successful call returns a new fd that
        // nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    if ret > 0 {
        // TSYNC without a listener returns the id of a thread it could not
        // move to the filter (the filter is then not installed at all).
        return Err(LoadError::ThreadNotSynchronized { tid: ret });
    }
    Ok(None)
}

fn classify(flags: c_ulong, errno: Errno) -> LoadError {
    match errno {
        Errno::EACCES => LoadError::NotPermitted { errno },
        Errno::EBUSY if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 => {
            LoadError::ListenerBusy { errno }
        }
        Errno::ESRCH if flags & libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH != 0 => {
            LoadError::ThreadsNotSynchronized { errno }
        }
        _ => LoadError::Sys { flags, errno },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(k: u32) -> sock_filter {
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k,
        }
    }

    #[test]
    fn notify_is_found_in_returns_only() {
        assert!(!has_notify_action(&[ret(libc::SECCOMP_RET_ALLOW)]));
        assert!(has_notify_action(&[ret(libc::SECCOMP_RET_USER_NOTIF)]));
        let load_of_notify = sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_USER_NOTIF,
        };
        assert!(!has_notify_action(&[load_of_notify]));
    }

    #[test]
    fn flags_map_to_bits() {
        let flags = [FLAG_TSYNC.to_string(), FLAG_LOG.to_string()];
        assert_eq!(
            flag_bits(&flags, false).unwrap(),
            libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_LOG
        );
        assert_eq!(
            flag_bits(&flags, true).unwrap(),
            libc::SECCOMP_FILTER_FLAG_TSYNC
                | libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
                | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        );
        let killable = [FLAG_WAIT_KILLABLE_RECV.to_string()];
        assert_eq!(flag_bits(&killable, false).unwrap(), 0);
    }

    #[test]
    fn unknown_flag_is_named() {
        let err = flag_bits(&["SECCOMP_FILTER_FLAG_BOGUS".into()], false).unwrap_err();
        assert!(
            err.to_string().contains("SECCOMP_FILTER_FLAG_BOGUS"),
            "{err}"
        );
    }
}
