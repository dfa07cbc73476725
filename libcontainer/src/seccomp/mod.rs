//! `linux.seccomp`: compiling an OCI seccomp profile into a classic BPF
//! program for `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! For embedders: [`notify`], to be a seccomp agent (or hand a notify fd
//! to one), and [`Filter`], the compiled profile a
//! [`crate::config::Config`] holds. The compiler is the library's.
//!
//! # Why rrun generates the BPF itself
//! runc, crun and youki call libseccomp (C); `seccompiler` (pure Rust) lacks
//! `SCMP_ACT_NOTIFY` and the x86/x32 sub-architectures that Docker's default
//! profile names. rrun generates the filter in-house so that it stays one
//! static-friendly binary without C libraries, and proves it equal to
//! libseccomp's decisions with a reference model ([`model`]) run against the
//! compiled program in a BPF interpreter ([`bpf`]), by property tests, and
//! (later) by comparing outcomes with runc.
//!
//! # Semantics (mirroring libseccomp as runc drives it)
//! - Architectures: the native architecture is always filtered (libseccomp's
//!   `seccomp_init` adds it) plus every listed x86-family one. x86_64 and x32
//!   share `AUDIT_ARCH_X86_64` and are told apart by `nr >= 0x40000000`.
//!   Architectures of other families (arm64, s390x...) can never match on an
//!   x86_64 host and are skipped; names oci-spec does not know fail parsing.
//! - A call from an architecture not in the filter gets `SECCOMP_RET_KILL_THREAD`:
//!   libseccomp's default `SCMP_FLTATR_ACT_BADARCH` is `SCMP_ACT_KILL`, and
//!   runc does not change it. The same holds for x32 calls when only x86_64
//!   is listed (and vice versa), as libseccomp filters them out.
//! - Syscall names unknown to an architecture are skipped for that
//!   architecture (runc logs and ignores them).
//! - A rule whose action equals the default action is dropped (runc skips it
//!   because libseccomp refuses it), so it can never shadow a later rule.
//! - Several `args` in one rule are ANDed, except that when one argument index
//!   appears more than once runc adds each condition as its own rule, so they
//!   are ORed; rrun does the same.
//! - Precedence for one syscall (checked against libseccomp 2.5.4): an
//!   unconditional rule wins over conditional ones whatever their order, and
//!   the first unconditional rule wins over later unconditional ones.
//!   Among conditional rules the first matching one in profile order wins.
//!   libseccomp instead builds a decision tree: it checks higher argument
//!   indexes first and, on one argument, EQ before other ops; it refuses
//!   (EEXIST, so runc fails) a rule whose conditions equal or extend an
//!   existing rule's with a different action, and silently drops a rule that
//!   extends an existing shorter one. So when one syscall has conditional
//!   rules with *different* actions that can match the same call, rrun may
//!   decide (or accept) differently; Docker's profile has no such rules, and
//!   the libseccomp property test excludes them. Likewise libseccomp's tree
//!   does not decide "any rule matches" when a syscall has several
//!   conditional rules and one uses NE, LT or LE (rules `a0 < 0` and
//!   `a0 < 2^32` together never match a0 = 1 in libseccomp 2.5.4): rrun keeps
//!   the evident meaning there, and the property test excludes those too.
//! - libseccomp 2.5.4 bug not copied: with x32 filtered, a rule naming a call
//!   x86_64 lacks (a libseccomp pseudo-syscall such as `socketcall`) can make
//!   its x86_64 section compare the arch word instead of `nr` (seen with a
//!   two-rule profile), giving everything the default action; and a
//!   conditional rule on a call x32 lacks (`get_thread_area`) can make it
//!   drop another syscall's x32 rule (seen with `ioctl`).
//! - Everything else is checked against libseccomp 2.5.4 itself (dlopen'ed
//!   by the tests only, driven as runc 1.1 drives it) on random profiles and
//!   calls, and on every syscall of Docker's profile on all three ABIs.
//! - On 32-bit ABIs (x86, and x32, which libseccomp also treats as 32-bit)
//!   only the low 32 bits of an argument and of the profile's values are
//!   compared; on x86_64 the full 64 bits (high word, then low word).
//! - `SCMP_CMP_MASKED_EQ` is `(arg & value) == (valueTwo & value)`: libseccomp
//!   masks the datum too. One whose mask is 0 on the compared width holds
//!   for every call and is dropped, as libseccomp does, so a rule of only
//!   such conditions is unconditional on that ABI (first unconditional wins).
//! - ERRNO and TRACE use `errnoRet` (`defaultErrnoRet` for the default action),
//!   EPERM when absent, as runc does.
//! - x86 multiplexes sockets and SysV IPC through `socketcall` and `ipc`: as
//!   libseccomp does, a rule for such a call (`socket`, `shmat`...) also
//!   becomes a rule on the multiplexer with `arg0 == call number`, its own
//!   conditions on arg 0 replaced by that one (the others kept as they are).
//! - Not generated: runc's "-ENOSYS for syscalls newer than the profile" stub.

