//! Docker's default seccomp profile, as dockerd 20.10 writes it into
//! `fixtures/docker-config.json`, end to end: a probe (tests/probes/syscalls.c)
//! makes a fixed list of raw syscalls inside the container and prints one
//! line per call. Under `runc run` and `rrun run` the lines must be equal,
//! and each must be what the profile says: allowed calls succeed (or give
//! the kernel's own answer), the others fail with EPERM (clone3: ENOSYS).
//!
//! A third run, under runc without `linux.seccomp`, shows the kernel's own
//! answers: for most blocked calls the probe's arguments make the kernel
//! answer something other than EPERM (a missing path, an invalid flag), so
//! an EPERM there proves the filter gave it, and an allowed call must give
//! exactly what the kernel gives.
//!
//! The probe is built twice: x86_64 (`syscall`) and i386 (`gcc -m32`,
//! `int $0x80`), which goes through the SCMP_ARCH_X86 branch of the profile
//! (socketcall(2) as well as socket(2)). The profile's third architecture,
//! x32, cannot be run: this kernel has no CONFIG_X86_X32_ABI.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const RRUN: &str = env!("CARGO_BIN_EXE_rrun");
const PROBE_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probes/syscalls.c");

/// What the Docker 20.10 profile does with one probe case.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Allowed, and the call succeeds (under the profile and without it).
    Succeeds,
    /// Allowed; the kernel's own answer, whatever it is, comes through.
    KernelAnswers,
    /// Not allowed: fails with this errno. `kernel_differs`: without the
    /// profile the kernel gives another answer for the probe's arguments on
    /// any kernel this runs on (false where the missing capability gives
    /// EPERM anyway, or where the answer depends on the kernel's config).
    Blocked {
        errno: &'static str,
        kernel_differs: bool,
    },
}

use Expect::*;

const fn blocked(kernel_differs: bool) -> Expect {
    Blocked {
        errno: "EPERM",
        kernel_differs,
    }
}

/// Every case both probes print, in their order.
const COMMON_CASES: &[(&str, Expect)] = &[
    ("getpid", Succeeds),
    ("getcwd", Succeeds),
    ("uname", Succeeds),
    ("socket_inet", Succeeds),
    ("socket_unix", Succeeds),
    // Docker 20.10's profile allows socket() for every family (later
    // versions refuse AF_VSOCK): whatever the kernel says about AF_VSOCK
    // (a socket where vsock is built in, EAFNOSUPPORT where not) is the
    // answer, under runc as under rrun.
    ("socket_vsock", KernelAnswers),
];

const SOCKETCALL_CASES: &[(&str, Expect)] = &[
    ("socketcall_inet", Succeeds),
    ("socketcall_unix", Succeeds),
    // As socket_vsock: the profile allows socketcall whatever the family.
    ("socketcall_vsock", KernelAnswers),
];

const PROCESS_CASES: &[(&str, Expect)] = &[
    ("munmap", Succeeds),
    ("fork", Succeeds),
    ("clone", Succeeds),
    // Without CAP_SYS_ADMIN the kernel refuses a new mount namespace too.
    ("clone_newns", blocked(false)),
    ("clone_newuser", blocked(true)),
    // The kernel says EINVAL for no clone_args; the profile says ENOSYS so
    // that glibc falls back to clone(2).
    (
        "clone3",
        Blocked {
            errno: "ENOSYS",
            kernel_differs: true,
        },
    ),
    ("unshare_newns", blocked(false)),
    ("unshare_newuser", blocked(true)),
    ("setns", blocked(true)),
    ("personality_0", Succeeds),
    ("personality_query", Succeeds),
    ("personality_linux32", Succeeds),
    ("personality_ffff", blocked(true)),
];

