//! process, capabilities, sysctl and hooks against the real kernel (run as
//! root). Everything that changes the calling process runs in a forked
//! child, which reports back through a pipe, so the test process itself is
//! never changed.

mod common;
use common::in_child;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use libcontainer::{capabilities, hooks, process, sysctl};
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, fork, pipe2, ForkResult};
use oci_spec::runtime::{Hook, LinuxPersonality, Process, Spec};
use serde_json::json;

// ---------------------------------------------------------------- helpers

fn process_from(value: serde_json::Value) -> Process {
    let mut base = json!({ "user": { "uid": 0, "gid": 0 }, "cwd": "/", "args": ["/bin/true"],
                           "env": ["PATH=/usr/bin:/bin"] });
    merge(&mut base, value);
    serde_json::from_value(base).expect("valid process")
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    for (key, value) in extra.as_object().expect("an object").clone() {
        base[key] = value;
    }
}

fn spec_from(linux: serde_json::Value) -> Spec {
    serde_json::from_value(json!({ "ociVersion": "1.2.0", "linux": linux })).expect("valid spec")
}

/// The value of one line of /proc/self/status, whitespace-normalised.
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn show<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rrun-process-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- rlimits

#[test]
fn rlimits_are_set_for_every_type() {
    let types = [
        "CPU",
        "FSIZE",
        "DATA",
        "STACK",
        "CORE",
        "RSS",
        "NPROC",
        "NOFILE",
        "MEMLOCK",
        "AS",
        "LOCKS",
        "SIGPENDING",
        "MSGQUEUE",
        "NICE",
        "RTPRIO",
        "RTTIME",
    ];
    let report = in_child(|| {
        // Every type at its current value (exercises each mapping), then
        // NOFILE and CORE lowered to values we can read back.
        let mut limits: Vec<_> = types
            .iter()
            .map(|name| {
                let resource = resource_named(name);
                let (soft, hard) = nix::sys::resource::getrlimit(resource).map_err(show)?;
                Ok(json!({ "type": format!("RLIMIT_{name}"), "soft": soft, "hard": hard }))
            })
            .collect::<Result<_, String>>()?;
        limits.push(json!({ "type": "RLIMIT_NOFILE", "soft": 123, "hard": 456 }));
        limits.push(json!({ "type": "RLIMIT_CORE", "soft": 0, "hard": 4096 }));
        process::prepare(&process_from(json!({ "rlimits": limits })), None).map_err(show)?;
        let nofile = nix::sys::resource::getrlimit(resource_named("NOFILE")).map_err(show)?;
        let core = nix::sys::resource::getrlimit(resource_named("CORE")).map_err(show)?;
        Ok(format!("{nofile:?} {core:?}"))
    });
    assert_eq!(report, Ok("(123, 456) (0, 4096)".into()));
}

fn resource_named(name: &str) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource::*;
    match name {
        "CPU" => RLIMIT_CPU,
        "FSIZE" => RLIMIT_FSIZE,
        "DATA" => RLIMIT_DATA,
        "STACK" => RLIMIT_STACK,
        "CORE" => RLIMIT_CORE,
        "RSS" => RLIMIT_RSS,
        "NPROC" => RLIMIT_NPROC,
        "NOFILE" => RLIMIT_NOFILE,
        "MEMLOCK" => RLIMIT_MEMLOCK,
        "AS" => RLIMIT_AS,
        "LOCKS" => RLIMIT_LOCKS,
        "SIGPENDING" => RLIMIT_SIGPENDING,
        "MSGQUEUE" => RLIMIT_MSGQUEUE,
        "NICE" => RLIMIT_NICE,
        "RTPRIO" => RLIMIT_RTPRIO,
        "RTTIME" => RLIMIT_RTTIME,
        other => panic!("unknown rlimit {other}"),
    }
}

#[test]
fn raising_a_hard_rlimit_without_cap_sys_resource_names_the_rlimit() {
    let report = in_child(|| {
        // Make sure CAP_SYS_RESOURCE is gone, whatever machine this runs on.
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .map_err(show)?;
        let resource = resource_named("NOFILE");
        let (_, hard) = nix::sys::resource::getrlimit(resource).map_err(show)?;
        let limits = json!([{ "type": "RLIMIT_NOFILE", "soft": hard, "hard": hard + 1 }]);
        match process::prepare(&process_from(json!({ "rlimits": limits })), None) {
            Ok(()) => Ok("raised".into()),
            Err(err) => Err(err.to_string()),
        }
    });
    let err = report.expect_err("raising the hard limit must fail");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains("EPERM"), "{err}");
}

