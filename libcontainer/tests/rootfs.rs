//! The rootfs steps on a real kernel, as root. Each test builds a busybox
//! rootfs in its own temp dir and forks a child that enters a new mount
//! namespace (and a user namespace for one test), runs `prepare`, `pivot`
//! and `finalize`, and checks the result from the inside. The child reports
//! through its exit status and a pipe; the parent then checks that nothing of
//! the bundle is mounted in the host namespace and removes the temp dir.

mod common;
#[path = "../../runtime/tests/common/host.rs"]
mod host;

use libcontainer::rootfs::{self, RootfsContext};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use serde_json::{json, Value};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A bundle directory with a busybox rootfs, removed on drop.
struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-rootfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
        fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).unwrap();
        for applet in ["sh", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin").join(applet)).unwrap();
        }
        Bundle { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let leaked = host_mounts_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        // Not a panic inside a panic: a failing test already reported.
        if !std::thread::panicking() {
            assert!(leaked.is_empty(), "mounts leaked into the host: {leaked:?}");
            assert!(!self.dir.exists(), "{} not removed", self.dir.display());
        }
    }
}

/// Mount points of the host (this test process) under `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = dir.to_string_lossy().to_string();
    info.lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

fn spec(json: Value) -> oci_spec::runtime::Spec {
    serde_json::from_value(json).expect("test spec")
}

#[derive(Clone, Copy)]
struct Options {
    user_ns: bool,
    no_pivot: bool,
}

const PLAIN: Options = Options {
    user_ns: false,
    no_pivot: false,
};

/// Runs `body` in a forked child; its `Err` (or a panic) fails the test
/// with the child's message.
fn in_child(body: impl FnOnce() -> Result<(), String>) {
    if let Err(message) = common::in_child(|| body().map(|()| String::new())) {
        panic!("child: {message}");
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// Child side: unshare the user namespace, tell the parent, wait for the maps.
fn enter_user_ns(ready: OwnedFd, go: OwnedFd) -> Result<(), String> {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare user: {e}"))?;
    fs::File::from(ready)
        .write_all(b"u")
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    fs::File::from(go)
        .read_exact(&mut byte)
        .map_err(|e| format!("waiting for id maps: {e}"))
}

/// Parent side: identity maps of the whole range, written as real root.
fn write_id_maps(pid: i32, ready: OwnedFd, go: OwnedFd) {
    let mut byte = [0u8; 1];
    if fs::File::from(ready).read_exact(&mut byte).is_err() {
        return; // the child failed before unsharing; its report says why
    }
    for map in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{pid}/{map}"), "0 0 4294967295").unwrap();
    }
    fs::File::from(go).write_all(b"g").unwrap();
}

/// The whole sequence the container init runs, in a new mount namespace.
fn build_container(
    bundle_dir: &Path,
    spec: &oci_spec::runtime::Spec,
    options: &Options,
) -> Result<(), String> {
    build_container_in(bundle_dir, spec, options, false)
}

/// [`build_container`], optionally in a new cgroup namespace.
fn build_container_in(
    bundle_dir: &Path,
    spec: &oci_spec::runtime::Spec,
    options: &Options,
    cgroup_ns: bool,
) -> Result<(), String> {
    if cgroup_ns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("unshare cgroup: {e}"))?;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare mount: {e}"))?;
    let rootfs = bundle_dir.join("rootfs");
    let ctx = RootfsContext {
        spec,
        rootfs: &rootfs,
        bundle: bundle_dir,
        in_user_ns: options.user_ns,
        in_cgroup_ns: cgroup_ns,
        no_pivot: options.no_pivot,
        idmapped: &Default::default(),
    };
    rootfs::prepare(&ctx).map_err(|e| format!("prepare: {e}"))?;
    rootfs::pivot(&ctx).map_err(|e| format!("pivot: {e}"))?;
    rootfs::finalize(&ctx).map_err(|e| format!("finalize: {e}"))
}

