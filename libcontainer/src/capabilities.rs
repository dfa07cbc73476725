//! process.capabilities: bounding, effective, permitted, inheritable and
//! ambient sets. A capability the runtime itself does not hold is skipped
//! with a warning, as the spec allows.
//!
//! Everything not listed is dropped: no `capabilities` object at all means
//! empty sets, as in runc. The bounding set is cut over every capability the
//! kernel knows (up to cap_last_cap), including ones newer than this code.

use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapabilitiesError {
    #[error("dropping capability {cap} from the bounding set: {errno}")]
    DropBounding { cap: u32, errno: Errno },
    #[error("reading the capability sets: {0}")]
    Read(Errno),
    #[error(
        "setting capabilities effective={effective:#x} permitted={permitted:#x} \
         inheritable={inheritable:#x}: {errno}"
    )]
    SetSets {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        errno: Errno,
    },
    #[error("clearing the ambient capability set: {0}")]
    ClearAmbient(Errno),
    #[error(
        "linux.seccomp: loading the filter without process.noNewPrivileges needs {cap}, \
         which the runtime does not hold"
    )]
    NotHeld { cap: String },
}

/// Applies the five sets. Works before or after a switch to a non-root uid
/// made with PR_SET_KEEPCAPS: the permitted set is raised back into the
/// effective set first, so CAP_SETPCAP is usable to cut the bounding set.
pub fn apply(caps: Option<&LinuxCapabilities>) -> Result<(), CapabilitiesError> {
    apply_keeping(caps, None).map(drop)
}

/// The last capset of a drop made by [`apply_keeping`].
#[must_use = "the kept capability stays effective until commit"]
pub struct PendingCapset(CapSets);

impl PendingCapset {
    /// Lowers the sets to exactly what the spec asked for: one capset(2),
    /// which cannot fail (it only removes what the runtime kept).
    pub fn commit(&self) -> Result<(), CapabilitiesError> {
        capset(self.0)
    }
}

/// Like [`apply`], but `keep` stays permitted and effective until the
/// returned [`PendingCapset`] is committed: the init keeps CAP_SYS_ADMIN
/// this way to load a seccomp filter without no_new_privs right before
/// execve, after everything else of the drop is done. Bounding, inheritable
/// and ambient are final already. Fails, naming it, when the runtime does
/// not hold `keep` itself.
pub fn apply_keeping(
    caps: Option<&LinuxCapabilities>,
    keep: Option<Capability>,
) -> Result<PendingCapset, CapabilitiesError> {
    let held = bounding_set();
    let wanted = |set: &Option<Capabilities>, name: &str| mask_of(set.as_ref(), held, name);
    let (bounding, effective, permitted, inheritable, ambient) = match caps {
        Some(c) => (
            wanted(c.bounding(), "bounding"),
            wanted(c.effective(), "effective"),
            wanted(c.permitted(), "permitted"),
            wanted(c.inheritable(), "inheritable"),
            held_only(c.ambient().as_ref(), wanted(c.ambient(), "ambient")),
        ),
        None => (0, 0, 0, 0, Vec::new()),
    };
    let held_now = raise_effective_to_permitted()?;
    let keep_mask = keep.map_or(0, |cap| 1u64 << index_of(cap));
    if held_now.permitted & keep_mask != keep_mask {
        return Err(CapabilitiesError::NotHeld {
            cap: keep.map(name_of).unwrap_or_default(),
        });
    }
    drop_bounding(held & !bounding)?;
    let wanted = CapSets {
        effective,
        permitted,
        inheritable,
    };
    capset(CapSets {
        effective: effective | keep_mask,
        permitted: permitted | keep_mask,
        inheritable,
    })?;
    set_ambient(ambient)?;
    Ok(PendingCapset(wanted))
}

/// Bit mask of the listed capabilities the runtime holds; the others are
/// logged and skipped (the spec: "runtime SHOULD log a warning").
fn mask_of(set: Option<&Capabilities>, held: u64, set_name: &str) -> u64 {
    let mut mask = 0;
    for cap in set.into_iter().flatten() {
        let bit = 1u64 << index_of(*cap);
        if held & bit == 0 {
            tracing::warn!(
                "process.capabilities.{set_name}: {} is not in the runtime's own bounding \
                 set and cannot be granted: skipped",
                name_of(*cap)
            );
            continue;
        }
        mask |= bit;
    }
    mask
}

