//! A profile's filter on its way from `create` to the container process.
//!
//! 1. `create` (the caller) compiles the profile once and checks its flags
//!    against this kernel, so a bad profile fails before anything exists,
//!    with an error naming the field: [`Filter::new`].
//! 2. The filter rides to the init in the bootstrap message. Before the
//!    wait for `start`, the init turns it into an [`Armed`] filter: the
//!    program decoded, and for NOTIFY the connection to the agent (made by
//!    the caller, which sees `listenerPath` on the host) with the message
//!    already encoded.
//! 3. As its last steps before execve the init calls [`Armed::install`]:
//!    one `seccomp(2)` and, with NOTIFY, one `sendmsg(2)` handing the
//!    listener fd to the agent. Nothing else: no allocation, no file, no
//!    getcwd; so a profile cannot break the runtime (see `init::container`
//!    for the calls that may follow: capset and execve).

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use libc::sock_filter;
use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};

use super::load::{self, LoadError};
use super::notify;
use super::{compile, Arch, SeccompError};

/// Why a `linux.seccomp` profile was refused at create, or could not be
/// installed.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The profile does not compile.
    #[error(transparent)]
    Compile(#[from] SeccompError),
    /// This kernel refuses the filter or its flags (at create), or loading
    /// it failed (in the container process).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The profile notifies but names no agent.
    #[error(
        "linux.seccomp.listenerPath: the profile has SCMP_ACT_NOTIFY rules, \
         which need an agent to send the notify fd to"
    )]
    NoListenerPath,
    /// The filter notifies but was armed without an agent connection.
    #[error(
        "linux.seccomp.listenerPath: the profile notifies, but no connection to the agent was made"
    )]
    NoConnection,
    /// rrun compiles profiles for x86-family hosts only.
    #[error("linux.seccomp: rrun has syscall tables for x86_64, x86 and x32 hosts only")]
    UnsupportedHost,
    /// The notify fd could not be sent to the agent.
    #[error("linux.seccomp.listenerPath {path}: sending the notify fd: {errno}")]
    Handoff {
        /// The agent's socket.
        path: PathBuf,
        /// The errno `sendmsg` failed with.
        errno: Errno,
    },
}

/// A compiled, checked profile. Serializable: it travels to the init.
#[derive(Clone, Serialize, Deserialize)]
pub struct Filter {
    /// The program, one instruction per word (see [`encode`]).
    words: Vec<u64>,
    /// The `seccomp(2)` flags, checked against this kernel.
    flag_bits: u64,
    notifies: bool,
    listener_path: Option<PathBuf>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.words.len())
            .field("flag_bits", &self.flag_bits)
            .field("notifies", &self.notifies)
            .finish()
    }
}

impl Filter {
    /// Compiles `seccomp` for this host and checks it can be loaded here.
    pub fn new(seccomp: &LinuxSeccomp) -> Result<Filter, FilterError> {
        if !cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
            // The tables are x86's: elsewhere every call would be a bad arch.
            return Err(FilterError::UnsupportedHost);
        }
        let program = compile(seccomp, Arch::native())?;
        let flags: Vec<String> = seccomp
            .flags()
            .iter()
            .flatten()
            .map(|f| f.to_string())
            .collect();
        let notifies = load::has_notify_action(&program);
        let flag_bits = load::checked_flag_bits(&program, &flags, notifies)?;
        let listener_path = seccomp
            .listener_path()
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        if notifies && listener_path.is_none() {
            return Err(FilterError::NoListenerPath);
        }
        Ok(Filter {
            words: program.iter().map(encode).collect(),
            flag_bits,
            notifies,
            listener_path,
        })
    }

    /// Whether the filter has NOTIFY actions: the caller must then connect
    /// to [`Filter::listener_path`] and hand the init the connection.
    pub fn notifies(&self) -> bool {
        self.notifies
    }

    /// `linux.seccomp.listenerPath`: the agent's socket, on the host.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// The BPF program, as `seccomp(2)` takes it.
    pub fn program(&self) -> Vec<sock_filter> {
        self.words.iter().map(|w| decode(*w)).collect()
    }

    /// Ready to install; `agent` is the connection to the listener and the
    /// container process state to send on it (required when the filter
    /// notifies).
    pub fn arm(&self, agent: Option<(OwnedFd, Vec<u8>)>) -> Result<Armed, FilterError> {
        let handoff = match (self.notifies, agent) {
            (false, _) => None,
            (true, None) => return Err(FilterError::NoConnection),
            (true, Some((socket, payload))) => Some(Handoff {
                socket,
                payload,
                path: self.listener_path.clone().unwrap_or_default(),
            }),
        };
        Ok(Armed {
            program: self.program(),
            flag_bits: self.flag_bits as libc::c_ulong,
            handoff,
        })
    }
}

