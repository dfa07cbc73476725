//! config-linux.md "Seccomp": every action, every op, defaultAction and
//! defaultErrnoRet, architectures, flags, noNewPrivileges both ways, NOTIFY
//! with a test agent, and the profiles `create` must refuse.
//!
//! Most cases are rows of [`table`]: a profile, then the containers to run
//! under it, each running `/checker syscall ...` (raw calls, one JSON result
//! line each) and the exit status and results it must give. The filtered
//! call is `getpriority(0, 0, a2, a3, ...)` (x86_64 nr 140): it succeeds
//! unfiltered whatever its unused arguments 2..5 are, so rules test those,
//! and a filtered call fails with errno [`MARK`], which no kernel returns.

use crate::cases::errors::broken;
use crate::cases::Case;
use crate::ensure;
use crate::harness::{ctx, host, truncate, Bundle, CaseResult, Env, Outcome};
use libcontainer::seccomp::notify::{self, Answer};
use serde_json::{json, Value};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The errnoRet of the profiles' rules: no kernel call fails with it.
const MARK: i64 = 1234;
/// The profiles' defaultErrnoRet, told apart from [`MARK`].
const DEFAULT_MARK: i64 = 1235;
const EPERM: i64 = libc::EPERM as i64;
const ENOSYS: i64 = libc::ENOSYS as i64;
/// A foreground `run` whose process died of SIGSYS exits 128 + 31.
const SIGSYS_EXIT: i32 = 128 + libc::SIGSYS;
/// si_code of a SIGSYS sent by seccomp (SCMP_ACT_TRAP).
const SYS_SECCOMP: i64 = 1;
const PREFIX: &str = "config-linux.seccomp.";

/// What one checker call must report.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// The call succeeded (the filter let it through).
    Ok,
    /// It succeeded with this return value (a NOTIFY agent's answer).
    Value(i64),
    /// It failed with this errno.
    Errno(i64),
    /// SIGSYS with si_code SYS_SECCOMP reached the handler (TRAP).
    Trapped,
    /// The calling thread died, the process lived on (KILL_THREAD).
    ThreadKilled,
}

/// One container under the profile.
struct Run {
    /// The checker's `syscall` arguments (see rrun-checker.rs).
    calls: &'static str,
    /// The exit status of `run`: 0, or [`SIGSYS_EXIT`].
    exit: i32,
    /// One result line per call made before the process ended.
    want: &'static [Want],
}

const fn run(calls: &'static str, exit: i32, want: &'static [Want]) -> Run {
    Run { calls, exit, want }
}

enum Expect {
    Runs(Vec<Run>),
    /// `create` fails with a message and leaves nothing behind.
    Refused,
}

struct ProfileCase {
    name: &'static str,
    profile: Value,
    no_new_privileges: bool,
    expect: Expect,
}

fn row(name: &'static str, profile: Value, expect: Expect) -> ProfileCase {
    ProfileCase {
        name,
        profile,
        no_new_privileges: true,
        expect,
    }
}

use Want::{Errno, Ok as Okay, ThreadKilled, Trapped, Value as Val};

/// getpriority gets the rule's errno, then getppid (110) still works.
fn filtered_then_other() -> Expect {
    Expect::Runs(vec![run("140 0 0 -- 110", 0, &[Errno(MARK), Okay])])
}

/// getppid works, then getpriority kills the process; from a second
/// thread it kills only that thread (`thread_only`) or the process.
fn killed_at_second_call(thread_only: bool) -> Expect {
    let from_thread = if thread_only {
        run("thread:140 0 0 -- 110", 0, &[ThreadKilled, Okay])
    } else {
        run("thread:140 0 0 -- 110", SIGSYS_EXIT, &[])
    };
    Expect::Runs(vec![
        run("110 -- 140 0 0", SIGSYS_EXIT, &[Okay]),
        from_thread,
    ])
}

