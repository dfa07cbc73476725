//! Hostile bundles (issue 13, "Fuzzing and hostile input"), as root against
//! real containers: a config.json of 100 MB and one just under rrun's
//! 16 MiB limit, 10,000 mounts, JSON nested 100,000 deep, invalid UTF-8 in
//! args and env (in the config and on the command line), and a symlink,
//! FIFO, device or directory where a file or directory is expected (the
//! rootfs, process.cwd, a mount's source and destination, config.json
//! itself). Each ends with one clear error line, or runs safely where runc
//! runs it; never in a crash or a hang (a generous limit), with a bounded
//! peak RSS of the rrun process (wait4's rusage), and nothing left: no
//! state directory, cgroup, mount or process.

mod common;
use common::*;

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// A hang check, not a speed assertion: every case here ends in well
/// under a second or two on this machine.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Peak RSS rrun may reach on any of these bundles.
const RSS_LIMIT_KB: i64 = 512 * 1024;

/// What one rrun run did.
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    max_rss_kb: i64,
}

impl Ran {
    fn one_line(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one error line: {:?}", self.stderr);
        lines[0].to_string()
    }
}

struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "true"], &["mnt"]);
        Bundle {
            root: dir.join("state"),
            cgroup: format!("/rrun-hostile-{name}-{}", std::process::id()),
            dir,
        }
    }

    fn config(&self) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["true"],
                        "env": ["PATH=/bin"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": {"pids": {"limit": 16}},
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
            }
        })
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Replace config.json (whatever it was: a FIFO, a link, a directory).
    fn write_raw(&self, data: &[u8]) {
        self.clear_config();
        std::fs::write(self.config_path(), data).unwrap();
    }

    fn write(&self, config: &Value) {
        self.write_raw(config.to_string().as_bytes());
    }

    fn clear_config(&self) {
        let path = self.config_path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir(&path).unwrap();
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// `rrun --root <root> <args>`, waited for with wait4 (for its peak
    /// RSS) and killed after [`HANG_LIMIT`], which fails the test.
    ///
    /// The peak is an upper bound: the kernel counts in a child's
    /// `ru_maxrss` the memory of the process it was spawned from (the old
    /// mm of its execve, here this test process's), so the tests never
    /// hold a big config in memory themselves.
    fn rrun<S: AsRef<OsStr>>(&self, args: &[S]) -> Ran {
        let err_path = self.dir.join("stderr");
        // Reaped by the wait4 below (for its rusage), which clippy cannot see.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new(RRUN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = Instant::now();
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child with valid out-pointers.
            let ret = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            assert!(ret >= 0, "wait4: {}", std::io::Error::last_os_error());
            if ret == pid {
                break;
            }
            if started.elapsed() > HANG_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rrun {:?} hung (more than {} s)",
                    args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                    HANG_LIMIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = std::process::ExitStatus::from_raw(status);
        let ran = Ran {
            code: status.code(),
            signal: status.signal(),
            stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned(),
            max_rss_kb: usage.ru_maxrss,
        };
        assert_eq!(ran.signal, None, "rrun died of a signal: {}", ran.stderr);
        assert_ne!(ran.code, Some(101), "rrun panicked: {}", ran.stderr);
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
        assert!(
            ran.max_rss_kb < RSS_LIMIT_KB,
            "rrun's peak RSS was {} kB",
            ran.max_rss_kb
        );
        ran
    }

    /// `rrun run` of this bundle as container `id`.
    fn run(&self, id: &str) -> Ran {
        self.rrun(&["run", "--bundle", self.dir.to_str().unwrap(), id])
    }

    /// Refused with one line that contains each of `expect`.
    fn assert_refused(&self, what: &str, ran: &Ran, expect: &[&str]) {
        assert_eq!(ran.code, Some(1), "{what}: {}", ran.stderr);
        let line = ran.one_line();
        for e in expect {
            assert!(line.contains(e), "{what}: {line:?} does not say {e:?}");
        }
        self.assert_clean(what);
    }

    /// Ran the container's `true` to its end.
    fn assert_ran(&self, what: &str, ran: &Ran) {
        assert_eq!(ran.code, Some(0), "{what}: {}", ran.stderr);
        self.assert_clean(what);
    }

    fn assert_clean(&self, what: &str) {
        let left: Vec<_> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{what}: left under the root: {left:?}");
        assert_no_cgroup(&self.cgroup, what);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mountinfo.contains(self.dir.to_str().unwrap()),
            "{what}: a mount was left"
        );
        let left = processes_in(&self.cgroup);
        assert!(left.is_empty(), "{what}: processes left: {left:?}");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Processes in `cgroup` in any hierarchy: an init or a helper that
/// outlived the rrun that made it. (The test's other threads run rrun at
/// the same time: its children are not a sign of anything.)
fn processes_in(cgroup: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cgroups.lines().any(|l| l.ends_with(cgroup)) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            found.push(format!("{pid} ({})", comm.trim()));
        }
    }
    found
}

