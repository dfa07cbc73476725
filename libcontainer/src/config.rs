//! Loading and validating a bundle's `config.json`. Every error names the
//! offending field (as a JSON path), the path on disk, and the errno.

use crate::seccomp::{Filter, FilterError};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a config was refused. Each names the field (a JSON path such as
/// `process.args` or `mounts[2].destination`) or the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The bundle or its `config.json` cannot be read.
    #[error("{path}: {errno}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The errno reading it failed with.
        errno: Errno,
    },
    /// `config.json` is not a regular file (a FIFO, device, socket or
    /// directory: refused without being opened for reading, so that it
    /// cannot block or have side effects), or is larger than
    /// [`MAX_CONFIG_BYTES`].
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What it is, or how large.
        why: String,
    },
    /// Not JSON, or not the spec's types.
    #[error("{path}: invalid JSON at {field}: {why}")]
    Parse {
        /// The file (as the caller named it to [`parse`]).
        path: PathBuf,
        /// The JSON path of the value that failed, or `top level`.
        field: String,
        /// The parser's words.
        why: String,
    },
    /// A value the spec does not allow (or runc refuses).
    #[error("{field}: {why}")]
    Invalid {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// A valid value rrun does not implement: refused, never ignored.
    #[error("{field}: {why} (rrun does not support it yet; refusing rather than ignoring it)")]
    Unsupported {
        /// The JSON path of the field.
        field: String,
        /// What rrun lacks.
        why: String,
    },
    /// `linux.seccomp` does not compile, or this kernel cannot load it.
    #[error(transparent)]
    Seccomp(#[from] FilterError),
    /// The mount namespace a `linux.namespaces` path names cannot be
    /// looked at (to tell whether it is the caller's).
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// A validated config with the paths resolved against its bundle.
#[derive(Debug, Clone)]
pub struct Config {
    /// The parsed, validated `config.json`.
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute, canonical rootfs directory.
    pub rootfs: PathBuf,
    /// `linux.seccomp`, compiled for this host and checked against its
    /// kernel.
    pub seccomp: Option<Filter>,
    /// The container has no mount namespace of its own (no `mount` in
    /// `linux.namespaces`, or a path to the caller's or pid 1's): its
    /// rootfs is entered with chroot, and nothing is mounted.
    pub shares_mounts: bool,
}

impl Config {
    /// Read `<bundle>/config.json` and validate it: [`validate`], then
    /// what needs the host (the rootfs exists, the seccomp profile
    /// compiles and this kernel takes its flags). Makes nothing.
    pub fn load(bundle: &Path) -> Result<Config, ConfigError> {
        let bundle = std::path::absolute(bundle).map_err(|e| ConfigError::Read {
            path: bundle.to_path_buf(),
            errno: crate::utils::io_errno(&e),
        })?;
        let path = bundle.join("config.json");
        let data = read_config_file(&path)?;
        let spec = parse(&path, &data)?;
        crate::trace::step("config:parsed");
        let config = Self::from_spec(spec, bundle);
        crate::trace::step("config:validated");
        config
    }

    /// Validate a spec that an embedder built or parsed itself, as
    /// [`Config::load`] does; `root.path` is taken relative to `bundle`.
    pub fn from_spec(spec: Spec, bundle: PathBuf) -> Result<Config, ConfigError> {
        validate(&spec)?;
        let shares_mounts = crate::namespaces::shares_callers_mounts(&spec)?;
        if shares_mounts {
            validate_without_mount_namespace(&spec)?;
        }
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => Some(Filter::new(profile)?),
            None => None,
        };
        let rootfs = resolve_rootfs(&spec, &bundle)?;
        // Both are carried as JSON strings (to the container's init, in
        // state.json, to hooks): a path that is not UTF-8 is refused here,
        // naming it, not found unencodable half-way through create.
        for (field, path) in [("bundle", &bundle), ("root.path", &rootfs)] {
            if path.to_str().is_none() {
                return Err(invalid(
                    field,
                    format!("{}: not UTF-8, which rrun cannot record", path.display()),
                ));
            }
        }
        Ok(Config {
            spec,
            bundle,
            rootfs,
            seccomp,
            shares_mounts,
        })
    }
}

/// The largest `config.json` rrun reads: 16 MiB. Real configs are a few
/// KiB (Docker's, with its seccomp profile, is 30 KiB; ten thousand mounts
/// take 0.7 MiB); a larger one would be held several times over (the bytes,
/// the parsed spec, the copy sent to the container's init, which must fit
/// in one channel frame) and is refused before it is read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Read `path` (a bundle's `config.json`) as [`Config::load`] does: it must
/// be a regular file (symlinks are followed) of at most
/// [`MAX_CONFIG_BYTES`]. The file is first opened with `O_PATH` and
/// checked, then read through that very inode, so that a FIFO (whose open
/// would wait for a writer), a device (whose open may do something) or a
/// directory is refused without ever being opened for reading.
pub fn read_config_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let read_error = |errno| ConfigError::Read {
        path: path.to_path_buf(),
        errno,
    };
    let file_error = |why: String| ConfigError::File {
        path: path.to_path_buf(),
        why,
    };
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(read_error)?;
    // SAFETY: open just returned this fd; OwnedFd takes sole ownership.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(read_error)?;
    let kind = match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFDIR => Some("a directory"),
        _ => Some("not a file"),
    };
    if let Some(kind) = kind {
        return Err(file_error(format!("{kind}, not a regular file")));
    }
    let too_large = |size: String| {
        file_error(format!(
            "{size}: larger than the {} MiB rrun reads",
            MAX_CONFIG_BYTES >> 20
        ))
    };
    if stat.st_size as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(format!("{} bytes", stat.st_size)));
    }
    // The same inode, now for reading: /proc/self/fd/N of the O_PATH fd.
    let file = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| read_error(crate::utils::io_errno(&e)))?;
    let mut data = Vec::with_capacity(stat.st_size as usize);
    // It may grow while read: never more than the limit (and one byte to
    // tell).
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| read_error(crate::utils::io_errno(&e)))?;
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large("it grew while read".into()));
    }
    Ok(data)
}

