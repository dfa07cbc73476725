//! `events`: statistics and OOM notifications of a container's cgroup, in
//! runc's event JSON (`{"type":"stats"|"oom","id":...,"data":...}`).
//!
//! OOM kills are watched, not polled: on v1 an eventfd registered on
//! memory.oom_control through cgroup.event_control, on v2 an inotify watch
//! on memory.events (its oom_kill counter). The watch ends when the init
//! exits, seen through a pidfd.

use super::ContainerError;
use crate::cgroups::stats::{self, Layout, Stats};
use crate::state::{State, StateDir, Status};
use crate::utils::io_errno;
use crate::utils::{pidfd_open, process_start_time};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use serde::Serialize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One event as runc prints it (one JSON object per line).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// `stats` or `oom`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container.
    pub id: &'a str,
    /// The statistics of a `stats` event; none for `oom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stats>,
}

impl<'a> Event<'a> {
    /// A `stats` event.
    pub fn stats(id: &'a str, stats: &'a Stats) -> Event<'a> {
        Event {
            kind: "stats",
            id,
            data: Some(stats),
        }
    }

    /// An `oom` event: the kernel OOM-killed a process of the container.
    pub fn oom(id: &'a str) -> Event<'a> {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}

/// The recorded state of a container that is not stopped. The state
/// directory is unlocked again at once: a long `events` must not block
/// kill or delete.
fn live_state(root: &Path, id: &str) -> Result<State, ContainerError> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load()?;
    let status = dir.current_status(&state);
    if status == Status::Stopped {
        return Err(ContainerError::WrongStatus {
            id: id.to_string(),
            status,
            message: format!("container with id {id} is not running"),
        });
    }
    Ok(state)
}

fn read_stats(state: &State) -> Result<Stats, ContainerError> {
    stats::read(&Layout::of(&state.cgroup_path))
        .map_err(|e| ContainerError::Setup(format!("container {}: {e}", state.id)))
}

/// One `events --stats` object's data.
pub fn stats(root: &Path, id: &str) -> Result<Stats, ContainerError> {
    read_stats(&live_state(root, id)?)
}

/// Stream events until the container's init exits: statistics every
/// `interval` (the first after one interval, as runc), and an OOM event as
/// soon as the kernel OOM-kills a process of the container. A failed
/// statistics read is reported through `on_error` and the stream goes on.
/// Blocks the calling thread, which runs the callbacks, until then; the
/// container is not locked meanwhile (kill and delete go ahead).
pub fn watch(
    root: &Path,
    id: &str,
    interval: Duration,
    mut on_event: impl FnMut(&Event),
    mut on_error: impl FnMut(&ContainerError),
) -> Result<(), ContainerError> {
    if interval.is_zero() {
        return Err(ContainerError::Setup(
            "duration interval must be greater than 0".to_string(),
        ));
    }
    let state = live_state(root, id)?;
    let Some(init) = open_init(&state)? else {
        return Ok(());
    };
    let layout = Layout::of(&state.cgroup_path);
    let mut oom = OomWatch::register(&layout).map_err(|(path, errno)| {
        ContainerError::sys(id, "oom notification", path.display())(errno)
    })?;
    let mut next = Instant::now() + interval;
    loop {
        let timeout = next.saturating_duration_since(Instant::now());
        let (oom_ready, init_exited) = wait(oom.as_ref(), &init, timeout)
            .map_err(ContainerError::sys(id, "poll", "oom eventfd and pidfd"))?;
        if oom_ready || init_exited {
            // After the init exited, collect an OOM kill that killed it:
            // the kernel notifies before it kills.
            if let Some(watch) = oom.as_mut() {
                let count = watch.take_ooms();
                if watch.cgroup_gone() {
                    // v1 signals removal through the same eventfd: not an OOM.
                    oom = None;
                } else {
                    for _ in 0..count {
                        on_event(&Event::oom(id));
                    }
                }
            }
        }
        if init_exited {
            return Ok(());
        }
        if Instant::now() >= next {
            match read_stats(&state) {
                Ok(s) => on_event(&Event::stats(id, &s)),
                Err(e) => on_error(&e),
            }
            next += interval;
        }
    }
}

/// A pidfd on the init, if it is still the process recorded at create.
fn open_init(state: &State) -> Result<Option<OwnedFd>, ContainerError> {
    let pidfd = match pidfd_open(state.pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(None),
        Err(e) => return Err(ContainerError::sys(&state.id, "pidfd_open", state.pid)(e)),
    };
    match process_start_time(state.pid) {
        Some((start, false)) if start == state.init_start_time => Ok(Some(pidfd)),
        _ => Ok(None),
    }
}

