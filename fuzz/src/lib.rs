//! The bodies of rrun's fuzz targets (one binary each in `src/bin/`, run by
//! AFL++ through cargo-afl: see `scripts/fuzz.sh`). Each takes the fuzzer's
//! bytes, feeds them to the library the way untrusted input reaches it,
//! and panics (a crash for AFL++) when an invariant breaks; a plain error
//! from the library is the expected answer to garbage.
//!
//! A crash reproduces without AFL++: `target/release/<target> < input`
//! (the `afl::fuzz!` loop reads one input from stdin when not under AFL).

use libcontainer::channel::{Channel, Message};
use libcontainer::rootfs::mounts::{parse_options, MountOptions};
use libcontainer::seccomp::bpf::{self, SeccompData};
use libcontainer::seccomp::{model, parse_profile, Arch, Filter, AUDIT_ARCH_X86_64};
use nix::sys::socket::{sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag};
use nix::sys::socket::{shutdown, Shutdown, SockType};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

/// Most bytes written into a socketpair at once: less than its buffer, so
/// that the writer never blocks with no reader.
const SOCKET_PAYLOAD_MAX: usize = 64 << 10;

/// The lowest free fd number, to catch fds received from untrusted input
/// and never closed: the first call records it, later calls must match.
pub fn assert_no_fd_leak() {
    static FIRST: OnceLock<RawFd> = OnceLock::new();
    let probe = std::fs::File::open("/dev/null").expect("open /dev/null");
    let n = probe.as_raw_fd();
    let first = *FIRST.get_or_init(|| n);
    assert_eq!(n, first, "an fd was left open (lowest free fd moved)");
}

/// `config`: `config.json` bytes → [`libcontainer::config::parse`] →
/// [`libcontainer::config::validate`] → the seccomp profile through
/// [`Filter::new`] (what `Config::from_spec` does without touching the
/// filesystem). A parsed spec must serialize and parse back to a spec that
/// validates the same way (the caller sends the spec to the bootstrap as
/// JSON).
pub fn config(data: &[u8]) {
    use libcontainer::config::{parse, validate};
    let path = Path::new("config.json");
    let Ok(spec) = parse(path, data) else {
        return;
    };
    // Verdicts, not messages: which of several bad sysctls (a map) an
    // error names may differ between two parses.
    let verdict = validate(&spec).is_ok();
    let json = serde_json::to_vec(&spec).expect("a parsed spec serializes");
    let again = parse(path, &json).expect("a serialized spec parses again");
    assert_eq!(
        validate(&again).is_ok(),
        verdict,
        "validation changed across a JSON round trip"
    );
    if verdict {
        if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            let _ = Filter::new(profile);
        }
    }
}

/// `seccomp`: a `linux.seccomp` object (the input up to its first NUL;
/// after it, bytes that pick the native ABI and extra calls) → the
/// compiler for that ABI. A compiled program must pass the kernel's
/// structural checks, and on every call tried (each syscall the profile
/// names, on every x86 ABI, with argument values at and around each
/// condition's, plus calls made of the trailing bytes) the program run in
/// [`bpf::run`] must give the reference model's ([`model::decide`]) verdict.
pub fn seccomp(data: &[u8]) {
    let (text, tail) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(profile) = parse_profile(text) else {
        return;
    };
    let native = Arch::ALL[usize::from(tail.first().copied().unwrap_or(0)) % 3];
    let Ok(program) = libcontainer::seccomp::compile(&profile, native) else {
        return;
    };
    check_structure(&program);
    for call in calls(&profile, tail) {
        let got = bpf::run(&program, &call)
            .unwrap_or_else(|e| panic!("compiled program fails on {call:?}: {e:?}"));
        let want = model::decide(&profile, native, &call);
        assert_eq!(
            got, want,
            "BPF and model disagree on {call:?} (native {native:?}): {got:#x} vs {want:#x}"
        );
    }
}