#[rustfmt::skip]
fn table() -> Vec<ProfileCase> {
    vec![
        // actions
        row("action-kill", allow_but(rule("SCMP_ACT_KILL")), killed_at_second_call(true)),
        row("action-kill-thread", allow_but(rule("SCMP_ACT_KILL_THREAD")), killed_at_second_call(true)),
        row("action-kill-process", allow_but(rule("SCMP_ACT_KILL_PROCESS")), killed_at_second_call(false)),
        row("action-trap", allow_but(rule("SCMP_ACT_TRAP")), Expect::Runs(vec![
            run("110 -- 140 0 0", SIGSYS_EXIT, &[Okay]),
            run("catch-sigsys 110 -- 140 0 0 -- 110", 0, &[Okay, Trapped, Okay]),
        ])),
        row("action-errno", allow_but(errno_rule(json!([]))), filtered_then_other()),
        row("action-errno-default-eperm", allow_but(rule("SCMP_ACT_ERRNO")), Expect::Runs(vec![run("140 0 0", 0, &[Errno(EPERM)])])),
        row("action-trace-no-tracer", allow_but(rule("SCMP_ACT_TRACE")), Expect::Runs(vec![run("140 0 0 -- 110", 0, &[Errno(ENOSYS), Okay])])),
        row("action-allow", deny_but_getpriority(DEFAULT_MARK, json!([{
            "names": ["getpriority"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 2, "op": "SCMP_CMP_EQ", "value": 1}],
        }])), Expect::Runs(vec![run("140 0 0 1 -- 140 0 0 0", 0, &[Okay, Errno(DEFAULT_MARK)])])),
        row("action-log", allow_but(rule("SCMP_ACT_LOG")), Expect::Runs(vec![run("140 0 0", 0, &[Okay])])),
        // defaultAction and defaultErrnoRet
        row("default-errno-ret", deny_but_getpriority(DEFAULT_MARK, json!([])),
            Expect::Runs(vec![run("140 0 0 -- 110", 0, &[Errno(DEFAULT_MARK), Okay])])),
        row("default-errno-eperm", deny_but_getpriority(0, json!([])),
            Expect::Runs(vec![run("140 0 0 -- 110", 0, &[Errno(EPERM), Okay])])),
        // ops, on argument 2 (values above 2^32 test the high word)
        row("op-ne", on_arg2("SCMP_CMP_NE", 5, 0), Expect::Runs(vec![
            run("140 0 0 4 -- 140 0 0 5 -- 140 0 0 0x100000005", 0, &[Errno(MARK), Okay, Errno(MARK)]),
        ])),
        row("op-lt", on_arg2("SCMP_CMP_LT", 10, 0), Expect::Runs(vec![
            run("140 0 0 9 -- 140 0 0 0 -- 140 0 0 10 -- 140 0 0 11 -- 140 0 0 0x100000009", 0,
                &[Errno(MARK), Errno(MARK), Okay, Okay, Okay]),
        ])),
        row("op-le", on_arg2("SCMP_CMP_LE", 10, 0), Expect::Runs(vec![
            run("140 0 0 10 -- 140 0 0 0 -- 140 0 0 11 -- 140 0 0 0x10000000a", 0,
                &[Errno(MARK), Errno(MARK), Okay, Okay]),
        ])),
        row("op-eq", on_arg2("SCMP_CMP_EQ", 10, 0), Expect::Runs(vec![
            run("140 0 0 10 -- 140 0 0 11 -- 140 0 0 0x10000000a", 0, &[Errno(MARK), Okay, Okay]),
        ])),
        row("op-ge", on_arg2("SCMP_CMP_GE", 10, 0), Expect::Runs(vec![
            run("140 0 0 10 -- 140 0 0 0x100000000 -- 140 0 0 0xffffffffffffffff -- 140 0 0 9", 0,
                &[Errno(MARK), Errno(MARK), Errno(MARK), Okay]),
        ])),
        row("op-gt", on_arg2("SCMP_CMP_GT", 10, 0), Expect::Runs(vec![
            run("140 0 0 11 -- 140 0 0 0x100000000 -- 140 0 0 10 -- 140 0 0 0", 0,
                &[Errno(MARK), Errno(MARK), Okay, Okay]),
        ])),
        row("op-masked-eq", on_arg2("SCMP_CMP_MASKED_EQ", 0xf0, 0x20), Expect::Runs(vec![
            run("140 0 0 0x2f -- 140 0 0 0x120 -- 140 0 0 0x20 -- 140 0 0 0x3f -- 140 0 0 0x10", 0,
                &[Errno(MARK), Errno(MARK), Errno(MARK), Okay, Okay]),
        ])),
        row("args-anded", allow_but(errno_rule(json!([
            {"index": 2, "op": "SCMP_CMP_EQ", "value": 5},
            {"index": 3, "op": "SCMP_CMP_EQ", "value": 6},
        ]))), Expect::Runs(vec![
            run("140 0 0 5 6 -- 140 0 0 5 7 -- 140 0 0 4 6", 0, &[Errno(MARK), Okay, Okay]),
        ])),
        // architectures: Docker's list; getpriority is 140 on x86_64, 96 on
        // x86 (int 0x80), 0x4000008c on x32; x86 getppid (64) still works.
        row("architectures-x86-family", with(allow_but(errno_rule(json!([]))), "architectures",
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])), Expect::Runs(vec![
            run("140 0 0 -- i386:96 0 0 -- i386:64 -- 0x4000008c 0 0", 0,
                &[Errno(MARK), Errno(MARK), Okay, Errno(MARK)]),
        ])),
        // flags
        row("flag-tsync", with_flag("SECCOMP_FILTER_FLAG_TSYNC"), filtered_then_other()),
        row("flag-log", with_flag("SECCOMP_FILTER_FLAG_LOG"), filtered_then_other()),
        row("flag-spec-allow", with_flag("SECCOMP_FILTER_FLAG_SPEC_ALLOW"), filtered_then_other()),
        // names
        row("unknown-syscall-skipped", allow_but(json!({
            "names": ["rrun_no_such_syscall", "getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK,
        })), filtered_then_other()),
        // noNewPrivileges both ways: the filter is in place either way
        ProfileCase {
            no_new_privileges: false,
            ..row("no-new-privileges-false", allow_but(errno_rule(json!([]))), filtered_then_other())
        },
        row("no-new-privileges-true", allow_but(errno_rule(json!([]))), filtered_then_other()),
        // refused profiles
        row("unknown-action", allow_but(rule("SCMP_ACT_RRUN_BOGUS")), Expect::Refused),
        row("unknown-default-action", profile("SCMP_ACT_RRUN_BOGUS", json!([])), Expect::Refused),
        row("unknown-op", on_arg2("SCMP_CMP_RRUN_BOGUS", 1, 0), Expect::Refused),
        row("unknown-arch", with(allow_but(errno_rule(json!([]))), "architectures",
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_RRUN_BOGUS"])), Expect::Refused),
        row("unknown-flag", with_flag("SECCOMP_FILTER_FLAG_RRUN_BOGUS"), Expect::Refused),
        row("errno-ret-on-log", allow_but(json!({
            "names": ["getpriority"], "action": "SCMP_ACT_LOG", "errnoRet": MARK,
        })), Expect::Refused),
        row("default-errno-ret-on-allow", with(allow_but(errno_rule(json!([]))), "defaultErrnoRet", json!(MARK)),
            Expect::Refused),
        row("notify-no-listener", with(allow_but(rule("SCMP_ACT_NOTIFY")), "listenerPath",
            json!("/tmp/rrun-conformance-nobody-listens.sock")), Expect::Refused),
    ]
}

// ------------------------------------------------------------ profiles

fn profile(default: &str, syscalls: Value) -> Value {
    json!({"defaultAction": default, "syscalls": syscalls})
}

/// `key: value` added to a profile.
fn with(mut profile: Value, key: &str, value: Value) -> Value {
    profile[key] = value;
    profile
}

/// getpriority gets `action`, unconditionally.
fn rule(action: &str) -> Value {
    json!({"names": ["getpriority"], "action": action})
}

/// getpriority fails with [`MARK`] when `args` all hold.
fn errno_rule(args: Value) -> Value {
    json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK, "args": args})
}

