//! `rrun exec` against real containers (as root), with runc 1.1 as the
//! oracle where the two must agree: the process joins every namespace and
//! cgroup of the container, gets what `--process` (Docker's own exec
//! process.json) or runc's flags ask, the container's seccomp filter, no
//! host fd; exit codes, terminals (our own console-socket receiver, and
//! `-t` under a real pty), and refusals that leave nothing behind.

mod common;
use common::*;

use serde_json::{json, Value};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
const EXEC_PROCESS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/exec-process.json"
);
const APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "id", "pwd", "grep", "ls", "tty", "stty", "true", "echo", "kill", "touch",
];

/// A busybox bundle, a state root for rrun and one for runc; removed on
/// drop with every container and its cgroups.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    runc_root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-exec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, APPLETS, &[]);
        std::fs::write(dir.join("rootfs/marker"), "in the rootfs\n").unwrap();
        let b = Bundle {
            root: dir.join("state"),
            runc_root: dir.join("runc-state"),
            cgroup: format!("/rrun-exec-{name}-{}", std::process::id()),
            dir,
        };
        b.write_config(&b.config(&json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}
        ])));
        b
    }

    /// runc spec's shape, running `sleep 1000`, with `namespaces`.
    fn config(&self, namespaces: &Value) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hostname": "rrun-exec",
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sleep", "1000"],
                "env": ["PATH=/bin", "HOME=/root"],
                "capabilities": {
                    "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"],
                    "effective": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"],
                    "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
            ],
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": {"pids": {"limit": 64}},
                "namespaces": namespaces,
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
    }

    fn cmd(&self, tool: &str, root: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(tool);
        cmd.arg("--root").arg(root).args(args);
        cmd
    }

    fn rrun(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd(RRUN, &self.root, args), &self.dir)
    }

    fn runc(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd("runc", &self.runc_root, args), &self.dir)
    }

    /// `create` + `start` of a detached `sleep 1000`; the init's pid.
    fn start(&self, id: &str) -> i32 {
        let bundle = self.dir.to_str().unwrap();
        let out = self.rrun(&["run", "-d", "--bundle", bundle, id]);
        assert!(out.status.success(), "run -d {id}: {}", stderr(&out));
        self.pid(id)
    }

    fn pid(&self, id: &str) -> i32 {
        let out = self.rrun(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        let state: Value = serde_json::from_slice(&out.stdout).unwrap();
        state["pid"].as_i64().unwrap() as i32
    }

    /// The same container under runc, with its own cgroup.
    fn runc_start(&self, id: &str) {
        let runc_dir = self.dir.join("runc-bundle");
        let _ = std::fs::create_dir_all(&runc_dir);
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("config.json")).unwrap()).unwrap();
        config["root"]["path"] = json!(self.dir.join("rootfs"));
        config["linux"]["cgroupsPath"] = json!(format!("{}-runc", self.cgroup));
        std::fs::write(runc_dir.join("config.json"), config.to_string()).unwrap();
        let out = self.runc(&["run", "-d", "--bundle", runc_dir.to_str().unwrap(), id]);
        assert!(out.status.success(), "runc run -d: {}", stderr(&out));
    }

    /// The processes in the container's cgroup (its pids hierarchy's, or
    /// its cgroup on a unified host).
    fn procs_in_cgroup(&self) -> usize {
        host::read_cgroup_file("pids", &self.cgroup, "cgroup.procs")
            .lines()
            .count()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        delete_every_container("runc", &self.runc_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runc_installed() -> bool {
    Command::new("runc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ns(pid: i32, name: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap()
}

fn read_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exec_joins_every_namespace_and_cgroup_of_the_container() {
    let b = Bundle::new("join");
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
        json!({"type": "user"}),
    ];
    let time_ns = Path::new("/proc/self/ns/time").exists();
    if time_ns {
        namespaces.push(json!({"type": "time"}));
    } else {
        eprintln!("this kernel has no time namespace: not checked");
    }
    let mut config = b.config(&Value::Array(namespaces));
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    b.write_config(&config);
    let init = b.start("c");
    let pid_file = b.dir.join("exec.pid");
    let out = b.rrun(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let exec = read_pid_file(&pid_file);
    let mut names = vec!["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];
    if time_ns {
        names.push("time");
    }
    for name in names {
        assert_eq!(ns(exec, name), ns(init, name), "{name} namespace");
        assert_ne!(
            ns(exec, name),
            std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap(),
            "{name}: the container's is new"
        );
    }
    let cgroups = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cgroups(exec), cgroups(init), "every hierarchy");
    assert!(cgroups(exec).contains(&b.cgroup), "{}", cgroups(exec));
    // Inside: the same root as the init, its pid namespace (pid > 1).
    let out = b.rrun(&[
        "exec",
        "c",
        "sh",
        "-c",
        "echo $$; cat /marker; cat /proc/1/cmdline",
    ]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].parse::<i32>().unwrap() > 1, "{text}");
    assert_eq!(lines[1], "in the rootfs");
    assert!(lines[2].starts_with("sleep"), "{text}");
}

#[test]
fn exec_into_a_mapped_user_namespace_gets_oom_score_adj() {
    // Container root is host uid 100000: the exec'd process cannot write
    // its own oom_score_adj there (EACCES), so the bootstrap sets it first.
    let b = Bundle::new("oomuser");
    let mut config = b.config(&json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}
    ]));
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["process"]["oomScoreAdj"] = json!(300);
    b.write_config(&config);
    b.start("c");
    let out = b.rrun(&["exec", "c", "cat", "/proc/self/oom_score_adj"]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "300");
    let out = b.rrun(&["exec", "c", "sh", "-c", "cat /proc/1/oom_score_adj; id -u"]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "300\n0\n",
        "the init has it too, and the process is root inside"
    );
}

