//! seccomp::load and seccomp::notify against the real kernel (run as root).
//! Every filter is loaded in a forked child, which reports back through a
//! pipe, so the test process itself never gets a filter. The filters are
//! small hand-written BPF programs (arch check included), independent of
//! the profile compiler.

mod common;
#[path = "../../runtime/tests/common/host.rs"]
mod host;
use common::in_child;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::sock_filter;
use libcontainer::seccomp::load::{self, LoadError};
use libcontainer::seccomp::notify::{self, Answer, ContainerProcessState};
use serde_json::json;

// ---------------------------------------------------------------- helpers

/// A directory under /tmp removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/tmp/rrun-sc-load-{}-{tag}-{n}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("mkdir temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// "x86_64 only (anything else and x32 are killed); each (nr, action) of
/// `rules` returns its action; everything else is allowed."
fn filter(rules: &[(i64, u32)]) -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    let kill_at = 4 + 2 * rules.len() + 1;
    let to_kill = |from: usize| u8::try_from(kill_at - (from + 1)).unwrap();
    let mut prog = vec![
        insn(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        insn(JEQ_K, 0, to_kill(1), AUDIT_ARCH_X86_64),
        insn(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JGE_K, to_kill(3), 0, X32_SYSCALL_BIT),
    ];
    for &(nr, action) in rules {
        prog.push(insn(JEQ_K, 0, 1, nr as u32));
        prog.push(insn(RET_K, 0, 0, action));
    }
    prog.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    prog.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS));
    assert_eq!(prog.len(), kill_at + 1);
    prog
}

fn errno_action(errno: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | errno as u32
}

/// mkdir and mkdirat both fail with EXDEV (never what a real mkdir says).
fn mkdir_exdev() -> Vec<sock_filter> {
    filter(&[
        (libc::SYS_mkdir, errno_action(libc::EXDEV)),
        (libc::SYS_mkdirat, errno_action(libc::EXDEV)),
    ])
}

/// mkdir and mkdirat go to the agent.
fn mkdir_notify() -> Vec<sock_filter> {
    filter(&[
        (libc::SYS_mkdir, libc::SECCOMP_RET_USER_NOTIF),
        (libc::SYS_mkdirat, libc::SECCOMP_RET_USER_NOTIF),
    ])
}

/// Raw mkdir(2): Ok(return value) or Err(errno).
fn raw_mkdir(path: &str) -> Result<i64, i32> {
    let c_path = std::ffi::CString::new(path).unwrap();
    // SAFETY: mkdir reads a NUL-terminated path that lives across the call.
    let ret = unsafe { libc::syscall(libc::SYS_mkdir, c_path.as_ptr(), 0o755) };
    if ret < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(ret)
    }
}

/// Raw mkdirat(AT_FDCWD, path): Ok(return value) or Err(errno).
fn raw_mkdirat(path: &str) -> Result<i64, i32> {
    let c_path = std::ffi::CString::new(path).unwrap();
    // SAFETY: mkdirat reads a NUL-terminated path that lives across the call.
    let ret = unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, c_path.as_ptr(), 0o755) };
    if ret < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(ret)
    }
}