/// Everything allowed but what `rule` says.
fn allow_but(rule: Value) -> Value {
    profile("SCMP_ACT_ALLOW", json!([rule]))
}

fn on_arg2(op: &str, value: u64, value_two: u64) -> Value {
    allow_but(errno_rule(json!([
        {"index": 2, "op": op, "value": value, "valueTwo": value_two}
    ])))
}

fn with_flag(flag: &str) -> Value {
    with(allow_but(errno_rule(json!([]))), "flags", json!([flag]))
}

/// defaultAction ERRNO (`errno_ret`, or no defaultErrnoRet when 0): every
/// x86_64 syscall but getpriority is allowed, then `more` rules.
fn deny_but_getpriority(errno_ret: i64, more: Value) -> Value {
    let names: Vec<&str> = libcontainer::seccomp::tables::X86_64
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "getpriority")
        .collect();
    let mut rules = vec![json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
    rules.extend(more.as_array().cloned().unwrap_or_default());
    let mut p = profile("SCMP_ACT_ERRNO", Value::Array(rules));
    if errno_ret != 0 {
        p["defaultErrnoRet"] = json!(errno_ret);
    }
    p
}

// -------------------------------------------------------- running a row

/// Every row of [`table`] as a case, named `config-linux.seccomp.<row>`.
pub fn cases() -> Vec<Case> {
    table()
        .into_iter()
        .map(|row| Case {
            name: leak(format!("{PREFIX}{}", row.name)),
            run: profile_case,
        })
        .collect()
}