/// Write config.json as `config` with `"field": <value>` added, the value
/// written by `value` in pieces: the test process never holds the big
/// file, so that its own peak RSS stays small (see [`Bundle::rrun`]).
fn write_streamed(b: &Bundle, config: &Value, field: &str, value: impl Fn(&mut dyn Write)) {
    b.clear_config();
    let text = config.to_string();
    let mut out = std::io::BufWriter::new(std::fs::File::create(b.config_path()).unwrap());
    out.write_all(&text.as_bytes()[..text.len() - 1]).unwrap();
    write!(out, ",\"{field}\":").unwrap();
    value(&mut out);
    out.write_all(b"}").unwrap();
    out.flush().unwrap();
}

#[test]
fn a_100_mb_config_is_refused_at_once_in_bounded_memory() {
    let b = Bundle::new("big");
    // process.env with one 100 MB variable, written around a placeholder.
    let mut config = b.config();
    config["process"]["env"] = json!(["PATH=/bin", "BIG=PLACEHOLDER"]);
    let text = config.to_string();
    let (before, after) = text.split_once("PLACEHOLDER").unwrap();
    b.clear_config();
    let mut out = std::io::BufWriter::new(std::fs::File::create(b.config_path()).unwrap());
    out.write_all(before.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        out.write_all(&chunk).unwrap();
    }
    out.write_all(after.as_bytes()).unwrap();
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(b.config_path()).unwrap().len();
    assert!(size > 100 << 20, "{size}");
    let ran = b.run("big");
    b.assert_refused(
        "100 MB config",
        &ran,
        &["config.json", "larger than the 16 MiB"],
    );
    eprintln!("100 MB config: peak RSS {} kB", ran.max_rss_kb);
    // The same file as `update -r`: refused before it is read whole.
    let ran = b.rrun(&[
        OsStr::new("update"),
        OsStr::new("-r"),
        b.config_path().as_os_str(),
        OsStr::new("nope"),
    ]);
    b.assert_refused("update -r of 100 MB", &ran, &["larger than the 16 MiB"]);

    // Just under the limit, in 150,000 annotations (each is copied into
    // state.json and handed to the hooks): it runs, in bounded memory.
    write_streamed(&b, &b.config(), "annotations", |out| {
        out.write_all(b"{").unwrap();
        for i in 0..150_000 {
            let comma = if i == 0 { "" } else { "," };
            write!(out, "{comma}\"io.rrun.test/{i:08}\":\"{}\"", "v".repeat(80)).unwrap();
        }
        out.write_all(b"}").unwrap();
    });
    let size = std::fs::metadata(b.config_path()).unwrap().len();
    assert!(size > 15 << 20 && size < 16 << 20, "{size}");
    let ran = b.run("annotations");
    b.assert_ran("15 MiB of annotations", &ran);
    eprintln!("15 MiB config: peak RSS {} kB", ran.max_rss_kb);
}

#[test]
fn ten_thousand_mounts_run() {
    let b = Bundle::new("mounts");
    let mut config = b.config();
    let mounts = config["mounts"].as_array_mut().unwrap();
    for i in 0..10_000 {
        mounts.push(
            json!({"destination": format!("/mnt/m{i}"), "type": "tmpfs", "source": "tmpfs",
                           "options": ["size=4k"]}),
        );
    }
    b.write(&config);
    let ran = b.run("mounts");
    b.assert_ran("10,000 mounts", &ran);
    eprintln!("10,000 mounts: peak RSS {} kB", ran.max_rss_kb);
}

