//! Seccomp user notification: handing the notify fd to the agent at
//! `linux.seccomp.listenerPath` (runtime-spec config-linux.md, "The
//! Container Process State"), and the agent side of the protocol: an
//! embedder that is a seccomp agent listens on a unix socket, takes each
//! runtime's message with [`receive_from_runtime`] and answers the
//! container's calls with [`serve`], which blocks a thread per notify fd
//! until every process using the filter is gone (`examples/seccomp-agent.rs`).
//!
//! # Wire format
//!
//! One unix stream connection to `listenerPath`; one `sendmsg(2)` whose
//! payload is the [`ContainerProcessState`] as compact JSON (no framing, no
//! newline) and whose control message is `SCM_RIGHTS` with the notify fd;
//! then the connection is closed. This is exactly what runc sends, so runc's
//! `contrib/cmd/seccompagent` (which reads the JSON with a single
//! `recvmsg` into a 4096-byte buffer and expects exactly one fd) works with
//! rrun. Should the kernel take only part of the payload, the rest follows
//! in further `sendmsg` calls without fds, which the spec allows.
//!
//! # Who sends, and when
//!
//! `listenerPath` is a path on the host, so the *caller* connects to it at
//! `create` (a missing agent fails create), not the container init, whose
//! root is the container's by then. The caller hands the connection and
//! the encoded state (status "creating", as runc sends) to the init, which
//! loads the filter as its last step before execve, when the container
//! starts, and then sends the state and the notify fd on that connection
//! with one `sendmsg` (`seccomp::filter`). [`send_to_listener`] does the
//! same in one go for embedders that hold a notify fd themselves.

use std::ffi::c_int;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{
    connect, recvmsg, socket, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use serde::{Deserialize, Serialize};

/// The name of the notify fd in [`ContainerProcessState::fds`].
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// The container process state (config-linux.md). `S` is the container's
/// state (runtime.md "State"): [`crate::state::OciState`] when sending, any
/// JSON value when receiving.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProcessState<S> {
    /// The spec version of the sender.
    pub oci_version: String,
    /// Names of the fds in the SCM_RIGHTS array, in the same order.
    #[serde(default)]
    pub fds: Vec<String>,
    /// The container process, as the runtime sees it (host pid).
    pub pid: i32,
    /// `linux.seccomp.listenerMetadata`, passed through untouched.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// The container's state.
    pub state: S,
}

impl<S> ContainerProcessState<S> {
    /// The state rrun sends: one fd, the notify fd.
    pub fn new(pid: i32, metadata: Option<&str>, state: S) -> Self {
        ContainerProcessState {
            oci_version: crate::OCI_VERSION.into(),
            fds: vec![SECCOMP_FD_NAME.into()],
            pid,
            metadata: metadata.unwrap_or_default().into(),
            state,
        }
    }
}

/// What failed on either side of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Runtime side: connecting or sending to the agent failed.
    #[error("linux.seccomp.listenerPath {path}: {op}: {errno}")]
    Listener {
        /// The agent's socket.
        path: PathBuf,
        /// The step (`connect`, `sendmsg`...).
        op: &'static str,
        /// The errno it failed with.
        errno: Errno,
    },
    /// Runtime side: the state could not be encoded as JSON.
    #[error("linux.seccomp.listenerPath {path}: encoding the container process state: {source}")]
    Encode {
        /// The agent's socket.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// Agent side: reading the runtime's message failed.
    #[error("seccomp agent: {op}: {errno}")]
    Agent {
        /// The call (`recvmsg`, `read`).
        op: &'static str,
        /// The errno it failed with.
        errno: Errno,
    },
    /// Agent side: the runtime's message is not a container process state
    /// with exactly one notify fd.
    #[error("seccomp agent: bad container process state: {why}")]
    BadMessage {
        /// What is wrong with it.
        why: String,
    },
    /// Agent side: a notification call failed. ENOENT: the notifying
    /// thread is gone (interrupted or dead); the agent goes on.
    #[error("seccomp notify: {op}: {errno}")]
    Ioctl {
        /// The call (`SECCOMP_IOCTL_NOTIF_RECV`...).
        op: &'static str,
        /// The errno it failed with.
        errno: Errno,
    },
    /// Agent side: the kernel's notification structures are not this
    /// build's; receiving would overrun them.
    #[error("seccomp notify: the kernel's {what} is {kernel} bytes, this build's is {ours}")]
    SizeMismatch {
        /// The structure.
        what: &'static str,
        /// Its size in the kernel.
        kernel: u16,
        /// Its size in this build.
        ours: usize,
    },
}

// ------------------------------------------------------------ runtime side

