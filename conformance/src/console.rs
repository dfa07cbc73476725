//! The `--console-socket` receiver: accept one connection, receive the pty
//! master over SCM_RIGHTS, read what the container prints.

use std::fs::File;
use std::io::Read;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Listen on `path`; a thread accepts one connection and returns the master fd.
pub fn receive_master(path: &Path) -> std::io::Result<mpsc::Receiver<Result<File, String>>> {
    let listener = UnixListener::bind(path)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = listener
            .accept()
            .map_err(|e| format!("accept: {e}"))
            .and_then(|(s, _)| recv_fd(s.as_raw_fd()));
        let _ = tx.send(result.map(|fd| {
            // SAFETY: fd was just received over SCM_RIGHTS and is owned by nobody else.
            unsafe { File::from_raw_fd(fd) }
        }));
    });
    Ok(rx)
}

fn recv_fd(sock: RawFd) -> Result<RawFd, String> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one fd's control message (CMSG_SPACE(sizeof(int)) is at most 32 here).
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain old data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at valid buffers that outlive the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err("console socket message carried no fd".into());
    }
    // SAFETY: cmsg is non-null and inside `control`; for SCM_RIGHTS its data is an int.
    unsafe {
        if (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err("console socket message is not SCM_RIGHTS".into());
        }
        Ok(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
        ))
    }
}

/// Read from the pty master until the slave side closes (EIO) or `limit` passes.
pub fn read_all(master: File, limit: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut master = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
        }
    });
    let mut last = String::new();
    let deadline = std::time::Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(s) => last = s,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => break,
        }
    }
    last
}