/// Parse `config.json`'s content (`path` only names it in errors), with
/// the JSON path of the field that failed in the error. Capability names
/// rrun does not know are dropped with a warning, as the spec asks.
/// Nothing is validated: see [`validate`].
pub fn parse(path: &Path, data: &[u8]) -> Result<Spec, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize(&mut *de) {
        // Only whitespace may follow the object: `{...}junk` is no config.
        Ok(spec) => de.end().map(|()| spec).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            field: "top level".into(),
            why: e.to_string(),
        }),
        Err(e) if e.path().to_string().starts_with("process.capabilities") => {
            parse_dropping_unknown_capabilities(path, data)
        }
        Err(e) => Err(parse_error(path, e)),
    }
}

fn parse_error<E: std::fmt::Display>(path: &Path, e: serde_path_to_error::Error<E>) -> ConfigError {
    ConfigError::Parse {
        path: path.to_path_buf(),
        field: match e.path().to_string() {
            p if p == "." || p == "?" => "top level".to_string(),
            p => p,
        },
        why: e.inner().to_string(),
    }
}

/// The spec: a capability that cannot be mapped to the kernel's is logged
/// as a warning, and runtimes should not fail for it. oci-spec refuses
/// unknown names, so those are taken out (with a warning) before parsing.
/// Only configs that have such a name pay for the second pass.
fn parse_dropping_unknown_capabilities(path: &Path, data: &[u8]) -> Result<Spec, ConfigError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            field: "top level".into(),
            why: e.to_string(),
        })?;
    if let Some(sets) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for (set, names) in sets.iter_mut() {
            if let Some(names) = names.as_array_mut() {
                names.retain(|name| {
                    let known =
                        serde_json::from_value::<oci_spec::runtime::Capability>(name.clone())
                            .is_ok();
                    if !known {
                        tracing::warn!(
                            "process.capabilities.{set}: unknown capability {name}: skipped"
                        );
                    }
                    known
                });
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| parse_error(path, e))
}

fn resolve_rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let path = bundle.join(root.path());
    let canonical = std::fs::canonicalize(&path).map_err(|e| {
        invalid(
            "root.path",
            format!("{}: {}", path.display(), crate::utils::io_errno(&e)),
        )
    })?;
    if !canonical.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{}: {}", path.display(), Errno::ENOTDIR),
        ));
    }
    Ok(canonical)
}

/// Every check that needs no system call: the version, the process,
/// mounts, `linux` and hostnames. [`Config::load`] does these too.
pub fn validate(spec: &Spec) -> Result<(), ConfigError> {
    validate_version(spec.version())?;
    validate_process(spec)?;
    validate_mounts(spec)?;
    validate_linux(spec)?;
    validate_hostnames(spec)?;
    Ok(())
}

