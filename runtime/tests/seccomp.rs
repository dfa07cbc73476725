//! linux.seccomp through the CLI: what the runtime does after the filter is
//! loaded, user notification with an agent, and refusals that leave nothing.
//! (Docker's default profile against runc: seccomp_docker.rs; each action
//! and op: the conformance suite.)

mod common;

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_no_cgroup, make_busybox_rootfs, output_via_files, stderr, stdout};
use libcontainer::seccomp::notify::{self, Answer};
use serde_json::{json, Value};

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// SIGSYS (31) kills a process the filter says KILL_PROCESS to: a
/// foreground `run` exits with 128 + 31.
const KILLED_BY_SIGSYS: i32 = 159;

struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    cgroup: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-seccomp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "mkdir", "ls", "pwd", "tr"], &[]);
        Bundle {
            root: dir.join("state"),
            dir,
            cgroup: format!("/rrun-test-seccomp-{name}-{}", std::process::id()),
        }
    }

    /// `runc spec`'s shape, trimmed; `seccomp` is linux.seccomp.
    fn config(&self, args: &[&str], seccomp: Value) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {
                "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": args,
                "env": ["PATH=/bin"], "noNewPrivileges": false,
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                 "permitted": ["CAP_KILL"]},
            },
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "network"}],
                "cgroupsPath": self.cgroup,
                "seccomp": seccomp,
            },
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    fn rrun(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RRUN);
        cmd.arg("--root").arg(&self.root).args(args);
        output_via_files(cmd, &self.dir)
    }

    fn run(&self, id: &str) -> Output {
        self.rrun(&["run", "--bundle", self.dir.to_str().unwrap(), id])
    }

    /// No state directory, no cgroup.
    fn assert_clean(&self, what: &str) {
        let entries: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "{what}: state left: {entries:?}");
        assert_no_cgroup(&self.cgroup, what);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        common::delete_every_container(RRUN, &self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A static program that only calls exit(0): the one place in these tests
/// where every syscall the container makes is known (busybox makes many).
/// Written byte by byte (an ELF header, one loadable segment, then `mov
/// $60, %eax; xor %edi, %edi; syscall`), so that no C toolchain is needed.
fn build_exit0(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56; // ELF header, one program header
    let code: &[u8] = &[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let size = HEADERS + code.len() as u64;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend(1u32.to_le_bytes()); // EV_CURRENT
    elf.extend((BASE + HEADERS).to_le_bytes()); // entry: the code
    elf.extend(64u64.to_le_bytes()); // program headers' offset
    elf.extend(0u64.to_le_bytes()); // no section headers
    elf.extend(0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend(half.to_le_bytes()); // sizes and counts of the headers
    }
    elf.extend(1u32.to_le_bytes()); // PT_LOAD
    elf.extend(5u32.to_le_bytes()); // PF_R | PF_X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend(word.to_le_bytes()); // offset, addresses, sizes, alignment
    }
    elf.extend_from_slice(code);
    assert_eq!(elf.len() as u64, size);
    let binary = dir.join("rootfs/exit0");
    std::fs::write(&binary, elf).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    binary
}

/// A profile that kills the process at any call but `allowed`.
fn only(allowed: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    })
}

#[test]
fn after_the_filter_the_runtime_calls_only_capset_and_execve() {
    let b = Bundle::new("only");
    build_exit0(&b.dir);
    // (noNewPrivileges, what the runtime may still call, expected exit).
    let cases = [
        // Without NNP the filter is loaded holding CAP_SYS_ADMIN, then one
        // capset finishes the drop to uid 1000's sets.
        (false, vec!["capset", "execve", "exit"], 0),
        // With NNP the drop is complete before the filter: execve only.
        (true, vec!["execve", "exit"], 0),
        // Proof that the filter judges the runtime's own calls: without
        // capset in the list, the runtime's last capset is killed.
        (false, vec!["execve", "exit"], KILLED_BY_SIGSYS),
    ];
    for (i, (nnp, allowed, expected)) in cases.into_iter().enumerate() {
        let mut config = b.config(&["/exit0"], only(&allowed));
        config["process"]["noNewPrivileges"] = json!(nnp);
        config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1000]});
        b.write_config(&config);
        let out = b.run(&format!("only-{i}"));
        assert_eq!(
            out.status.code(),
            Some(expected),
            "NNP {nnp}, allowed {allowed:?}: {}",
            stderr(&out)
        );
        b.assert_clean(&format!("only-{i}"));
    }
}