/// What the kernel's `bpf_check_classic` refuses: too long, a jump out of
/// the program, a load outside `seccomp_data` or unaligned, no final ret.
fn check_structure(program: &[libc::sock_filter]) {
    let len = program.len();
    assert!(
        (1..=bpf::BPF_MAXINSNS).contains(&len),
        "program of {len} instructions"
    );
    for (pc, insn) in program.iter().enumerate() {
        let within = |skip: usize| pc + 1 + skip < len;
        match insn.code {
            bpf::LD_W_ABS => assert!(insn.k < 64 && insn.k % 4 == 0, "load at {pc}: {}", insn.k),
            bpf::JMP_JA => assert!(within(insn.k as usize), "ja out of program at {pc}"),
            bpf::JMP_JEQ_K | bpf::JMP_JGT_K | bpf::JMP_JGE_K => assert!(
                within(usize::from(insn.jt)) && within(usize::from(insn.jf)),
                "jump out of program at {pc}"
            ),
            bpf::RET_K | bpf::ALU_AND_K => {}
            code => panic!("unknown opcode {code:#x} at {pc}"),
        }
    }
    assert_eq!(
        program[len - 1].code,
        bpf::RET_K,
        "the last instruction is no ret"
    );
}

/// Calls to try: every (ABI, nr) of each name in the profile (and of its
/// x86 multiplexer), with arguments from zero, from the trailing bytes and
/// at, just below and just above each condition's value, plus the calls
/// the trailing bytes spell (arch, nr, six args).
fn calls(profile: &LinuxSeccomp, tail: &[u8]) -> Vec<SeccompData> {
    // The model's cost of a call grows with the names in the profile:
    // Docker's profile would give 20,000 calls (50 ms an input). A budget
    // keeps mutants of large profiles fast; small ones are unaffected.
    let names: usize = profile
        .syscalls()
        .iter()
        .flatten()
        .map(|r| r.names().len())
        .sum();
    let max_calls = (200_000 / (names + 1)).clamp(200, 3_000);
    let words: Vec<u64> = tail
        .get(1..)
        .unwrap_or_default()
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    let base: [u64; 6] = std::array::from_fn(|i| words.get(i).copied().unwrap_or(0));
    let mut out = Vec::new();
    for chunk in words.chunks(7) {
        let mut call = SeccompData {
            nr: chunk[0] as u32,
            arch: (chunk[0] >> 32) as u32,
            ..Default::default()
        };
        if call.arch & 1 == 0 {
            // Mostly x86 ABIs, so that calls get past the arch check.
            call.arch = [AUDIT_ARCH_X86_64, libcontainer::seccomp::AUDIT_ARCH_I386]
                [(call.arch >> 1) as usize & 1];
        }
        for (i, w) in chunk[1..].iter().enumerate() {
            call.args[i] = *w;
        }
        out.push(call);
    }
    // Conditional rules first: they are where the compiler branches.
    let mut rules: Vec<_> = profile.syscalls().iter().flatten().collect();
    rules.sort_by_key(|r| r.args().as_ref().is_none_or(|a| a.is_empty()));
    for rule in rules {
        let conditions: Vec<(usize, u64, u64, LinuxSeccompOperator)> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| (a.index(), a.value(), a.value_two().unwrap_or(0), a.op()))
            .collect();
        for name in rule.names() {
            for arch in Arch::ALL {
                let mut targets: Vec<(u32, Option<u32>)> = Vec::new();
                if let Some(nr) = arch.syscall_number(name) {
                    targets.push((nr, None));
                }
                if let Some((mux, call)) = arch.multiplexed(name) {
                    if let Some(nr) = arch.syscall_number(mux) {
                        targets.push((nr, Some(call)));
                    }
                }
                for (nr, selector) in targets {
                    let mut arg_sets = vec![[0u64; 6], base];
                    for &(index, value, value_two, op) in &conditions {
                        if index > 5 {
                            continue;
                        }
                        let mut near = vec![
                            value,
                            value.wrapping_sub(1),
                            value.wrapping_add(1),
                            value ^ (1 << 32),
                            value & 0xffff_ffff,
                        ];
                        if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                            near.extend([value_two, value_two & value, !value]);
                        }
                        for v in near {
                            let mut args = base;
                            args[index] = v;
                            arg_sets.push(args);
                            // And with every other condition's value too,
                            // so that rules of several conditions can match.
                            let mut all = args;
                            for &(i, v2, _, _) in &conditions {
                                if i <= 5 && i != index {
                                    all[i] = v2;
                                }
                            }
                            arg_sets.push(all);
                        }
                    }
                    for mut args in arg_sets {
                        if let Some(call) = selector {
                            args[0] = (args[0] & !0xffff_ffff) | u64::from(call);
                        }
                        out.push(SeccompData {
                            nr,
                            arch: arch.audit_arch(),
                            instruction_pointer: 0,
                            args,
                        });
                    }
                }
                if out.len() > max_calls {
                    return out;
                }
            }
        }
    }
    out
}