/// A line of /proc/self/status, e.g. "NoNewPrivs" → "0".
fn status_field(name: &str) -> String {
    let status = fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn flags(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const MISSING: &str = "/nonexistent-rrun-sc-load/x";

// ------------------------------------------------------------------ load

#[test]
fn filter_loads_without_no_new_privs_as_root() {
    let report = in_child(|| {
        let before = (status_field("NoNewPrivs"), status_field("Seccomp"));
        let fd = load::load(&mkdir_exdev(), &[]).map_err(|e| e.to_string())?;
        Ok(format!(
            "{before:?} fd={} nnp={} seccomp={} mkdir={:?} mkdirat={:?}",
            fd.is_some(),
            status_field("NoNewPrivs"),
            status_field("Seccomp"),
            raw_mkdir(MISSING),
            raw_mkdirat(MISSING),
        ))
    });
    assert_eq!(
        report.unwrap(),
        format!(
            "(\"0\", \"0\") fd=false nnp=0 seccomp=2 mkdir=Err({e}) mkdirat=Err({e})",
            e = libc::EXDEV
        )
    );
}

#[test]
fn without_cap_sys_admin_only_no_new_privs_allows_loading() {
    let report = in_child(|| {
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .map_err(|e| e.to_string())?;
        let refused = match load::load(&mkdir_exdev(), &[]) {
            Err(e @ LoadError::NotPermitted { .. }) => e.to_string(),
            other => return Err(format!("without CAP_SYS_ADMIN and NNP: {other:?}")),
        };
        nix::sys::prctl::set_no_new_privs().map_err(|e| e.to_string())?;
        load::load(&mkdir_exdev(), &[]).map_err(|e| format!("with NNP: {e}"))?;
        Ok(format!("{refused} | mkdir={:?}", raw_mkdir(MISSING)))
    })
    .unwrap();
    assert!(report.contains("CAP_SYS_ADMIN"), "{report}");
    assert!(report.contains("EACCES"), "{report}");
    assert!(
        report.ends_with(&format!("mkdir=Err({})", libc::EXDEV)),
        "{report}"
    );
}

/// Each seccomp(2) flag rrun knows and the Linux release that added it.
const FLAGS_SINCE: [(&str, (u32, u32)); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", (3, 17)),
    ("SECCOMP_FILTER_FLAG_LOG", (4, 14)),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", (4, 17)),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", (5, 19)),
];

/// Each flag is supported exactly where the kernel is new enough; a
/// supported one loads, one the kernel predates is refused by name.
#[test]
fn every_flag_this_kernel_has_loads() {
    for (flag, (major, minor)) in FLAGS_SINCE {
        let has = host::kernel_at_least(major, minor);
        assert_eq!(
            load::kernel_supports_flag(flag).unwrap(),
            has,
            "{flag} (Linux {major}.{minor}+) on this kernel"
        );
        if !has {
            // WAIT_KILLABLE_RECV means something only with a listener.
            let filter = if flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
                mkdir_notify()
            } else {
                mkdir_exdev()
            };
            let report = in_child(move || match load::load(&filter, &flags(&[flag])) {
                Ok(_) => Err(format!("{flag} loaded on a kernel before it")),
                Err(err) => Ok(format!("{err} | seccomp={}", status_field("Seccomp"))),
            })
            .unwrap();
            assert!(
                report.contains(flag) && report.ends_with("seccomp=0"),
                "{report}"
            );
            eprintln!(
                "{flag}: this kernel predates Linux {major}.{minor}: refused by name, not loaded"
            );
            continue;
        }
        let report = in_child(|| {
            load::load(&mkdir_exdev(), &flags(&[flag])).map_err(|e| e.to_string())?;
            Ok(format!("{:?}", raw_mkdirat(MISSING)))
        });
        assert_eq!(report, Ok(format!("Err({})", libc::EXDEV)), "{flag}");
    }
}

#[test]
fn an_unknown_flag_is_named_and_nothing_is_loaded() {
    let report = in_child(|| {
        let err = load::load(&mkdir_exdev(), &flags(&["SECCOMP_FILTER_FLAG_BOGUS"]))
            .expect_err("an unknown flag must be refused");
        Ok(format!("{err} | seccomp={}", status_field("Seccomp")))
    })
    .unwrap();
    assert!(report.contains("\"SECCOMP_FILTER_FLAG_BOGUS\""), "{report}");
    assert!(report.ends_with("seccomp=0"), "{report}");
    assert!(load::kernel_supports_flag("SECCOMP_FILTER_FLAG_BOGUS").is_err());
}

#[test]
fn an_empty_filter_is_refused() {
    assert!(matches!(load::load(&[], &[]), Err(LoadError::EmptyFilter)));
}

/// The filter reaches a second thread of the child with TSYNC, and only
/// then (which shows the test can tell the difference).
#[test]
fn tsync_reaches_the_other_thread() {
    let run = |flag_names: &'static [&'static str]| {
        in_child(move || {
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let other = std::thread::spawn(move || {
                go_rx.recv().unwrap();
                raw_mkdirat(MISSING)
            });
            let loaded = load::load(&mkdir_exdev(), &flags(flag_names));
            go_tx.send(()).unwrap();
            let seen = other.join().map_err(|_| "the thread panicked")?;
            loaded.map_err(|e| e.to_string())?;
            Ok(format!("{seen:?}"))
        })
    };
    assert_eq!(
        run(&["SECCOMP_FILTER_FLAG_TSYNC"]),
        Ok(format!("Err({})", libc::EXDEV))
    );
    assert_eq!(run(&[]), Ok(format!("Err({})", libc::ENOENT)));
}

#[test]
fn a_second_notify_listener_is_refused() {
    let report = in_child(|| {
        let first = load::load(&mkdir_notify(), &[]).map_err(|e| e.to_string())?;
        let second = load::load(&mkdir_notify(), &[]);
        Ok(format!(
            "{} {:?}",
            first.is_some(),
            second.map(|fd| fd.is_some())
        ))
    })
    .unwrap();
    assert!(report.starts_with("true Err(ListenerBusy"), "{report}");
}

/// TSYNC with a listener needs TSYNC_ESRCH (the return value is the fd,
/// not a thread id): `load` adds it, so both threads notify.
#[test]
fn tsync_with_notify_returns_the_listener() {
    let report = in_child(|| {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || go_rx.recv().unwrap());
        let loaded = load::load(&mkdir_notify(), &flags(&["SECCOMP_FILTER_FLAG_TSYNC"]));
        go_tx.send(()).unwrap();
        other.join().map_err(|_| "the thread panicked")?;
        let fd = loaded.map_err(|e| e.to_string())?;
        Ok(format!("fd={}", fd.is_some()))
    });
    assert_eq!(report, Ok("fd=true".into()));
}

