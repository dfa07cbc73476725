//! The OCI features document (runtime-spec `features.md` and
//! `features-linux.md`): what this build of rrun accepts in `config.json`,
//! on this host. `rrun features` prints it.
//!
//! Every list is taken from the code that does the work, not restated:
//! namespaces, seccomp actions, operators, architectures and flags are
//! oci-spec's enums, which are what rrun parses (a compile-time `match`
//! below breaks when oci-spec adds a value, so the list cannot silently
//! fall behind); mount options are the ones rrun's own parser
//! ([`crate::rootfs::mounts::parse_options`]) takes as options rather than
//! filesystem data; `supportedFlags` are the known flags this kernel
//! accepts, probed as `create` probes them. What rrun refuses (AppArmor
//! where the kernel does not run it, SELinux, Intel RDT, rdma limits) is `false`, never
//! absent: absent means "unknown" in the spec.
//!
//! Only properties of [`OCI_VERSION_MAX`] appear (the spec forbids newer
//! ones: no `memoryPolicy`, `netDevices` or `intelRdt.schemata`).

use oci_spec::runtime::{
    Arch, Capability, LinuxNamespaceType, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The oldest spec version rrun takes as `ociVersion` (any 1.x is taken).
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The spec version rrun implements.
pub const OCI_VERSION_MAX: &str = crate::OCI_VERSION;

/// The features document, serialized in the spec's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// The oldest `ociVersion` taken ([`OCI_VERSION_MIN`]).
    pub oci_version_min: String,
    /// The newest `ociVersion` taken ([`OCI_VERSION_MAX`]).
    pub oci_version_max: String,
    /// The hooks rrun runs ([`HOOKS`]).
    pub hooks: Vec<String>,
    /// The mount options rrun recognizes ([`mount_options`]).
    pub mount_options: Vec<String>,
    /// What rrun takes in `linux`.
    pub linux: Linux,
    /// rrun's own facts: its version, its seccomp compiler, and no
    /// checkpoint support.
    pub annotations: BTreeMap<String, String>,
}

/// What rrun takes in `config.json`'s `linux` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// The namespace types (`linux.namespaces[].type`), sorted.
    pub namespaces: Vec<String>,
    /// The capability names, in the kernel's order.
    pub capabilities: Vec<String>,
    /// The cgroup drivers and controllers.
    pub cgroup: Cgroup,
    /// What `linux.seccomp` may hold.
    pub seccomp: Seccomp,
    /// AppArmor: where the kernel runs it (`process.apparmorProfile` is
    /// applied then, refused otherwise).
    pub apparmor: Enabled,
    /// SELinux: never.
    pub selinux: Enabled,
    /// Intel RDT: never.
    pub intel_rdt: Enabled,
    /// Mount extensions: id-mapped bind mounts.
    pub mount_extensions: MountExtensions,
}

/// The cgroup support of this build on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cgroup {
    /// cgroup v1 (and hybrid) hosts.
    pub v1: bool,
    /// cgroup v2 hosts.
    pub v2: bool,
    /// The systemd driver: only on a cgroup v2 host booted with systemd.
    pub systemd: bool,
    /// A user's systemd instance: never.
    pub systemd_user: bool,
    /// rdma limits: on cgroup v2 hosts.
    pub rdma: bool,
}

/// What `linux.seccomp` may hold; the lists are absent when seccomp is
/// not enabled (hosts other than x86).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    /// Whether profiles are taken at all.
    pub enabled: bool,
    /// The actions (`SCMP_ACT_*`), sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    /// The argument operators (`SCMP_CMP_*`), sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operators: Option<Vec<String>>,
    /// The architecture names (`SCMP_ARCH_*`), sorted: all parse, only the
    /// x86 family is filtered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archs: Option<Vec<String>>,
    /// The filter flags rrun knows, in runc's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_flags: Option<Vec<String>>,
    /// Those of `known_flags` this kernel takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_flags: Option<Vec<String>>,
}

/// A feature that is on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enabled {
    /// Whether rrun supports it.
    pub enabled: bool,
}

/// Mount extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountExtensions {
    /// Id-mapped bind mounts (`mounts[].uidMappings`, `idmap`, `ridmap`).
    pub idmap: Enabled,
}