/// The topmost mount at `mount_point` in our mountinfo: (per-mount options,
/// fstype, super options).
struct MountLine {
    options: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
}

fn mount_at(mount_point: &str) -> Result<MountLine, String> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("mountinfo: {e}"))?;
    info.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            (fields.get(4) == Some(&mount_point)).then_some(())?;
            let after: Vec<&str> = after.split(' ').collect();
            Some(MountLine {
                options: fields[5].split(',').map(String::from).collect(),
                optional: fields[6..].iter().map(|s| s.to_string()).collect(),
                fstype: after[0].to_string(),
                super_options: after
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .map(String::from)
                    .collect(),
            })
        })
        .next_back()
        .ok_or_else(|| format!("{mount_point} is not a mount point:\n{info}"))
}

fn expect_options(mount_point: &str, fstype: &str, wanted: &[&str]) -> Result<(), String> {
    let line = mount_at(mount_point)?;
    if line.fstype != fstype {
        return Err(format!(
            "{mount_point}: fstype {} instead of {fstype}",
            line.fstype
        ));
    }
    for option in wanted {
        let present = line
            .options
            .iter()
            .chain(&line.super_options)
            .any(|o| o == option);
        if !present {
            return Err(format!(
                "{mount_point}: no {option} in {:?} / {:?}",
                line.options, line.super_options
            ));
        }
    }
    Ok(())
}

fn expect_errno(what: &str, result: std::io::Result<()>, errno: Errno) -> Result<(), String> {
    match result {
        Err(e) if e.raw_os_error() == Some(errno as i32) => Ok(()),
        other => Err(format!("{what}: expected {errno}, got {other:?}")),
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    condition.then_some(()).ok_or_else(message)
}

#[test]
fn mounts_get_their_flags_data_and_propagation() {
    let bundle = Bundle::new("flags");
    fs::create_dir_all(bundle.dir.join("data/sub")).unwrap();
    fs::write(bundle.dir.join("data/file"), "hello").unwrap();
    fs::write(bundle.dir.join("motd"), "motd").unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "noexec", "noatime", "mode=750", "size=1m", "rprivate"]},
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/etc/motd", "type": "none", "source": "motd", "options": ["bind", "ro"]},
            {"destination": "recursive", "source": "data", "options": ["rbind", "rnoexec", "rnosuid"]}
        ],
        "linux": {"rootfsPropagation": "private"}
    }));
    in_child(|| {
        build_container(&bundle.dir, &spec, &PLAIN)?;
        expect_options("/proc", "proc", &["nosuid", "nodev", "noexec"])?;
        expect_options("/dev", "tmpfs", &["nosuid", "size=65536k", "mode=755"])?;
        expect_options(
            "/dev/pts",
            "devpts",
            &["nosuid", "noexec", "ptmxmode=666", "mode=620"],
        )?;
        expect_options(
            "/scratch",
            "tmpfs",
            &[
                "nosuid",
                "nodev",
                "noexec",
                "noatime",
                "size=1024k",
                "mode=750",
            ],
        )?;
        expect_options("/data", "ext4", &["ro", "nosuid", "nodev"]).or_else(|_| {
            // /tmp may be another filesystem: the flags are what matters.
            let line = mount_at("/data")?;
            check(line.options.iter().any(|o| o == "ro"), || {
                format!("/data not ro: {:?}", line.options)
            })
        })?;
        expect_errno("write /data/new", fs::write("/data/new", "x"), Errno::EROFS)?;
        let motd = fs::read_to_string("/etc/motd").map_err(|e| format!("read /etc/motd: {e}"))?;
        check(motd == "motd", || format!("/etc/motd has {motd:?}"))?;
        expect_errno("write /etc/motd", fs::write("/etc/motd", "x"), Errno::EROFS)?;
        let recursive = mount_at("/recursive")?;
        check(recursive.options.iter().any(|o| o == "noexec"), || {
            format!("/recursive: {:?}", recursive.options)
        })?;
        let root = mount_at("/")?;
        check(
            !root
                .optional
                .iter()
                .any(|o| o.starts_with("shared:") || o.starts_with("master:")),
            || format!("/ is not private: {:?}", root.optional),
        )?;
        let ptmx = fs::read_link("/dev/ptmx").map_err(|e| format!("readlink /dev/ptmx: {e}"))?;
        check(ptmx == Path::new("pts/ptmx"), || {
            format!("/dev/ptmx -> {}", ptmx.display())
        })?;
        let ls = std::process::Command::new("/bin/ls")
            .arg("/data/sub")
            .status();
        check(matches!(ls, Ok(s) if s.success()), || {
            format!("busybox ls in the container: {ls:?}")
        })
    });
}