/// Case names live as long as the runner (they are built once).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn profile_case(env: &Env) -> CaseResult {
    let name = env.case.strip_prefix(PREFIX).unwrap_or(env.case);
    let row = table()
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("no seccomp row {name}"))?;
    let row = for_this_host(env, row);
    match &row.expect {
        Expect::Refused => {
            valid_profile_runs(env)?;
            broken(env, |b| {
                b.config["linux"]["seccomp"] = row.profile.clone();
            })
        }
        Expect::Runs(runs) => {
            for (i, r) in runs.iter().enumerate() {
                run_one(env, &row, r, i)?;
            }
            Ok(Outcome::Pass)
        }
    }
}

/// Each seccomp(2) flag of the rows and the Linux release that added it.
const FLAGS_SINCE: &[(&str, (u32, u32))] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", (3, 17)),
    ("SECCOMP_FILTER_FLAG_LOG", (4, 14)),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", (4, 17)),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", (5, 19)),
];

/// The row as this host can run it: a flag the kernel predates must be
/// refused at create; without IA32 emulation (no `int 0x80` entry for a
/// 64-bit process) the x86 calls are left out of the architectures row.
fn for_this_host(env: &Env, mut row: ProfileCase) -> ProfileCase {
    let flags = row.profile["flags"].as_array().cloned().unwrap_or_default();
    for (flag, (major, minor)) in FLAGS_SINCE {
        if flags.iter().any(|f| f == flag) && !host::kernel_at_least(*major, *minor) {
            env.note(format!(
                "this kernel predates Linux {major}.{minor}: {flag} must be refused"
            ));
            row.expect = Expect::Refused;
        }
    }
    if row.name == "architectures-x86-family" && !ia32_entry_works() {
        env.note("no IA32 emulation on this kernel: the int 0x80 calls are left out".into());
        row.expect = Expect::Runs(vec![run(
            "140 0 0 -- 0x4000008c 0 0",
            0,
            &[Errno(MARK), Errno(MARK)],
        )]);
    }
    row
}