/// A hostname or domainname needs a uts namespace of the container's own
/// (new or joined): checked here, before any hook or mount has run.
fn validate_hostnames(spec: &Spec) -> Result<(), ConfigError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let field = if set(spec.hostname()) {
        "hostname"
    } else if set(spec.domainname()) {
        "domainname"
    } else {
        return Ok(());
    };
    let uts = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
    if uts {
        Ok(())
    } else {
        Err(invalid(
            field,
            "setting it needs a uts namespace in linux.namespaces",
        ))
    }
}

/// Without a mount namespace of its own, the container's mounts would be
/// the caller's (the host's): every field that asks rrun to mount something
/// is refused, naming it, rather than done on the host or ignored. runc
/// refuses maskedPaths and readonlyPaths there too.
fn validate_without_mount_namespace(spec: &Spec) -> Result<(), ConfigError> {
    const WHY: &str = "needs a mount namespace of the container's own, and linux.namespaces \
        has none (rrun never mounts in the caller's mount namespace)";
    if let Some((i, m)) = spec.mounts().iter().flatten().enumerate().next() {
        return Err(invalid(
            format!("mounts[{i}]"),
            format!("{}: {WHY}", m.destination().display()),
        ));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        return Err(invalid("root.readonly", WHY));
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let non_empty = |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| !l.is_empty());
    for (field, set) in [
        (
            "linux.devices",
            linux.devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
        ("linux.maskedPaths", non_empty(linux.masked_paths())),
        ("linux.readonlyPaths", non_empty(linux.readonly_paths())),
        (
            "linux.rootfsPropagation",
            linux
                .rootfs_propagation()
                .as_deref()
                .is_some_and(|p| !p.is_empty()),
        ),
    ] {
        if set {
            return Err(invalid(field, WHY));
        }
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<(), ConfigError> {
    if !version.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{version:?} is not a 1.x version of the runtime spec"),
        ));
    }
    Ok(())
}

fn validate_process(spec: &Spec) -> Result<(), ConfigError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing: a container needs a process to run"))?;
    validate_process_only(process)
}

/// The checks of `process` that need nothing else of the config: also
/// what an exec'd process (`--process`) must pass.
pub(crate) fn validate_process_only(
    process: &oci_spec::runtime::Process,
) -> Result<(), ConfigError> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid(
            "process.args",
            "must name at least the program to run",
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let name = serde_json::to_string(&rlimit.typ()).unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(invalid(
                format!("process.rlimits[{i}].type"),
                format!("{name} appears twice"),
            ));
        }
        if rlimit.soft() > rlimit.hard() {
            return Err(invalid(
                format!("process.rlimits[{i}]"),
                "soft limit is above the hard limit",
            ));
        }
    }
    let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    if set(process.apparmor_profile()) && !crate::process::attrs::apparmor_enabled() {
        return Err(ConfigError::Unsupported {
            field: "process.apparmorProfile".into(),
            why: "AppArmor is not enabled on this host".into(),
        });
    }
    if set(process.selinux_label()) {
        return Err(ConfigError::Unsupported {
            field: "process.selinuxLabel".into(),
            why: "rrun does not apply SELinux labels".into(),
        });
    }
    if process.exec_cpu_affinity().is_some() {
        return unsupported("process.execCPUAffinity");
    }
    Ok(())
}

fn unsupported(field: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Unsupported {
        field: field.into(),
        why: "set".into(),
    })
}

fn validate_mounts(spec: &Spec) -> Result<(), ConfigError> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(invalid(format!("mounts[{i}].destination"), "empty"));
        }
        crate::rootfs::idmap::mappings(spec, m).map_err(|(field, why)| {
            let why = format!("{}: {why}", m.destination().display());
            invalid(format!("mounts[{i}].{field}"), why)
        })?;
    }
    Ok(())
}