/// Connects to `listener_path` and sends `state` with `notify_fd` as
/// SCM_RIGHTS in one `sendmsg`. A listener that is not there gives an
/// error naming the path and the errno (ENOENT, ECONNREFUSED...).
pub fn send_to_listener<S: Serialize>(
    listener_path: &Path,
    state: &ContainerProcessState<S>,
    notify_fd: BorrowedFd<'_>,
) -> Result<(), NotifyError> {
    let payload = serde_json::to_vec(state).map_err(|source| NotifyError::Encode {
        path: listener_path.into(),
        source,
    })?;
    let socket = connect_listener(listener_path)?;
    send_payload(&socket, &payload, notify_fd.as_raw_fd()).map_err(|errno| NotifyError::Listener {
        path: listener_path.into(),
        op: "sendmsg",
        errno,
    })
}

/// A connection to the agent at `listener_path` (close-on-exec), or an
/// error naming the path and the errno.
pub fn connect_listener(listener_path: &Path) -> Result<OwnedFd, NotifyError> {
    let fail = |op| {
        move |errno| NotifyError::Listener {
            path: listener_path.into(),
            op,
            errno,
        }
    };
    let addr = UnixAddr::new(listener_path).map_err(fail("socket address"))?;
    let socket = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail("socket"))?;
    loop {
        match connect(socket.as_raw_fd(), &addr) {
            Err(Errno::EINTR) => continue,
            result => break result.map_err(fail("connect"))?,
        }
    }
    Ok(socket)
}

/// Sends `payload` on `socket`, with `fd` as SCM_RIGHTS in the first
/// sendmsg; the rest (if the kernel took only part) in more without fds.
/// Allocates nothing and makes no other call, so that the init can use it
/// right after its seccomp filter is in place (`seccomp::filter`).
pub(crate) fn send_payload(socket: &OwnedFd, payload: &[u8], fd: RawFd) -> Result<(), Errno> {
    let mut sent = 0;
    while sent < payload.len() {
        match send_part(socket, &payload[sent..], (sent == 0).then_some(fd)) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Room for one `SCM_RIGHTS` control message carrying one fd, aligned as
/// `struct cmsghdr` must be (nix's sendmsg would allocate it).
#[repr(C, align(8))]
struct OneFdControl([u8; 32]);

fn send_part(socket: &OwnedFd, part: &[u8], fd: Option<RawFd>) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: part.as_ptr().cast_mut().cast(),
        iov_len: part.len(),
    };
    let mut control = OneFdControl([0; 32]);
    // SAFETY: an all-zero msghdr is valid (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; CMSG_FIRSTHDR and
        // CMSG_DATA point into `control`, which is aligned for cmsghdr and
        // larger than CMSG_SPACE(size_of::<c_int>()) (24 on x86_64), so the
        // header and the fd are written inside it.
        unsafe {
            let fd_len = std::mem::size_of::<c_int>() as libc::c_uint;
            msg.msg_control = control.0.as_mut_ptr().cast();
            // (usize with glibc, u32 with musl)
            msg.msg_controllen = libc::CMSG_SPACE(fd_len) as _;
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(fd_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<c_int>(), fd);
        }
    }
    // SAFETY: `msg` points at `iov` (into `part`) and `control`, all alive
    // for the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(n as usize)
}

// -------------------------------------------------------------- agent side

/// The most a runtime's message may weigh here (the JSON is small; runc's
/// agent takes less than 4096 bytes).
const MAX_MESSAGE: usize = 1 << 20;

/// What an agent gets from one runtime connection.
#[derive(Debug)]
pub struct Received {
    /// What the runtime sent: `state.pid` is the container process (host
    /// pid), `state.state` the container's state as JSON.
    pub state: ContainerProcessState<serde_json::Value>,
    /// The notify fd (the fd named [`SECCOMP_FD_NAME`]).
    pub notify_fd: OwnedFd,
}

/// Reads one runtime's message from an accepted connection: the fds come
/// with the first recvmsg, and the JSON is complete as soon as it parses.
/// It does not wait for EOF: runc 1.1 never closes its end (the Go
/// connection is left to the garbage collector). Fds other than the notify
/// fd are closed.
pub fn receive_from_runtime(conn: &mut UnixStream) -> Result<Received, NotifyError> {
    let mut buf = vec![0u8; 4096];
    let (len, mut fds) = recv_with_fds(conn.as_fd(), &mut buf)?;
    buf.truncate(len);
    let state = read_state(conn, buf)?;
    let index = notify_fd_index(&state.fds)?;
    if index >= fds.len() {
        return Err(NotifyError::BadMessage {
            why: format!("{} fds named, {} received", state.fds.len(), fds.len()),
        });
    }
    let notify_fd = fds.swap_remove(index);
    Ok(Received { state, notify_fd })
}

