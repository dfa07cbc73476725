//! A small embedder of libcontainer: what a program that runs containers
//! in its own process (as containerd's shim does) must do, and nothing more.
//!
//! ```text
//! embed <bundle> [exec-args...]        (as root)
//! ```
//!
//! It creates a container from `<bundle>` under a runtime root of its own
//! in the temporary directory, execs `exec-args` (default `sh -c 'exit 7'`)
//! into it, starts it, prints the exit codes of both processes as its
//! SIGCHLD reaper collected them, and deletes the container. For example,
//! with a busybox bundle whose process exits with 3:
//!
//! ```text
//! scripts/make-bundle.sh /tmp/b sh -c 'exit 3'
//! cargo build -p libcontainer --examples
//! unshare --mount --propagation private target/debug/examples/embed /tmp/b
//! ```
//!
//! The process model it respects (ARCHITECTURE.md has the details):
//!
//! 1. The library builds containers in copies of this very binary, so
//!    `run_if_requested` comes first in `main`, before any thread.
//! 2. Every container init and exec'd process is a child of this process,
//!    and so are the library's short-lived helpers: this process reaps them
//!    all, here with a `waitpid(-1)` reaper thread woken by SIGCHLD.
//! 3. A process can exit, and be reaped, before the call that started it
//!    returns its pid: the reaper records every exit by pid, and the
//!    waiting side looks there.
//! 4. The library's calls are synchronous: this program makes them from
//!    its main thread; an async program would use a blocking pool.

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use libcontainer::config::Config;
use libcontainer::container::{self, CreateOptions, ExecOptions};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

fn main() {
    // (1) Before anything else, and above all before any thread exists: in
    // the helpers the library spawns from this binary, this call runs the
    // helper and never returns; here it returns after one getenv.
    libcontainer::init::entry::run_if_requested();

    let reaper = Reaper::start();
    match run(&reaper) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("embed: {e}");
            std::process::exit(1);
        }
    }
}

fn run(reaper: &Reaper) -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let bundle = PathBuf::from(args.next().ok_or("usage: embed <bundle> [exec-args...]")?);
    let exec_args: Vec<String> = match args.map(|a| a.into_string()).collect::<Result<Vec<_>, _>>()
    {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => ["sh", "-c", "exit 7"].map(String::from).to_vec(),
        Err(a) => return Err(format!("{a:?} is not UTF-8").into()),
    };

    let id = format!("embed-{}", std::process::id());
    let root = std::env::temp_dir().join(&id);
    // The config is loaded once, for create and for the exec'd process's
    // user, environment and cwd.
    let config = Config::load(&bundle)?;
    let opts = CreateOptions {
        root: root.clone(),
        id: id.clone(),
        bundle,
        // The container's stdio is this process's own (`stdio: None`).
        ..Default::default()
    };

    // (3) An exit recorded before this mark belongs to an earlier process
    // that had the same pid (a helper's, say), not to what create starts.
    let mark = reaper.mark();
    // Blocks until the init is set up and waits for start (the prestart
    // and createRuntime hooks have run). On error nothing is left, but an
    // init it had started was killed: the reaper gets that exit.
    let created = container::create_from(&opts, &config)?;
    println!("embed: created {id}, init {}", created.pid);

    // The exec comes before start: a container whose process exits at once
    // (the example bundle's `exit 3`) has nothing to enter after start, and
    // a created container takes an exec, as with runc. When the init exits,
    // the kernel kills whatever is left in its pid namespace: the exec'd
    // process is waited for before the init is let go.
    let mut process = config
        .spec
        .process()
        .clone()
        .ok_or("config.json has no process")?;
    process.set_args(Some(exec_args));
    process.set_terminal(Some(false));
    let exec_mark = reaper.mark();
    let executed = container::exec(&ExecOptions {
        root: root.clone(),
        id: id.clone(),
        process,
        ..Default::default()
    });
    let result = executed
        .map_err(Box::<dyn Error>::from)
        .and_then(|executed| {
            // (2) Our child, though the library made it: its exit comes to our
            // reaper. `executed.pidfd` could be polled instead, but not
            // reaped with waitid: the reaper would race it for the status.
            let code = reaper.wait_for(executed.pid, exec_mark);
            println!("embed: exec'd process {} exited with {code}", executed.pid);
            container::start(&root, &id)?;
            let code = reaper.wait_for(created.pid, mark);
            println!("embed: init {} exited with {code}", created.pid);
            Ok(())
        });

    // delete kills a container that is still there (`force`), removes its
    // cgroup and `<root>/<id>/`, and runs the poststop hooks; the exit of a
    // process it killed still goes to the reaper.
    container::delete(&root, &id, true)?;
    let _ = std::fs::remove_dir(&root);
    result
}

/// The exits the reaper collected: pid → (when, exit code), with `when`
/// from a counter of exits, so that a waiter can tell an exit of its
/// process from an earlier one of a process with the same pid.
#[derive(Default)]
struct Exits {
    seen: u64,
    by_pid: HashMap<i32, (u64, i32)>,
}

struct Reaper {
    exits: Arc<(Mutex<Exits>, Condvar)>,
}

impl Reaper {
    /// Block SIGCHLD and start the reaper thread. SIGCHLD is blocked in
    /// this thread before the reaper exists, so every thread started from
    /// here on inherits the mask and only the reaper's `sigwait` takes the
    /// signal (the library starts its helpers with a clean mask: std's
    /// Command resets it). A signal that comes while the reaper is busy
    /// stays pending: no exit is missed.
    fn start() -> Reaper {
        let mut sigchld = SigSet::empty();
        sigchld.add(Signal::SIGCHLD);
        sigchld.thread_block().expect("block SIGCHLD");
        let exits: Arc<(Mutex<Exits>, Condvar)> = Arc::default();
        let shared = exits.clone();
        std::thread::spawn(move || loop {
            if sigchld.wait().is_ok() {
                reap_all(&shared);
            }
        });
        Reaper { exits }
    }

    /// Where the exit counter is now: exits counted after this are of
    /// processes that were alive at this point (or started after it).
    fn mark(&self) -> u64 {
        self.exits.0.lock().unwrap().seen
    }

    /// The exit code of `pid`, waiting for it: an exit recorded since
    /// `mark` (an earlier one was another process's with the same pid).
    fn wait_for(&self, pid: i32, mark: u64) -> i32 {
        let (lock, cond) = &*self.exits;
        let mut exits = lock.lock().unwrap();
        loop {
            match exits.by_pid.get(&pid) {
                Some(&(when, code)) if when > mark => return code,
                _ => exits = cond.wait(exits).unwrap(),
            }
        }
    }
}

/// Reap every child that has exited: one SIGCHLD may stand for several.
/// Helpers of the library (the bootstrap, the hook runner) are reaped here
/// too, and recorded like the rest: nobody waits for them. (A long-running
/// embedder would also drop the exits nobody claims.)
fn reap_all(exits: &(Mutex<Exits>, Condvar)) {
    loop {
        let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, 128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("embed: waitpid: {e}");
                break;
            }
        };
        let mut guard = exits.0.lock().unwrap();
        guard.seen += 1;
        let when = guard.seen;
        guard.by_pid.insert(pid.as_raw(), (when, code));
    }
    exits.1.notify_all();
}