/// Whether this kernel takes a 64-bit process's `int 0x80` (the i386
/// entry, CONFIG_IA32_EMULATION and not ia32_emulation=0): tried in a
/// forked child, which a kernel without it kills (SIGSEGV).
fn ia32_entry_works() -> bool {
    // SAFETY: the child makes one raw syscall and leaves with _exit; it
    // touches nothing the runner's other threads may hold.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ret: i32;
        // SAFETY: getpid (20 on i386) takes no arguments and touches no
        // memory; the int 0x80 path clobbers r8-r11, declared here.
        unsafe {
            std::arch::asm!(
                "int 0x80",
                inlateout("eax") 20 => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack),
            );
        }
        // SAFETY: ends the forked child without the runner's atexit handlers.
        unsafe { libc::_exit(i32::from(ret <= 0)) };
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// The control of a refused profile: a valid one runs, so a runtime that
/// refuses every seccomp profile cannot pass the refusal cases.
fn valid_profile_runs(env: &Env) -> Result<(), String> {
    let control = row(
        "control",
        allow_but(errno_rule(json!([]))),
        Expect::Runs(Vec::new()),
    );
    run_one(env, &control, &run("140 0 0", 0, &[Errno(MARK)]), 0)
        .map_err(|e| format!("control (a valid profile): {e}"))
}

fn run_one(env: &Env, row: &ProfileCase, r: &Run, index: usize) -> Result<(), String> {
    let id = env.id(&format!("r{index}"));
    let mut b = env.bundle(&id)?;
    b.config["linux"]["seccomp"] = row.profile.clone();
    b.config["process"]["noNewPrivileges"] = json!(row.no_new_privileges);
    let mut args = vec!["/checker", "syscall"];
    args.extend(r.calls.split_whitespace());
    b.set_args(&args);
    b.write()?;
    let out = env.run(&b, &id);
    let what = format!("`syscall {}`", r.calls);
    ensure!(
        out.code == r.exit,
        "{what}: run exited {} (want {}): {} stdout {:?}",
        out.code,
        r.exit,
        out.summary(),
        truncate(&out.stdout, 300)
    );
    let (results, status) = parse_lines(&out.stdout)?;
    ensure!(
        results.len() == r.want.len(),
        "{what}: {} result lines {results:?}, want {:?}",
        results.len(),
        r.want
    );
    for (got, want) in results.iter().zip(r.want) {
        ensure!(
            matches(got, *want),
            "{what}: got {got}, want {want:?} (all: {results:?})"
        );
    }
    if r.exit == 0 {
        check_status(&what, status, row.no_new_privileges)?;
    }
    Ok(())
}

/// The call result lines and the final status line of `syscall`.
fn parse_lines(stdout: &str) -> Result<(Vec<Value>, Option<Value>), String> {
    let mut results = Vec::new();
    let mut status = None;
    for line in stdout.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Value = ctx(serde_json::from_str(line.trim()), "parse checker line")?;
        if v.get("seccomp").is_some() {
            status = Some(v);
        } else {
            results.push(v);
        }
    }
    Ok((results, status))
}

fn matches(got: &Value, want: Want) -> bool {
    let errno = got["errno"].as_i64();
    let ret = got["ret"].as_i64();
    // With catch-sigsys, only a trapped call may have seen SIGSYS.
    let no_sigsys = got["sigsys"].as_i64().unwrap_or(0) == 0;
    match want {
        Want::Ok => errno == Some(0) && ret.is_some_and(|r| r >= 0) && no_sigsys,
        Want::Value(v) => errno == Some(0) && ret == Some(v) && no_sigsys,
        Want::Errno(e) => errno == Some(e) && ret == Some(-1) && no_sigsys,
        Want::Trapped => got["sigsys"].as_i64() == Some(SYS_SECCOMP),
        Want::ThreadKilled => got["thread_killed"] == true,
    }
}