/// Block until an OOM notification, the init's exit, or the timeout.
fn wait(oom: Option<&OomWatch>, init: &OwnedFd, timeout: Duration) -> Result<(bool, bool), Errno> {
    let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
    if let Some(w) = oom {
        fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
    }
    // Round up so that the deadline has passed when poll returns.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    match nix::poll::poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(e),
    }
    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    let init_exited = ready(&fds[0]);
    let oom_ready = fds.get(1).is_some_and(ready);
    Ok((oom_ready, init_exited))
}

/// The kernel's OOM notification for one memory cgroup.
enum OomWatch {
    /// v1: an eventfd registered on memory.oom_control; each read returns
    /// the number of OOM notifications since the last one.
    V1 {
        eventfd: EventFd,
        /// Kept open: the registration lives as long as this fd.
        _oom_control: std::fs::File,
        event_control: PathBuf,
    },
    /// v2: inotify on memory.events; the oom_kill counter says how many.
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        oom_kills: u64,
    },
}

type RegisterError = (PathBuf, Errno);

impl OomWatch {
    /// None when the container has no memory cgroup to watch.
    fn register(layout: &Layout) -> Result<Option<OomWatch>, RegisterError> {
        let Some(dir) = layout.memory_dir() else {
            return Ok(None);
        };
        match layout {
            Layout::V1(_) => Self::register_v1(dir),
            Layout::V2(_) => Self::register_v2(dir),
        }
    }

    fn register_v1(dir: &Path) -> Result<Option<OomWatch>, RegisterError> {
        let oom_control_path = dir.join("memory.oom_control");
        let event_control = dir.join("cgroup.event_control");
        let oom_control = std::fs::File::open(&oom_control_path)
            .map_err(|e| (oom_control_path.clone(), io_errno(&e)))?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| (PathBuf::from("eventfd"), e))?;
        let registration = format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd());
        std::fs::write(&event_control, registration)
            .map_err(|e| (event_control.clone(), io_errno(&e)))?;
        Ok(Some(OomWatch::V1 {
            eventfd,
            _oom_control: oom_control,
            event_control,
        }))
    }

    fn register_v2(dir: &Path) -> Result<Option<OomWatch>, RegisterError> {
        let events = dir.join("memory.events");
        if !events.exists() {
            // No memory controller for this cgroup: nothing to watch.
            return Ok(None);
        }
        // SAFETY: inotify_init1 takes flags and returns a new fd or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err((PathBuf::from("inotify"), Errno::last()));
        }
        // SAFETY: the kernel just returned this fd; nobody else owns it.
        let inotify = unsafe { OwnedFd::from_raw_fd(raw) };
        let c_path = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|_| (events.clone(), Errno::EINVAL))?;
        // SAFETY: a valid inotify fd and a NUL-terminated path that outlives the call.
        let wd = unsafe {
            libc::inotify_add_watch(inotify.as_raw_fd(), c_path.as_ptr(), libc::IN_MODIFY)
        };
        if wd < 0 {
            return Err((events, Errno::last()));
        }
        let oom_kills = oom_kill_count(&events);
        Ok(Some(OomWatch::V2 {
            inotify,
            events,
            oom_kills,
        }))
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            OomWatch::V1 { eventfd, .. } => eventfd.as_fd(),
            OomWatch::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// How many OOM kills happened since the last call (non-blocking).
    fn take_ooms(&mut self) -> u64 {
        match self {
            OomWatch::V1 { eventfd, .. } => {
                let mut count = [0u8; 8];
                match nix::unistd::read(eventfd.as_raw_fd(), &mut count) {
                    Ok(8) => u64::from_ne_bytes(count),
                    _ => 0,
                }
            }
            OomWatch::V2 {
                inotify,
                events,
                oom_kills,
            } => {
                let mut buf = [0u8; 4096];
                // Drain the queued inotify events; the counter is the truth.
                while matches!(nix::unistd::read(inotify.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
                let now = oom_kill_count(events);
                let new = now.saturating_sub(*oom_kills);
                *oom_kills = now;
                new
            }
        }
    }

    /// v1 also signals the eventfd when the cgroup is removed: then there
    /// is nothing more to watch.
    fn cgroup_gone(&self) -> bool {
        match self {
            OomWatch::V1 { event_control, .. } => !event_control.exists(),
            OomWatch::V2 { events, .. } => !events.exists(),
        }
    }
}

fn oom_kill_count(events: &Path) -> u64 {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