/// The hooks rrun runs (`hooks` in config.md), in lifecycle order.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Mount option names in use (the spec's list, which is runc's, and the
/// id-mapping ones): those rrun's parser recognizes are listed.
const MOUNT_OPTION_NAMES: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// The features of this build on this host.
pub fn features() -> Features {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "io.rrun.version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    // No libseccomp: the BPF is rrun's own (seccomp/), hence no
    // io.github.seccomp.libseccomp.version.
    annotations.insert("io.rrun.seccomp.compiler".to_string(), "rrun".to_string());
    annotations.insert(
        "io.rrun.checkpoint.enabled".to_string(),
        "false".to_string(),
    );
    Features {
        oci_version_min: OCI_VERSION_MIN.to_string(),
        oci_version_max: OCI_VERSION_MAX.to_string(),
        hooks: HOOKS.iter().map(|h| h.to_string()).collect(),
        mount_options: mount_options(),
        linux: Linux {
            namespaces: sorted(NAMESPACES.iter().map(name_of)),
            capabilities: CAPABILITIES.iter().map(name_of).collect(),
            cgroup: cgroup(),
            seccomp: seccomp(),
            apparmor: Enabled {
                enabled: crate::process::attrs::apparmor_enabled(),
            },
            selinux: Enabled { enabled: false },
            intel_rdt: Enabled { enabled: false },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: true },
            },
        },
        annotations,
    }
}

/// The options [`crate::rootfs::mounts::parse_options`] takes as mount
/// flags, propagation or recursive attributes (not as filesystem data,
/// and not refused).
pub fn mount_options() -> Vec<String> {
    MOUNT_OPTION_NAMES
        .iter()
        .filter(|name| {
            let options = [name.to_string()];
            crate::rootfs::mounts::parse_options(&options, std::path::Path::new("/"))
                .is_ok_and(|parsed| parsed.data.is_empty())
        })
        .map(|name| name.to_string())
        .collect()
}

/// v1 and v2 are both built in (libcgroups' managers; v1 with named
/// hierarchies, v2 also as the hybrid host's cgroup2 tree). The systemd
/// driver is libcgroups' and works only with systemd running on a cgroup
/// v2 host (`Cgroup::open` refuses it elsewhere), so it is claimed only
/// there; never user-scoped. rdma limits are managed on v2 hosts (rrun
/// writes rdma.max; libcgroups has no v1 rdma controller).
fn cgroup() -> Cgroup {
    let unified = matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(libcgroups::common::CgroupSetup::Unified)
    );
    Cgroup {
        v1: true,
        v2: true,
        systemd: unified && crate::cgroups::systemd::booted(),
        systemd_user: false,
        rdma: unified,
    }
}

/// rrun's compiler has x86-family syscall tables only: elsewhere every
/// profile is refused, and seccomp is not enabled.
fn seccomp() -> Seccomp {
    if !cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        return Seccomp {
            enabled: false,
            actions: None,
            operators: None,
            archs: None,
            known_flags: None,
            supported_flags: None,
        };
    }
    let known_flags: Vec<String> = FLAGS.iter().map(name_of).collect();
    let supported_flags = known_flags
        .iter()
        .filter(|flag| crate::seccomp::load::kernel_supports_flag(flag).unwrap_or(false))
        .cloned()
        .collect();
    Seccomp {
        enabled: true,
        actions: Some(sorted(ACTIONS.iter().map(name_of))),
        operators: Some(sorted(OPERATORS.iter().map(name_of))),
        // Every one parses; those of other families never match a call on
        // this host and add nothing to the filter (seccomp/mod.rs).
        archs: Some(sorted(ARCHS.iter().map(name_of))),
        known_flags: Some(known_flags),
        supported_flags: Some(supported_flags),
    }
}

/// The name config.json uses for a value: its serde name.
fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => unreachable!("oci-spec serializes this enum as a string, not {other:?}"),
    }
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect();
    names.sort();
    names
}

const NAMESPACES: [LinuxNamespaceType; 8] = {
    use LinuxNamespaceType::*;
    [Cgroup, Ipc, Mount, Network, Pid, Time, User, Uts]
};