/// The filter is in place (Seccomp 2, one filter) and NoNewPrivs is the config's.
fn check_status(what: &str, status: Option<Value>, nnp: bool) -> Result<(), String> {
    let s = status.ok_or_else(|| format!("{what}: no status line"))?;
    let want_nnp = if nnp { "1" } else { "0" };
    ensure!(
        s["seccomp"] == "2" && s["seccomp_filters"] == "1" && s["no_new_privs"] == want_nnp,
        "{what}: /proc/self/status {s}, want Seccomp 2, Seccomp_filters 1, NoNewPrivs {want_nnp}"
    );
    Ok(())
}

// --------------------------------------------------------------- NOTIFY

const METADATA: &str = "rrun-conformance agent metadata";
/// Bound on waiting for the runtime's connection and state (never a timing
/// assertion: only keeps a broken runtime from hanging the suite).
const AGENT_WAIT: Duration = Duration::from_secs(20);
/// Bound on waiting for the runtime to close the agent connection.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// SCMP_ACT_NOTIFY end to end: the runner is the agent at listenerPath.
pub fn notify(env: &Env) -> CaseResult {
    notify_with(env, json!([]), true)
}

/// The same without noNewPrivileges (the filter is loaded while privileged).
pub fn notify_without_nnp(env: &Env) -> CaseResult {
    notify_with(env, json!([]), false)
}

/// The same with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (kernel 5.19+); a
/// kernel before it must make create refuse the flag, naming it.
pub fn notify_wait_killable(env: &Env) -> CaseResult {
    let flag = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";
    if !host::kernel_at_least(5, 19) {
        env.note(format!(
            "this kernel predates Linux 5.19: {flag} must be refused"
        ));
        let id = env.id("c");
        let (b, _states) = notify_bundle(env, &id, json!([flag]), true)?;
        b.write()?;
        let out = env.cli(&["create", "--bundle", &b.dir_str(), &id]);
        ensure!(
            out.code != 0,
            "create with {flag} succeeded on a kernel without it"
        );
        ensure!(
            out.error_text().contains(flag),
            "the refusal does not name {flag}: {}",
            out.summary()
        );
        super::errors::nothing_left(env, &b, &id)?;
        return Ok(Outcome::Pass);
    }
    notify_with(env, json!([flag]), true)
}

/// A bundle whose profile sends getpriority to an agent the runner runs
/// at listenerPath; the agent's reports come on the receiver.
fn notify_bundle(
    env: &Env,
    id: &str,
    flags: Value,
    no_new_privileges: bool,
) -> Result<(Bundle, mpsc::Receiver<AgentReport>), String> {
    let mut b = env.bundle(id)?;
    b.config["process"]["noNewPrivileges"] = json!(no_new_privileges);
    let sock = env.work.join("agent.sock");
    let listener = ctx(UnixListener::bind(&sock), "bind the agent socket")?;
    let states = spawn_agent(listener)?;
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.display().to_string(),
        "listenerMetadata": METADATA,
        "flags": flags,
        "syscalls": [rule("SCMP_ACT_NOTIFY")],
    });
    Ok((b, states))
}

fn notify_with(env: &Env, flags: Value, no_new_privileges: bool) -> CaseResult {
    let id = env.id("c");
    let (mut b, states) = notify_bundle(env, &id, flags, no_new_privileges)?;
    // The agent answers by argument 2 (see `agent_answer`).
    b.set_args(&[
        "/checker", "syscall", "140", "0", "0", "42", "--", "140", "0", "0", "7", "--", "140", "0",
        "0", "0", "--", "110",
    ]);
    b.write()?;
    let out = env.run(&b, &id);
    ensure!(out.code == 0, "run: {}", out.summary());
    let (state, unclosed) = states
        .recv_timeout(AGENT_WAIT)
        .map_err(|_| "the agent got no connection from the runtime".to_string())??;
    if let Some(why) = &unclosed {
        env.note(format!("agent connection: {why}"));
    }
    env.check("connection-closed", unclosed);
    check_process_state(env, &state, &id)?;
    let (results, _) = parse_lines(&out.stdout)?;
    let want = [Val(42), Errno(MARK), Okay, Okay];
    ensure!(
        results.len() == want.len() && results.iter().zip(want).all(|(g, w)| matches(g, w)),
        "results {results:?}, want {want:?} (the agent's answers, then unfiltered calls)"
    );
    Ok(Outcome::Pass)
}

