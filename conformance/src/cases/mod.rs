//! Every case, named after the spec section it proves.
//!
//! A case is a function `fn(&Env) -> CaseResult`: build a bundle with
//! `env.bundle(&id)`, change `bundle.config`, drive the runtime through `env`,
//! and return `Err(reason)` on the first mismatch. Cleanup (delete --force of
//! every id from `env.id`, cgroup leftovers, temp dirs) is done by the harness.

mod cgroups;
mod errors;
mod exec;
mod hooks;
mod lifecycle;
mod linux;
mod process;
mod seccomp;
mod security;
mod security_attack;
mod security_channel;
mod security_exe;
mod security_mounts;
mod security_proc;
mod security_process;

use crate::harness::{CaseResult, Env};

#[derive(Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(&Env) -> CaseResult,
}

const fn case(name: &'static str, run: fn(&Env) -> CaseResult) -> Case {
    Case { name, run }
}

/// Every case: [`ALL`], then the seccomp profile table's rows.
pub fn all() -> Vec<Case> {
    let mut cases = ALL.to_vec();
    cases.extend(seccomp::cases());
    cases
}

pub const ALL: &[Case] = &[
    case(
        "runtime.lifecycle.create-start-kill-delete",
        lifecycle::create_start_kill_delete,
    ),
    case("runtime.lifecycle.config-frozen", lifecycle::config_frozen),
    case("runtime.state.fields", lifecycle::state_fields),
    case(
        "runtime.operations.start-running-fails",
        lifecycle::start_running_fails,
    ),
    case(
        "runtime.operations.delete-running-fails",
        lifecycle::delete_running_fails,
    ),
    case("runtime.operations.kill-all", lifecycle::kill_all),
    case(
        "runtime.operations.delete-missing",
        lifecycle::delete_missing,
    ),
    case(
        "runtime.operations.create-duplicate-id",
        lifecycle::create_duplicate_id,
    ),
    case("runtime.operations.missing-id", lifecycle::missing_id),
    case("runtime.operations.run-exit-code", lifecycle::run_exit_code),
    case("runtime.operations.list", lifecycle::list),
    case("runtime.operations.version", lifecycle::version),
    case("config.root.readonly", process::root_readonly),
    case("config.mounts.flags", linux::mount_flags),
    case("config.mounts.bind", linux::mount_bind),
    case("config.mounts.order", linux::mount_order),
    case(
        "config.mounts.symlink-escape",
        security::mount_symlink_escape,
    ),
    case("config.process.env-cwd-args", process::env_cwd_args),
    case("config.process.user", process::user),
    case("config.process.umask-default", process::umask_default),
    case("config.process.capabilities", process::capabilities),
    case(
        "config.process.capabilities-ambient",
        process::capabilities_ambient,
    ),
    case(
        "config.process.capabilities-ungrantable",
        process::capabilities_ungrantable,
    ),
    case("config.process.rlimits", process::rlimits),
    case(
        "config.process.no-new-privileges",
        process::no_new_privileges,
    ),
    case("config.process.oom-score-adj", process::oom_score_adj),
    case("config.process.terminal", security::terminal),
    case("config.process.preserve-fds", security::preserve_fds),
    case("config.hostname", process::hostname),
    case("config.domainname", process::domainname),
    case("config.hooks.order", hooks::order),
    case("config.hooks.state-stdin", hooks::state_stdin),
    case("config.hooks.prestart-failure", hooks::prestart_failure),
    case("config.hooks.poststart-failure", hooks::poststart_failure),
    case("config.hooks.poststop-failure", hooks::poststop_failure),
    case("config.hooks.timeout", hooks::timeout),
    case("config-linux.namespaces.new-pid", linux::new_pid),
    case("config-linux.namespaces.new-network", linux::new_network),
    case("config-linux.namespaces.new-ipc", linux::new_ipc),
    case("config-linux.namespaces.new-uts", linux::new_uts),
    case("config-linux.namespaces.new-mount", linux::new_mount),
    case("config-linux.namespaces.new-cgroup", linux::new_cgroup),
    case("config-linux.namespaces.new-time", linux::new_time),
    case("config-linux.namespaces.inherit", linux::inherit),
    case("config-linux.namespaces.join-by-path", linux::join_by_path),
    case("config-linux.user-namespace.mappings", linux::user_mappings),
    case("config-linux.devices.entry", linux::device_entry),
    case("config-linux.devices.defaults", linux::default_devices),
    case(
        "config-linux.default-filesystems",
        linux::default_filesystems,
    ),
    case("config-linux.sysctl", linux::sysctl),
    case("config-linux.rootfs-propagation", linux::rootfs_propagation),
    case("config-linux.masked-paths", linux::masked_paths),
    case("config-linux.readonly-paths", linux::readonly_paths),
    case("config-linux.cgroups.resources", linux::cgroup_resources),
    case("config-linux.mount-label", linux::mount_label),
    case("config-linux.cgroups.memory", cgroups::memory),
    case("config-linux.cgroups.cpu", cgroups::cpu),
    case(
        "config-linux.cgroups.cpu-burst-idle",
        cgroups::cpu_burst_idle,
    ),
    case("config-linux.cgroups.pids", cgroups::pids),
    case(
        "config-linux.cgroups.blkio-throttle",
        cgroups::blkio_throttle,
    ),
    case("config-linux.cgroups.blkio-weight", cgroups::blkio_weight),
    case(
        "config-linux.cgroups.hugepage-limits",
        cgroups::hugepage_limits,
    ),
    case("config-linux.cgroups.network", cgroups::network),
    case("config-linux.cgroups.devices", cgroups::devices),
    case("config-linux.cgroups.unified", cgroups::unified),
    case("runc.cli.pause-resume", cgroups::pause_resume),
    case("runc.cli.update", cgroups::update),
    case("runc.cli.events-stats", cgroups::events_stats),
    case("runc.cli.ps-json", cgroups::ps_json),
    case(
        "runc.cli.exec.namespaces-cgroups",
        exec::namespaces_and_cgroups,
    ),
    case("runc.cli.exec.process", exec::process),
    case("runc.cli.exec.seccomp", exec::seccomp),
    case("runc.cli.exec.exit-code", exec::exit_code),
    case("runc.cli.exec.refusals", exec::refusals_leave_nothing),
    case("security.cve-2019-5736", security_exe::cve_2019_5736),
    case("security.cve-2019-16884", security_proc::cve_2019_16884),
    case("security.cve-2021-30465", security_mounts::cve_2021_30465),
    case("security.cve-2022-27650", security_process::cve_2022_27650),
    case("security.cve-2022-29162", security_process::cve_2022_29162),
    case("security.cve-2023-27561", security_proc::cve_2023_27561),
    case("security.cve-2023-28642", security_proc::cve_2023_28642),
    case("security.cve-2024-21626", security_process::cve_2024_21626),
    case("security.cve-2024-45310", security_mounts::cve_2024_45310),
    case("security.cve-2025-31133", security_mounts::cve_2025_31133),
    case("security.cve-2025-52565", security_mounts::cve_2025_52565),
    case("security.cve-2025-52881", security_proc::cve_2025_52881),
    case(
        "security.untrusted-messages",
        security_channel::untrusted_messages,
    ),
    case("errors.bad-json", errors::bad_json),
    case("errors.root-missing", errors::root_missing),
    case("errors.unknown-namespace", errors::unknown_namespace),
    case("errors.duplicate-namespace", errors::duplicate_namespace),
    case(
        "errors.uidmap-without-userns",
        errors::uidmap_without_userns,
    ),
    case("errors.unknown-rlimit", errors::unknown_rlimit),
    case("errors.duplicate-rlimit", errors::duplicate_rlimit),
    case("errors.unknown-mount-type", errors::unknown_mount_type),
    case("errors.empty-args", errors::empty_args),
    case(
        "errors.namespace-path-wrong-type",
        errors::namespace_path_wrong_type,
    ),
    case("errors.hostname-without-uts", errors::hostname_without_uts),
    case("errors.device-path-mismatch", errors::device_path_mismatch),
    case("config-linux.seccomp.notify", seccomp::notify),
    case(
        "config-linux.seccomp.notify-no-new-privileges-false",
        seccomp::notify_without_nnp,
    ),
    case(
        "config-linux.seccomp.flag-wait-killable-recv",
        seccomp::notify_wait_killable,
    ),
];
