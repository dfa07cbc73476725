//! Typed messages, with file descriptors, between the caller, the bootstrap
//! process and the container init (see ARCHITECTURE.md).
//!
//! The transport is a SOCK_STREAM unix socketpair. A frame is a 4-byte
//! little-endian length and that many bytes of JSON; file descriptors ride
//! as SCM_RIGHTS on the frame's first bytes, so a frame and its fds always
//! arrive together. A stream (not SEQPACKET) because a config with a large
//! seccomp profile or many annotations can exceed one datagram.

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most fds one frame carries (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS: usize = 250;
const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel: {op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    #[error("channel: the other side closed the connection")]
    Closed,
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

    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), ChannelError> {
        let mut header = [0u8; 4];
        let fds = self.recv_exact(&mut header, true)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(ChannelError::Decode(format!("frame of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        self.recv_exact(&mut body, false)?;
        let msg = serde_json::from_slice(&body).map_err(|e| ChannelError::Decode(e.to_string()))?;
        Ok((msg, fds))
    }

    fn recv_exact(&self, buf: &mut [u8], with_fds: bool) -> Result<Vec<OwnedFd>, ChannelError> {
        let mut fds = Vec::new();
        let mut got = 0;
        let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
        while got < buf.len() {
            let mut iov = [IoSliceMut::new(&mut buf[got..])];
            let cmsg = if with_fds && got == 0 {
                Some(&mut cmsg_space)
            } else {
                None
            };
            let msg =
                match recvmsg::<()>(self.as_raw_fd(), &mut iov, cmsg, MsgFlags::MSG_CMSG_CLOEXEC) {
                    Ok(msg) => msg,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                    Err(e) => {
                        return Err(ChannelError::Sys {
                            op: "recvmsg",
                            errno: e,
                        })
                    }
                };
            if msg.bytes == 0 {
                return Err(ChannelError::Closed);
            }
            for c in msg.cmsgs().map_err(sys("recvmsg"))? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: SCM_RIGHTS installed these fds in our table just now.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            got += msg.bytes;
        }
        Ok(fds)
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
}