const PRIVILEGED_CASES: &[(&str, Expect)] = &[
    ("mount", blocked(true)),
    ("umount2", blocked(true)),
    ("open_tree", blocked(true)),
    // Allowed with CAP_SYS_CHROOT (which Docker gives): ENOENT for the
    // probe's missing directory.
    ("chroot", KernelAnswers),
    ("keyctl", blocked(true)),
    ("add_key", blocked(true)),
    ("request_key", blocked(true)),
    // Allowed on kernels >= 4.8: ESRCH, the probe is not traced.
    ("ptrace", KernelAnswers),
    ("bpf", blocked(false)),
    ("perf_event_open", blocked(false)),
    ("kexec_load", blocked(false)),
    ("open_by_handle_at", blocked(false)),
    ("name_to_handle_at", blocked(true)),
    ("swapon", blocked(false)),
    ("acct", blocked(false)),
    ("userfaultfd", blocked(false)),
    ("get_mempolicy", blocked(true)),
    ("process_vm_readv", blocked(true)),
    ("iopl", blocked(false)),
    ("arch_prctl", KernelAnswers),
];

/// A 64-bit kernel has no vm86: ENOSYS from the kernel, EPERM from the
/// profile.
const I386_ONLY_CASES: &[(&str, Expect)] = &[("vm86old", blocked(true)), ("vm86", blocked(true))];

fn cases_x86_64() -> Vec<(&'static str, Expect)> {
    [
        COMMON_CASES,
        &[("mmap", Succeeds)],
        PROCESS_CASES,
        PRIVILEGED_CASES,
    ]
    .concat()
}

fn cases_i386() -> Vec<(&'static str, Expect)> {
    [
        COMMON_CASES,
        SOCKETCALL_CASES,
        &[("mmap2", Succeeds)],
        PROCESS_CASES,
        PRIVILEGED_CASES,
        I386_ONLY_CASES,
    ]
    .concat()
}