/// The listed capabilities that are in `mask`, in a stable order.
fn held_only(set: Option<&Capabilities>, mask: u64) -> Vec<Capability> {
    let mut caps: Vec<Capability> = set
        .into_iter()
        .flatten()
        .copied()
        .filter(|cap| mask & (1u64 << index_of(*cap)) != 0)
        .collect();
    caps.sort_by_key(|cap| index_of(*cap));
    caps
}

/// The spec's name, e.g. CAP_SYS_ADMIN, for messages.
fn name_of(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// The kernel's capability number (include/uapi/linux/capability.h).
fn index_of(cap: Capability) -> u32 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The runtime's own bounding set as a bit mask, in one pass over the
/// capability numbers: PR_CAPBSET_READ says EINVAL past cap_last_cap, so
/// capabilities newer than this code are included and no /proc is read.
fn bounding_set() -> u64 {
    (0..64)
        .map_while(|cap| in_bounding_set(cap).map(|held| (cap, held)))
        .filter(|(_, held)| *held)
        .fold(0, |mask, (cap, _)| mask | (1u64 << cap))
}

fn in_bounding_set(cap: u32) -> Option<bool> {
    // SAFETY: PR_CAPBSET_READ takes an integer and only reads our own
    // credentials.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    (ret >= 0).then_some(ret == 1)
}

fn drop_bounding(to_drop: u64) -> Result<(), CapabilitiesError> {
    // `to_drop` is a subset of the bounding set, so every bit is a known cap.
    for cap in (0..64u32).filter(|cap| to_drop & (1u64 << cap) != 0) {
        // SAFETY: PR_CAPBSET_DROP takes an integer and only changes our own
        // credentials.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if ret < 0 {
            return Err(CapabilitiesError::DropBounding {
                cap,
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

fn set_ambient(ambient: Vec<Capability>) -> Result<(), CapabilitiesError> {
    // SAFETY: PR_CAP_AMBIENT takes integers and only changes our own
    // credentials.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if ret < 0 {
        return Err(CapabilitiesError::ClearAmbient(Errno::last()));
    }
    for cap in ambient {
        // SAFETY: as above.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(index_of(cap)),
                0,
                0,
            )
        };
        // The kernel refuses a capability missing from permitted or
        // inheritable; runc warns and goes on, and so do we.
        if ret < 0 {
            tracing::warn!(
                "process.capabilities.ambient: cannot raise {} ({}; it must be permitted \
                 and inheritable): skipped",
                name_of(cap),
                Errno::last()
            );
        }
    }
    Ok(())
}

/// The three per-thread sets of capget/capset, as 64-bit masks.
#[derive(Debug, Clone, Copy)]
struct CapSets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// struct __user_cap_header_struct.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// struct __user_cap_data_struct; _LINUX_CAPABILITY_VERSION_3 uses two
/// of them, low and high 32 bits.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Returns the sets as they are afterwards.
fn raise_effective_to_permitted() -> Result<CapSets, CapabilitiesError> {
    let current = capget()?;
    let raised = CapSets {
        effective: current.permitted,
        ..current
    };
    capset(raised)?;
    Ok(raised)
}

fn capget() -> Result<CapSets, CapabilitiesError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are live and sized as version 3 requires (two
    // CapData); pid 0 is the calling thread.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret < 0 {
        return Err(CapabilitiesError::Read(Errno::last()));
    }
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

fn capset(sets: CapSets) -> Result<(), CapabilitiesError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |shift: u32| CapData {
        effective: (sets.effective >> shift) as u32,
        permitted: (sets.permitted >> shift) as u32,
        inheritable: (sets.inheritable >> shift) as u32,
    };
    let data = [split(0), split(32)];
    // SAFETY: header and data are live and sized as version 3 requires; the
    // kernel only reads data. pid 0 is the calling thread, and the init is
    // single-threaded, so the whole process gets these sets.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if ret < 0 {
        return Err(CapabilitiesError::SetSets {
            effective: sets.effective,
            permitted: sets.permitted,
            inheritable: sets.inheritable,
            errno: Errno::last(),
        });
    }
    Ok(())
}