#[test]
fn deeply_nested_json_is_an_error_or_ignored_never_a_crash() {
    let b = Bundle::new("nested");
    const DEEP: usize = 100_000;
    let good = b.config().to_string();
    let with =
        |field: &str, value: &str| format!("{},\"{field}\":{value}}}", &good[..good.len() - 1]);
    let arrays = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
    let objects = format!("{}1{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP));
    // The whole document, and a known field: refused, naming where.
    b.write_raw(arrays.as_bytes());
    let ran = b.run("nested");
    b.assert_refused(
        "100k [ as the document",
        &ran,
        &["config.json", "invalid JSON"],
    );
    b.write_raw(with("annotations", &objects).as_bytes());
    let ran = b.run("nested");
    b.assert_refused("100k { in annotations", &ran, &["annotations"]);
    b.write_raw(with("mounts", &arrays).as_bytes());
    let ran = b.run("nested");
    b.assert_refused("100k [ in mounts", &ran, &["mounts"]);
    // Unclosed: the parser must stop, not recurse to the end.
    b.write_raw("[".repeat(DEEP).as_bytes());
    let ran = b.run("nested");
    b.assert_refused("100k unclosed [", &ran, &["config.json"]);
    // A field the spec does not have is ignored (runc too), however deep:
    // skipped without recursion, the container runs.
    b.write_raw(with("x-unknown", &arrays).as_bytes());
    let ran = b.run("nested");
    b.assert_ran("100k [ in an unknown field", &ran);
    b.write_raw(with("x-unknown", &objects).as_bytes());
    let ran = b.run("nested");
    b.assert_ran("100k { in an unknown field", &ran);
}

#[test]
fn invalid_utf8_is_refused_naming_the_field() {
    let b = Bundle::new("utf8");
    let mut config = b.config();
    config["process"]["args"] = json!(["true", "ARG"]);
    let raw = config.to_string().replace("ARG", "\u{1}");
    // Raw bytes that are not UTF-8 in process.args.
    b.write_raw(
        &raw.as_bytes()
            .iter()
            .flat_map(|&c| if c == 1 { vec![0xff, 0xfe] } else { vec![c] })
            .collect::<Vec<u8>>(),
    );
    let ran = b.run("utf8");
    b.assert_refused("0xff in args", &ran, &["process.args[1]"]);
    // A lone surrogate (valid JSON text, not a Unicode string) in env.
    let mut config = b.config();
    config["process"]["env"] = json!(["PATH=/bin", "X=SURROGATE"]);
    b.write_raw(
        config
            .to_string()
            .replace("SURROGATE", "\\udc80")
            .as_bytes(),
    );
    let ran = b.run("utf8");
    b.assert_refused("lone surrogate in env", &ran, &["process.env[1]"]);
    // Overlong UTF-8 for '/' in cwd.
    let mut config = b.config();
    config["process"]["cwd"] = json!("/CWD");
    let raw = config.to_string();
    let mut bytes = Vec::new();
    for (i, part) in raw.split("CWD").enumerate() {
        if i > 0 {
            bytes.extend([0xc0, 0xaf]);
        }
        bytes.extend(part.as_bytes());
    }
    b.write_raw(&bytes);
    let ran = b.run("utf8");
    b.assert_refused("overlong UTF-8 in cwd", &ran, &["process.cwd"]);

    // On the command line: a container id, and exec's arguments.
    b.write(&b.config());
    let bad = OsStr::from_bytes(b"bad\xff");
    let ran = b.rrun(&[
        OsStr::new("run"),
        OsStr::new("--bundle"),
        b.dir.as_os_str(),
        bad,
    ]);
    b.assert_refused("invalid UTF-8 id", &ran, &["UTF-8"]);
    let ran = b.rrun(&[
        OsStr::new("exec"),
        OsStr::new("nope"),
        OsStr::new("true"),
        bad,
    ]);
    b.assert_refused("invalid UTF-8 exec argument", &ran, &["UTF-8"]);
    // A bundle directory whose name is not UTF-8: refused, naming it
    // (rrun records it in JSON; it used to fail half-way through create,
    // with "channel: bad message").
    let odd = b.dir.join(OsStr::from_bytes(b"bundle\xff"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(b.config_path(), odd.join("config.json")).unwrap();
    std::os::unix::fs::symlink(b.dir.join("rootfs"), odd.join("rootfs")).unwrap();
    let ran = b.rrun(&[
        OsStr::new("run"),
        OsStr::new("--bundle"),
        odd.as_os_str(),
        OsStr::new("odd"),
    ]);
    b.assert_refused(
        "a bundle path that is not UTF-8",
        &ran,
        &["bundle: ", "not UTF-8"],
    );
    // And a rootfs that resolves to such a path.
    std::fs::remove_file(odd.join("rootfs")).unwrap();
    std::fs::rename(b.dir.join("rootfs"), odd.join("rootfs")).unwrap();
    std::os::unix::fs::symlink(odd.join("rootfs"), b.dir.join("rootfs")).unwrap();
    let ran = b.run("odd");
    b.assert_refused(
        "a rootfs path that is not UTF-8",
        &ran,
        &["root.path: ", "not UTF-8"],
    );
}

fn mkfifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

fn mknod_null(path: &std::path::Path) {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
}

#[test]
fn a_symlink_fifo_or_device_where_a_file_or_directory_is_expected() {
    let b = Bundle::new("kinds");
    let rootfs = b.dir.join("rootfs");
    mkfifo(&b.dir.join("fifo"));
    mknod_null(&b.dir.join("null"));
    mkfifo(&rootfs.join("fifo"));
    mknod_null(&rootfs.join("null"));
    std::os::unix::fs::symlink("rootfs", b.dir.join("rootlink")).unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("etclink")).unwrap();

    // config.json itself: must not hang on the FIFO, nor read the device.
    b.clear_config();
    mkfifo(&b.config_path());
    let ran = b.run("c");
    b.assert_refused(
        "config.json a FIFO",
        &ran,
        &["config.json", "a FIFO, not a regular file"],
    );
    b.clear_config();
    std::os::unix::fs::symlink("/dev/zero", b.config_path()).unwrap();
    let ran = b.run("c");
    b.assert_refused(
        "config.json -> /dev/zero",
        &ran,
        &["config.json", "character device"],
    );
    b.clear_config();
    std::fs::create_dir(b.config_path()).unwrap();
    let ran = b.run("c");
    b.assert_refused(
        "config.json a directory",
        &ran,
        &["config.json", "a directory"],
    );
    // `exec` reads the bundle's config.json again (for the process's
    // defaults): swapped for a FIFO after create, it must not hang either.
    b.write(&b.config());
    let ran = b.rrun(&["create", "--bundle", b.dir.to_str().unwrap(), "swapped"]);
    assert_eq!(ran.code, Some(0), "create: {}", ran.stderr);
    b.clear_config();
    mkfifo(&b.config_path());
    let ran = b.rrun(&["exec", "swapped", "true"]);
    assert_eq!(ran.code, Some(1), "exec: {}", ran.stderr);
    assert!(ran.one_line().contains("a FIFO"), "{}", ran.stderr);
    let ran = b.rrun(&["delete", "--force", "swapped"]);
    assert_eq!(ran.code, Some(0), "delete: {}", ran.stderr);
    b.assert_clean("exec with config.json swapped for a FIFO");

    type Change = fn(&mut Value);
    let refused: &[(&str, Change, &[&str])] = &[
        (
            "rootfs a FIFO",
            |c| c["root"]["path"] = json!("fifo"),
            &["root.path", "ENOTDIR"],
        ),
        (
            "rootfs a device",
            |c| c["root"]["path"] = json!("null"),
            &["root.path", "ENOTDIR"],
        ),
        (
            "rootfs missing",
            |c| c["root"]["path"] = json!("nope"),
            &["root.path", "ENOENT"],
        ),
        (
            "cwd a FIFO",
            |c| c["process"]["cwd"] = json!("/fifo"),
            &["process.cwd", "ENOTDIR"],
        ),
        (
            "cwd a device",
            |c| c["process"]["cwd"] = json!("/null"),
            &["process.cwd", "ENOTDIR"],
        ),
        (
            "cwd a host fd",
            |c| c["process"]["cwd"] = json!("/proc/self/fd/3"),
            &["process.cwd"],
        ),
        (
            "mount destination below a FIFO",
            |c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/fifo/x", "type": "tmpfs", "source": "tmpfs"}))
            },
            &["/fifo/x", "ENOTDIR"],
        ),
        (
            "bind of a directory onto a FIFO",
            |c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/fifo", "type": "bind", "source": "/tmp", "options": ["rbind"]}))
            },
            &["/fifo", "ENOTDIR"],
        ),
        (
            "bind of a directory onto a device",
            |c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/null", "type": "bind", "source": "/tmp", "options": ["rbind"]}))
            },
            &["/null", "ENOTDIR"],
        ),
    ];
    for (what, change, expect) in refused {
        let mut config = b.config();
        change(&mut config);
        b.write(&config);
        let ran = b.run("c");
        b.assert_refused(what, &ran, expect);
    }

    // What runc runs too: a rootfs that is a symlink to a directory, a cwd
    // that is a symlink (resolved inside the container), and a FIFO or a
    // device as a bind mount's source (bound onto a file the runtime makes;
    // never opened for reading).
    let fifo = b.dir.join("fifo").display().to_string();
    let device = b.dir.join("null").display().to_string();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let runs: Vec<(&str, Mutation)> = vec![
        (
            "rootfs a symlink",
            Box::new(|c| c["root"]["path"] = json!("rootlink")),
        ),
        (
            "cwd a symlink",
            Box::new(|c| c["process"]["cwd"] = json!("/etclink")),
        ),
        (
            "a FIFO bound",
            Box::new(move |c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/fifo", "type": "bind", "source": fifo, "options": ["rbind"]}))
            }),
        ),
        (
            "a device bound",
            Box::new(move |c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/null", "type": "bind", "source": device, "options": ["rbind"]}))
            }),
        ),
    ];
    for (what, change) in runs {
        let mut config = b.config();
        change(&mut config);
        config["process"]["args"] =
            json!(["sh", "-c", "test -p /mnt/fifo || test -c /mnt/null || true"]);
        b.write(&config);
        let ran = b.run("c");
        b.assert_ran(what, &ran);
    }
}