/// Host paths that must not exist after a test; removed on drop.
struct HostPaths(Vec<PathBuf>);

impl HostPaths {
    fn existing(&self) -> Vec<&PathBuf> {
        self.0.iter().filter(|p| p.exists()).collect()
    }
}

impl Drop for HostPaths {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[test]
fn symlinks_cannot_lead_a_mount_out_of_the_rootfs() {
    let bundle = Bundle::new("escape");
    let rootfs = bundle.rootfs();
    let unique = format!("rrun-escape-{}", std::process::id());
    std::os::unix::fs::symlink("/etc", rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../tmp", rootfs.join("climb")).unwrap();
    std::os::unix::fs::symlink(format!("/{unique}/dangling"), rootfs.join("dangling")).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": format!("/evil/{unique}"), "type": "tmpfs", "source": "tmpfs"},
            {"destination": format!("/climb/{unique}"), "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dangling/x", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {}
    }));
    // Where a broken resolver would create directories: removed even when
    // the test fails.
    let host_paths = HostPaths(
        [
            format!("/etc/{unique}"),
            format!("/tmp/{unique}"),
            format!("/{unique}"),
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    );
    in_child(|| {
        build_container(&bundle.dir, &spec, &PLAIN)?;
        expect_options(&format!("/etc/{unique}"), "tmpfs", &[])?;
        expect_options(&format!("/tmp/{unique}"), "tmpfs", &[])?;
        expect_options(&format!("/{unique}/dangling/x"), "tmpfs", &[])
    });
    let escaped = host_paths.existing();
    assert!(escaped.is_empty(), "created on the host: {escaped:?}");
    assert!(
        rootfs.join("etc").join(&unique).is_dir(),
        "not created inside the rootfs"
    );
    assert!(
        rootfs.join(&unique).join("dangling/x").is_dir(),
        "dangling symlink not followed inside"
    );
}

#[test]
fn masked_and_readonly_paths_and_readonly_root() {
    let bundle = Bundle::new("masked");
    let rootfs = bundle.rootfs();
    fs::create_dir_all(rootfs.join("secret")).unwrap();
    fs::write(rootfs.join("secret/key"), "key").unwrap();
    fs::write(rootfs.join("token"), "token").unwrap();
    fs::create_dir_all(rootfs.join("ro")).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/rw", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {
            "maskedPaths": ["/secret", "/token", "/proc/kcore", "/proc/version", "/does/not/exist"],
            "readonlyPaths": ["/ro", "/proc/sys", "/missing"]
        }
    }));
    in_child(|| {
        build_container(&bundle.dir, &spec, &PLAIN)?;
        let listing = fs::read_dir("/secret")
            .map_err(|e| format!("ls /secret: {e}"))?
            .count();
        check(listing == 0, || format!("/secret shows {listing} entries"))?;
        expect_errno("write /secret/x", fs::write("/secret/x", "x"), Errno::EROFS)?;
        let token = fs::read("/token").map_err(|e| format!("read /token: {e}"))?;
        check(token.is_empty(), || format!("/token reads {token:?}"))?;
        let masked = fs::read("/proc/version")
            .map(|c| c.len())
            .map_err(|e| format!("read /proc/version: {e}"))?;
        check(masked == 0, || {
            format!("/proc/version reads {masked} bytes")
        })?;
        expect_errno("write /ro/x", fs::write("/ro/x", "x"), Errno::EROFS)?;
        let sysctl = fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/kernel/hostname")
            .map(drop);
        expect_errno(
            "open /proc/sys/kernel/hostname for writing",
            sysctl,
            Errno::EROFS,
        )?;
        expect_errno("write /new", fs::write("/new", "x"), Errno::EROFS)?;
        fs::write("/rw/x", "x")
            .map_err(|e| format!("write /rw/x (a tmpfs under a read-only root): {e}"))
    });
    assert_eq!(fs::read_to_string(rootfs.join("token")).unwrap(), "token");
}

