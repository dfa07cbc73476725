//! The shim's containers and processes, and their exits.
//!
//! Every container init and exec'd process is a child of the shim (the
//! library clones them with CLONE_PARENT), so the crate's SIGCHLD thread
//! reaps them with `waitpid(-1)` and tells its monitor; our exits thread
//! (subscribed to the monitor) calls [`Shared::on_exit`]. An exit can come
//! before the library call that made the process returned its pid: such
//! exits wait in `unclaimed` until the pid is registered. The library's
//! helpers (bootstrap, hook runner), the crate's mount helper and logging
//! binaries are reaped there too: their exits stay unclaimed and are
//! dropped after [`UNCLAIMED_TTL`].
//!
//! Events are queued under the table's lock, so their order is the order
//! of the state changes; and an exit is held back until it may be told:
//!
//! * a process's TaskExit never precedes its TaskStart / TaskExecStarted
//!   (`starting` holds it back while the library call runs);
//! * the init's TaskExit comes after the TaskExit of every exec'd process
//!   of the container (they die with the init's pid namespace) and after
//!   the container's TaskOOM events (the OOM watcher has finished).
//!
//! `Wait` and `State` see an exit once its TaskExit is queued.

use crate::events::{Event, Queue};
use crate::stdio::Kept;
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// How long the exit of a pid nobody claimed is kept.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Made, not started (an exec: added, not started).
    Created,
    Running,
}

#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: u32,
    pub at: SystemTime,
}

impl Exit {
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from(self.at)
    }
}

/// A container's init or an exec'd process.
pub struct Proc {
    /// Empty for the init.
    pub exec_id: String,
    /// 0 until the process exists (an exec before Start).
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub phase: Phase,
    /// A library call (start, exec) is under way: its exit waits.
    pub starting: bool,
    /// The exit as reaped.
    pub exit: Option<Exit>,
    /// The exit was told (TaskExit queued): Wait and State see it.
    pub told: bool,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub io: Kept,
    /// An exec's process, from the Exec request.
    pub spec: Option<oci_spec::runtime::Process>,
}

impl Proc {
    pub fn new(exec_id: &str, stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Proc {
        Proc {
            exec_id: exec_id.to_string(),
            pid: 0,
            pidfd: None,
            phase: Phase::Created,
            starting: false,
            exit: None,
            told: false,
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            terminal,
            io: Kept::default(),
            spec: None,
        }
    }

    /// Alive as far as the shim has told: exists and its exit not told.
    pub fn live(&self) -> bool {
        self.starting || (self.pid != 0 && !self.told)
    }

    /// The exit Wait and State report: (status, time), zero before.
    pub fn told_exit(&self) -> Option<Exit> {
        self.exit.filter(|_| self.told)
    }
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    /// The library's state root for this container (`<root>/<namespace>`).
    pub root: PathBuf,
    /// `<bundle>/rootfs` when the shim mounted containerd's rootfs there.
    pub rootfs_mounted: Option<PathBuf>,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    /// No pid namespace of its own: its processes are killed when the
    /// init exits (the kernel does not do it), as the runc shim does.
    pub kill_all_on_exit: bool,
    killed_all: bool,
    /// The OOM watcher has finished (or never ran).
    pub oom_done: bool,
}

impl Container {
    pub fn new(id: &str, bundle: PathBuf, root: PathBuf, init: Proc) -> Container {
        Container {
            id: id.to_string(),
            bundle,
            root,
            rootfs_mounted: None,
            init,
            execs: HashMap::new(),
            kill_all_on_exit: false,
            killed_all: false,
            oom_done: false,
        }
    }