#[test]
fn a_profile_that_blocks_getcwd_chdir_and_fd_calls_does_not_break_the_runtime() {
    let b = Bundle::new("getcwd");
    let mut profile: Value = serde_json::from_str(include_str!(
        "../../libcontainer/tests/fixtures/docker-seccomp.json"
    ))
    .unwrap();
    // Calls a runtime makes at start: before the filter in rrun, after it
    // in runc 1.1.5 (which fails here: "error closing exec fds: open
    // /proc/self/fd: function not implemented"). Docker's profile allows
    // them, and the first unconditional rule of a syscall wins, so they
    // leave its allow rules and get their own ERRNO rule.
    let blocked = [
        "getcwd",
        "chdir",
        "fchdir",
        "close_range",
        "fcntl",
        "poll",
        "ppoll",
        "dup2",
        "dup3",
        "prctl",
        "openat",
    ];
    let rules = profile["syscalls"].as_array_mut().unwrap();
    for rule in rules.iter_mut() {
        let names = rule["names"].as_array_mut().unwrap();
        names.retain(|name| !blocked.contains(&name.as_str().unwrap()));
    }
    rules.retain(|rule| !rule["names"].as_array().unwrap().is_empty());
    rules.push(json!({"names": blocked, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    b.write_config(&b.config(&["/bin/pwd"], profile));
    let out = b.run("getcwd");
    // The container's own program ran, and the profile judged it.
    assert_eq!(stderr(&out).trim(), "pwd: getcwd: Function not implemented");
    assert_eq!(out.status.code(), Some(1));
    b.assert_clean("getcwd");
}

/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (5.19+;
/// a kernel without it must refuse it: features.rs checks that).
fn wait_killable_recv() -> Value {
    if common::host::kernel_at_least(5, 19) {
        return json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    }
    eprintln!("this kernel (before 5.19) has no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: not set");
    json!([])
}

#[test]
fn notify_hands_the_fd_and_state_to_the_agent_whose_answers_the_container_sees() {
    let b = Bundle::new("notify");
    let socket = b.dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let received = notify::receive_from_runtime(&mut conn).unwrap();
        let mut seen = Vec::new();
        notify::serve(received.notify_fd.as_fd(), |notif| {
            seen.push(i64::from(notif.data.nr));
            match i64::from(notif.data.nr) {
                libc::SYS_mkdir => Answer::Errno(libc::ENOMEDIUM),
                _ => Answer::Continue,
            }
        })
        .unwrap();
        (received.state, seen)
    });
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "rrun-test-metadata",
        "flags": wait_killable_recv(),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    });
    let script = "mkdir /made; echo mkdir=$?; ls -d /made; ls /proc/self/fd | tr '\\n' ' '";
    b.write_config(&b.config(&["sh", "-c", script], profile));
    let out = b.run("notify");
    let (state, seen) = agent.join().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text} {}", stderr(&out));
    assert!(text.contains("mkdir=1"), "{text}");
    assert!(stderr(&out).contains("No medium found"), "{}", stderr(&out));
    assert!(!b.dir.join("rootfs/made").exists(), "mkdir ran anyway");
    // Only stdio and ls's own directory fd: no listener, no agent socket.
    assert!(text.ends_with("0 1 2 3 "), "fds in the container: {text}");
    assert_eq!(seen, [libc::SYS_mkdir]);
    assert_eq!(state.fds, ["seccompFd"]);
    assert_eq!(state.metadata, "rrun-test-metadata");
    assert_eq!(state.state["id"], "notify");
    assert_eq!(state.state["status"], "creating");
    assert_eq!(state.state["bundle"], json!(b.dir));
    assert_eq!(state.state["pid"], json!(state.pid));
    assert!(state.pid > 0);
    b.assert_clean("notify");
}
