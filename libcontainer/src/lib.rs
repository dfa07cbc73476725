//! rrun's container library: the OCI container state machine over clone(2),
//! namespaces, pivot_root, mounts, devices, cgroups, capabilities, rlimits and
//! hooks. See ARCHITECTURE.md at the repository root for the process model.
//!
//! # The API
//!
//! What embedders (the `rrun` CLI, the containerd shim) call:
//!
//! * [`container`]: the operations (`create`, `start`, `exec`, `kill`,
//!   `delete`, `state`, `list`, `pause`, `resume`, `pids`, `update`, `stats`,
//!   `watch`), their options and results, and their error.
//! * [`config`]: loading, parsing and validating a bundle's `config.json`.
//! * [`state`]: what is recorded about a container, and its status.
//! * [`cgroups::stats`]: the statistics `stats` and `watch` report (and
//!   [`cgroups::CgroupError`]).
//! * [`features`]: the OCI features document of this build on this host.
//! * [`init`]: [`init::entry::run_if_requested`], the re-exec entry point,
//!   and [`init::reap_own_helpers`].
//! * [`utils`]: pidfd helpers and the timestamp format of the state.
//! * [`seccomp::notify`]: both sides of the seccomp user notification
//!   protocol (an embedder can be a seccomp agent), and [`seccomp::Filter`]
//!   as a [`config::Config`] holds it.
//!
//! Every other module, and the items of these that are not documented
//! here, are building blocks hidden from this documentation: they are
//! `pub` only so that the project's own integration tests can reach them,
//! and carry no stability promise.
//!
//! # The process model an embedder must respect
//!
//! * [`init::entry::run_if_requested`] comes first in `main`, before any
//!   thread starts: container processes are made by re-executing the
//!   embedding binary (a read-only image of it) into that entry point.
//! * A container's init and every exec'd process are children of the
//!   calling process: their exits reach the caller's SIGCHLD and `waitpid`,
//!   and nobody else reaps them. The library also spawns short-lived
//!   helpers (the bootstrap, the hook runner) that a `waitpid(-1)` reaper
//!   reaps too; a program without such a reaper calls
//!   [`init::reap_own_helpers`]`(true)` instead. A process can exit, and be
//!   reaped, before the call that started it returns its pid: a reaper
//!   records exits by pid for whoever asks later.
//! * The operations are synchronous and block (create until the init is
//!   ready, with its hooks run; start until the process has started): call
//!   them from threads (`spawn_blocking` in an async program). Operations
//!   on one container are serialized by a lock on its state directory, and
//!   the caller's cwd, environment, umask and signal mask are left as they
//!   were.
//! * A container leaves `<root>/<id>/` and its cgroup behind until
//!   [`container::delete`]; the library logs warnings through `tracing`.
//!
//! `examples/embed.rs` is a small embedder that does all of this: a
//! SIGCHLD reaper thread, then create, exec, start, both exit codes
//! through the reaper, and delete (`cargo build -p libcontainer
//! --examples`; run it as root).
//!
//! ```no_run
//! use libcontainer::container::{self, CreateOptions};
//!
//! fn main() {
//!     libcontainer::init::entry::run_if_requested();
//!     let root = std::path::Path::new("/run/my-engine");
//!     let created = container::create(&CreateOptions {
//!         root: root.into(),
//!         id: "c1".into(),
//!         bundle: "/path/to/bundle".into(),
//!         ..Default::default()
//!     })
//!     .unwrap();
//!     container::start(root, "c1").unwrap();
//!     // The init (`created.pid`, `created.pidfd`) is a child of this
//!     // process: its exit reaches this process's own reaper.
//!     container::delete(root, "c1", true).unwrap();
//! }
//! ```

// Every item of the API has rustdoc; hidden modules are exempt.
#![deny(missing_docs)]

#[doc(hidden)] // building block, pub for the project's tests only
pub mod capabilities;
pub mod cgroups;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod channel;
pub mod config;
pub mod container;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod exe_guard;
#[doc(hidden)] // the tests' fault-injection points; empty in a release build
pub mod fault;
pub mod features;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod hooks;
pub mod init;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod namespaces;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod process;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod procfs;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod rootfs;
pub mod seccomp;
pub mod state;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod sysctl;
#[doc(hidden)] // building block, pub for the project's tests only
pub mod terminal;
pub mod trace;
pub mod utils;

/// The runtime spec version rrun implements (the state's `ociVersion`).
pub const OCI_VERSION: &str = "1.2.0";