/// Parses the state from `buf`, reading more while the JSON is cut short.
fn read_state(
    conn: &mut UnixStream,
    mut buf: Vec<u8>,
) -> Result<ContainerProcessState<serde_json::Value>, NotifyError> {
    loop {
        match serde_json::from_slice(&buf) {
            Ok(state) => return Ok(state),
            Err(e) if e.is_eof() && buf.len() < MAX_MESSAGE => {}
            Err(e) => return Err(NotifyError::BadMessage { why: e.to_string() }),
        }
        let mut more = [0u8; 4096];
        let n = match conn.read(&mut more) {
            Ok(0) => {
                return Err(NotifyError::BadMessage {
                    why: "the runtime closed the connection mid-message".into(),
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(NotifyError::Agent {
                    op: "read",
                    errno: crate::utils::io_errno(&e),
                })
            }
        };
        buf.extend_from_slice(&more[..n]);
    }
}

fn notify_fd_index(names: &[String]) -> Result<usize, NotifyError> {
    let mut found = names
        .iter()
        .enumerate()
        .filter(|(_, n)| *n == SECCOMP_FD_NAME);
    match (found.next(), found.next()) {
        (Some((index, _)), None) => Ok(index),
        _ => Err(NotifyError::BadMessage {
            why: format!("fds {names:?} must name {SECCOMP_FD_NAME:?} exactly once"),
        }),
    }
}

fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>), NotifyError> {
    let mut cmsg_space = nix::cmsg_space!([RawFd; 16]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            result => {
                break result.map_err(|errno| NotifyError::Agent {
                    op: "recvmsg",
                    errno,
                })?
            }
        }
    };
    let mut fds = Vec::new();
    let cmsgs = msg.cmsgs().map_err(|errno| NotifyError::Agent {
        op: "recvmsg",
        errno,
    })?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: SCM_RIGHTS installed these fds in our table just now;
            // nothing else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}

// ------------------------------------------------- notifications (ioctls)

/// The sizes of the notification structures the running kernel uses.
pub fn kernel_notif_sizes() -> Result<libc::seccomp_notif_sizes, NotifyError> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes to the
    // pointer, which points at a live one.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if ret < 0 {
        return Err(NotifyError::Ioctl {
            op: "seccomp(SECCOMP_GET_NOTIF_SIZES)",
            errno: Errno::last(),
        });
    }
    Ok(sizes)
}

/// Checks that the kernel's notification structures are the ones this
/// build passes to the ioctls: a larger kernel `seccomp_notif` would be
/// copied past the end of ours by SECCOMP_IOCTL_NOTIF_RECV.
pub fn check_notif_sizes() -> Result<(), NotifyError> {
    let sizes = kernel_notif_sizes()?;
    let expect = [
        (
            "seccomp_notif",
            sizes.seccomp_notif,
            size_of::<libc::seccomp_notif>(),
        ),
        (
            "seccomp_notif_resp",
            sizes.seccomp_notif_resp,
            size_of::<libc::seccomp_notif_resp>(),
        ),
        (
            "seccomp_data",
            sizes.seccomp_data,
            size_of::<libc::seccomp_data>(),
        ),
    ];
    for (what, kernel, ours) in expect {
        if usize::from(kernel) != ours {
            return Err(NotifyError::SizeMismatch { what, kernel, ours });
        }
    }
    Ok(())
}

/// Waits for the next notification on `notify_fd` (SECCOMP_IOCTL_NOTIF_RECV).
/// ENOENT means the notifying thread went away before it was read.
pub fn receive_notification(notify_fd: BorrowedFd<'_>) -> Result<libc::seccomp_notif, NotifyError> {
    // SAFETY: seccomp_notif is plain old data; the kernel demands it zeroed.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the ioctl writes one seccomp_notif (sizes checked by
        // check_notif_sizes) to a live, writable one.
        let ret = unsafe {
            libc::ioctl(
                notify_fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notif as *mut libc::seccomp_notif,
            )
        };
        match ret_errno(ret) {
            Ok(()) => return Ok(notif),
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(NotifyError::Ioctl {
                    op: "SECCOMP_IOCTL_NOTIF_RECV",
                    errno,
                })
            }
        }
    }
}

/// Whether notification `id` is still pending (its thread did not die or
/// get interrupted): an agent checks it after reading the target's memory.
pub fn notification_id_valid(notify_fd: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64 from a live one.
    let ret = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        )
    };
    ret == 0
}

