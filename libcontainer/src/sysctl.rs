//! linux.sysctl: written under /proc/sys of the container.
//!
//! Only namespaced sysctls are allowed, as in runc: writing any other one
//! from a container would change the host. [`validate`] runs at config
//! time (in the runtime's namespaces), [`apply`] in the container init.

use std::collections::HashMap;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::stat;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::procfs::{self, ProcfsError, ProcfsHandle};

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl {key:?} is not in a separate kernel namespace")]
    NotNamespaced { key: String },
    #[error("sysctl {key:?} needs a new {namespace} namespace in linux.namespaces")]
    NeedsNamespace {
        key: String,
        namespace: &'static str,
    },
    #[error("sysctl {key:?} is not allowed in the host's {namespace} namespace")]
    HostNamespace {
        key: String,
        namespace: &'static str,
    },
    #[error("sysctl {key:?}: invalid name")]
    InvalidKey { key: String },
    #[error("sysctl {key:?}: checking namespace {path:?}: {errno}")]
    NamespacePath {
        key: String,
        path: String,
        errno: Errno,
    },
    #[error("sysctl: {0}")]
    Procfs(#[from] ProcfsError),
    #[error("sysctl {key:?}: {source}")]
    Write { key: String, source: ProcfsError },
}

/// Checks that every linux.sysctl key is namespaced and that the config
/// gives the container its own namespace of that kind.
pub fn validate(spec: &Spec) -> Result<(), SysctlError> {
    // In key order: with several bad keys, the error names the same one
    // every time (the map's own order differs from run to run).
    let all = sysctls(spec);
    let mut keys: Vec<&String> = all.keys().collect();
    keys.sort();
    for key in keys {
        check_path(key)?;
        let (kind, namespace) = namespace_of(key)?;
        check_own_namespace(spec, key, kind, namespace)?;
    }
    Ok(())
}

/// Writes every linux.sysctl value to /proc/sys/<key, dots as slashes>.
/// Runs in the container init, in the container's namespaces (a sysctl
/// file acts on the namespaces of the process that writes it). The
/// container's /proc is never used: the file is opened through the
/// process's procfs handle (see [`crate::procfs`]), without following
/// symlinks or crossing mounts, and written through that fd.
pub fn apply(spec: &Spec) -> Result<(), SysctlError> {
    let entries = sysctls(spec);
    if entries.is_empty() {
        return Ok(());
    }
    let proc = procfs::handle()?;
    // Sorted, so the order of writes does not depend on HashMap order.
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort();
    for key in keys {
        write_one(proc, key, &entries[key])?;
    }
    Ok(())
}

fn sysctls(spec: &Spec) -> HashMap<String, String> {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.sysctl().clone())
        .unwrap_or_default()
}

/// "net.ipv4.ip_forward" is /proc/sys/net/ipv4/ip_forward. A key with a
/// slash is already a path ("net/ipv4/conf/eth0.100/forwarding": an
/// interface name may contain dots), as runc accepts.
fn path_of(key: &str) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    }
}

/// The dotted form, to classify a key given as a path.
fn dotted(key: &str) -> String {
    if key.contains('/') {
        key.replace('/', ".")
    } else {
        key.to_string()
    }
}

/// No empty, "." or ".." component: the key must name a file below /proc/sys.
fn check_path(key: &str) -> Result<(), SysctlError> {
    let bad = |part: &str| part.is_empty() || part == "." || part == "..";
    if path_of(key).split('/').any(bad) {
        return Err(SysctlError::InvalidKey { key: key.into() });
    }
    Ok(())
}

/// Which namespace makes this sysctl private to the container (runc's list).
fn namespace_of(key: &str) -> Result<(LinuxNamespaceType, &'static str), SysctlError> {
    let name = dotted(key);
    let ipc = ["kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue."];
    if name.starts_with("net.") {
        Ok((LinuxNamespaceType::Network, "net"))
    } else if ipc.iter().any(|prefix| name.starts_with(prefix)) {
        Ok((LinuxNamespaceType::Ipc, "ipc"))
    } else if name == "kernel.hostname" || name == "kernel.domainname" {
        Ok((LinuxNamespaceType::Uts, "uts"))
    } else {
        Err(SysctlError::NotNamespaced { key: key.into() })
    }
}

/// The container must have a namespace of that kind: a new one, or one
/// joined by path that is not the runtime's own (the host's).
fn check_own_namespace(
    spec: &Spec,
    key: &str,
    kind: LinuxNamespaceType,
    namespace: &'static str,
) -> Result<(), SysctlError> {
    let entry = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.namespaces().as_ref())
        .and_then(|namespaces| namespaces.iter().find(|ns| ns.typ() == kind))
        .ok_or_else(|| SysctlError::NeedsNamespace {
            key: key.into(),
            namespace,
        })?;
    let Some(path) = entry.path() else {
        return Ok(());
    };
    let host = format!("/proc/self/ns/{namespace}");
    if same_file(path, Path::new(&host), key)? {
        return Err(SysctlError::HostNamespace {
            key: key.into(),
            namespace,
        });
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path, key: &str) -> Result<bool, SysctlError> {
    let stat_of = |path: &Path| {
        stat(path).map_err(|errno| SysctlError::NamespacePath {
            key: key.into(),
            path: path.display().to_string(),
            errno,
        })
    };
    let (a, b) = (stat_of(a)?, stat_of(b)?);
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

fn write_one(proc: &ProcfsHandle, key: &str, value: &str) -> Result<(), SysctlError> {
    check_path(key)?;
    // One write: a sysctl takes its value from a single write(2).
    proc.write(&format!("sys/{}", path_of(key)), value)
        .map_err(|source| SysctlError::Write {
            key: key.into(),
            source,
        })
}