#[doc(hidden)] // building block, pub for the project's tests only
pub mod bpf;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod compile;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod filter;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod load;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod model;
pub mod notify;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod tables;

#[doc(hidden)] // compiler internal, pub for the project's tests only
pub use compile::compile;
pub use filter::{Armed, Filter, FilterError};

use oci_spec::runtime::{Arch as OciArch, LinuxSeccomp, LinuxSeccompAction};

/// `AUDIT_ARCH_X86_64` (also x32's, told apart by [`X32_SYSCALL_BIT`]).
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Set in `seccomp_data.nr` for x32 syscalls.
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `SECCOMP_RET_KILL_THREAD`: what a call from an unlisted architecture gets.
pub(crate) const RET_BAD_ARCH: u32 = 0;
/// The errno ERRNO and TRACE actions return when the profile names none.
pub(crate) const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// x86 `socketcall(2)` call numbers (linux/net.h `SYS_*`).
const SOCKETCALLS: &[(&str, u32)] = &[
    ("socket", 1),
    ("bind", 2),
    ("connect", 3),
    ("listen", 4),
    ("accept", 5),
    ("getsockname", 6),
    ("getpeername", 7),
    ("socketpair", 8),
    ("send", 9),
    ("recv", 10),
    ("sendto", 11),
    ("recvfrom", 12),
    ("shutdown", 13),
    ("setsockopt", 14),
    ("getsockopt", 15),
    ("sendmsg", 16),
    ("recvmsg", 17),
    ("accept4", 18),
    ("recvmmsg", 19),
    ("sendmmsg", 20),
];
/// x86 `ipc(2)` call numbers (linux/ipc.h).
const IPC_CALLS: &[(&str, u32)] = &[
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

/// The x86-family syscall ABIs rrun filters.
#[doc(hidden)] // compiler internal, pub for the project's tests only
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X86,
    X32,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::X86, Arch::X32];

    /// The ABI this binary runs under.
    pub fn native() -> Arch {
        if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Arch::X32
        } else {
            Arch::X86_64
        }
    }

    /// The `seccomp_data.arch` value of this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
        }
    }

    /// Whether arguments are compared on all 64 bits (else the low 32 only).
    pub fn has_64bit_args(self) -> bool {
        self == Arch::X86_64
    }

    /// The name -> number table, sorted by name.
    pub fn syscalls(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::X86 => tables::X86,
            Arch::X32 => tables::X32,
        }
    }

    /// The number of `name` on this ABI, as seen in `seccomp_data.nr`.
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        let table = self.syscalls();
        let at = table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        Some(table[at].1)
    }

    /// The name of syscall `nr` on this ABI.
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        self.syscalls()
            .iter()
            .find(|(_, n)| *n == nr)
            .map(|(name, _)| *name)
    }

    /// On x86, the multiplexer (`socketcall` or `ipc`) that also carries
    /// `name`, and the call number it then has in arg 0.
    pub fn multiplexed(self, name: &str) -> Option<(&'static str, u32)> {
        if self != Arch::X86 {
            return None;
        }
        let find = |table: &[(&str, u32)]| table.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
        find(SOCKETCALLS)
            .map(|call| ("socketcall", call))
            .or_else(|| find(IPC_CALLS).map(|call| ("ipc", call)))
    }

    /// The ABI a `seccomp_data` (arch, nr) pair belongs to, if x86-family.
    /// Like libseccomp, every nr >= `__X32_SYSCALL_BIT` counts as x32.
    pub fn of_call(audit_arch: u32, nr: u32) -> Option<Arch> {
        match audit_arch {
            AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => Some(Arch::X32),
            AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
            AUDIT_ARCH_I386 => Some(Arch::X86),
            _ => None,
        }
    }

    fn from_oci(arch: OciArch, native: Arch) -> Option<Arch> {
        match arch {
            OciArch::ScmpArchNative => Some(native),
            OciArch::ScmpArchX86_64 => Some(Arch::X86_64),
            OciArch::ScmpArchX86 => Some(Arch::X86),
            OciArch::ScmpArchX32 => Some(Arch::X32),
            _ => None,
        }
    }
}