// ---------------------------------------------------------------- attributes

#[test]
fn oom_score_adj_scheduler_and_io_priority_are_applied() {
    let report = in_child(|| {
        let process = process_from(json!({
            "oomScoreAdj": 500,
            "scheduler": { "policy": "SCHED_BATCH", "nice": 7 },
            "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 6 },
        }));
        process::prepare(&process, None).map_err(show)?;
        let oom = fs::read_to_string("/proc/self/oom_score_adj").map_err(show)?;
        // SAFETY: plain queries about the calling process.
        let (policy, nice, ioprio) = unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
                libc::syscall(libc::SYS_ioprio_get, 1, 0),
            )
        };
        Ok(format!("{} {policy} {nice} {ioprio:#x}", oom.trim()))
    });
    // SCHED_BATCH is 3; BE (2) << 13 | 6.
    assert_eq!(report, Ok(format!("500 3 7 {:#x}", (2 << 13) | 6)));
}

#[test]
fn personality_linux32_makes_uname_say_i686() {
    let report = in_child(|| {
        let personality: LinuxPersonality =
            serde_json::from_value(json!({ "domain": "LINUX32" })).map_err(show)?;
        process::prepare(&process_from(json!({})), Some(&personality)).map_err(show)?;
        let uname = nix::sys::utsname::uname().map_err(show)?;
        Ok(uname.machine().to_string_lossy().into_owned())
    });
    assert_eq!(report, Ok("i686".into()));
}

#[test]
fn a_missing_cwd_is_named() {
    let err = process::prepare(&process_from(json!({ "cwd": "/no/such/rrun-cwd" })), None)
        .expect_err("missing cwd");
    let message = err.to_string();
    assert!(message.contains("/no/such/rrun-cwd"), "{message}");
    assert!(message.contains("ENOENT"), "{message}");
}

// ---------------------------------------------------------------- user and capabilities

#[test]
fn user_groups_umask_capabilities_and_no_new_privileges_are_applied() {
    let report = in_child(|| {
        // CAP_SYS_RESOURCE out of the runtime's own bounding set whatever
        // machine this runs on (the test machine lacks it; another may
        // not): asked for below, it must be skipped.
        caps::drop(
            None,
            caps::CapSet::Bounding,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .map_err(show)?;
        let process = process_from(json!({
            "user": { "uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 23 },
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                             "CAP_SYS_RESOURCE"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                              "CAP_SYS_RESOURCE"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE", "CAP_SYS_RESOURCE"],
            },
        }));
        process::drop_privileges(&process, false).map_err(show)?;
        fs::read_to_string("/proc/self/status").map_err(show)
    });
    let status = report.expect("drop_privileges");
    let field = |name| status_field(&status, name);
    assert_eq!(field("Uid"), "1000 1000 1000 1000");
    assert_eq!(field("Gid"), "1001 1001 1001 1001");
    assert_eq!(field("Groups"), "10 20");
    assert_eq!(field("Umask"), "0027");
    assert_eq!(field("NoNewPrivs"), "1");
    // CHOWN = bit 0, KILL = 5, SETPCAP = 8, NET_BIND_SERVICE = 10; the
    // SYS_RESOURCE (24) asked for was dropped above, so it is skipped.
    assert_eq!(field("CapBnd"), "0000000000000521");
    assert_eq!(field("CapPrm"), "0000000000000421");
    assert_eq!(field("CapEff"), "0000000000000021");
    assert_eq!(field("CapInh"), "0000000000000420");
    assert_eq!(field("CapAmb"), "0000000000000400");
}

#[test]
fn cap_sys_admin_is_kept_for_seccomp_until_the_last_capset() {
    let report = in_child(|| {
        let process = process_from(json!({
            "user": { "uid": 1000, "gid": 1000 },
            "noNewPrivileges": false,
            "capabilities": {
                "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"],
            },
        }));
        let pending = process::drop_privileges(&process, true)
            .map_err(show)?
            .ok_or("no pending capset")?;
        let before = fs::read_to_string("/proc/self/status").map_err(show)?;
        pending.commit().map_err(show)?;
        let after = fs::read_to_string("/proc/self/status").map_err(show)?;
        Ok(format!("{before}\n---\n{after}"))
    });
    let report = report.expect("drop_privileges keeping CAP_SYS_ADMIN");
    let (before, after) = report.split_once("\n---\n").unwrap();
    // KILL = bit 5, SYS_ADMIN = bit 21.
    assert_eq!(status_field(before, "CapBnd"), "0000000000000020");
    assert_eq!(status_field(before, "CapEff"), "0000000000200020");
    assert_eq!(status_field(before, "CapPrm"), "0000000000200020");
    assert_eq!(status_field(before, "Uid"), "1000 1000 1000 1000");
    assert_eq!(status_field(after, "CapEff"), "0000000000000020");
    assert_eq!(status_field(after, "CapPrm"), "0000000000000020");
    assert_eq!(status_field(after, "NoNewPrivs"), "0");
}