/// In the kernel's order (include/uapi/linux/capability.h), as runc lists
/// them.
const CAPABILITIES: [Capability; 41] = {
    use Capability::*;
    [
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        LinuxImmutable,
        NetBindService,
        NetBroadcast,
        NetAdmin,
        NetRaw,
        IpcLock,
        IpcOwner,
        SysModule,
        SysRawio,
        SysChroot,
        SysPtrace,
        SysPacct,
        SysAdmin,
        SysBoot,
        SysNice,
        SysResource,
        SysTime,
        SysTtyConfig,
        Mknod,
        Lease,
        AuditWrite,
        AuditControl,
        Setfcap,
        MacOverride,
        MacAdmin,
        Syslog,
        WakeAlarm,
        BlockSuspend,
        AuditRead,
        Perfmon,
        Bpf,
        CheckpointRestore,
    ]
};

const ACTIONS: [LinuxSeccompAction; 9] = {
    use LinuxSeccompAction::*;
    [
        ScmpActKill,
        ScmpActKillThread,
        ScmpActKillProcess,
        ScmpActTrap,
        ScmpActErrno,
        ScmpActNotify,
        ScmpActTrace,
        ScmpActLog,
        ScmpActAllow,
    ]
};

const OPERATORS: [LinuxSeccompOperator; 7] = {
    use LinuxSeccompOperator::*;
    [
        ScmpCmpNe,
        ScmpCmpLt,
        ScmpCmpLe,
        ScmpCmpEq,
        ScmpCmpGe,
        ScmpCmpGt,
        ScmpCmpMaskedEq,
    ]
};

const ARCHS: [Arch; 24] = {
    use Arch::*;
    [
        ScmpArchNative,
        ScmpArchX86,
        ScmpArchX86_64,
        ScmpArchX32,
        ScmpArchArm,
        ScmpArchAarch64,
        ScmpArchMips,
        ScmpArchMips64,
        ScmpArchMips64n32,
        ScmpArchMipsel,
        ScmpArchMipsel64,
        ScmpArchMipsel64n32,
        ScmpArchPpc,
        ScmpArchPpc64,
        ScmpArchPpc64le,
        ScmpArchS390,
        ScmpArchS390x,
        ScmpArchParisc,
        ScmpArchParisc64,
        ScmpArchRiscv64,
        ScmpArchLoongarch64,
        ScmpArchM68k,
        ScmpArchSh,
        ScmpArchSheb,
    ]
};

/// In runc's order.
const FLAGS: [LinuxSeccompFilterFlag; 4] = {
    use LinuxSeccompFilterFlag::*;
    [
        SeccompFilterFlagTsync,
        SeccompFilterFlagSpecAllow,
        SeccompFilterFlagLog,
        SeccompFilterFlagWaitKillableRecv,
    ]
};

/// Compile-time completeness of the lists above: each `match` names every
/// value of its enum, so a value oci-spec adds (which rrun would then
/// parse) stops the build until it is listed. The index ties each arm to
/// its place in the list; `every_value_is_listed_once` checks it.
#[allow(dead_code)]
mod completeness {
    use super::*;

    pub fn namespace(ns: LinuxNamespaceType) -> usize {
        use LinuxNamespaceType::*;
        match ns {
            Cgroup => 0,
            Ipc => 1,
            Mount => 2,
            Network => 3,
            Pid => 4,
            Time => 5,
            User => 6,
            Uts => 7,
        }
    }

