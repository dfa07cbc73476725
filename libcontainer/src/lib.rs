//! rrun's container library: the OCI container state machine over clone(2),
//! namespaces, pivot_root, mounts, devices, cgroups, capabilities, rlimits and
//! hooks. See ARCHITECTURE.md at the repository root for the process model.
//!
//! An embedding program must call [`init::entry::run_if_requested`] first thing
//! in `main`, before it starts any thread: container processes are spawned by
//! re-executing the embedding binary into that entry point.
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

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod config;
pub mod container;
pub mod exe_guard;
pub mod features;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod sysctl;
pub mod terminal;
pub mod utils;

/// The runtime spec version rrun implements (the state's `ociVersion`).
pub const OCI_VERSION: &str = "1.2.0";
