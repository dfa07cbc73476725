//! Typed messages, with file descriptors, between the caller, the bootstrap
//! process and the container init (see ARCHITECTURE.md).
//!
//! The transport is a SOCK_STREAM unix socketpair. A frame is a 4-byte
//! little-endian length and that many bytes of JSON; file descriptors ride
//! as SCM_RIGHTS on the frame's first bytes, so a frame and its fds always
//! arrive together. A stream (not SEQPACKET) because a config with a large
//! seccomp profile or many annotations can exceed one datagram.
//!
//! What the caller receives comes from processes inside the container,
//! and a container process that can reach them (a shared pid namespace,
//! CAP_SYS_PTRACE, `pidfd_getfd`) can hold a copy of their socket and write
//! into it: the caller's side treats frames as untrusted input. A frame is
//! at most 64 MiB; once it has begun, the rest must follow within
//! [`FRAME_DEADLINE`] (the sender writes a frame at once); and a caller
//! that names the process on the other side ([`Channel::recv_from`]) stops
//! waiting when that process exits, even while a copy of the socket keeps
//! the connection open.

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Most fds one frame carries (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS: usize = 250;
const MAX_FRAME: usize = 64 << 20;
/// How long the rest of a begun frame may take to arrive, where frames
/// come from the container ([`Channel::recv_from`]). Those frames are
/// small and sent with one write, so they arrive whole: a frame that
/// stops halfway was begun by someone else.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("channel: the other side closed the connection")]
    Closed,
    #[error("channel: the process on the other side exited")]
    PeerExited,
    #[error("channel: a message from the container was cut short (its rest did not follow within {}s)", FRAME_DEADLINE.as_secs())]
    Truncated,
    #[error("channel: bad message: {0}")]
    Decode(String),
}

fn sys(op: &'static str) -> impl Fn(Errno) -> ChannelError {
    move |errno| ChannelError::Sys { op, errno }
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair; both ends close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys("socketpair"))?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send<T: Serialize>(&self, msg: &T, fds: &[RawFd]) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(msg).map_err(|e| ChannelError::Decode(e.to_string()))?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        let mut sent = 0;
        while sent < frame.len() {
            let iov = [IoSlice::new(&frame[sent..])];
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage] = if sent == 0 && !fds.is_empty() {
                &rights
            } else {
                &[]
            };
            match sendmsg::<()>(self.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(n) => sent += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => {
                    return Err(ChannelError::Sys {
                        op: "sendmsg",
                        errno: e,
                    })
                }
            }
        }
        Ok(())
    }

    /// The next message from the caller (trusted: waits as long as the
    /// other side keeps the connection open) and the fds that came with it.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), ChannelError> {
        self.recv_frame(None, None)
    }

    /// The next message from a process in the container: a frame must
    /// arrive whole within [`FRAME_DEADLINE`] of its first bytes, and
    /// [`ChannelError::PeerExited`] once the process behind `peer` (a
    /// pidfd) has exited with nothing left to read.
    pub fn recv_from<T: DeserializeOwned>(
        &self,
        peer: Option<BorrowedFd>,
    ) -> Result<(T, Vec<OwnedFd>), ChannelError> {
        self.recv_frame(peer, Some(FRAME_DEADLINE))
    }

    fn recv_frame<T: DeserializeOwned>(
        &self,
        peer: Option<BorrowedFd>,
        rest_within: Option<Duration>,
    ) -> Result<(T, Vec<OwnedFd>), ChannelError> {
        let mut header = [0u8; 4];
        let (fds, deadline) = self.recv_exact(&mut header, peer, rest_within)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(ChannelError::Decode(format!("frame of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        if len > 0 {
            self.recv_more(&mut body, peer, deadline)?;
        }
        let msg = serde_json::from_slice(&body).map_err(|e| ChannelError::Decode(e.to_string()))?;
        Ok((msg, fds))
    }

    /// Fills `buf` (a frame's header) and takes the frame's fds: the first
    /// read waits without a deadline; the deadline for the rest of the
    /// frame, when there is one, starts there and is returned.
    fn recv_exact(
        &self,
        buf: &mut [u8],
        peer: Option<BorrowedFd>,
        rest_within: Option<Duration>,
    ) -> Result<(Vec<OwnedFd>, Option<Instant>), ChannelError> {
        let mut fds = Vec::new();
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let got = loop {
            self.wait_readable(peer, None)?;
            if let Some(n) = self.recv_some(buf, Some(&mut cmsg), &mut fds)? {
                break n;
            }
        };
        let deadline = rest_within.map(|d| Instant::now() + d);
        if got < buf.len() {
            self.recv_more(&mut buf[got..], peer, deadline)?;
        }
        Ok((fds, deadline))
    }

    /// Fills `buf` with what follows a frame's first bytes, by `deadline`.
    fn recv_more(
        &self,
        buf: &mut [u8],
        peer: Option<BorrowedFd>,
        deadline: Option<Instant>,
    ) -> Result<(), ChannelError> {
        let mut got = 0;
        let mut ignored = Vec::new();
        while got < buf.len() {
            self.wait_readable(peer, deadline)?;
            if let Some(n) = self.recv_some(&mut buf[got..], None, &mut ignored)? {
                got += n;
            }
        }
        Ok(())
    }

    /// One non-blocking recvmsg: `None` when there was nothing after all
    /// (someone else holding a copy of the socket read it first).
    fn recv_some(
        &self,
        buf: &mut [u8],
        cmsg: Option<&mut Vec<u8>>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<Option<usize>, ChannelError> {
        let mut iov = [IoSliceMut::new(buf)];
        let flags = MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT;
        let msg = match recvmsg::<()>(self.as_raw_fd(), &mut iov, cmsg, flags) {
            Ok(msg) => msg,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
            Err(e) => {
                return Err(ChannelError::Sys {
                    op: "recvmsg",
                    errno: e,
                })
            }
        };
        for c in msg.cmsgs().map_err(sys("recvmsg"))? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS installed these fds in our table just now.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if msg.bytes == 0 {
            return Err(ChannelError::Closed);
        }
        Ok(Some(msg.bytes))
    }

    /// Until the socket has something to read (or its end), the process
    /// behind `peer` exited, or `deadline` passed.
    fn wait_readable(
        &self,
        peer: Option<BorrowedFd>,
        deadline: Option<Instant>,
    ) -> Result<(), ChannelError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // SAFETY: self.fd stays open for the whole call.
        let sock = unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) };
        loop {
            let mut fds = vec![PollFd::new(sock, PollFlags::POLLIN)];
            fds.extend(peer.map(|p| PollFd::new(p, PollFlags::POLLIN)));
            let timeout = match deadline {
                None => PollTimeout::NONE,
                // Past the deadline, still look once: a caller descheduled
                // for longer than the deadline (a loaded machine) finds the
                // rest of the frame already there.
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::MAX)
                }
            };
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(ChannelError::Truncated),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(ChannelError::Sys {
                        op: "poll",
                        errno: e,
                    })
                }
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return Ok(());
            }
            if fds
                .get(1)
                .and_then(|p| p.revents())
                .is_some_and(|r| !r.is_empty())
            {
                return Err(ChannelError::PeerExited);
            }
        }
    }
}