    /// The kernel's capability number.
    pub fn capability(cap: Capability) -> usize {
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

    pub fn action(action: LinuxSeccompAction) -> usize {
        use LinuxSeccompAction::*;
        match action {
            ScmpActKill => 0,
            ScmpActKillThread => 1,
            ScmpActKillProcess => 2,
            ScmpActTrap => 3,
            ScmpActErrno => 4,
            ScmpActNotify => 5,
            ScmpActTrace => 6,
            ScmpActLog => 7,
            ScmpActAllow => 8,
        }
    }

    pub fn operator(op: LinuxSeccompOperator) -> usize {
        use LinuxSeccompOperator::*;
        match op {
            ScmpCmpNe => 0,
            ScmpCmpLt => 1,
            ScmpCmpLe => 2,
            ScmpCmpEq => 3,
            ScmpCmpGe => 4,
            ScmpCmpGt => 5,
            ScmpCmpMaskedEq => 6,
        }
    }

    pub fn arch(arch: Arch) -> usize {
        use Arch::*;
        match arch {
            ScmpArchNative => 0,
            ScmpArchX86 => 1,
            ScmpArchX86_64 => 2,
            ScmpArchX32 => 3,
            ScmpArchArm => 4,
            ScmpArchAarch64 => 5,
            ScmpArchMips => 6,
            ScmpArchMips64 => 7,
            ScmpArchMips64n32 => 8,
            ScmpArchMipsel => 9,
            ScmpArchMipsel64 => 10,
            ScmpArchMipsel64n32 => 11,
            ScmpArchPpc => 12,
            ScmpArchPpc64 => 13,
            ScmpArchPpc64le => 14,
            ScmpArchS390 => 15,
            ScmpArchS390x => 16,
            ScmpArchParisc => 17,
            ScmpArchParisc64 => 18,
            ScmpArchRiscv64 => 19,
            ScmpArchLoongarch64 => 20,
            ScmpArchM68k => 21,
            ScmpArchSh => 22,
            ScmpArchSheb => 23,
        }
    }

    pub fn flag(flag: LinuxSeccompFilterFlag) -> usize {
        use LinuxSeccompFilterFlag::*;
        match flag {
            SeccompFilterFlagTsync => 0,
            SeccompFilterFlagSpecAllow => 1,
            SeccompFilterFlagLog => 2,
            SeccompFilterFlagWaitKillableRecv => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_listed_once() {
        for (i, ns) in NAMESPACES.iter().enumerate() {
            assert_eq!(completeness::namespace(*ns), i);
        }
        for (i, cap) in CAPABILITIES.iter().enumerate() {
            assert_eq!(completeness::capability(*cap), i);
        }
        for (i, action) in ACTIONS.iter().enumerate() {
            assert_eq!(completeness::action(*action), i);
        }
        for (i, op) in OPERATORS.iter().enumerate() {
            assert_eq!(completeness::operator(*op), i);
        }
        for (i, arch) in ARCHS.iter().enumerate() {
            assert_eq!(completeness::arch(*arch), i);
        }
        for (i, flag) in FLAGS.iter().enumerate() {
            assert_eq!(completeness::flag(*flag), i);
        }
    }

    #[test]
    fn names_are_what_config_json_uses_and_rrun_parses() {
        let f = features();
        assert_eq!(
            f.linux.namespaces,
            ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
        );
        assert_eq!(f.linux.capabilities[0], "CAP_CHOWN");
        assert_eq!(f.linux.capabilities[40], "CAP_CHECKPOINT_RESTORE");
        for cap in &f.linux.capabilities {
            serde_json::from_value::<Capability>(serde_json::json!(cap)).unwrap();
        }
        let seccomp = &f.linux.seccomp;
        assert!(seccomp.enabled);
        let actions = seccomp.actions.as_ref().unwrap();
        assert!(actions.contains(&"SCMP_ACT_KILL_PROCESS".to_string()));
        let archs = seccomp.archs.as_ref().unwrap();
        assert!(archs.contains(&"SCMP_ARCH_X86_64".to_string()));
        assert!(archs.contains(&"SCMP_ARCH_MIPS64N32".to_string()));
        for flag in seccomp.known_flags.as_ref().unwrap() {
            crate::seccomp::load::flag_bit(flag).unwrap();
        }
        for op in seccomp.operators.as_ref().unwrap() {
            serde_json::from_value::<LinuxSeccompOperator>(serde_json::json!(op)).unwrap();
        }
    }

    #[test]
    fn mount_options_are_the_parsers_own_and_leave_out_what_it_refuses() {
        let options = mount_options();
        assert!(!options.iter().any(|o| o == "tmpcopyup"));
        for taken in [
            "ro",
            "rbind",
            "rslave",
            "rnoexec",
            "nosymfollow",
            "remount",
            "acl",
            "idmap",
            "ridmap",
        ] {
            assert!(options.iter().any(|o| o == taken), "{taken}");
        }
        assert_eq!(options.len(), MOUNT_OPTION_NAMES.len() - 1);
    }
}