fn validate_linux(spec: &Spec) -> Result<(), ConfigError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("namespace type {} appears twice", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not an absolute path", path.display()),
                ));
            }
        }
    }
    let has_ns = |t| seen.contains(&t);
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    let uid_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let gid_maps = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if (uid_maps || gid_maps) && !has_ns(LinuxNamespaceType::User) {
        return Err(invalid(
            if uid_maps {
                "linux.uidMappings"
            } else {
                "linux.gidMappings"
            },
            "id mappings need a user namespace in linux.namespaces",
        ));
    }
    if new_userns && !(uid_maps && gid_maps) {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    if linux.time_offsets().is_some() && !has_ns(LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a time namespace in linux.namespaces",
        ));
    }
    for key in linux.time_offsets().iter().flat_map(|m| m.keys()) {
        if key != "monotonic" && key != "boottime" {
            return Err(invalid(
                format!("linux.timeOffsets.{key}"),
                "only monotonic and boottime clocks have offsets",
            ));
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(
            p.as_str(),
            "" | "shared"
                | "slave"
                | "private"
                | "unbindable"
                | "rshared"
                | "rslave"
                | "rprivate"
                | "runbindable"
        ) {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            ));
        }
    }
    for (field, set) in [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.netDevices", linux.net_devices().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        (
            "linux.mountLabel",
            linux
                .mount_label()
                .as_deref()
                .is_some_and(|l| !l.is_empty()),
        ),
    ] {
        if set {
            return unsupported(field);
        }
    }
    crate::sysctl::validate(spec).map_err(|e| invalid("linux.sysctl", e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json(linux: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"user":{{"uid":0,"gid":0}},"args":["sh"],"cwd":"/"}},
            "linux":{linux}}}"#
        )
    }

    fn check(linux: &str) -> Result<(), ConfigError> {
        let spec = parse(Path::new("config.json"), spec_json(linux).as_bytes())?;
        validate(&spec)
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let err = check(r#"{"namespaces":[{"type":"pid"},{"type":"bogus"}]}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux.namespaces[1].type"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn only_whitespace_may_follow_the_config() {
        let json = spec_json("{}");
        assert!(parse(Path::new("c"), format!("{json} \n\t").as_bytes()).is_ok());
        for junk in ["x", "{}", "]"] {
            let err = parse(Path::new("c"), format!("{json}{junk}").as_bytes()).unwrap_err();
            assert!(err.to_string().contains("trailing characters"), "{err}");
        }
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let err = check(r#"{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn mappings_need_a_user_namespace() {
        let err = check(
            r#"{"namespaces":[{"type":"pid"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("linux.uidMappings"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_skipped_not_fatal() {
        let json = spec_json("{}").replace(
            r#""cwd":"/""#,
            r#""cwd":"/","capabilities":{"bounding":["CAP_KILL","CAP_NOPE"]}"#,
        );
        let spec = parse(Path::new("c"), json.as_bytes()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn a_hostname_without_a_uts_namespace_is_refused_before_anything_runs() {
        let json = spec_json(r#"{"namespaces":[{"type":"mount"}]}"#).replacen(
            '{',
            r#"{"hostname":"h","#,
            1,
        );
        let spec = parse(Path::new("c"), json.as_bytes()).unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.starts_with("hostname: "), "{err}");
        let json =
            spec_json(r#"{"namespaces":[{"type":"uts"}]}"#).replacen('{', r#"{"hostname":"h","#, 1);
        assert!(validate(&parse(Path::new("c"), json.as_bytes()).unwrap()).is_ok());
    }

    #[test]
    fn a_bad_seccomp_profile_is_refused_naming_the_field() {
        let json = spec_json(
            r#"{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}}"#,
        );
        let spec = parse(Path::new("c"), json.as_bytes()).unwrap();
        let err = Config::from_spec(spec, PathBuf::from("/nonexistent")).unwrap_err();
        assert!(
            err.to_string()
                .contains("linux.seccomp.syscalls[0].args[0].index"),
            "{err}"
        );
    }

    #[test]
    fn config_json_must_be_a_small_regular_file() {
        let dir = std::env::temp_dir().join(format!("rrun-config-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let big = dir.join("big");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, "{}").unwrap();
        let results = [
            read_config_file(&fifo).map_err(|e| e.to_string()),
            read_config_file(Path::new("/dev/zero")).map_err(|e| e.to_string()),
            read_config_file(&dir).map_err(|e| e.to_string()),
            read_config_file(&big).map_err(|e| e.to_string()),
            read_config_file(&small).map_err(|e| e.to_string()),
        ];
        let _ = std::fs::remove_dir_all(&dir);
        let [fifo, zero, dir, big, small] = results;
        assert!(fifo.unwrap_err().ends_with("a FIFO, not a regular file"));
        assert!(zero.unwrap_err().contains("a character device"));
        assert!(dir.unwrap_err().contains("a directory"));
        assert!(big.unwrap_err().contains("larger than the 16 MiB"));
        assert_eq!(small.unwrap(), b"{}");
    }

    #[test]
    fn other_1x_versions_are_accepted() {
        assert!(check(r#"{}"#).is_ok());
        let spec = parse(
            Path::new("c"),
            spec_json("{}").replace("1.0.2", "2.0.0").as_bytes(),
        )
        .unwrap();
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("ociVersion"));
    }
}
