//! The requirement list: every MUST and SHOULD of the spec sections the suite
//! covers (runtime.md, config.md, config-linux.md), each with the cases that
//! prove it. A row with no case is reported as "not yet covered".
//!
//! Levels: `MUST`/`SHOULD` are the spec's words. Fields whose text carries no
//! keyword (a mount option, a sysctl) are `MUST` through runtime.md lifecycle
//! step 2: "the container's runtime environment MUST be created according to
//! the configuration". `runc` rows are runc-CLI behaviour rrun copies, not
//! spec; `rrun` rows are stricter checks rrun makes that neither asks for.

pub struct Req {
    pub section: &'static str,
    pub text: &'static str,
    pub level: &'static str,
    pub cases: &'static [&'static str],
}

const fn req(
    section: &'static str,
    text: &'static str,
    level: &'static str,
    cases: &'static [&'static str],
) -> Req {
    Req {
        section,
        text,
        level,
        cases,
    }
}

const LIFECYCLE: &str = "runtime.lifecycle.create-start-kill-delete";
const STATE: &str = "runtime.state.fields";
const HOOKS: &str = "config.hooks.order-and-state";

#[rustfmt::skip]
pub const REQUIREMENTS: &[Req] = &[
    // runtime.md
    req("runtime.scope", "creator can use every operation on its container", "MUST", &[LIFECYCLE]),
    req("runtime.state", "state has ociVersion", "MUST", &[STATE]),
    req("runtime.state", "state has id, unique on the host", "MUST", &[STATE, "runtime.operations.create-duplicate-id"]),
    req("runtime.state", "state has status (creating/created/running/stopped)", "MUST", &[LIFECYCLE]),
    req("runtime.state", "other status values only for new states", "MUST", &[STATE]),
    req("runtime.state", "state pid is the container process as seen by the host", "MUST", &[STATE]),
    req("runtime.state", "state bundle is the absolute bundle path", "MUST", &[STATE]),
    req("runtime.state", "state annotations are the config's annotations", "MUST", &[STATE]),
    req("runtime.state", "state JSON keys match runc's for the same bundle", "runc", &[STATE]),
    req("runtime.lifecycle", "create builds the environment from config.json", "MUST", &[LIFECYCLE]),
    req("runtime.lifecycle", "create errors if it cannot build the environment", "MUST", &[
        "errors.root-missing", "errors.unknown-mount-type", "errors.unknown-namespace",
    ]),
    req("runtime.lifecycle", "user process does not run at create", "MUST", &[LIFECYCLE]),
    req("runtime.lifecycle", "config.json changes after create do not affect the container", "MUST", &["runtime.lifecycle.config-frozen"]),
    req("runtime.lifecycle", "start runs the user-specified process", "MUST", &[LIFECYCLE]),
    req("runtime.lifecycle", "delete undoes create (process, state, cgroup)", "MUST", &[LIFECYCLE, "config-linux.cgroups.resources"]),
    req("runtime.lifecycle", "prestart/createRuntime/createContainer failure: error, container stopped and deleted", "MUST", &["config.hooks.prestart-failure"]),
    req("runtime.lifecycle", "poststart failure: warning, lifecycle continues", "MUST", &["config.hooks.poststart-failure"]),
    req("runtime.lifecycle", "poststop failure: warning, lifecycle continues", "MUST", &["config.hooks.poststop-failure"]),
    req("runtime.errors", "an error leaves the environment as if never attempted", "MUST", &[
        "errors.bad-json", "errors.root-missing", "errors.unknown-namespace", "errors.duplicate-namespace",
        "errors.uidmap-without-userns", "errors.unknown-rlimit", "errors.duplicate-rlimit",
        "errors.unknown-mount-type", "errors.empty-args", "errors.namespace-path-wrong-type",
    ]),
    req("runtime.operations", "state without an id errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "state of a missing container errors", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "state returns the State", "MUST", &[STATE]),
    req("runtime.operations", "create without id/bundle errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "create with a non-unique id errors, creates nothing", "MUST", &["runtime.operations.create-duplicate-id"]),
    req("runtime.operations", "create leaves status created", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "start without an id errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "start of a missing container errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "start of a started container errors, no effect", "MUST", &["runtime.operations.start-running-fails"]),
    req("runtime.operations", "start leaves status running", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "kill without an id errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "kill of a stopped container errors, no effect", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "kill sends the signal to the container process", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "status is stopped once the process stopped", "MUST", &[LIFECYCLE]),
    req("runtime.operations", "delete without an id errors", "MUST", &["runtime.operations.missing-id"]),
    req("runtime.operations", "delete of a missing container errors", "MUST", &["runtime.operations.delete-missing"]),
    req("runtime.operations", "delete of a running container errors, no effect", "MUST", &["runtime.operations.delete-running-fails"]),
    req("runtime.operations", "delete removes what create made", "MUST", &[LIFECYCLE, "config-linux.cgroups.resources"]),
    req("runtime.operations", "delete keeps what the container did not create", "MUST", &["config-linux.namespaces.join-by-path", "config.mounts.bind"]),
    req("runc.cli", "kill --all signals every process of the container", "runc", &["runtime.operations.kill-all"]),
    req("runc.cli", "delete --force of a missing id exits 0", "runc", &["runtime.operations.delete-missing"]),
    req("runc.cli", "run exits with the process's exit code", "runc", &["runtime.operations.run-exit-code"]),
    req("runc.cli", "list shows the container (json, -q)", "runc", &["runtime.operations.list"]),
    req("runc.cli", "--version prints version/commit/spec lines", "runc", &["runtime.operations.version"]),
    req("runc.cli", "--console-socket receives the pty master", "runc", &["config.process.terminal"]),
    req("runc.cli", "--preserve-fds passes fd 3, no other host fd leaks", "runc", &["config.process.preserve-fds"]),
    req("runc.cli", "runtime binary cannot be overwritten from the container (CVE-2019-5736)", "runc", &["security.exe-guard"]),
    // config.md
    req("config.ociVersion", "a 1.2.0 bundle is accepted", "MUST", &[LIFECYCLE]),
    req("config.root", "root.path must exist (error otherwise)", "MUST", &["errors.root-missing"]),
    req("config.root", "root.readonly makes the rootfs read-only", "MUST", &["config.root.readonly"]),
    req("config.mounts", "mounts are mounted in the listed order", "MUST", &["config.mounts.order"]),
    req("config.mounts", "mount options ro/nosuid/nodev/noexec/relatime, tmpfs mode/size", "MUST", &["config.mounts.flags"]),
    req("config.mounts", "bind mount of a host dir (ro)", "MUST", &["config.mounts.bind"]),
    req("config.mounts", "destination through a symlink stays in the rootfs (CVE-2021-30465)", "MUST", &["config.mounts.symlink-escape"]),
    req("config.mounts", "a mount type the kernel does not know errors", "MUST", &["errors.unknown-mount-type"]),
    req("config.process", "terminal: the process gets a pty", "MUST", &["config.process.terminal"]),
    req("config.process", "cwd is the working directory", "MUST", &["config.process.env-cwd-args"]),
    req("config.process", "env is the process environment", "MUST", &["config.process.env-cwd-args"]),
    req("config.process", "args are executed (PATH lookup for relative)", "MUST", &["config.process.env-cwd-args"]),
    req("config.process", "args needs at least one entry (error otherwise)", "MUST", &["errors.empty-args"]),
    req("config.process", "rlimits: getrlimit returns soft/hard", "MUST", &["config.process.rlimits"]),
    req("config.process", "rlimits: unmappable type errors", "MUST", &["errors.unknown-rlimit"]),
    req("config.process", "rlimits: duplicated type errors", "MUST", &["errors.duplicate-rlimit"]),
    req("config.process", "user uid/gid", "MUST", &["config.process.user"]),
    req("config.process", "user additionalGids", "MUST", &["config.process.user"]),
    req("config.process", "user umask set", "MUST", &["config.process.user"]),
    req("config.process", "umask unset: not changed from the caller's", "SHOULD", &["config.process.umask-default"]),
    req("config.process", "noNewPrivileges sets no_new_privs", "MUST", &["config.process.no-new-privileges"]),
    req("config.process", "oomScoreAdj set is applied", "MUST", &["config.process.oom-score-adj"]),
    req("config.process", "oomScoreAdj unset: oom_score_adj not changed", "MUST", &["config.process.oom-score-adj"]),
    req("config.process", "capabilities: the five sets are applied", "MUST", &["config.process.capabilities", "config.process.capabilities-ambient"]),
    req("config.process", "capabilities that cannot be granted: warn, do not fail", "SHOULD", &["config.process.capabilities-ungrantable"]),
    req("config.hostname", "hostname is set in the container", "MUST", &["config.hostname"]),
    req("config.domainname", "domainname is set in the container", "MUST", &["config.domainname"]),
    req("config.hostname", "hostname without a new UTS namespace errors", "runc", &["errors.hostname-without-uts"]),
    req("config.hooks", "hooks of a phase run in the listed order", "MUST", &[HOOKS]),
    req("config.hooks", "hooks get the container state on stdin", "MUST", &[HOOKS]),
    req("config.hooks", "prestart runs during create, before createRuntime", "MUST", &[HOOKS]),
    req("config.hooks", "createRuntime runs during create", "MUST", &[HOOKS]),
    req("config.hooks", "createContainer runs after createRuntime, during create", "MUST", &[HOOKS]),
    req("config.hooks", "startContainer runs at start, before the user process, in the container", "MUST", &[HOOKS]),
    req("config.hooks", "poststart runs after the process started, before start returns", "MUST", &[HOOKS]),
    req("config.hooks", "poststop runs after delete, before delete returns", "MUST", &[HOOKS]),
    req("config.hooks", "a hook past its timeout is killed, create fails", "MUST", &["config.hooks.timeout"]),
    // config-linux.md
    req("config-linux.namespaces", "new pid namespace", "MUST", &["config-linux.namespaces.new-pid"]),
    req("config-linux.namespaces", "new network namespace", "MUST", &["config-linux.namespaces.new-network"]),
    req("config-linux.namespaces", "new ipc namespace", "MUST", &["config-linux.namespaces.new-ipc"]),
    req("config-linux.namespaces", "new uts namespace", "MUST", &["config-linux.namespaces.new-uts"]),
    req("config-linux.namespaces", "new mount namespace", "MUST", &["config-linux.namespaces.new-mount"]),
    req("config-linux.namespaces", "new cgroup namespace", "MUST", &["config-linux.namespaces.new-cgroup"]),
    req("config-linux.namespaces", "new user namespace", "MUST", &["config-linux.user-namespace.mappings"]),
    req("config-linux.namespaces", "new time namespace", "MUST", &["config-linux.namespaces.new-time"]),
    req("config-linux.namespaces", "type not listed: runtime's namespace inherited", "MUST", &["config-linux.namespaces.inherit"]),
    req("config-linux.namespaces", "path given: the process joins that namespace", "MUST", &["config-linux.namespaces.join-by-path"]),
    req("config-linux.namespaces", "path of another namespace type errors", "MUST", &["errors.namespace-path-wrong-type"]),
    req("config-linux.namespaces", "duplicated namespace type errors", "MUST", &["errors.duplicate-namespace"]),
    req("config-linux.namespaces", "unknown namespace type errors", "MUST", &["errors.unknown-namespace"]),
    req("config-linux.user-namespace", "uid/gid mappings are written", "MUST", &["config-linux.user-namespace.mappings"]),
    req("config-linux.user-namespace", "mappings without a user namespace error", "rrun", &["errors.uidmap-without-userns"]),
    req("config-linux.devices", "linux.devices entry: type, major/minor, mode, uid, gid", "MUST", &["config-linux.devices.entry"]),
    req("config-linux.devices", "an existing file at a device path that differs errors", "MUST", &["errors.device-path-mismatch"]),
    req("config-linux.default-devices", "null zero full random urandom tty", "MUST", &["config-linux.devices.defaults"]),
    req("config-linux.default-devices", "/dev/console is the pty when terminal is set", "MUST", &["config.process.terminal"]),
    req("config-linux.default-devices", "/dev/ptmx points at /dev/pts/ptmx", "MUST", &["config-linux.devices.defaults"]),
    req("config-linux.dev-symlinks", "/dev/fd, stdin, stdout, stderr symlinks", "MUST", &["config-linux.devices.defaults"]),
    req("config-linux.default-filesystems", "/proc /sys /dev/pts /dev/shm are mounted", "SHOULD", &["config-linux.default-filesystems"]),
    req("config-linux.cgroups", "the container is attached to the absolute cgroupsPath", "MUST", &["config-linux.cgroups.resources"]),
    req("config-linux.cgroups", "memory limit and pids limit applied", "MUST", &["config-linux.cgroups.resources"]),
    req("config-linux.sysctl", "sysctl values are set in the container", "MUST", &["config-linux.sysctl"]),
    req("config-linux.rootfs-propagation", "rootfsPropagation sets the rootfs propagation", "MUST", &["config-linux.rootfs-propagation"]),
    req("config-linux.masked-paths", "masked paths cannot be read", "MUST", &["config-linux.masked-paths"]),
    req("config-linux.readonly-paths", "readonly paths are read-only", "MUST", &["config-linux.readonly-paths"]),
    req("config-linux.mount-label", "mountLabel (SELinux) applied", "MUST", &["config-linux.mount-label"]),
];
