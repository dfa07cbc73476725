//! rrun's container library: the OCI container state machine over clone(2),
//! namespaces, pivot_root, mounts, devices, cgroups, capabilities, rlimits and
//! hooks. See ARCHITECTURE.md at the repository root for the process model.
//!
//! An embedding program must call [`init::entry::run_if_requested`] first thing
//! in `main`, before it starts any thread: container processes are spawned by
//! re-executing the embedding binary into that entry point.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod config;
pub mod container;
pub mod exe_guard;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod state;
pub mod sysctl;
pub mod terminal;
pub mod utils;

pub use container::Container;

/// The runtime spec version rrun implements (the state's `ociVersion`).
pub const OCI_VERSION: &str = "1.2.0";
