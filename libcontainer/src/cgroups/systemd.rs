//! `--systemd-cgroup` paths: runc's `slice:prefix:name` form, converted to
//! the systemd unit and the cgroup directory it stands for, without systemd
//! (the manager itself is libcgroups' systemd manager, see
//! `Cgroup::open`).

use super::CgroupError;
use std::path::PathBuf;

/// What a `slice:prefix:name` cgroupsPath means to systemd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdPath {
    /// The parent slice, e.g. `system.slice`.
    pub slice: String,
    /// The unit rrun asks for: `<prefix>-<name>.scope`, or `<name>` when the
    /// name is itself a slice.
    pub unit: String,
    /// The cgroup directory, relative to the cgroup root:
    /// `/system.slice/docker-abc.scope`.
    pub dir: PathBuf,
}

/// Convert as runc does: an empty cgroupsPath is `system.slice:runc:<id>`;
/// an empty slice is `system.slice`; nested slices expand (`a-b.slice` is
/// `/a.slice/a-b.slice`).
pub fn convert(cgroups_path: &str, id: &str) -> Result<SystemdPath, CgroupError> {
    let bad = |why: String| CgroupError::BadPath {
        path: PathBuf::from(cgroups_path),
        why,
    };
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        ("", "runc", id)
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(bad(
                "expected the format \"slice:prefix:name\" for systemd cgroups".into(),
            ));
        };
        (slice, prefix, name)
    };
    if name.is_empty() {
        return Err(bad("the name part of \"slice:prefix:name\" is empty".into()));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let unit = unit_name(prefix, name);
    let dir = expand_slice(slice).map_err(bad)?.join(&unit);
    Ok(SystemdPath {
        slice: slice.to_string(),
        unit,
        dir,
    })
}

/// A scope unless the name asks for a slice (runc's getUnitName).
fn unit_name(prefix: &str, name: &str) -> String {
    if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    }
}

/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| !s.is_empty()) else {
        return Err(format!("invalid slice name {slice:?}: must end in .slice"));
    };
    if slice.contains('/') {
        return Err(format!("invalid slice name {slice:?}: contains '/'"));
    }
    if stem == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err(format!("invalid slice name {slice:?}: empty component"));
        }
        path.push(format!("{prefix}{component}.slice"));
        prefix = format!("{prefix}{component}-");
    }
    Ok(path)
}

/// Whether systemd is the init of this host (sd_booted(3)).
pub fn booted() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_paths_become_a_scope_under_the_slice() {
        let p = convert("system.slice:docker:abc", "ignored").unwrap();
        assert_eq!(p.slice, "system.slice");
        assert_eq!(p.unit, "docker-abc.scope");
        assert_eq!(p.dir, PathBuf::from("/system.slice/docker-abc.scope"));
    }

    #[test]
    fn nested_slices_expand() {
        let p = convert("a-b.slice:libpod:xyz", "x").unwrap();
        assert_eq!(p.dir, PathBuf::from("/a.slice/a-b.slice/libpod-xyz.scope"));
        assert_eq!(
            expand_slice("test-a-b.slice").unwrap(),
            PathBuf::from("/test.slice/test-a.slice/test-a-b.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::from("/"));
    }

    #[test]
    fn empty_parts_get_runcs_defaults() {
        let p = convert("", "myid").unwrap();
        assert_eq!(p.dir, PathBuf::from("/system.slice/runc-myid.scope"));
        let p = convert(":kubepods:pod1", "x").unwrap();
        assert_eq!(p.unit, "kubepods-pod1.scope");
        assert_eq!(p.slice, "system.slice");
        let p = convert("machine.slice::c1", "x").unwrap();
        assert_eq!(p.unit, "c1.scope");
        let p = convert("kubepods.slice:x:kubepods-burstable.slice", "x").unwrap();
        assert_eq!(p.unit, "kubepods-burstable.slice");
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "system.slice:docker:",
            "nodot:docker:abc",
            "a--b.slice:p:n",
            "a/b.slice:p:n",
        ] {
            assert!(convert(bad, "x").is_err(), "{bad}");
        }
    }
}
