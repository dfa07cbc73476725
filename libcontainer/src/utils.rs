//! Thin wrappers over the Linux syscalls that nix 0.29 does not wrap
//! (pidfds, clone3, close_range, the new mount API), and small helpers.
//!
//! For embedders: the pidfd helpers, for the pidfds that
//! [`crate::container::Created`] and [`crate::container::Executed`] hold,
//! and the timestamps of the state ([`rfc3339_nano`]).

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// `pidfd_open(2)`: a pidfd for `pid`, close-on-exec.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `pidfd_send_signal(2)`: signal the process behind `pidfd`, never one
/// that reused its pid. ESRCH once it has been reaped.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Block until the process behind `pidfd` has exited (it is then a zombie
/// or already reaped). Event-driven: poll(2) on the pidfd, no sleeping.
/// `timeout_ms` as poll(2) takes it (-1: no limit); true once it exited,
/// false on timeout. Reaps nothing, so it works beside any reaper.
pub fn pidfd_wait_exit(pidfd: &OwnedFd, timeout_ms: i32) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd on our stack.
        let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        match ret {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            0 => return Ok(false),
            _ => return Ok(true),
        }
    }
}

/// Wait for the process behind `pidfd` to exit and reap it (`waitid` with
/// `P_PIDFD`): the exit code a shell would report, that is the exit
/// status, or 128 + the signal number. Only for a child of the caller, in
/// a program without a `waitpid(-1)` reaper: that reaper and this call
/// would race for the status, and the loser gets ECHILD.
pub fn wait_pidfd_exit_code(pidfd: &OwnedFd) -> Result<i32, Errno> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with a valid pidfd and a valid siginfo pointer.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if ret == -1 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        // SAFETY: waitid filled `info` for a child that changed state.
        let status = unsafe { info.si_status() };
        return Ok(match info.si_code {
            libc::CLD_EXITED => status,
            _ => 128 + status,
        });
    }
}

/// Arguments of `clone3(2)`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3's CLONE_INTO_CGROUP (linux/sched.h; not in the libc crate):
/// the child is born in the cgroup2 directory `clone_args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The result of [`clone3_fork`] in the calling process.
pub(crate) enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// fork-like clone3: the child runs on a copy of our stack. `flags` may
/// hold namespace flags and CLONE_PARENT; CLONE_PIDFD is always added.
/// With `into_cgroup` (an fd of a cgroup2 directory) the child is born
/// there (CLONE_INTO_CGROUP), with no migration.
///
/// # Safety
/// The calling process must be single-threaded (the child gets a copy of
/// this thread only), as the bootstrap process is.
pub(crate) unsafe fn clone3_fork(flags: u64, into_cgroup: Option<RawFd>) -> Result<Forked, Errno> {
    let mut pidfd: RawFd = -1;
    let into_cgroup_flag = if into_cgroup.is_some() {
        CLONE_INTO_CGROUP
    } else {
        0
    };
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | into_cgroup_flag,
        cgroup: into_cgroup.map_or(0, |fd| fd as u64),
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the kernel uses our own exit signal instead;
        // clone3 insists on 0 then.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: `args` is a valid clone_args of the size we pass; without a
    // stack the child continues on a copy-on-write copy of ours (fork
    // semantics), which the caller guarantees is sound (single thread).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD stored a fresh fd owned by us in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: every fd from `first` up
/// becomes close-on-exec.
pub(crate) fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on our
    // own descriptors; it closes nothing and touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `close_range(first, ~0, 0)`: close every fd from `first` up.
pub(crate) fn close_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only closes our own fds; the caller owns none of
    // them through a Rust handle (it runs before anything opens them).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// rename(2) that fails with EEXIST instead of replacing `to`.
pub(crate) fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> Result<(), Errno> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// Swaps `from` and `to` atomically (both must exist).
fn rename_exchange(from: &std::path::Path, to: &std::path::Path) -> Result<(), Errno> {
    renameat2(from, to, libc::RENAME_EXCHANGE)
}

/// renameat2(2) by system call: nix has no renameat2 for musl.
fn renameat2(
    from: &std::path::Path,
    to: &std::path::Path,
    flags: libc::c_uint,
) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both paths are NUL-terminated strings alive for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The text of a /proc file (mountinfo, cgroup, stat...). procfs files
/// say their size is 0, so `std::fs::read_to_string` starts with a 32-byte
/// read and doubles (8 reads for a mountinfo here); this reads 16 KiB at
/// once (one read and the one that sees the end) into a buffer on the
/// stack, whose pages every call reuses, and allocates only what the file
/// held (a 300-byte /proc/<pid>/stat took a 16 KiB String before).
pub fn read_proc_text(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = [0u8; 16 * 1024];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => return utf8(buf[..len].to_vec()),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Larger than the buffer (a long mountinfo): the rest on the heap.
    let mut text = Vec::with_capacity(2 * buf.len());
    text.extend_from_slice(&buf);
    file.read_to_end(&mut text)?;
    utf8(text)
}

/// Opens `path` read-only and close-on-exec in one system call. musl's
/// open() follows an O_CLOEXEC open with fcntl(F_SETFD) (for kernels
/// before 2.6.23): a second call for every file the static build opens
/// through std. For the files read per container (list, state).
pub(crate) fn open_read_only(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path and flags; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat just returned this fd and nothing else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd as RawFd) })
}