/// 42 → return 42; 7 → fail with [`MARK`]; anything else runs unfiltered.
fn agent_answer(n: &libc::seccomp_notif) -> Answer {
    match n.data.args[2] {
        42 => Answer::Value(42),
        7 => Answer::Errno(MARK as i32),
        _ => Answer::Continue,
    }
}

/// The container process state, and why the connection was not closed
/// after it (None: closed).
type AgentReport = Result<(Value, Option<String>), String>;

/// Accepts one connection (bounded wait), reads the container process
/// state, waits (bounded) for the runtime to close the connection, reports
/// both, then answers notifications until the container is gone.
fn spawn_agent(listener: UnixListener) -> Result<mpsc::Receiver<AgentReport>, String> {
    ctx(listener.set_nonblocking(true), "agent socket nonblocking")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let received = accept_bounded(&listener).and_then(|mut conn| {
            ctx(conn.set_nonblocking(false), "agent connection blocking")?;
            let received = ctx(notify::receive_from_runtime(&mut conn), "agent receive")?;
            Ok((received, not_closed(&mut conn)))
        });
        match received {
            Err(e) => {
                let _ = tx.send(Err(e));
            }
            Ok((r, unclosed)) => {
                let state = serde_json::to_value(&r.state).unwrap_or(Value::Null);
                let _ = tx.send(Ok((state, unclosed)));
                // Ends when the container's last process is gone.
                let _ = notify::serve(r.notify_fd.as_fd(), agent_answer);
            }
        }
    });
    Ok(rx)
}

/// "The connection MUST NOT be reused and it MUST be closed after sending a
/// seccomp state": EOF must follow the state. The container is blocked on
/// its first notification meanwhile, so nothing of the runtime's waits for us.
fn not_closed(conn: &mut UnixStream) -> Option<String> {
    use std::io::Read;
    if let Err(e) = conn.set_read_timeout(Some(CLOSE_WAIT)) {
        return Some(format!("set_read_timeout: {e}"));
    }
    let mut byte = [0u8; 1];
    match conn.read(&mut byte) {
        Ok(0) => None,
        Ok(_) => Some("more bytes after the container process state".into()),
        Err(e) => Some(format!(
            "still open {}s after the container process state ({e})",
            CLOSE_WAIT.as_secs()
        )),
    }
}

fn accept_bounded(listener: &UnixListener) -> Result<UnixStream, String> {
    let deadline = Instant::now() + AGENT_WAIT;
    loop {
        match listener.accept() {
            Ok((conn, _)) => return Ok(conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("agent accept: {e}")),
        }
    }
}

/// config-linux.md "The Container Process State".
fn check_process_state(env: &Env, s: &Value, id: &str) -> Result<(), String> {
    env.note(format!(
        "container process state: ociVersion {}, pid {}, state.status {}, state.pid {}",
        s["ociVersion"], s["pid"], s["state"]["status"], s["state"]["pid"]
    ));
    ensure!(
        s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "process state ociVersion {}",
        s["ociVersion"]
    );
    ensure!(
        s["fds"] == json!(["seccompFd"]),
        "process state fds {}",
        s["fds"]
    );
    ensure!(
        s["pid"].as_i64().is_some_and(|p| p > 0),
        "process state pid {}",
        s["pid"]
    );
    ensure!(
        s["metadata"] == METADATA,
        "process state metadata {}",
        s["metadata"]
    );
    ensure!(
        s["state"]["id"] == id,
        "process state state.id {}",
        s["state"]["id"]
    );
    ensure!(
        s["state"]["ociVersion"].is_string() && s["state"]["status"].is_string(),
        "process state state {} lacks ociVersion/status",
        s["state"]
    );
    Ok(())
}