/// Messages on the channel. The caller sends `Bootstrap` and `Resume`;
/// the bootstrap sends `InitSpawned`; the init sends the rest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// caller → bootstrap, with fds as described by `FdLayout`.
    Bootstrap(Box<crate::init::BootstrapConfig>),
    /// caller → bootstrap: enter a running container (`exec`), with fds
    /// as described by `ExecConfig`.
    Exec(Box<crate::init::ExecConfig>),
    /// bootstrap → caller, with the init's (or exec'd process's) pidfd.
    InitSpawned { pid: i32 },
    /// init → caller: run prestart and createRuntime hooks now.
    RunCreateRuntimeHooks,
    /// caller → init: go on; `state` is the state JSON for the init's hooks.
    Resume { state: String },
    /// caller → init, with the connection to the seccomp agent at
    /// `linux.seccomp.listenerPath`: the container process state to send
    /// on it with the notify fd (only for a profile with NOTIFY rules).
    SeccompAgent { process_state: String },
    /// bootstrap or init → caller: a warning to log (the init has no log
    /// of its own); sent before Ready or Error.
    Warning { message: String },
    /// init → caller: set up, waiting for `start`.
    Ready,
    /// caller → exec'd process: exec now (see `ExecConfig::frozen`).
    Proceed,
    /// any → caller: setup failed.
    Error { message: String },
    /// bootstrap, init or exec'd process → caller, when the caller traces
    /// (`trace` in their config): their steps so far, sent right before
    /// InitSpawned and Ready.
    Steps { steps: Vec<crate::trace::Step> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_fds_round_trip() {
        let (a, b) = Channel::pair().unwrap();
        let big = "x".repeat(300_000);
        let devnull = std::fs::File::open("/dev/null").unwrap();
        // The frame is larger than a socket buffer: send from another thread.
        let (msg, fds) = std::thread::scope(|s| {
            s.spawn(|| {
                a.send(
                    &Message::Error {
                        message: big.clone(),
                    },
                    &[devnull.as_raw_fd()],
                )
                .unwrap()
            });
            b.recv::<Message>().unwrap()
        });
        match msg {
            Message::Error { message } => assert_eq!(message, big),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(matches!(b.recv::<Message>(), Err(ChannelError::Closed)));
    }

    fn write_raw(chan: &Channel, bytes: &[u8]) {
        // SAFETY: the channel's fd is open for the call.
        let fd = unsafe { BorrowedFd::borrow_raw(chan.as_raw_fd()) };
        assert_eq!(nix::unistd::write(fd, bytes).unwrap(), bytes.len());
    }

    #[test]
    fn a_frame_cut_short_by_someone_holding_the_socket_ends_the_wait() {
        let (a, b) = Channel::pair().unwrap();
        // A header announcing 100 bytes and 3 of them; `a` stays open, as
        // a container process holding a copy of the init's socket would.
        write_raw(&a, &[100, 0, 0, 0, b'{', b'"', b'x']);
        let e = b.recv_from::<Message>(None).unwrap_err();
        assert!(matches!(e, ChannelError::Truncated), "{e}");
        // An oversized header is refused at once.
        write_raw(&a, &u32::MAX.to_le_bytes());
        let e = b.recv_from::<Message>(None).unwrap_err();
        assert!(e.to_string().contains("frame of"), "{e}");
    }

    #[test]
    fn the_peer_exiting_ends_the_wait_after_what_it_sent() {
        let (a, b) = Channel::pair().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pidfd = crate::utils::pidfd_open(child.id() as i32).unwrap();
        a.send(&Message::Ready, &[]).unwrap();
        child.wait().unwrap();
        let peer = Some(std::os::fd::AsFd::as_fd(&pidfd));
        assert!(matches!(
            b.recv_from::<Message>(peer),
            Ok((Message::Ready, _))
        ));
        // `a` is still open: without the pidfd this would wait forever.
        let e = b.recv_from::<Message>(peer).unwrap_err();
        assert!(matches!(e, ChannelError::PeerExited), "{e}");
    }
}
