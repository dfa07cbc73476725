//! What the `security.<cve>` cases share: attacker containers, the host
//! snapshot that proves nothing changed, victims run many times with a
//! tally of how they ended, and bundle edits.
//!
//! Every target an attack aims at lives in the case's own work dir (or is
//! a harmless, namespaced /proc file of the container itself): a runtime
//! that falls for an attack changes a file of the test, never the machine.

use crate::ensure;
use crate::harness::{ctx, wait_child, wait_until, Bundle, Env, Output};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long an attacker may run at most (a bound for a runner that died;
/// the runner stops it much earlier).
pub const ATTACKER_SECS: &str = "120";

/// A container whose process is one of the checker's attack modes. It
/// prints `{"ready":..}` when it starts and its verdict when `/ctl/stop`
/// appears.
pub struct Attacker {
    pub id: String,
    out: Output,
    stop: PathBuf,
}

/// The attacker's stop file, as the attacker sees it.
pub const STOP: &str = "/ctl/stop";

impl Attacker {
    /// Creates and starts `/checker <args>` in a fresh bundle (changed by
    /// `prepare` first) with the host dir `<work>/ctl-<id>` at /ctl, and
    /// waits until it says it is ready.
    pub fn start(
        env: &Env,
        suffix: &str,
        args: &[&str],
        prepare: impl FnOnce(&mut Bundle) -> Result<(), String>,
    ) -> Result<Attacker, String> {
        let id = env.id(suffix);
        let mut b = env.bundle(&id)?;
        let ctl = env.work.join(format!("ctl-{suffix}"));
        make_shared_dir(&ctl)?;
        b.add_mount(bind(&ctl, "/ctl"));
        let mut argv = vec!["/checker"];
        argv.extend(args);
        b.set_args(&argv);
        prepare(&mut b)?;
        b.write()?;
        let out = env.create(&b, &id)?;
        env.start(&id)?;
        let mut line = String::new();
        let ready = wait_until(Duration::from_secs(20), || {
            line = out.stdout_now();
            line.contains("\"ready\"")
        });
        ensure!(
            ready,
            "attacker {id} did not get ready: {:?}",
            crate::harness::truncate(&line, 300)
        );
        Ok(Attacker {
            id,
            out,
            stop: ctl.join("stop"),
        })
    }

    /// Tells the attacker to stop and returns its last JSON line.
    pub fn stop(self, env: &Env) -> Result<Value, String> {
        ctx(
            fs::write(&self.stop, "stop"),
            "write the attacker's stop file",
        )?;
        let mut verdict = None;
        wait_until(Duration::from_secs(20), || {
            verdict = self
                .out
                .stdout_now()
                .lines()
                .rfind(|l| l.starts_with('{') && !l.contains("\"ready\""))
                .and_then(|l| serde_json::from_str::<Value>(l).ok());
            verdict.is_some()
        });
        let _ = env.wait_status(&self.id, "stopped");
        verdict.ok_or_else(|| {
            format!(
                "attacker {} gave no verdict: {:?}",
                self.id,
                crate::harness::truncate(&self.out.stdout_now(), 300)
            )
        })
    }
}

/// A host dir every container may write (mode 0777).
pub fn make_shared_dir(dir: &Path) -> Result<(), String> {
    ctx(fs::create_dir_all(dir), "mkdir shared dir")?;
    ctx(
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777)),
        "chmod shared dir",
    )
}

/// A read-write bind mount entry of a host path.
pub fn bind(host: &Path, dest: &str) -> Value {
    json!({"destination": dest, "type": "bind", "source": host.display().to_string(),
           "options": ["rbind", "rw"]})
}

/// Drops the mount entries at `dest`.
pub fn remove_mount(b: &mut Bundle, dest: &str) {
    if let Some(list) = b.config["mounts"].as_array_mut() {
        list.retain(|m| m["destination"] != dest);
    }
}

/// Every entry under `dir` (recursively, without following symlinks):
/// its type and content (or link target). Two equal snapshots mean
/// nothing was created, removed or written there.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        let what = if ft.is_symlink() {
            format!(
                "link -> {}",
                fs::read_link(&path).unwrap_or_default().display()
            )
        } else if ft.is_dir() {
            walk(root, &path, out);
            "dir".to_string()
        } else if ft.is_char_device() || ft.is_block_device() {
            use std::os::unix::fs::MetadataExt;
            format!("dev {}", meta.rdev())
        } else {
            let data = fs::read(&path).unwrap_or_default();
            format!("file {:?}", String::from_utf8_lossy(&data))
        };
        out.insert(name, what);
    }
}

/// What changed between two snapshots, for a failure message.
pub fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let mut lines = Vec::new();
    for (k, v) in after {
        match before.get(k) {
            None => lines.push(format!("+{k} ({v})")),
            Some(old) if old != v => lines.push(format!("~{k} ({old} -> {v})")),
            _ => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        lines.push(format!("-{k}"));
    }
    crate::harness::truncate(&lines.join(", "), 600)
}

/// How the victim runs of a race ended.
#[derive(Default)]
pub struct Tally {
    pub runs: u32,
    pub ran: u32,
    /// The first line of each distinct refusal, with its count.
    pub refused: BTreeMap<String, u32>,
}