#[test]
fn devices_and_dev_symlinks_are_created() {
    let bundle = Bundle::new("devices");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
        ],
        "linux": {
            "rootfsPropagation": "shared",
            "devices": [
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 1000, "gid": 1001},
                {"path": "/dev/sub/loop-test", "type": "b", "major": 7, "minor": 200},
                {"path": "/dev/fifo", "type": "p"}
            ]
        }
    }));
    in_child(|| {
        build_container(&bundle.dir, &spec, &PLAIN)?;
        let expected = [
            ("/dev/null", 1, 3, 0o666, 0),
            ("/dev/zero", 1, 5, 0o666, 0),
            ("/dev/full", 1, 7, 0o666, 0),
            ("/dev/random", 1, 8, 0o666, 0),
            ("/dev/urandom", 1, 9, 0o666, 0),
            ("/dev/tty", 5, 0, 0o666, 0),
            ("/dev/fuse", 10, 229, 0o600, 1000),
            ("/dev/sub/loop-test", 7, 200, 0o666, 0),
        ];
        for (path, major, minor, mode, uid) in expected {
            let meta = fs::symlink_metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
            let rdev = meta.rdev();
            let got = (
                nix::sys::stat::major(rdev),
                nix::sys::stat::minor(rdev),
                meta.permissions().mode() & 0o7777,
                meta.uid(),
            );
            check(got == (major, minor, mode, uid), || {
                format!("{path}: (major, minor, mode, uid) = {got:?}")
            })?;
        }
        let block = fs::symlink_metadata("/dev/sub/loop-test").map_err(|e| e.to_string())?;
        check(block.file_type().is_block_device(), || {
            "/dev/sub/loop-test is not a block device".into()
        })?;
        let fifo = fs::symlink_metadata("/dev/fifo").map_err(|e| e.to_string())?;
        check(fifo.file_type().is_fifo(), || {
            "/dev/fifo is not a fifo".into()
        })?;
        let gid = fs::symlink_metadata("/dev/fuse")
            .map_err(|e| e.to_string())?
            .gid();
        check(gid == 1001, || format!("/dev/fuse gid {gid}"))?;
        for (link, target) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stderr", "/proc/self/fd/2"),
        ] {
            let got = fs::read_link(link).map_err(|e| format!("readlink {link}: {e}"))?;
            check(got == Path::new(target), || {
                format!("{link} -> {}", got.display())
            })?;
        }
        let zeros = fs::File::open("/dev/zero").and_then(|mut f| {
            let mut buf = [1u8; 4];
            f.read_exact(&mut buf).map(|_| buf)
        });
        check(matches!(zeros, Ok([0, 0, 0, 0])), || {
            format!("/dev/zero reads {zeros:?}")
        })?;
        let root = mount_at("/")?;
        check(
            root.optional.iter().any(|o| o.starts_with("shared:")),
            || format!("/ not shared: {:?}", root.optional),
        )
    });
}