/// A bundle with a busybox rootfs, the probe at /bin/probe, and state
/// roots for runc and rrun; on drop every container left is force-deleted
/// and the directory removed.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
    runc_root: PathBuf,
    cgroup_prefix: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("rrun-sc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir, &["sh", "cat"], &[]);
        Bundle {
            root: dir.join("state"),
            runc_root: dir.join("runc-state"),
            cgroup_prefix: format!("/rrun-sc-{name}-{}", std::process::id()),
            dir,
        }
    }

    fn probe_path(&self) -> PathBuf {
        self.dir.join("rootfs/bin/probe")
    }

    /// The fixture with its seccomp profile kept; only what points at
    /// dockerd's paths is made the test's own: root, the bind-mounted
    /// /etc files, cgroupsPath (absolute, per run), and args.
    fn probe_config(&self, cgroup: &str) -> Value {
        let mut config = docker_config_for_this_host(&self.dir, cgroup);
        assert!(
            config["linux"]["seccomp"]["syscalls"].is_array(),
            "the fixture lost its seccomp profile"
        );
        config["process"]["args"] = json!(["/bin/probe"]);
        config
    }

    /// `<tool> run` of `config` as container `id`; panics with the
    /// runtime's stderr unless the probe ran to its end. Returns its lines.
    fn run(&self, tool: &str, id: &str, config: &Value) -> Vec<String> {
        std::fs::write(self.dir.join("config.json"), config.to_string()).unwrap();
        let root = if tool == "runc" {
            &self.runc_root
        } else {
            &self.root
        };
        let mut cmd = Command::new(tool);
        cmd.arg("--root")
            .arg(root)
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(id);
        let out = output_via_files(cmd, &self.dir);
        assert!(
            out.status.success(),
            "{tool} run {id}: {}{}",
            stderr(&out),
            stdout(&out)
        );
        let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("done"),
            "{tool} run {id}: the probe did not finish: {}",
            stderr(&out)
        );
        assert_no_cgroup(config["linux"]["cgroupsPath"].as_str().unwrap(), tool);
        lines
    }

    /// Run the probe under runc without the profile, under runc with it,
    /// then under rrun with it, and check all three. Without runc, the
    /// kernel's answers come from rrun without the profile, and rrun's
    /// lines are checked against the profile only.
    fn check_probe(&self, arch: &str, cases: &[(&str, Expect)]) {
        let runc = host::binary("runc").is_some();
        let unconfined_config = {
            let mut c = self.probe_config(&format!("{}-none", self.cgroup_prefix));
            c["linux"].as_object_mut().unwrap().remove("seccomp");
            c
        };
        let (oracle, oracle_name) = if runc {
            ("runc", "runc without seccomp")
        } else {
            eprintln!(
                "runc is not installed: the kernel's answers come from rrun without seccomp, \
                 and rrun's lines are not compared with runc's (skipped)"
            );
            (RRUN, "rrun without seccomp")
        };
        let kernel_lines = self.run(oracle, "kernel", &unconfined_config);
        check_header(&kernel_lines, arch, "0", oracle_name);
        let kernel = results(&kernel_lines, cases, oracle_name);

        let runc_lines = if runc {
            let lines = self.run(
                "runc",
                "runc",
                &self.probe_config(&format!("{}-runc", self.cgroup_prefix)),
            );
            check_header(&lines, arch, "2", "runc");
            check_expectations(cases, &results(&lines, cases, "runc"), &kernel, "runc");
            lines
        } else {
            Vec::new()
        };

        let rrun_lines = self.run(
            RRUN,
            "rrun",
            &self.probe_config(&format!("{}-rrun", self.cgroup_prefix)),
        );
        print_side_by_side(&[
            ("no seccomp", &kernel_lines),
            ("runc", &runc_lines),
            ("rrun", &rrun_lines),
        ]);
        check_header(&rrun_lines, arch, "2", "rrun");
        if runc {
            assert_same_lines(&rrun_lines, &runc_lines);
        }
        check_expectations(cases, &results(&rrun_lines, cases, "rrun"), &kernel, "rrun");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        delete_every_container(RRUN, &self.root);
        delete_every_container("runc", &self.runc_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `gcc <flags> -static` can build a program at all here: gcc
/// and a static libc (libc6-dev), plus Debian's gcc-multilib for -m32.
/// A probe that fails to build where a trivial program builds is a
/// failure of the probe, never a skip.
fn toolchain_builds(dir: &Path, flags: &[&str]) -> bool {
    let source = dir.join("trivial.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    Command::new("gcc")
        .args(flags)
        .args(["-static", "-o"])
        .arg(dir.join("trivial"))
        .arg(&source)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `gcc <flags> -static -O1 -o <output> syscalls.c`; panics with gcc's
/// stderr and `hint`.
fn build_probe(output: &Path, flags: &[&str], hint: &str) {
    let out = Command::new("gcc")
        .args(flags)
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(output)
        .arg(PROBE_SOURCE)
        .output()
        .expect("gcc (apt-get install gcc libc6-dev)");
    assert!(
        out.status.success(),
        "gcc {flags:?} {PROBE_SOURCE} failed{hint}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Can this kernel run the probe? ENOEXEC from a kernel without IA32
/// emulation (CONFIG_IA32_EMULATION, or booted with ia32_emulation=0).
fn host_runs(probe: &Path) -> bool {
    match Command::new(probe).arg("--arch").output() {
        Ok(out) => out.status.success(),
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => false,
        Err(e) => panic!("{}: {e}", probe.display()),
    }
}

/// `arch <arch>`, `status NoNewPrivs 0` (Docker's default: NNP off, so
/// the filter is loaded by a privileged process, not through NNP),
/// `status Seccomp <mode>` (2: filter).
fn check_header(lines: &[String], arch: &str, seccomp_mode: &str, what: &str) {
    let want = [
        format!("arch {arch}"),
        "status NoNewPrivs 0".to_owned(),
        format!("status Seccomp {seccomp_mode}"),
    ];
    assert!(lines.len() >= 3, "{what}: {lines:?}");
    assert_eq!(&lines[..3], &want[..], "{what}");
}

/// The probe's answer for each case in `cases` (`ret errno`), in order;
/// panics on a missing, extra or unexpected line (a child killed by a
/// signal, a failed fork).
fn results(lines: &[String], cases: &[(&str, Expect)], what: &str) -> Vec<(String, String)> {
    let body = &lines[3..lines.len() - 1];
    let names: Vec<&str> = body
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    let want: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        want,
        "{what}: the probe's cases:\n{}",
        body.join("\n")
    );
    body.iter()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{what}: {line:?}");
            (fields[1].to_owned(), fields[2].to_owned())
        })
        .collect()
}

fn succeeded((ret, errno): &(String, String)) -> bool {
    ret != "-1" && errno == "-"
}

/// Each answer against the profile (`got`) and the kernel's own answer.
fn check_expectations(
    cases: &[(&str, Expect)],
    got: &[(String, String)],
    kernel: &[(String, String)],
    what: &str,
) {
    for (((name, expect), answer), kernel_answer) in cases.iter().zip(got).zip(kernel) {
        let shown = format!("{} {}", answer.0, answer.1);
        match expect {
            Succeeds => {
                assert!(succeeded(answer), "{what}: {name} should succeed: {shown}");
                assert_eq!(answer, kernel_answer, "{what}: {name} vs the kernel");
            }
            KernelAnswers => {
                assert_eq!(answer, kernel_answer, "{what}: {name} vs the kernel");
            }
            Blocked {
                errno,
                kernel_differs,
            } => {
                assert_eq!(
                    (answer.0.as_str(), answer.1.as_str()),
                    ("-1", *errno),
                    "{what}: {name} should fail with {errno}"
                );
                if *kernel_differs && !kernel_refuses_too(name) {
                    assert_ne!(
                        answer, kernel_answer,
                        "{name}: the kernel alone gives {errno} too: the case proves nothing"
                    );
                }
            }
        }
    }
}

/// Debian's kernel.unprivileged_userns_clone=0 makes the kernel itself
/// refuse a user namespace to a process without CAP_SYS_ADMIN with EPERM:
/// then the profile's EPERM is not told apart from the kernel's.
fn kernel_refuses_too(name: &str) -> bool {
    let refuses = name.ends_with("_newuser") && host::unprivileged_userns_blocked();
    if refuses {
        eprintln!(
            "{name}: kernel.unprivileged_userns_clone is 0 here, the kernel says EPERM too \
             (that the profile's answer differs is not checked)"
        );
    }
    refuses
}

/// The runs' lines in columns on stderr (seen with --nocapture, and
/// above a failure's message).
fn print_side_by_side(runs: &[(&str, &Vec<String>)]) {
    let header: Vec<String> = runs.iter().map(|(name, _)| format!("{name:<28}")).collect();
    eprintln!("{}", header.join(""));
    let rows = runs.iter().map(|(_, lines)| lines.len()).max().unwrap_or(0);
    for row in 0..rows {
        let cells: Vec<String> = runs
            .iter()
            .map(|(_, lines)| format!("{:<28}", lines.get(row).map_or("", String::as_str)))
            .collect();
        eprintln!("{}", cells.join(""));
    }
}

/// rrun's lines equal runc's, line for line; the message shows each
/// difference.
fn assert_same_lines(rrun: &[String], runc: &[String]) {
    let differences: Vec<String> = rrun
        .iter()
        .zip(runc)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| format!("rrun: {ours:<30} runc: {theirs}"))
        .collect();
    assert!(
        differences.is_empty() && rrun.len() == runc.len(),
        "rrun and runc differ ({} vs {} lines):\n{}",
        rrun.len(),
        runc.len(),
        differences.join("\n")
    );
}

#[test]
fn docker_profile_x86_64_same_answers_under_rrun_and_runc() {
    let b = Bundle::new("x86_64");
    if !toolchain_builds(&b.dir, &[]) {
        eprintln!(
            "SKIPPED: gcc cannot build a static program here (apt-get install gcc libc6-dev; \
             scripts/test.sh installs them)"
        );
        return;
    }
    build_probe(&b.probe_path(), &[], "");
    b.check_probe("x86_64", &cases_x86_64());
}

#[test]
fn docker_profile_i386_same_answers_under_rrun_and_runc() {
    let b = Bundle::new("i386");
    if !toolchain_builds(&b.dir, &["-m32"]) {
        eprintln!(
            "SKIPPED: gcc -m32 cannot build a static program here (apt-get install gcc-multilib; \
             scripts/test.sh installs it)"
        );
        return;
    }
    build_probe(
        &b.probe_path(),
        &["-m32"],
        " (32-bit needs Debian's gcc-multilib: apt-get install gcc-multilib; \
         scripts/test.sh installs it)",
    );
    if !host_runs(&b.probe_path()) {
        eprintln!("SKIPPED: this kernel cannot run 32-bit x86 binaries (no IA32 emulation)");
        return;
    }
    b.check_probe("i386", &cases_i386());
}