/// Answers notification `id`: the syscall returns `val` when `error` is 0,
/// or fails with `error` (a positive errno) otherwise.
pub fn respond(
    notify_fd: BorrowedFd<'_>,
    id: u64,
    val: i64,
    error: c_int,
) -> Result<(), NotifyError> {
    send_response(
        notify_fd,
        &libc::seccomp_notif_resp {
            id,
            val,
            error: -error,
            flags: 0,
        },
    )
}

/// Lets the notified syscall run as if there were no filter
/// (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
pub fn respond_continue(notify_fd: BorrowedFd<'_>, id: u64) -> Result<(), NotifyError> {
    let flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
    send_response(
        notify_fd,
        &libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags,
        },
    )
}

fn send_response(
    notify_fd: BorrowedFd<'_>,
    resp: &libc::seccomp_notif_resp,
) -> Result<(), NotifyError> {
    loop {
        // SAFETY: the ioctl reads one seccomp_notif_resp from a live one
        // (_IOWR: it may write it back, and `resp` is only read after).
        let ret = unsafe {
            libc::ioctl(
                notify_fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                resp as *const libc::seccomp_notif_resp,
            )
        };
        match ret_errno(ret) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(NotifyError::Ioctl {
                    op: "SECCOMP_IOCTL_NOTIF_SEND",
                    errno,
                })
            }
        }
    }
}

/// An agent's answer to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The syscall succeeds and returns this value.
    Value(i64),
    /// The syscall fails with this (positive) errno.
    Errno(c_int),
    /// The syscall runs as if there were no filter.
    Continue,
}

/// Answers every notification on `notify_fd` with `answer` until no
/// process uses the filter any more (POLLHUP). Notifications whose thread
/// went away meanwhile (ENOENT) are skipped.
pub fn serve(
    notify_fd: BorrowedFd<'_>,
    mut answer: impl FnMut(&libc::seccomp_notif) -> Answer,
) -> Result<(), NotifyError> {
    check_notif_sizes()?;
    while wait_readable(notify_fd)? {
        let notif = match receive_notification(notify_fd) {
            Err(NotifyError::Ioctl {
                errno: Errno::ENOENT,
                ..
            }) => continue,
            result => result?,
        };
        let sent = match answer(&notif) {
            Answer::Value(val) => respond(notify_fd, notif.id, val, 0),
            Answer::Errno(errno) => respond(notify_fd, notif.id, -1, errno),
            Answer::Continue => respond_continue(notify_fd, notif.id),
        };
        match sent {
            Err(NotifyError::Ioctl {
                errno: Errno::ENOENT,
                ..
            }) => continue,
            result => result?,
        }
    }
    Ok(())
}

/// Waits until a notification is pending (true) or every user of the
/// filter is gone (false).
fn wait_readable(notify_fd: BorrowedFd<'_>) -> Result<bool, NotifyError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(notify_fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(NotifyError::Ioctl { op: "poll", errno }),
            Ok(_) => {
                let events = fds[0].revents().unwrap_or(PollFlags::empty());
                return Ok(events.contains(PollFlags::POLLIN));
            }
        }
    }
}

fn ret_errno(ret: c_int) -> Result<(), Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_serializes_like_runc() {
        let state = ContainerProcessState::new(42, Some("meta"), serde_json::json!({"id": "c1"}));
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ociVersion": crate::OCI_VERSION,
                "fds": ["seccompFd"],
                "pid": 42,
                "metadata": "meta",
                "state": {"id": "c1"},
            })
        );
        let no_meta = ContainerProcessState::new(1, None, serde_json::json!({}));
        assert!(serde_json::to_value(&no_meta)
            .unwrap()
            .get("metadata")
            .is_none());
    }

    #[test]
    fn rrun_state_goes_in_as_is() {
        use crate::state::{OciState, Status};
        let annotations = Default::default();
        let oci = OciState {
            oci_version: crate::OCI_VERSION,
            id: "c1",
            pid: 7,
            status: Status::Creating,
            bundle: Path::new("/b"),
            rootfs: Path::new("/b/rootfs"),
            created: "2026-01-01T00:00:00Z",
            annotations: &annotations,
            owner: "",
        };
        let json = serde_json::to_value(ContainerProcessState::new(7, None, oci)).unwrap();
        assert_eq!(json["state"]["status"], "creating");
        assert_eq!(json["state"]["id"], "c1");
    }

    #[test]
    fn seccomp_fd_must_be_named_once() {
        assert_eq!(
            notify_fd_index(&["a".into(), "seccompFd".into()]).unwrap(),
            1
        );
        assert!(notify_fd_index(&[]).is_err());
        assert!(notify_fd_index(&["seccompFd".into(), "seccompFd".into()]).is_err());
    }
}