#[test]
fn unknown_filesystem_type_names_destination_type_and_errno() {
    let bundle = Bundle::new("enodev");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/mnt/x", "type": "nosuchfs", "source": "none"}],
        "linux": {}
    }));
    let unsupported = spec_with_option("tmpcopyup");
    in_child(|| {
        let message = build_container(&bundle.dir, &spec, &PLAIN)
            .err()
            .ok_or("nosuchfs mounted")?;
        for part in ["/mnt/x", "nosuchfs", "ENODEV"] {
            check(message.contains(part), || {
                format!("{part} missing in {message:?}")
            })?;
        }
        let message = build_container(&bundle.dir, &unsupported, &PLAIN)
            .err()
            .ok_or("tmpcopyup accepted")?;
        check(
            message.contains("tmpcopyup") && message.contains("/data"),
            || format!("tmpcopyup error: {message:?}"),
        )
    });
}

fn spec_with_option(option: &str) -> oci_spec::runtime::Spec {
    spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", option]}],
        "linux": {}
    }))
}

#[test]
fn user_namespace_binds_devices_keeps_locked_flags_and_falls_back_for_sysfs() {
    let bundle = Bundle::new("userns");
    let locked = bundle.dir.join("locked");
    fs::create_dir_all(&locked).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/locked", "type": "bind", "source": "locked", "options": ["bind", "ro"]}
        ],
        "linux": {"maskedPaths": ["/proc/kcore", "/proc/version"], "readonlyPaths": ["/proc/sys"]}
    }));
    let options = Options {
        user_ns: true,
        no_pivot: false,
    };
    in_child(|| {
        // A nosuid,nodev source, made before the user namespace so that
        // these flags are locked in it.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
        let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
        nix::mount::mount(Some("tmpfs"), &locked, Some("tmpfs"), flags, None::<&str>)
            .map_err(|e| format!("mount locked source: {e}"))?;
        let (ready_read, ready_write) = pipe();
        let (go_read, go_write) = pipe();
        in_child_with_maps(ready_read, go_write, || {
            enter_user_ns(ready_write, go_read)?;
            build_container(&bundle.dir, &spec, &options)?;
            expect_options("/locked", "tmpfs", &["ro", "nosuid", "nodev"])?;
            expect_options("/sys", "sysfs", &[])?;
            mount_at("/dev/null")?;
            let null = fs::symlink_metadata("/dev/null").map_err(|e| e.to_string())?;
            let rdev = (
                nix::sys::stat::major(null.rdev()),
                nix::sys::stat::minor(null.rdev()),
            );
            check(rdev == (1, 3), || format!("/dev/null is {rdev:?}"))?;
            fs::write("/dev/null", "x").map_err(|e| format!("write /dev/null: {e}"))?;
            let masked = fs::read("/proc/version")
                .map(|c| c.len())
                .map_err(|e| format!("read /proc/version: {e}"))?;
            check(masked == 0, || {
                format!("/proc/version reads {masked} bytes")
            })
        })
    });
}

/// A grandchild (from a child that is already single-threaded) that enters
/// a user namespace whose maps the child writes.
fn in_child_with_maps(
    ready: OwnedFd,
    go: OwnedFd,
    body: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    // SAFETY: called in a forked, single-threaded child; the grandchild
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", Errno::last()));
    }
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            Ok(Ok(())) => 0,
            Ok(Err(message)) => {
                // SAFETY: writing a buffer we own to stderr.
                unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
                1
            }
            Err(_) => 2,
        };
        // SAFETY: leaving the forked grandchild without running destructors.
        unsafe { libc::_exit(code) };
    }
    // Our copies of the grandchild's pipe ends must go, or a grandchild
    // dying early would leave us waiting forever.
    drop(body);
    write_id_maps(pid, ready, go);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .map_err(|e| e.to_string())?;
    match status {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(format!(
            "user namespace child: {other:?} (its message is on stderr)"
        )),
    }
}

