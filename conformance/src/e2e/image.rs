//! The busybox image: a rootfs tar made from Debian's busybox-static
//! (/bin/busybox and a symlink per applet, /etc/passwd and /etc/group),
//! and an OCI image archive of it for `ctr images import` (no registry is
//! reachable; docker and podman import the rootfs tar itself).

use super::proc::must;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name under which every engine knows the image.
pub const DOCKER_REF: &str = "rrun-e2e/busybox:latest";
pub const CTR_REF: &str = "docker.io/rrun-e2e/busybox:latest";
pub const PODMAN_REF: &str = "localhost/rrun-e2e/busybox:latest";
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Makes `<work>/rootfs.tar` (or copies the given one) and returns its path.
pub fn rootfs_tar(work: &Path, given: Option<&Path>) -> Result<PathBuf> {
    let tar = work.join("rootfs.tar");
    if let Some(g) = given {
        std::fs::copy(g, &tar).with_context(|| format!("copying {}", g.display()))?;
        return Ok(tar);
    }
    let root = work.join("rootfs");
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "mnt", "data", "sbin", "usr/bin",
        "usr/sbin", "var/run",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    let busybox = Path::new("/bin/busybox");
    std::fs::copy(busybox, root.join("bin/busybox"))
        .context("copying /bin/busybox (apt-get install busybox-static)")?;
    let list = must(&["/bin/busybox", "--list"], Duration::from_secs(10), work)?;
    for applet in list.stdout.split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let (r, t) = (root.display().to_string(), tar.display().to_string());
    must(
        &["tar", "--numeric-owner", "-C", &r, "-cf", &t, "."],
        Duration::from_secs(60),
        work,
    )?;
    Ok(tar)
}

fn sha256(path: &Path, work: &Path) -> Result<String> {
    let p = path.display().to_string();
    let o = must(&["sha256sum", &p], Duration::from_secs(30), work)?;
    Ok(o.stdout
        .split_whitespace()
        .next()
        .context("sha256sum printed nothing")?
        .to_string())
}

/// Writes `bytes` as a blob of the layout; returns (digest, size).
fn blob(layout: &Path, src: &Path, work: &Path) -> Result<(String, u64)> {
    let digest = sha256(src, work)?;
    let size = std::fs::metadata(src)?.len();
    std::fs::copy(src, layout.join("blobs/sha256").join(&digest))?;
    Ok((format!("sha256:{digest}"), size))
}

/// An OCI image layout archive with one uncompressed layer, the rootfs tar.
pub fn oci_archive(work: &Path, rootfs_tar: &Path) -> Result<PathBuf> {
    let layout = work.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    let (layer, layer_size) = blob(&layout, rootfs_tar, work)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let cfg_file = work.join("oci-config.json");
    std::fs::write(&cfg_file, serde_json::to_vec(&config)?)?;
    let (cfg, cfg_size) = blob(&layout, &cfg_file, work)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    });
    let man_file = work.join("oci-manifest.json");
    std::fs::write(&man_file, serde_json::to_vec(&manifest)?)?;
    let (man, man_size) = blob(&layout, &man_file, work)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man,
            "size": man_size,
            "annotations": {"io.containerd.image.name": CTR_REF, "org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let archive = work.join("oci.tar");
    let (l, a) = (layout.display().to_string(), archive.display().to_string());
    must(
        &["tar", "--numeric-owner", "-C", &l, "-cf", &a, "."],
        Duration::from_secs(60),
        work,
    )?;
    Ok(archive)
}