/// The text of a kernel file that holds one short record (a cgroup
/// file such as freezer.state, `/proc/<pid>/stat`): the kernel hands such
/// a record over whole, so a read that does not fill the 4 KiB buffer is
/// the file, and the read that would see the end is saved. A file that
/// fills it is read on to the end.
pub(crate) fn read_kernel_record(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = open_read_only(path.as_ref())?;
    let mut buf = [0u8; 4096];
    let n = loop {
        match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    if n < buf.len() {
        return utf8(buf[..n].to_vec());
    }
    let mut text = buf.to_vec();
    file.read_to_end(&mut text)?;
    utf8(text)
}

fn utf8(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Start time of a process (field 22 of `/proc/<pid>/stat`, in clock ticks
/// since boot) and whether it is a zombie. `None` when there is no such
/// process.
pub(crate) fn process_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = read_kernel_record(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano prints it
/// (trailing zeros of the fraction trimmed), like runc's `created`.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut s = rfc3339_secs(d.as_secs());
    s.pop(); // 'Z'
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// RFC 3339 in UTC with whole seconds.
pub fn rfc3339_secs(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Write `data` to `path` atomically: a temporary file in the same
/// directory, then swapped with the target (RENAME_EXCHANGE) and the old
/// content unlinked. Not a rename over the target: ext4 (its
/// auto_da_alloc) starts writing a file renamed over another out to disk
/// at once, and the unlink of that file at `delete` then waits for the
/// I/O: 0.2-0.4 ms per container with `--root` on ext4, for state no
/// machine keeps across a reboot. The first write (nothing to swap with
/// yet) and a file system without RENAME_EXCHANGE get the plain rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::write(&tmp, data).and_then(|()| match rename_exchange(&tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(())
        }
        Err(_) => std::fs::rename(&tmp, path),
    });
    if written.is_err() {
        // A full disk leaves no half-written temporary behind (a
        // --pid-file's is in the caller's directory).
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The errno of an io::Error from a system call (EIO when it carries none),
/// for the errors that name it.
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Pointers to `strings` followed by a NULL: an `argv`/`envp` for execve
/// or posix_spawn, valid while `strings` lives.
pub(crate) fn null_terminated(strings: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_then_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("rrun-write-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"], "the swapped-out old content is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn proc_text_small_and_larger_than_the_buffer() {
        let stat = read_proc_text("/proc/self/stat").unwrap();
        assert!(
            stat.contains(&format!("{} (", std::process::id())),
            "{stat}"
        );
        // A regular file longer than the stack buffer takes the heap path.
        let dir = std::env::temp_dir().join(format!("rrun-proc-text-{}", std::process::id()));
        let long: String = (0..40_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        std::fs::write(&dir, &long).unwrap();
        let read = read_proc_text(&dir);
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(read.unwrap(), long);
    }

    #[test]
    fn rfc3339_formats_like_go() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(951782400), "2000-02-29T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn start_time_of_self_is_alive() {
        let (start, zombie) = process_start_time(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(!zombie);
        assert!(process_start_time(i32::MAX).is_none());
    }
}
