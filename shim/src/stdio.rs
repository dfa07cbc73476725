//! A process's stdio as containerd hands it over, and what the shim keeps
//! of it while the process lives.
//!
//! * FIFOs (the usual case, `ctr` and the CRI make them): without a
//!   terminal the process gets the FIFOs themselves, so no byte passes
//!   through the shim and no thread copies. The shim keeps a reader open
//!   on stdout and stderr (the process never gets EPIPE when the client
//!   goes away, as under the runc shim) and a writer on stdin, closed by
//!   `CloseIO` (or delete): only then does the process read EOF.
//! * `file:///path`: the process writes to the file itself.
//! * `binary:///path?k=v`: a logging binary gets the read ends of two
//!   pipes as fds 3 and 4 and signals it is ready by closing fd 5, as
//!   containerd's shims do; the process writes into the pipes.
//! * a terminal: the library sends the pty master over a socketpair; two
//!   small threads copy stdin FIFO → master and master → stdout FIFO (or
//!   the log URI's file or pipe), and `ResizePty` sets the master's window
//!   size.

use libcontainer::container::StdioFds;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;

/// What containerd asked for one process.
pub struct Request<'a> {
    pub stdin: &'a str,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub terminal: bool,
    /// Container id and namespace, for a logging binary's environment.
    pub id: &'a str,
    pub namespace: &'a str,
}

/// What the shim keeps of a process's stdio while it lives.
#[derive(Default)]
pub struct Kept {
    /// Our writer on the stdin FIFO: the process reads EOF once it and
    /// the client's are closed.
    stdin_writer: Option<OwnedFd>,
    /// Readers on the stdout/stderr FIFOs that never read.
    keepers: Vec<OwnedFd>,
    /// The pty master (shared with the copy threads).
    master: Option<Arc<OwnedFd>>,
    /// A `binary://` logger's pidfd.
    logger: Option<OwnedFd>,
}

/// Stdio opened for a create or exec, before the library call.
pub struct Opened {
    /// What becomes the process's fds 0, 1 and 2.
    stdio: [OwnedFd; 3],
    /// The console socketpair: ours, theirs (the library's `console_socket_fd`).
    console: Option<(OwnedFd, OwnedFd)>,
    /// Terminal: the stdin FIFO's read end and the stdout FIFO's write
    /// end, for the copy threads.
    tty_in: Option<File>,
    tty_out: Option<File>,
    kept: Kept,
}

fn open_fd(path: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| std::io::Error::other(format!("open {}: {e}", path.display())))?;
    // SAFETY: open just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn dev_null(write: bool) -> std::io::Result<OwnedFd> {
    open_fd(
        Path::new("/dev/null"),
        if write {
            OFlag::O_WRONLY
        } else {
            OFlag::O_RDONLY
        },
    )
}

fn set_blocking(fd: &OwnedFd) -> std::io::Result<()> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
    Ok(())
}