#[test]
fn cgroup_mount_emulates_runc_on_a_v1_host() {
    let bundle = Bundle::new("cgroup");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {}
    }));
    let host_v1 = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - cgroup ");
    // The hierarchies this host has (named ones such as name=systemd only
    // on some machines).
    let memory = host::has_v1("memory");
    let systemd = host::has_v1("name=systemd");
    if host_v1 && !memory {
        eprintln!("no v1 memory hierarchy on this host: the hierarchies' mounts are not checked");
    } else if host_v1 && !systemd {
        eprintln!("no name=systemd hierarchy on this host: its mount is not checked");
    }
    in_child(|| {
        build_container(&bundle.dir, &spec, &PLAIN)?;
        if !host_v1 {
            return expect_options("/sys/fs/cgroup", "cgroup2", &["ro"]);
        }
        expect_options(
            "/sys/fs/cgroup",
            "tmpfs",
            &["ro", "nosuid", "nodev", "noexec"],
        )?;
        if !memory {
            return Ok(());
        }
        expect_options(
            "/sys/fs/cgroup/memory",
            "cgroup",
            &["ro", "nosuid", "memory"],
        )?;
        if systemd {
            expect_options("/sys/fs/cgroup/systemd", "cgroup", &["ro", "name=systemd"])?;
        }
        let unified = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| e.to_string())?
            .contains(" - cgroup2 ");
        if unified {
            expect_options("/sys/fs/cgroup/unified", "cgroup2", &["ro"])?;
        }
        // Our own memory cgroup is the root of the container's view.
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let memory = own
            .lines()
            .find(|l| l.contains(":memory:"))
            .ok_or("no memory line")?;
        if memory.ends_with(":/") {
            return Ok(());
        }
        let procs =
            fs::read_to_string("/sys/fs/cgroup/memory/cgroup.procs").map_err(|e| e.to_string())?;
        let me = std::process::id().to_string();
        check(procs.lines().any(|p| p == me), || {
            format!("{me} not in the bound memory cgroup: {procs}")
        })
    });
}

#[test]
fn cgroup_mount_in_a_cgroup_namespace_mounts_the_hierarchies() {
    let bundle = Bundle::new("cgroupns");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {}
    }));
    let memory = host::has_v1("memory");
    if !memory && !host::v1_mount_points().is_empty() {
        eprintln!("no v1 memory hierarchy on this host: its mount in the container is not checked");
    }
    in_child(|| {
        build_container_in(&bundle.dir, &spec, &PLAIN, true)?;
        let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        if !info.contains(" - cgroup ") {
            return expect_options("/sys/fs/cgroup", "cgroup2", &["ro"]);
        }
        expect_options("/sys/fs/cgroup", "tmpfs", &["ro"])?;
        if !memory {
            return Ok(());
        }
        expect_options(
            "/sys/fs/cgroup/memory",
            "cgroup",
            &["ro", "nosuid", "memory"],
        )?;
        // Mounted, not bound: the root of the mount is the namespace's root.
        let root = info
            .lines()
            .find(|l| l.contains(" /sys/fs/cgroup/memory "))
            .and_then(|l| l.split(' ').nth(3))
            .ok_or("no memory line")?;
        check(root == "/", || format!("memory mount root {root}"))
    });
}

#[test]
fn no_pivot_moves_the_rootfs_and_chroots() {
    let bundle = Bundle::new("nopivot");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {}
    }));
    let options = Options {
        user_ns: false,
        no_pivot: true,
    };
    in_child(|| {
        build_container(&bundle.dir, &spec, &options)?;
        check(Path::new("/bin/busybox").exists(), || {
            "/bin/busybox missing after chroot".into()
        })?;
        let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
        check(cwd == Path::new("/"), || format!("cwd {}", cwd.display()))?;
        check(!bundle.dir.exists(), || {
            "the host's bundle is visible after chroot".into()
        })
    });
}