impl Tally {
    pub fn refusal(&mut self, out: &Output) {
        let line = out.summary();
        // Numbers (pids, fds, runs) would make every line distinct.
        let key: String = line
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *self
            .refused
            .entry(crate::harness::truncate(&key, 200))
            .or_default() += 1;
    }

    pub fn summary(&self) -> String {
        let refused: Vec<String> = self
            .refused
            .iter()
            .map(|(line, n)| format!("{n}x {line}"))
            .collect();
        format!(
            "{} runs: {} ran, {} refused{}",
            self.runs,
            self.ran,
            self.runs - self.ran,
            if refused.is_empty() {
                String::new()
            } else {
                format!(" ({})", refused.join("; "))
            }
        )
    }
}

/// A refusal must be one clear line: a non-empty first line of text, not
/// a panic, a signal or a timeout. (Exit codes of runtimes differ: runc
/// exits 255 for a failed exec; a signal shows as 128 + its number.)
pub fn clear_refusal(out: &Output) -> Result<String, String> {
    ensure!(
        out.code != crate::harness::TIMED_OUT,
        "the runtime hung: {}",
        out.summary()
    );
    let text = out.error_text();
    ensure!(
        !crashed(out.code, &text),
        "the runtime crashed instead of refusing: {}",
        crate::harness::truncate(&text.replace('\n', " | "), 300)
    );
    let first = text.lines().next().unwrap_or("").trim().to_string();
    ensure!(
        !first.is_empty(),
        "the runtime refused without a word (exit {})",
        out.code
    );
    Ok(first)
}

/// Killed by a signal (SIGABRT of a Rust panic with panic=abort, SIGSEGV),
/// or a panic's exit (Rust 101, Go 2 with "panic:").
pub fn crashed(code: i32, text: &str) -> bool {
    (129..=192).contains(&code)
        || code == 101
        || text.contains("panicked at")
        || text.contains("panic: ")
}

/// Runs `program args` in a session of its own whose controlling
/// terminal is a new pty (stdin and stdout; runc opens /dev/tty for a
/// terminal without a console socket), stderr to `err`, killed after
/// `limit`. What it writes to the pty is read and thrown away (a hostile
/// "pty master" cannot fill a disk or block it). Returns the exit code
/// (or 128+signal, or TIMED_OUT), the seconds taken and the bytes it
/// wrote to the pty.
pub fn run_on_pty(
    program: &Path,
    args: &[String],
    err: &Path,
    limit: Duration,
) -> Result<(i32, f64, u64), String> {
    use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    // SAFETY: posix_openpt returns a new fd or -1.
    let raw = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    ensure!(
        raw >= 0,
        "posix_openpt: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: posix_openpt just returned this fd to us.
    let master = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: grantpt/unlockpt take our master; ptsname_r writes at most
    // name.len() bytes into name.
    let ok = unsafe {
        libc::grantpt(raw) == 0
            && libc::unlockpt(raw) == 0
            && libc::ptsname_r(raw, name.as_mut_ptr(), name.len()) == 0
    };
    ensure!(ok, "pty setup: {}", std::io::Error::last_os_error());
    // SAFETY: ptsname_r wrote a NUL-terminated name.
    let slave_name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
    let slave = ctx(
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(slave_name.to_string_lossy().as_ref()),
        "open pty slave",
    )?;
    let err_file = ctx(fs::File::create(err), "create stderr file")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(ctx(slave.try_clone(), "dup pty slave")?)
        .stdout(slave)
        .stderr(err_file);
    // SAFETY: between fork and exec only setsid and ioctl, both
    // async-signal-safe, on the child's own stdin.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let child = ctx(cmd.spawn(), "spawn the runtime")?;
    drop(cmd);
    let done = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let reader = {
        let (done, bytes) = (done.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !done.load(Ordering::SeqCst) {
                let mut pfd = libc::pollfd {
                    fd: master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on our stack.
                if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                    continue;
                }
                // SAFETY: reading into our own buffer from our own fd.
                let n =
                    unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    // EIO: no slave is open any more; keep polling until done
                    // (a later process may open it again), but do not spin.
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                bytes.fetch_add(n as u64, Ordering::SeqCst);
            }
        })
    };
    let code = wait_child(child, limit);
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let _ = reader.join();
    Ok((code, secs, bytes.load(Ordering::SeqCst)))
}

/// Writes a VFS_CAP_REVISION_2 `security.capability` xattr on `path`:
/// the effective bit, nothing permitted, and `inheritable` (a 64-bit mask)
/// in the file's inheritable set.
pub fn set_file_caps(path: &Path, inheritable: u64) -> Result<(), String> {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE).to_le_bytes());
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&(inheritable as u32).to_le_bytes());
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&((inheritable >> 32) as u32).to_le_bytes());
    let c_path = ctx(
        std::ffi::CString::new(path.display().to_string()),
        "path with a NUL",
    )?;
    // SAFETY: a NUL-terminated path and name, and a buffer with its length.
    let ret = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            0,
        )
    };
    ensure!(
        ret == 0,
        "setxattr security.capability on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// A `/proc/<pid>/fd` listing: the fd numbers a process holds.
pub fn fds_of(pid: i64) -> Vec<u32> {
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}