/// `mounts`: mount options (the input split at NUL bytes, lossily UTF-8)
/// → [`parse_options`]. The result must be the fold of the options parsed
/// one at a time (each sets or clears its flags and attributes in order,
/// propagation accumulates, an unknown option goes to the data as it is),
/// and never hold a flag both set and cleared.
pub fn mounts(data: &[u8]) {
    let options: Vec<String> = data
        .split(|&b| b == 0)
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect();
    let destination = Path::new("/fuzz");
    let parsed = parse_options(&options, destination);
    let singles: Vec<_> = options
        .iter()
        .map(|o| parse_options(std::slice::from_ref(o), destination))
        .collect();
    if let Some(i) = singles.iter().position(|s| s.is_err()) {
        assert!(
            parsed.is_err(),
            "{:?} is refused alone, not among others",
            options[i]
        );
        return;
    }
    let parsed = parsed.unwrap_or_else(|e| panic!("refused but no option alone is: {e}"));
    let mut want = MountOptions::default();
    let mut data_parts: Vec<&str> = Vec::new();
    for (option, single) in options.iter().zip(singles) {
        let single = single.expect("checked above");
        assert_eq!(single.flags & single.cleared, 0, "{option:?}");
        assert_attrs_valid(&single, option);
        let known = single.flags != 0
            || single.cleared != 0
            || single.attr_set != 0
            || single.attr_clr != 0
            || !single.propagation.is_empty()
            // Known, with no mount(2) effect: `defaults`, and the id-mapped
            // mount options (read by rootfs::idmap, not by mount(2)).
            || ["defaults", "idmap", "ridmap"].contains(&option.as_str());
        if known {
            assert!(single.data.is_empty(), "{option:?} is known and data");
        } else {
            assert_eq!(&single.data, option, "an unknown option is data as it is");
            data_parts.push(option);
        }
        want.flags = (want.flags & !single.cleared) | single.flags;
        want.cleared = (want.cleared & !single.flags) | single.cleared;
        want.attr_set = (want.attr_set & !single.attr_clr) | single.attr_set;
        want.attr_clr = (want.attr_clr & !single.attr_set) | single.attr_clr;
        want.propagation.extend(single.propagation);
    }
    want.data = data_parts.join(",");
    assert_eq!(parsed, want, "options {options:?}");
    assert_eq!(parsed.flags & parsed.cleared, 0);
    assert_attrs_valid(&parsed, &options.join(","));
}

/// What mount_setattr(2) takes: an attribute is not both set and cleared,
/// except the atime mode, which is changed by clearing its whole mask
/// (`MOUNT_ATTR__ATIME`) and setting one mode.
fn assert_attrs_valid(parsed: &MountOptions, options: &str) {
    const ATIME_MASK: u64 = 0x70;
    let (set, clr) = (parsed.attr_set, parsed.attr_clr);
    assert_eq!(set & clr & !ATIME_MASK, 0, "{options:?}: set and cleared");
    if (set | clr) & ATIME_MASK != 0 {
        assert_eq!(
            clr & ATIME_MASK,
            ATIME_MASK,
            "{options:?}: atime without its mask"
        );
        assert!(
            [0, 0x10, 0x20].contains(&(set & ATIME_MASK)),
            "{options:?}: atime mode {:#x}",
            set & ATIME_MASK
        );
    }
}