// ---------------------------------------------------------------- notify

fn container_state(id: &str) -> serde_json::Value {
    json!({"ociVersion": "1.2.0", "id": id, "status": "creating", "pid": 0, "bundle": "/b"})
}

/// In a child: load the notify filter, send the fd to `socket`, then
/// report what mkdir and mkdirat returned.
fn notified_child(
    socket: &Path,
    made: &Path,
    with_flags: &'static [&'static str],
) -> Result<String, String> {
    in_child(|| {
        let fd: OwnedFd = load::load(&mkdir_notify(), &flags(with_flags))
            .map_err(|e| e.to_string())?
            .ok_or("no notify fd for a NOTIFY filter")?;
        let pid = std::process::id() as i32;
        let state = ContainerProcessState::new(pid, Some("meta-1"), container_state("c1"));
        notify::send_to_listener(socket, &state, fd.as_fd()).map_err(|e| e.to_string())?;
        drop(fd);
        let made = made.to_str().unwrap();
        Ok(format!(
            "mkdir={:?} mkdirat={:?} exists={}",
            raw_mkdir(MISSING),
            raw_mkdirat(made),
            Path::new(made).exists()
        ))
    })
}

fn test_agent_answer(notif: &libc::seccomp_notif) -> Answer {
    match i64::from(notif.data.nr) {
        libc::SYS_mkdir => Answer::Errno(libc::ENOMEDIUM),
        libc::SYS_mkdirat => Answer::Value(7),
        _ => Answer::Continue,
    }
}

#[test]
fn notify_end_to_end_with_an_agent_thread() {
    let dir = TempDir::new("notify");
    let socket = dir.0.join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let received = notify::receive_from_runtime(&mut conn).unwrap();
        let mut seen = Vec::new();
        notify::serve(received.notify_fd.as_fd(), |notif| {
            seen.push(notif.data.nr);
            test_agent_answer(notif)
        })
        .unwrap();
        (received.state, seen)
    });
    let with_flags: &[&str] = if host::kernel_at_least(5, 19) {
        &["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    } else {
        eprintln!(
            "this kernel (before 5.19) has no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: not set"
        );
        &[]
    };
    let report = notified_child(&socket, &dir.0.join("made"), with_flags);
    let (state, seen) = agent.join().unwrap();
    assert_eq!(
        report.unwrap(),
        format!("mkdir=Err({}) mkdirat=Ok(7) exists=false", libc::ENOMEDIUM)
    );
    assert_eq!(seen, [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32]);
    assert_eq!(state.fds, ["seccompFd"]);
    assert_eq!(state.metadata, "meta-1");
    assert_eq!(state.oci_version, libcontainer::OCI_VERSION);
    assert_eq!(state.state, container_state("c1"));
    assert!(state.pid > 0);
}

/// The example agent binary (`cargo test` builds examples next to deps/).
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).unwrap();
    let agent = target.join("examples/seccomp-agent");
    assert!(
        agent.exists(),
        "{} is missing: run `cargo test -p libcontainer` (it builds examples) or \
         `cargo build -p libcontainer --example seccomp-agent`",
        agent.display()
    );
    agent
}

#[test]
fn notify_end_to_end_with_the_agent_binary() {
    let dir = TempDir::new("agent-bin");
    let socket = dir.0.join("agent.sock");
    let state_file = dir.0.join("state.json");
    let mut agent = Command::new(agent_binary())
        .arg("--socket")
        .arg(&socket)
        .arg("--state-file")
        .arg(&state_file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !socket.exists() {
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let report = notified_child(&socket, &dir.0.join("made"), &[]);
    let saved = fs::read(&state_file);
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(
        report.unwrap(),
        format!("mkdir=Err({}) mkdirat=Ok(0) exists=false", libc::ENOMEDIUM)
    );
    let saved: serde_json::Value = serde_json::from_slice(&saved.unwrap()).unwrap();
    assert_eq!(saved["metadata"], "meta-1");
    assert_eq!(saved["state"]["id"], "c1");
}

#[test]
fn a_missing_listener_is_named_with_its_errno() {
    let dir = TempDir::new("missing");
    let devnull = fs::File::open("/dev/null").unwrap();
    let state = ContainerProcessState::new(1, None, container_state("c1"));

    let absent = dir.0.join("absent.sock");
    let err = notify::send_to_listener(&absent, &state, devnull.as_fd()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(absent.to_str().unwrap()), "{text}");
    assert!(text.contains("ENOENT"), "{text}");

    // A socket file nobody listens on any more.
    let stale = dir.0.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let text = notify::send_to_listener(&stale, &state, devnull.as_fd())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("stale.sock") && text.contains("ECONNREFUSED"),
        "{text}"
    );
}