#[test]
fn no_capabilities_object_drops_every_capability() {
    let report = in_child(|| {
        capabilities::apply(None).map_err(show)?;
        fs::read_to_string("/proc/self/status").map_err(show)
    });
    let status = report.expect("apply(None)");
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&status, set), "0000000000000000", "{set}");
    }
}

#[test]
fn a_capability_the_runtime_lacks_is_skipped_without_error() {
    let report = in_child(|| {
        // Whatever machine this runs on, CAP_SYS_RESOURCE is not held.
        caps::drop(
            None,
            caps::CapSet::Bounding,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .map_err(show)?;
        let caps = serde_json::from_value(json!({
            "bounding": ["CAP_SYS_RESOURCE", "CAP_KILL"],
            "permitted": ["CAP_SYS_RESOURCE", "CAP_KILL"],
            "effective": ["CAP_SYS_RESOURCE", "CAP_KILL"],
        }))
        .map_err(show)?;
        capabilities::apply(Some(&caps)).map_err(show)?;
        let status = fs::read_to_string("/proc/self/status").map_err(show)?;
        Ok(status_field(&status, "CapEff"))
    });
    assert_eq!(report, Ok("0000000000000020".into()));
}

// ---------------------------------------------------------------- executable and exec

#[test]
fn resolve_executable_searches_the_path_of_process_env() {
    let process = process_from(json!({
        "args": ["sh", "-c", "true"],
        "env": ["PATH=/rrun/no/such/dir:/bin"],
    }));
    let found = process::resolve_executable(&process).expect("sh in PATH");
    assert_eq!(found.to_str(), Ok("/bin/sh"));
}

#[test]
fn resolve_executable_gives_runcs_error_for_a_missing_program() {
    let process = process_from(json!({ "args": ["rrun-no-such-program"] }));
    let err = process::resolve_executable(&process).expect_err("not found");
    assert_eq!(
        err.to_string(),
        r#"exec: "rrun-no-such-program": executable file not found in $PATH"#
    );
    let process = process_from(json!({ "args": ["/rrun/no/such/program"] }));
    let err = process::resolve_executable(&process).expect_err("not found");
    assert!(err.to_string().contains("/rrun/no/such/program"), "{err}");
}

/// fds 3 and 4 are preserved (preserve_fds = 2; 4 starts close-on-exec),
/// fd 42 is a stray one.
#[test]
fn exec_marks_stray_fds_close_on_exec() {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    // SAFETY: the child only sets up fds and execs (or _exits).
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match exec_ls_with_stray_fd(&write_end) {
                Ok(never) => match never {},
                Err(err) => {
                    // Not eprintln!: another thread may hold the stderr lock.
                    let _ = nix::unistd::write(std::io::stderr(), err.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without running the harness's handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut listing = String::new();
            fs::File::from(read_end)
                .read_to_string(&mut listing)
                .expect("reading ls");
            assert_eq!(
                waitpid(child, None).expect("waitpid"),
                WaitStatus::Exited(child, 0)
            );
            let fds: Vec<&str> = listing.split_whitespace().collect();
            assert!(fds.contains(&"3") && fds.contains(&"4"), "{fds:?}");
            assert!(
                !fds.contains(&"42"),
                "stray fd reached the program: {fds:?}"
            );
        }
    }
}

fn exec_ls_with_stray_fd(stdout: &OwnedFd) -> Result<std::convert::Infallible, String> {
    // First: with other tests' threads the pipe may well sit on fd 3 or 4.
    dup2(stdout.as_raw_fd(), 1).map_err(show)?;
    let null = fs::File::open("/dev/null").map_err(show)?;
    for fd in [3, 4, 42] {
        // dup2 leaves the new fd without FD_CLOEXEC: a leak unless exec fixes it.
        dup2(null.as_raw_fd(), fd).map_err(show)?;
    }
    // A preserved fd that arrived close-on-exec must still reach the program.
    nix::fcntl::fcntl(
        4,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(show)?;
    let process = process_from(json!({ "args": ["/bin/busybox", "ls", "/proc/self/fd"] }));
    let executable = process::resolve_executable(&process).map_err(show)?;
    let execve = process::prepare_exec(&process, executable, 2).map_err(show)?;
    Err(show(execve.run()))
}

// ---------------------------------------------------------------- sysctl

#[test]
fn sysctl_validate_accepts_only_namespaced_keys_with_their_namespace() {
    let with = |namespaces: serde_json::Value, key: &str| {
        sysctl::validate(&spec_from(json!({
            "namespaces": namespaces, "sysctl": { key: "1" },
        })))
        .map_err(show)
    };
    let all = json!([{ "type": "network" }, { "type": "ipc" }, { "type": "uts" }]);
    for key in [
        "net.ipv4.ip_forward",
        "kernel.shmmax",
        "kernel.msgmax",
        "kernel.sem",
        "fs.mqueue.msg_max",
        "kernel.hostname",
        "net/ipv4/conf/all/forwarding",
    ] {
        assert_eq!(with(all.clone(), key), Ok(()), "{key}");
    }
    let err = with(all.clone(), "vm.swappiness").expect_err("not namespaced");
    assert!(err.contains("vm.swappiness"), "{err}");
    let err = with(json!([{ "type": "ipc" }]), "net.ipv4.ip_forward").expect_err("no netns");
    assert!(err.contains("net.ipv4.ip_forward"), "{err}");
    let err = with(json!([{ "type": "network" }]), "kernel.domainname").expect_err("no uts");
    assert!(err.contains("kernel.domainname"), "{err}");
    let host_net = json!([{ "type": "network", "path": "/proc/self/ns/net" }]);
    let err = with(host_net, "net.ipv4.ip_forward").expect_err("host netns");
    assert!(err.contains("host"), "{err}");
    let err = with(all, "net.ipv4/../../kernel/x").expect_err("escaping key");
    assert!(err.contains("net.ipv4/../../kernel/x"), "{err}");
}

#[test]
fn sysctl_apply_writes_in_the_container_network_namespace() {
    let report = in_child(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(show)?;
        let spec = spec_from(json!({
            "namespaces": [{ "type": "network" }],
            "sysctl": { "net.ipv4.ip_forward": "1", "net.ipv4.ip_default_ttl": "42" },
        }));
        sysctl::apply(&spec).map_err(show)?;
        let forward = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map_err(show)?;
        let ttl = fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").map_err(show)?;
        Ok(format!("{} {}", forward.trim(), ttl.trim()))
    });
    assert_eq!(report, Ok("1 42".into()));
}

// ---------------------------------------------------------------- hooks

fn hook(value: serde_json::Value) -> Hook {
    serde_json::from_value(value).expect("valid hook")
}

/// Runs hooks in a child whose stdout (inherited by the hooks) is a file;
/// returns the result and what the hooks printed.
fn run_hooks_capturing(hooks: &[Hook], state: &[u8]) -> (Result<(), String>, Vec<u8>) {
    let scratch = Scratch::new(&format!("hooks-{:?}", std::thread::current().id()));
    let out = scratch.0.join("stdout");
    let result = in_child(|| {
        let file = fs::File::create(&out).map_err(show)?;
        dup2(file.as_raw_fd(), 1).map_err(show)?;
        hooks::run(hooks, state, "startContainer").map_err(show)?;
        Ok(String::new())
    });
    let printed = fs::read(&out).unwrap_or_default();
    (result.map(|_| ()), printed)
}

#[test]
fn hook_gets_state_on_stdin_exact_env_and_args() {
    let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"created","pid":42,"bundle":"/b"}"#;
    let hooks = [
        hook(json!({ "path": "/bin/busybox", "args": ["busybox", "cat"] })),
        hook(json!({ "path": "/bin/busybox", "args": ["busybox", "env"],
                     "env": ["FOO=bar", "EMPTY=", "X=a=b"] })),
        hook(json!({ "path": "/bin/busybox", "args": ["echo", "one", "two"] })),
    ];
    let (result, printed) = run_hooks_capturing(&hooks, state);
    assert_eq!(result, Ok(()));
    let expected = [&state[..], b"FOO=bar\nEMPTY=\nX=a=b\n", b"one two\n"].concat();
    assert_eq!(
        String::from_utf8_lossy(&printed),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn hook_without_args_or_env_gets_path_as_argv0_and_empty_env() {
    let scratch = Scratch::new("argv0");
    let script = scratch.0.join("hook.sh");
    fs::write(&script, "#!/bin/busybox sh\necho \"$0\"\n").expect("script");
    nix::sys::stat::fchmodat(
        None,
        &script,
        nix::sys::stat::Mode::from_bits_truncate(0o755),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .expect("chmod");
    let hooks = [
        hook(json!({ "path": script })),
        // env with an empty environment prints nothing.
        hook(json!({ "path": "/bin/busybox", "args": ["env"] })),
    ];
    let (result, printed) = run_hooks_capturing(&hooks, b"{}");
    assert_eq!(result, Ok(()));
    assert_eq!(
        String::from_utf8_lossy(&printed),
        format!("{}\n", script.display())
    );
}

#[test]
fn failing_hook_names_phase_path_and_status_and_stops_the_list() {
    let hooks = [
        hook(json!({ "path": "/bin/busybox", "args": ["sh", "-c", "exit 3"] })),
        hook(json!({ "path": "/bin/busybox", "args": ["echo", "must not run"] })),
    ];
    let (result, printed) = run_hooks_capturing(&hooks, b"{}");
    let err = result.expect_err("exit 3");
    assert!(err.contains("startContainer"), "{err}");
    assert!(err.contains("/bin/busybox"), "{err}");
    assert!(err.contains("exit status 3"), "{err}");
    assert!(printed.is_empty(), "the second hook ran");

    let killed = [hook(
        json!({ "path": "/bin/busybox", "args": ["sh", "-c", "kill -9 $$"] }),
    )];
    let err = hooks::run(&killed, b"{}", "poststart").expect_err("killed");
    assert!(err.to_string().contains("SIGKILL"), "{err}");

    let missing = [hook(json!({ "path": "/rrun/no/such/hook" }))];
    let err = hooks::run(&missing, b"{}", "prestart").expect_err("missing");
    assert!(err.to_string().contains("/rrun/no/such/hook"), "{err}");
}

#[test]
fn hook_exceeding_its_timeout_is_killed() {
    let hooks = [hook(
        json!({ "path": "/bin/busybox", "args": ["sleep", "100"], "timeout": 1 }),
    )];
    let err = hooks::run(&hooks, b"{}", "createRuntime").expect_err("timeout");
    let message = err.to_string();
    assert!(
        matches!(err, hooks::HookError::TimedOut { .. }),
        "{message}"
    );
    assert!(
        message.contains("createRuntime") && message.contains("/bin/busybox"),
        "{message}"
    );
}

#[test]
fn hook_ignoring_a_large_state_on_stdin_does_not_break() {
    // Far more than a pipe buffer: a pipe would block the writer forever.
    let state = vec![b'x'; 4 << 20];
    let hooks = [
        hook(json!({ "path": "/bin/busybox", "args": ["true"] })),
        hook(json!({ "path": "/bin/busybox", "args": ["sh", "-c", "exec /bin/busybox wc -c"] })),
    ];
    let (result, printed) = run_hooks_capturing(&hooks, &state);
    assert_eq!(result, Ok(()));
    assert_eq!(
        String::from_utf8_lossy(&printed).trim(),
        state.len().to_string()
    );
}

#[test]
fn hook_with_zero_timeout_is_refused() {
    // A zero timeout is refused by the spec ("MUST be greater than zero").
    let hooks = [hook(
        json!({ "path": "/bin/busybox", "args": ["true"], "timeout": 0 }),
    )];
    let err = hooks::run(&hooks, b"{}", "poststop").expect_err("zero timeout");
    assert!(err.to_string().contains("timeout"), "{err}");
}