/// Writes `bytes` into `socket` with `fds` on the first byte.
fn send_with_fds(socket: RawFd, bytes: &[u8], fds: &[RawFd]) {
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let mut sent = 0;
    while sent < bytes.len() {
        let iov = [IoSlice::new(&bytes[sent..])];
        let cm = if sent == 0 { cmsgs } else { &[] };
        sent += sendmsg::<()>(socket, &iov, cm, MsgFlags::MSG_NOSIGNAL, None)
            .expect("sendmsg into a socketpair");
    }
}

/// A few fds of different kinds to send: a pty master, /dev/null, a pipe
/// end, a socket.
struct FdKit {
    files: Vec<OwnedFd>,
}

impl FdKit {
    fn new() -> FdKit {
        let master: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/ptmx")
            .expect("open /dev/ptmx")
            .into();
        let null: OwnedFd = std::fs::File::open("/dev/null").expect("/dev/null").into();
        let (pipe, _w) = nix::unistd::pipe().expect("pipe");
        let (sock, _) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        FdKit {
            files: vec![master, null, pipe, sock],
        }
    }

    /// Up to three fds chosen by `selector`'s bits (kinds 0-3, 0 the master).
    fn pick(&self, selector: u8) -> Vec<RawFd> {
        let count = usize::from(selector & 3);
        (0..count)
            .map(|i| self.files[usize::from(selector >> (2 + 2 * i)) & 3].as_raw_fd())
            .collect()
    }
}

/// `channel`: a message body decoded as [`Message`] (what a frame's JSON
/// goes through), then the whole input written into a socketpair (with 0-3
/// fds on its first byte, chosen by that byte) whose other end then
/// closes, and [`Channel::recv`] called until it fails. It must end (the
/// writer is gone) and close every fd it received.
pub fn channel(data: &[u8]) {
    let _ = serde_json::from_slice::<Message>(data);
    let data = &data[..data.len().min(SOCKET_PAYLOAD_MAX)];
    {
        let kit = FdKit::new();
        let (ours, theirs) = Channel::pair().expect("socketpair");
        let fds = kit.pick(data.first().copied().unwrap_or(0));
        send_with_fds(theirs.as_raw_fd(), data, &fds);
        drop(theirs);
        for _ in 0..1000 {
            match ours.recv::<Message>() {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    assert_no_fd_leak();
}

/// `terminal`: the console socket protocol. The first byte picks 0-3 fds
/// (a pty master, /dev/null, a pipe, a socket) sent with the rest of the
/// input as the message (the pty's name, normally); its second bit
/// whether the sender closes first, its third whether to call with
/// `wait`. [`libcontainer::terminal::receive_master`] must return a pty
/// master only when exactly one was sent alone, refuse anything else, and
/// close every fd it does not return.
pub fn terminal(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let message = &message[..message.len().min(SOCKET_PAYLOAD_MAX)];
    {
        let kit = FdKit::new();
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let fds = kit.pick(selector);
        let closes = selector & 0x80 != 0;
        send_with_fds(theirs.as_raw_fd(), message, &fds);
        if closes {
            let _ = shutdown(theirs.as_raw_fd(), Shutdown::Write);
        }
        // Waiting is only safe when something (data or the end) is there.
        let wait = selector & 0x40 != 0 && (closes || !message.is_empty());
        let got = libcontainer::terminal::receive_master(&ours, wait);
        let one_master = fds.len() == 1 && fds[0] == kit.files[0].as_raw_fd();
        match got {
            Ok(master) => {
                assert!(
                    one_master,
                    "accepted {} fds of kinds {selector:#x}",
                    fds.len()
                );
                let mut n: libc::c_uint = 0;
                // SAFETY: TIOCGPTN writes one c_uint through a valid pointer.
                let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
                assert_eq!(r, 0, "returned fd is no pty master");
            }
            Err(e) => assert!(
                !one_master || message.is_empty(),
                "refused one pty master with a {}-byte message: {e}",
                message.len()
            ),
        }
        drop(theirs);
    }
    assert_no_fd_leak();
}