    pub fn proc(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn proc_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }
}

struct Unclaimed {
    pid: i32,
    exit: Exit,
    seen: Instant,
}

#[derive(Default)]
pub struct Table {
    pub containers: HashMap<String, Container>,
    unclaimed: Vec<Unclaimed>,
    /// Shutdown was accepted: waiters give up.
    pub shutting_down: bool,
}

impl Table {
    /// The exit of `pid` reaped since `since` (the library call that made
    /// the process began then: anything older was another process's).
    pub fn claim(&mut self, pid: i32, since: Instant) -> Option<Exit> {
        self.unclaimed.retain(|u| u.pid != pid || u.seen >= since);
        let i = self.unclaimed.iter().position(|u| u.pid == pid)?;
        Some(self.unclaimed.remove(i).exit)
    }
}

/// What an exit needs done once the table is unlocked.
pub enum Action {
    /// SIGKILL every process left in the container's cgroup.
    KillAll { root: PathBuf, id: String },
}

pub struct Shared {
    pub namespace: String,
    pub table: Mutex<Table>,
    /// Notified whenever an exit is told (and on shutdown).
    pub changed: Condvar,
    pub queue: Queue,
}

impl Shared {
    pub fn new(namespace: &str, queue: Queue) -> Shared {
        Shared {
            namespace: namespace.to_string(),
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
            queue,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an event. Callers hold the table's lock, which orders events
    /// as the state changes they report.
    pub fn publish(&self, event: Event) {
        self.queue.publish(event);
    }

    /// A child was reaped with `status` (128 + signal for a signal).
    pub fn on_exit(&self, pid: i32, status: i32) {
        let exit = Exit {
            status: status as u32,
            at: SystemTime::now(),
        };
        let mut table = self.lock();
        let found = table.containers.values_mut().find_map(|c| {
            let id = c.id.clone();
            if c.init.pid == pid && c.init.exit.is_none() {
                c.init.exit = Some(exit);
                return Some(id);
            }
            c.execs
                .values_mut()
                .find(|e| e.pid == pid && e.exit.is_none())
                .map(|e| {
                    e.exit = Some(exit);
                    id
                })
        });
        let actions = match found {
            Some(id) => self.settle(&mut table, &id),
            None => {
                let now = Instant::now();
                table
                    .unclaimed
                    .retain(|u| now.duration_since(u.seen) < UNCLAIMED_TTL);
                table.unclaimed.push(Unclaimed {
                    pid,
                    exit,
                    seen: now,
                });
                Vec::new()
            }
        };
        drop(table);
        run(actions);
    }

    /// Tell the exits of container `id` that may be told now (see the
    /// module's rules); returns what must be done unlocked.
    pub fn settle(&self, table: &mut Table, id: &str) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(c) = table.containers.get_mut(id) else {
            return actions;
        };
        let mut told_any = false;
        for e in c.execs.values_mut() {
            if let Some(exit) = e.exit.filter(|_| !e.told && !e.starting) {
                e.told = true;
                told_any = true;
                self.publish(exit_event(&c.id, &e.exec_id, e.pid, exit));
            }
        }
        if c.init.exit.is_some() && c.kill_all_on_exit && !c.killed_all {
            c.killed_all = true;
            actions.push(Action::KillAll {
                root: c.root.clone(),
                id: c.id.clone(),
            });
        }
        let execs_live = c.execs.values().any(Proc::live);
        if let Some(exit) = c.init.exit {
            if !c.init.told && !c.init.starting && c.oom_done && !execs_live {
                c.init.told = true;
                told_any = true;
                self.publish(exit_event(&c.id, &c.id, c.init.pid, exit));
            }
        }
        if told_any {
            self.changed.notify_all();
        }
        actions
    }

    /// The OOM watcher of `id` finished.
    pub fn oom_done(&self, id: &str) {
        let mut table = self.lock();
        if let Some(c) = table.containers.get_mut(id) {
            c.oom_done = true;
        }
        let actions = self.settle(&mut table, id);
        drop(table);
        run(actions);
    }

    /// Block until `pred` holds for the table (or shutdown, or `timeout`).
    pub fn wait_until<'a>(
        &self,
        mut table: MutexGuard<'a, Table>,
        timeout: Option<Duration>,
        mut pred: impl FnMut(&Table) -> bool,
    ) -> MutexGuard<'a, Table> {
        let deadline = timeout.map(|t| Instant::now() + t);
        while !pred(&table) && !table.shutting_down {
            match deadline {
                None => {
                    table = self.changed.wait(table).unwrap_or_else(|e| e.into_inner());
                }
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    table = self
                        .changed
                        .wait_timeout(table, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        table
    }
}

pub fn run(actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::KillAll { root, id } => {
                if let Err(e) = libcontainer::container::kill(&root, &id, libc::SIGKILL, true) {
                    containerd_shim::warn!("container {id}: killing what the init left: {e}");
                }
            }
        }
    }
}

fn exit_event(container: &str, id: &str, pid: i32, exit: Exit) -> Event {
    Event::Exit(TaskExit {
        container_id: container.to_string(),
        id: id.to_string(),
        pid: pid as u32,
        exit_status: exit.status,
        exited_at: Some(exit.timestamp()).into(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Msg;

    fn shared() -> (Shared, std::sync::mpsc::Receiver<Msg>) {
        let (queue, rx) = crate::events::capture();
        (Shared::new("ns", queue), rx)
    }

    fn add(s: &Shared, id: &str, pid: i32) {
        let mut init = Proc::new("", "", "", "", false);
        init.pid = pid;
        init.phase = Phase::Running;
        let mut c = Container::new(id, "/b".into(), "/r".into(), init);
        c.oom_done = true;
        s.lock().containers.insert(id.into(), c);
    }

    fn exits(rx: &std::sync::mpsc::Receiver<Msg>) -> Vec<(String, u32, u32)> {
        rx.try_iter()
            .filter_map(|e| match e {
                Msg::Event(Event::Exit(x)) => Some((x.id, x.pid, x.exit_status)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_exit_before_the_pid_is_known_is_claimed_once() {
        let (s, _rx) = shared();
        let since = Instant::now();
        s.on_exit(42, 3);
        let mut t = s.lock();
        assert_eq!(t.claim(42, since).map(|e| e.status), Some(3));
        assert!(t.claim(42, since).is_none());
    }

    #[test]
    fn an_older_exit_of_a_reused_pid_is_not_claimed() {
        let (s, _rx) = shared();
        s.on_exit(42, 3);
        std::thread::sleep(Duration::from_millis(2));
        let since = Instant::now();
        assert!(s.lock().claim(42, since).is_none());
    }

    #[test]
    fn the_init_exit_waits_for_its_execs_and_the_oom_watcher() {
        let (s, rx) = shared();
        add(&s, "c", 10);
        {
            let mut t = s.lock();
            let c = t.containers.get_mut("c").unwrap();
            c.oom_done = false;
            let mut e = Proc::new("e1", "", "", "", false);
            e.pid = 11;
            e.phase = Phase::Running;
            c.execs.insert("e1".into(), e);
        }
        s.on_exit(10, 137);
        assert!(exits(&rx).is_empty(), "init told before its exec");
        s.on_exit(11, 137);
        assert_eq!(exits(&rx), vec![("e1".to_string(), 11, 137)]);
        s.oom_done("c");
        assert_eq!(exits(&rx), vec![("c".to_string(), 10, 137)]);
        s.on_exit(10, 0);
        assert!(exits(&rx).is_empty(), "an exit told twice");
    }

    #[test]
    fn a_starting_process_holds_its_exit() {
        let (s, rx) = shared();
        add(&s, "c", 10);
        s.lock().containers.get_mut("c").unwrap().init.starting = true;
        s.on_exit(10, 0);
        assert!(exits(&rx).is_empty());
        let mut t = s.lock();
        t.containers.get_mut("c").unwrap().init.starting = false;
        s.settle(&mut t, "c");
        assert_eq!(exits(&rx), vec![("c".to_string(), 10, 0)]);
    }
}