fn is_fifo(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// A stdin FIFO: the read end for the process (or the copy thread) and
/// our writer, held until CloseIO.
fn open_stdin_fifo(path: &Path) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let reader = open_fd(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    let writer = open_fd(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(&reader)?;
    Ok((reader, writer))
}

/// A stdout/stderr FIFO: our keeper (a reader that never reads) and the
/// writer for the process (or the copy thread).
fn open_output_fifo(path: &Path) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let keeper = open_fd(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    let writer = open_fd(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(&writer)?;
    Ok((keeper, writer))
}

/// A stdout or stderr path: a FIFO, or an existing file appended to.
fn open_output(path: &str, kept: &mut Kept) -> std::io::Result<OwnedFd> {
    if path.is_empty() {
        return dev_null(true);
    }
    let path = Path::new(path);
    if is_fifo(path) {
        let (keeper, writer) = open_output_fifo(path)?;
        kept.keepers.push(keeper);
        Ok(writer)
    } else {
        open_fd(path, OFlag::O_WRONLY | OFlag::O_APPEND)
    }
}

/// `scheme://path?query` with its query decoded; None for a plain path.
struct Uri {
    scheme: String,
    path: String,
    query: Vec<(String, String)>,
}

fn parse_uri(s: &str) -> Option<Uri> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    // `binary:///path`: no host; `binary://host/path` is not ours either.
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    Some(Uri {
        scheme: scheme.to_ascii_lowercase(),
        path: percent_decode(path, false),
        query,
    })
}

/// `%XX` escapes (and `+` for a space in a query), as Go's url package.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Open everything a process needs before the library creates it.
pub fn open(req: &Request) -> std::io::Result<Opened> {
    let mut kept = Kept::default();
    if let Some(uri) = parse_uri(req.stdout).filter(|u| u.scheme != "fifo") {
        return open_log_uri(req, &uri, kept);
    }
    let stdin_path = Path::new(req.stdin);
    if req.terminal {
        let (ours, theirs) = console_pair()?;
        let tty_in = if req.stdin.is_empty() {
            None
        } else {
            let (reader, writer) = open_stdin_fifo(stdin_path)?;
            kept.stdin_writer = Some(writer);
            Some(File::from(reader))
        };
        let tty_out = if req.stdout.is_empty() {
            None
        } else {
            Some(File::from(open_output(req.stdout, &mut kept)?))
        };
        return Ok(Opened {
            stdio: [dev_null(false)?, dev_null(true)?, dev_null(true)?],
            console: Some((ours, theirs)),
            tty_in,
            tty_out,
            kept,
        });
    }
    let stdin = if req.stdin.is_empty() {
        dev_null(false)?
    } else {
        let (reader, writer) = open_stdin_fifo(stdin_path)?;
        kept.stdin_writer = Some(writer);
        reader
    };
    let stdout = open_output(req.stdout, &mut kept)?;
    let stderr = open_output(req.stderr, &mut kept)?;
    Ok(Opened {
        stdio: [stdin, stdout, stderr],
        console: None,
        tty_in: None,
        tty_out: None,
        kept,
    })
}

/// `file://` and `binary://` (what `ctr run --log-uri` and the CRI's
/// logging binaries use); the same URI comes as stdout and stderr. With a
/// terminal, the pty's output goes there through the copy thread.
fn open_log_uri(req: &Request, uri: &Uri, mut kept: Kept) -> std::io::Result<Opened> {
    let stdin = if req.stdin.is_empty() {
        None
    } else {
        let (reader, writer) = open_stdin_fifo(Path::new(req.stdin))?;
        kept.stdin_writer = Some(writer);
        Some(reader)
    };
    let (stdout, stderr) = match uri.scheme.as_str() {
        "file" => {
            let path = Path::new(&uri.path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = open_fd(path, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND)?;
            (file.try_clone()?, file)
        }
        "binary" => {
            let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            kept.logger = Some(spawn_logger(req, uri, out_r, err_r)?);
            (out_w, err_w)
        }
        other => {
            return Err(std::io::Error::other(format!(
                "unknown STDIO scheme {other}"
            )))
        }
    };
    if req.terminal {
        drop(stderr);
        return Ok(Opened {
            stdio: [dev_null(false)?, dev_null(true)?, dev_null(true)?],
            console: Some(console_pair()?),
            tty_in: stdin.map(File::from),
            tty_out: Some(File::from(stdout)),
            kept,
        });
    }
    Ok(Opened {
        stdio: [stdin.map_or_else(|| dev_null(false), Ok)?, stdout, stderr],
        console: None,
        tty_in: None,
        tty_out: None,
        kept,
    })
}

/// The socketpair the library sends the pty master over: ours, theirs.
fn console_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Start a logging binary on the read ends of the stdout and stderr
/// pipes and wait until it says it is ready (closes fd 5). Returns its
/// pidfd. Its exit is reaped (and ignored) by the shim's reaper.
fn spawn_logger(
    req: &Request,
    uri: &Uri,
    out_r: OwnedFd,
    err_r: OwnedFd,
) -> std::io::Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // Above any fd the child's dup2 to 3, 4 and 5 could overwrite first.
    let high = |fd: &OwnedFd| -> std::io::Result<OwnedFd> {
        let dup = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(64))?;
        // SAFETY: F_DUPFD_CLOEXEC just made this fd for us alone.
        Ok(unsafe { OwnedFd::from_raw_fd(dup) })
    };
    let fds: [OwnedFd; 3] = [high(&out_r)?, high(&err_r)?, high(&ready_w)?];
    drop((out_r, err_r, ready_w));
    let raw: [RawFd; 3] = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
    let mut cmd = std::process::Command::new(&uri.path);
    for (k, v) in &uri.query {
        cmd.arg(k);
        if !v.is_empty() {
            cmd.arg(v);
        }
    }
    cmd.env_clear()
        .env("CONTAINER_ID", req.id)
        .env("CONTAINER_NAMESPACE", req.namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before execve and only
    // calls dup2, which is async-signal-safe; dup2 clears close-on-exec on
    // the targets, so exactly fds 3, 4 and 5 are inherited.
    unsafe {
        cmd.pre_exec(move || {
            for (target, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, target as i32 + 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| std::io::Error::other(format!("start logging binary {}: {e}", uri.path)))?;
    drop(fds);
    // Taken before it can be reaped: the logger waits for its pipes.
    let pidfd = libcontainer::utils::pidfd_open(child.id() as i32)?;
    drop(child);
    let mut ready = File::from(ready_r);
    let mut byte = [0u8; 1];
    let _ = ready.read(&mut byte);
    Ok(pidfd)
}

impl Opened {
    pub fn stdio(&self) -> StdioFds {
        StdioFds {
            stdin: self.stdio[0].as_raw_fd(),
            stdout: self.stdio[1].as_raw_fd(),
            stderr: self.stdio[2].as_raw_fd(),
        }
    }

    /// The library's `console_socket_fd`.
    pub fn console_socket_fd(&self) -> Option<RawFd> {
        self.console.as_ref().map(|(_, theirs)| theirs.as_raw_fd())
    }

    /// After the library made the process: receive the pty master and
    /// start copying; the process has its own copies of the stdio fds.
    pub fn finish(self) -> std::io::Result<Kept> {
        let Opened {
            stdio,
            console,
            tty_in,
            tty_out,
            mut kept,
        } = self;
        drop(stdio);
        if let Some((ours, theirs)) = console {
            drop(theirs);
            let master = Arc::new(receive_master(&ours)?);
            if let Some(input) = tty_in {
                let m = master.clone();
                spawn_copy("pty-in", move || copy_in(input, &m))?;
            }
            if let Some(output) = tty_out {
                let m = master.clone();
                spawn_copy("pty-out", move || copy_out(&m, output))?;
            }
            kept.master = Some(master);
        }
        Ok(kept)
    }
}

fn spawn_copy(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 << 10)
        .spawn(f)
        .map(|_| ())
}

/// stdin FIFO → pty master, until the FIFO's writers are all gone.
fn copy_in(mut input: File, master: &OwnedFd) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if write_all(master.as_raw_fd(), &buf[..n]).is_err() {
            return;
        }
    }
}

/// pty master → stdout FIFO, until the pty's last slave is closed (EIO);
/// dropping `output` then gives the client EOF.
fn copy_out(master: &OwnedFd, mut output: File) {
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if output.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        // SAFETY: the caller keeps the fd open for the call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match nix::unistd::write(borrowed, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The pty master the container's process sent over the socketpair
/// (during the library call, so it is already there), checked to be one.
fn receive_master(socket: &OwnedFd) -> std::io::Result<OwnedFd> {
    libcontainer::terminal::receive_master(socket, false).map_err(std::io::Error::other)
}

impl Kept {
    /// `CloseIO` with stdin: the process reads EOF once the client's
    /// writer is closed too.
    pub fn close_stdin(&mut self) {
        self.stdin_writer = None;
    }

    /// `ResizePty`; a process without a terminal ignores it.
    pub fn resize(&self, width: u32, height: u32) -> std::io::Result<()> {
        let Some(master) = &self.master else {
            return Ok(());
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The process was deleted: let everything go. A logging binary reads
    /// EOF on its pipes by now (the process is gone) and usually exits by
    /// itself; else it gets SIGTERM, as the runc shim sends it, and a
    /// moment to flush before SIGKILL.
    pub fn close(&mut self) {
        use libcontainer::utils::{pidfd_send_signal, pidfd_wait_exit};
        self.stdin_writer = None;
        self.keepers.clear();
        self.master = None;
        if let Some(pidfd) = self.logger.take() {
            if pidfd_wait_exit(&pidfd, LOGGER_EOF_MS).unwrap_or(true) {
                return;
            }
            let _ = pidfd_send_signal(&pidfd, libc::SIGTERM);
            if !pidfd_wait_exit(&pidfd, LOGGER_TERM_MS).unwrap_or(true) {
                let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
            }
        }
    }
}

/// How long a deleted process's logging binary has to exit on EOF, then
/// after SIGTERM.
const LOGGER_EOF_MS: i32 = 500;
const LOGGER_TERM_MS: i32 = 2000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = parse_uri("binary:///usr/bin/logger?a=b&c=d%20e&flag").unwrap();
        assert_eq!(u.scheme, "binary");
        assert_eq!(u.path, "/usr/bin/logger");
        assert_eq!(
            u.query,
            vec![
                ("a".to_string(), "b".to_string()),
                ("c".to_string(), "d e".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        let f = parse_uri("file:///var/log/x.log").unwrap();
        assert_eq!(
            (f.scheme.as_str(), f.path.as_str()),
            ("file", "/var/log/x.log")
        );
        assert!(parse_uri("/run/containerd/fifo/abc-stdout").is_none());
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%2Fa%2f+", false), "/a/+");
        assert_eq!(percent_decode("a+b", true), "a b");
    }
}