/// `code` in bits 48..64, `jt` 40..48, `jf` 32..40, `k` 0..32.
fn encode(insn: &sock_filter) -> u64 {
    (u64::from(insn.code) << 48)
        | (u64::from(insn.jt) << 40)
        | (u64::from(insn.jf) << 32)
        | u64::from(insn.k)
}

fn decode(word: u64) -> sock_filter {
    sock_filter {
        code: (word >> 48) as u16,
        jt: (word >> 40) as u8,
        jf: (word >> 32) as u8,
        k: word as u32,
    }
}

/// A filter with everything its installation needs already in memory.
pub struct Armed {
    program: Vec<sock_filter>,
    flag_bits: libc::c_ulong,
    handoff: Option<Handoff>,
}

impl Armed {
    /// Installs the filter on the calling thread and, for NOTIFY, sends
    /// the listener fd to the agent. Takes `&self` and leaves the listener
    /// fd open so that nothing is freed or closed after the filter is in
    /// place: both the listener and the agent connection are close-on-exec,
    /// so the execve that follows drops them and the container gets neither.
    pub fn install(&self) -> Result<(), FilterError> {
        let listener = load::install(&self.program, self.flag_bits, self.handoff.is_some())?;
        let listener = listener.map(IntoRawFd::into_raw_fd);
        if let (Some(handoff), Some(listener)) = (&self.handoff, listener) {
            handoff.send(listener)?;
        }
        Ok(())
    }
}

/// The connection to the agent and the container process state for it.
struct Handoff {
    socket: OwnedFd,
    payload: Vec<u8>,
    path: PathBuf,
}

impl Handoff {
    fn send(&self, fd: RawFd) -> Result<(), FilterError> {
        notify::send_payload(&self.socket, &self.payload, fd).map_err(|errno| {
            FilterError::Handoff {
                path: self.path.clone(),
                errno,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_survive_the_trip() {
        let insn = sock_filter {
            code: 0x15,
            jt: 3,
            jf: 250,
            k: 0xc000_003e,
        };
        let back = decode(encode(&insn));
        assert_eq!(
            (back.code, back.jt, back.jf, back.k),
            (insn.code, insn.jt, insn.jf, insn.k)
        );
    }

    #[test]
    fn notify_without_listener_path_is_refused() {
        let profile = super::super::parse_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let err = Filter::new(&profile).unwrap_err();
        assert!(err.to_string().contains("listenerPath"), "{err}");
    }

    #[test]
    fn flags_reach_the_kernel_check_by_their_spec_names() {
        let profile = super::super::parse_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        )
        .unwrap();
        let filter = Filter::new(&profile).unwrap();
        assert_eq!(
            filter.flag_bits,
            libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
    }

    #[test]
    fn listener_path_is_ignored_without_notify() {
        let profile = super::super::parse_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/nowhere","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let filter = Filter::new(&profile).unwrap();
        assert!(!filter.notifies());
        assert!(filter.arm(None).is_ok());
    }
}
