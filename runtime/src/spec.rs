//! `rrun spec`: write a starter config.json, as `runc spec` does: the same
//! fields in the same order and layout (Go's field order, tab indent, no
//! final newline), so that the two differ only in `ociVersion` (the spec
//! version rrun implements) and `hostname` (`rrun`). `--rootless` makes
//! runc's rootless variant (runc's `specconv.ToRootless`).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// A config for a container run by an unprivileged user: a user
    /// namespace mapping root to the caller, no network namespace, /sys
    /// bound from the host, no cgroup settings.
    #[arg(long)]
    rootless: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec = starter();
    if args.rootless {
        to_rootless(
            &mut spec,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    write_new(&path, &to_json(&spec)?)?;
    Ok(0)
}

/// The subset of the OCI config a starter uses, field for field in the
/// order of runtime-spec's Go types (which is how runc writes it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Starter {
    oci_version: String,
    process: Process,
    root: Root,
    hostname: String,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    no_new_privileges: bool,
}

#[derive(Debug, Clone, Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Capabilities {
    bounding: Vec<String>,
    effective: Vec<String>,
    permitted: Vec<String>,
    ambient: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    typ: String,
    hard: u64,
    soft: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Root {
    path: String,
    readonly: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Mount {
    destination: String,
    #[serde(rename = "type")]
    typ: String,
    source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct IdMapping {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Debug, Clone, Serialize)]
struct DeviceRule {
    allow: bool,
    access: String,
}

#[derive(Debug, Clone, Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    typ: String,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: destination.into(),
        typ: typ.into(),
        source: source.into(),
        options: strings(options),
    }
}

/// runc's starter: an interactive `sh` on a read-only `rootfs`, with the
/// default namespaces, mounts, capabilities, masked and read-only paths,
/// and every device denied.
fn starter() -> Starter {
    let caps = strings(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    Starter {
        oci_version: libcontainer::OCI_VERSION.to_string(),
        process: Process {
            terminal: true,
            user: User { uid: 0, gid: 0 },
            args: strings(&["sh"]),
            env: strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            capabilities: Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps.clone(),
                ambient: caps,
            },
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
        },
        root: Root {
            path: "rootfs".into(),
            readonly: true,
        },
        hostname: "rrun".into(),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Linux {
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            resources: Some(Resources {
                devices: vec![DeviceRule {
                    allow: false,
                    access: "rwm".into(),
                }],
            }),
            namespaces: ["pid", "network", "ipc", "uts", "mount"]
                .iter()
                .map(|t| Namespace { typ: t.to_string() })
                .collect(),
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
        },
    }
}

/// runc's rootless variant: a new user namespace (and no network one)
/// mapping root to `uid`:`gid`; /sys bound from the host (a user
/// namespace without its own network namespace cannot mount sysfs); no
/// uid=/gid= mount options (those ids are not mapped); no cgroup settings.
fn to_rootless(spec: &mut Starter, uid: u32, gid: u32) {
    let linux = &mut spec.linux;
    linux
        .namespaces
        .retain(|ns| ns.typ != "network" && ns.typ != "user");
    linux.namespaces.push(Namespace { typ: "user".into() });
    let map = |host_id| {
        vec![IdMapping {
            container_id: 0,
            host_id,
            size: 1,
        }]
    };
    linux.uid_mappings = map(uid);
    linux.gid_mappings = map(gid);
    linux.resources = None;
    for m in &mut spec.mounts {
        if Path::new(&m.destination) == Path::new("/sys") {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
            continue;
        }
        m.options
            .retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
    }
}

/// Go's json.MarshalIndent(spec, "", "\t"), as runc writes it.
fn to_json(spec: &Starter) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    spec.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    Ok(String::from_utf8(out)?)
}

fn write_new(path: &Path, json: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rrun writes, rrun takes: it parses and passes validation.
    #[test]
    fn both_starters_are_valid_configs() {
        for rootless in [false, true] {
            let mut spec = starter();
            if rootless {
                to_rootless(&mut spec, 1000, 1000);
            }
            let json = to_json(&spec).unwrap();
            let parsed =
                libcontainer::config::parse(Path::new("config.json"), json.as_bytes()).unwrap();
            libcontainer::config::validate(&parsed).unwrap();
            assert_eq!(parsed.hostname().as_deref(), Some("rrun"));
        }
    }

    #[test]
    fn rootless_maps_root_to_the_caller_and_drops_what_needs_privilege() {
        let mut spec = starter();
        to_rootless(&mut spec, 1000, 1001);
        let v: serde_json::Value = serde_json::from_str(&to_json(&spec).unwrap()).unwrap();
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(v["linux"].get("resources").is_none());
        let types: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mount", "user"]);
        assert!(!v.to_string().contains("gid=5"));
    }
}