#[test]
fn exec_exits_with_the_process_code_or_128_plus_the_signal() {
    let b = Bundle::new("code");
    b.start("c");
    let out = b.rrun(&["exec", "c", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).ends_with("err\n"), "{}", stderr(&out));
    let out = b.rrun(&["exec", "c", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    // stdin reaches the process.
    let input = b.dir.join("input");
    std::fs::write(&input, "piped\n").unwrap();
    let cmd = b.cmd(RRUN, &b.root, &["exec", "c", "cat"]);
    let out = output_via_files_with_stdin(cmd, &b.dir, Some(&input));
    assert_eq!(stdout(&out), "piped\n", "{}", stderr(&out));
}

/// What the process is, seen from inside: the same under rrun and runc.
const WHOAMI: &str = "id; pwd; echo X=$X; ls /proc/self/fd; \
    grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; \
    grep 'open files' /proc/self/limits";

#[test]
fn exec_with_flags_gives_the_same_process_as_runc() {
    if !runc_installed() {
        panic!("runc is the oracle of this test (scripts/test.sh installs it)");
    }
    let b = Bundle::new("flags");
    b.start("c");
    b.runc_start("r");
    let flags = [
        "-u",
        "1000:1000",
        "-g",
        "10",
        "-e",
        "X=Y",
        "--cwd",
        "/tmp",
        "--cap",
        "CAP_NET_RAW",
        "--no-new-privs",
    ];
    for with in [&flags[..], &[]] {
        let args = |id| {
            let mut a = vec!["exec"];
            a.extend_from_slice(with);
            a.extend([id, "sh", "-c", WHOAMI]);
            a
        };
        let (ours, theirs) = (b.rrun(&args("c")), b.runc(&args("r")));
        assert!(
            ours.status.success(),
            "rrun exec {with:?}: {}",
            stderr(&ours)
        );
        assert!(theirs.status.success(), "runc exec: {}", stderr(&theirs));
        assert_eq!(stdout(&ours), stdout(&theirs), "exec {with:?}");
    }
}

/// Docker 20.10's own exec process.json (`docker exec -t -u 65534 -e X=Y`,
/// without the terminal here) in a container made from Docker's config
/// with its default seccomp profile: the same process as under runc.
#[test]
fn exec_of_dockers_process_json_matches_runc() {
    if !runc_installed() {
        panic!("runc is the oracle of this test (scripts/test.sh installs it)");
    }
    // Docker's process.json has no rlimits: the process keeps the
    // runtime's own. runc (a Go program) raises its RLIMIT_NOFILE soft
    // limit to the hard one at start; rrun keeps its caller's. Give both
    // the same caller: this process's soft limit raised to its hard one.
    raise_nofile_soft_limit_to_hard();
    let b = Bundle::new("docker");
    for dir in ["etc", "tmp"] {
        std::fs::create_dir_all(b.dir.join("rootfs").join(dir)).unwrap();
    }
    let mut config = docker_config(&b.dir, &b.cgroup);
    config["process"]["args"] = json!(["sleep", "1000"]);
    b.write_config(&config);
    b.start("c");
    b.runc_start("r");
    let mut process: Value = serde_json::from_slice(&std::fs::read(EXEC_PROCESS).unwrap()).unwrap();
    process["terminal"] = json!(false);
    process["args"] = json!(["sh", "-c", WHOAMI]);
    let file = b.dir.join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let args = |id| vec!["exec", "--process", file.to_str().unwrap(), id];
    let (ours, theirs) = (b.rrun(&args("c")), b.runc(&args("r")));
    assert!(ours.status.success(), "rrun: {}", stderr(&ours));
    assert!(theirs.status.success(), "runc: {}", stderr(&theirs));
    assert_eq!(stdout(&ours), stdout(&theirs));
    let text = stdout(&ours);
    assert!(text.contains("uid=65534"), "{text}");
    assert!(text.contains("Seccomp:\t2"), "{text}");
}

/// setrlimit(RLIMIT_NOFILE) of this process: soft = hard (what Go's
/// runtime does for itself), so that a runtime started from here inherits
/// the same limits whatever the shell that ran the tests had.
fn raise_nofile_soft_limit_to_hard() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

#[test]
fn exec_refuses_paused_stopped_and_missing_containers_and_leaves_nothing() {
    let b = Bundle::new("refuse");
    b.start("c");
    assert!(b.rrun(&["pause", "c"]).status.success());
    let before = b.procs_in_cgroup();
    let out = b.rrun(&["exec", "c", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot exec in a paused container"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(b.procs_in_cgroup(), before, "a process was left");
    // --ignore-paused: the process starts frozen; it runs once resumed.
    let pid_file = b.dir.join("p.pid");
    let out = b.rrun(&[
        "exec",
        "-d",
        "--ignore-paused",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c",
        "true",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.procs_in_cgroup(), before + 1);
    assert!(b.rrun(&["resume", "c"]).status.success());

    let out = b.rrun(&["exec", "nope", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container does not exist: nope"),
        "{}",
        stderr(&out)
    );
    let out = b.rrun(&["exec", "c", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("exec failed") && err.contains("/no/such/program"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    assert!(b.rrun(&["kill", "c", "KILL"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = b.rrun(&["exec", "c", "true"]);
        if stderr(&out).contains("cannot exec in a stopped container") {
            assert_eq!(out.status.code(), Some(1));
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Only stdio and --preserve-fds reach the process (CVE-2024-21626), and
/// its cwd is in the container.
#[test]
fn exec_passes_no_fd_of_the_runtime() {
    let b = Bundle::new("fds");
    b.start("c");
    let extra = std::fs::File::open("/dev/null").unwrap();
    // Our fd becomes 3 in rrun (inherited), then 3 in the process.
    let mut cmd = b.cmd(
        RRUN,
        &b.root,
        &[
            "exec",
            "--preserve-fds",
            "1",
            "c",
            "sh",
            "-c",
            "ls /proc/self/fd; readlink /proc/self/cwd",
        ],
    );
    let raw = extra.as_raw_fd();
    // SAFETY: dup2 in the child between fork and exec, on fds it owns.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = output_via_files(cmd, &b.dir);
    assert!(out.status.success(), "{}", stderr(&out));
    // 0-2, the preserved 3, and ls's own directory fd 4.
    let text = stdout(&out);
    let fds: Vec<&str> = text.lines().take_while(|l| !l.starts_with('/')).collect();
    assert_eq!(fds, ["0", "1", "2", "3", "4"], "{text}");
    assert_eq!(text.lines().last(), Some("/"), "{text}");
}

/// A container without a mount namespace of its own: the exec'd process
/// is in its chroot too.
#[test]
fn exec_into_a_container_without_a_mount_namespace_sees_its_rootfs() {
    let b = Bundle::new("nomnt");
    let mut config = b.config(&json!([{"type": "pid"}, {"type": "uts"}]));
    config["mounts"] = json!([]);
    config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("maskedPaths");
    config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("readonlyPaths");
    b.write_config(&config);
    b.start("c");
    let out = b.rrun(&["exec", "c", "cat", "/marker"]);
    assert_eq!(stdout(&out), "in the rootfs\n", "{}", stderr(&out));
}

/// The pty master arrives on our own console socket (SCM_RIGHTS, as
/// containerd's shim receives it); the process's stdio is that terminal.
#[test]
fn exec_sends_the_pty_master_to_the_console_socket() {
    let b = Bundle::new("console");
    b.start("c");
    let socket = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = b.rrun(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        socket.to_str().unwrap(),
        "c",
        "sh",
        "-c",
        "tty; stty size; echo done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let master = receive_fd(&conn);
    let mut text = String::new();
    let mut file = std::fs::File::from(master);
    let mut buf = [0u8; 1024];
    // The slave closes when the process exits: read until EIO.
    while let Ok(n @ 1..) = file.read(&mut buf) {
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("done"), "{text:?}");
}

fn receive_fd(conn: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: SCM_RIGHTS just installed this fd for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket")
}

/// Runs `inner` in a `script` session (a real terminal) and returns what
/// the terminal showed.
fn in_a_terminal(inner: &str) -> String {
    let mut child = Command::new("script")
        .args(["-qec", inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    drop(child.stdin.take());
    let mut text = String::new();
    let mut out = child.stdout.take().unwrap();
    out.read_to_string(&mut text).unwrap();
    child.wait().unwrap();
    text
}

/// `exec -t` in the foreground in a real terminal: the process gets a pty
/// of the terminal's size, its output and exit code come back, and the
/// terminal's settings are as they were afterwards.
#[test]
fn exec_t_in_a_terminal_proxies_the_pty_and_restores_it() {
    let b = Bundle::new("tty");
    b.start("c");
    let settings = b.dir.join("settings");
    let text = in_a_terminal(&format!(
        "stty rows 33 cols 101; stty -g > {s}.before; \
         {RRUN} --root {root} exec -t c sh -c 'tty; stty size; exit 5'; \
         echo rc=$?; stty -g > {s}.after",
        s = settings.display(),
        root = b.root.display()
    ));
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("33 101"), "the window size: {text:?}");
    assert!(text.contains("rc=5"), "{text:?}");
    let read = |ext| std::fs::read_to_string(format!("{}.{ext}", settings.display())).unwrap();
    assert_eq!(
        read("before"),
        read("after"),
        "the terminal was not restored"
    );
}

/// A terminal resized while the process runs: rrun passes SIGWINCH's new
/// size on. The process waits for a file that a second exec makes after
/// the resize, then prints its size.
#[test]
fn exec_t_passes_a_window_resize_on() {
    let b = Bundle::new("winch");
    b.start("c");
    let rrun = format!("{RRUN} --root {}", b.root.display());
    let text = in_a_terminal(&format!(
        "stty rows 20 cols 70; \
         {rrun} exec -t c sh -c 'while [ ! -e /tmp/resized ]; do sleep 0.02; done; stty size' & \
         while [ ! -e /proc/$!/fd/3 ]; do sleep 0.02; done; \
         stty rows 41 cols 123; kill -WINCH $!; \
         {rrun} exec c touch /tmp/resized; wait $!; echo rc=$?"
    ));
    assert!(text.contains("41 123"), "the new size: {text:?}");
    assert!(text.contains("rc=0"), "{text:?}");
}