/// Why a profile could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile's JSON does not parse.
    #[error("linux.seccomp.{path}: {message}")]
    Parse {
        /// The JSON path of the value that failed, under `linux.seccomp`.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// A rule compares an argument beyond the sixth.
    #[error("linux.seccomp.{field}: argument index {index} is out of range 0-5")]
    ArgIndex {
        /// The field (`syscalls[3].args[0].index`).
        field: String,
        /// The index given.
        index: usize,
    },
    /// An `errnoRet` does not fit the action's 16 bits of data.
    #[error("linux.seccomp.{field}: errno {value} is out of range 0-65535")]
    ErrnoRange {
        /// The field (`syscalls[3].errnoRet` or `defaultErrnoRet`).
        field: String,
        /// The value given.
        value: u32,
    },
    /// An errno is given to an action that returns none.
    #[error("linux.seccomp.{field}: {action} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")]
    ErrnoNotTaken {
        /// The field.
        field: String,
        /// The action.
        action: String,
    },
    /// A rule names an empty syscall.
    #[error("linux.seccomp.{field}: empty syscall name")]
    EmptyName {
        /// The field (`syscalls[3].names`).
        field: String,
    },
    /// The profile compiles to more instructions than the kernel takes.
    #[error(
        "linux.seccomp: the compiled filter has {len} instructions, more than BPF_MAXINSNS (4096)"
    )]
    TooLong {
        /// How many.
        len: usize,
    },
    /// A bug of rrun's compiler.
    #[error("linux.seccomp: internal error assembling the filter: {0:?}")]
    Assemble(bpf::AsmError),
}

/// Parses a `linux.seccomp` object, naming the failing field on error
/// (`linux.seccomp.syscalls[3].action: unknown variant ...`).
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub fn parse_profile(json: &str) -> Result<LinuxSeccomp, SeccompError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| SeccompError::Parse {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// The ABIs the filter covers: the native one (always, as libseccomp's
/// `seccomp_init` adds it) and every listed x86-family one, in that order.
pub(crate) fn filtered_arches(seccomp: &LinuxSeccomp, native: Arch) -> Vec<Arch> {
    let listed = seccomp.architectures().iter().flatten();
    let mut arches = vec![native];
    for arch in listed.filter_map(|a| Arch::from_oci(*a, native)) {
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    arches
}

/// The `SECCOMP_RET_*` value of an action; `field` names it in errors.
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<u32, SeccompError> {
    let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
    let with_data = |base: u32| match errno {
        0..=0xffff => Ok(base | errno),
        value => Err(SeccompError::ErrnoRange {
            field: field.to_string(),
            value,
        }),
    };
    let takes_errno = matches!(
        action,
        LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
    );
    if errno_ret.is_some() && !takes_errno {
        // config-linux.md: "When the action doesn't support an errno, the
        // runtime MUST print an error and fail." (runc 1.1.5 ignores it.)
        return Err(SeccompError::ErrnoNotTaken {
            field: field.to_string(),
            action: action.to_string(),
        });
    }
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 0,
        LinuxSeccompAction::ScmpActKillProcess => 0x8000_0000,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        LinuxSeccompAction::ScmpActErrno => with_data(0x0005_0000)?,
        LinuxSeccompAction::ScmpActTrace => with_data(0x7ff0_0000)?,
        LinuxSeccompAction::ScmpActNotify => 0x7fc0_0000,
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        LinuxSeccompAction::ScmpActAllow => 0x7fff_0000,
    })
}

/// The default action's value (`defaultAction` with `defaultErrnoRet`).
#[doc(hidden)] // compiler internal, pub for the project's tests only
pub fn default_action_value(seccomp: &LinuxSeccomp) -> Result<u32, SeccompError> {
    action_value(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "defaultErrnoRet",
    )
}
