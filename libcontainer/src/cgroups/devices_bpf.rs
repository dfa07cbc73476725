//! The device allowlist on cgroup v2: cgroup2 has no devices controller;
//! the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
//! cgroup instead. rrun emits that eBPF program itself (as it emits its
//! seccomp BPF): a few instructions per rule, no libbpf and no C.
//!
//! Semantics are the v1 devices controller's as runc applies them on v2:
//! the config's rules, then the devices every container gets (the default
//! device nodes, `m` on every char and block device, /dev/console, ptys,
//! /dev/ptmx, tun); the last rule that matches a request decides. A rule
//! matches when the type, major and minor match and the requested access
//! is within the rule's. A rule for every device with every access resets
//! the default, so what came before it cannot be reached and is not
//! emitted (the verifier refuses unreachable code).

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    #[error("linux.resources.devices: loading the cgroup device program: {errno}{log}")]
    Load { errno: Errno, log: String },
    #[error("linux.resources.devices: attaching the device program to the cgroup: {0}")]
    Attach(Errno),
}

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
// access_type is (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

// Opcodes (linux/bpf.h): class | op | source.
const LDX_W_MEM: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // w_dst &= imm
const ALU32_RSH_K: u8 = 0x74; // w_dst >>= imm
const ALU32_MOV_X: u8 = 0xbc; // w_dst = w_src
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm goto pc + off
const JNE_X: u8 = 0x5d; // if dst != src goto pc + off
const EXIT: u8 = 0x95;

/// One rule as the program tests it; `None` matches anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    typ: Option<i32>,
    major: Option<i64>,
    minor: Option<i64>,
    access: i32,
}

impl Rule {
    /// `None` for rules the device cgroup cannot see (FIFOs).
    fn of(device: &LinuxDeviceCgroup) -> Option<Rule> {
        let typ = match device.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => return None,
        };
        let access = match device.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(text) => text.chars().fold(0, |acc, c| {
                acc | match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => 0,
                }
            }),
        };
        let number = |n: Option<i64>| n.filter(|n| *n >= 0);
        Some(Rule {
            allow: device.allow(),
            typ,
            major: number(device.major()),
            minor: number(device.minor()),
            access,
        })
    }

    fn matches_everything(&self) -> bool {
        self.typ.is_none() && self.major.is_none() && self.minor.is_none() && self.access == ACC_ALL
    }
}

/// What every container may use whatever its config says, as the v1
/// devices controller is given them (runc's and libcgroups' list).
fn default_rules() -> Vec<Rule> {
    let char_dev = |major: i64, minor: Option<i64>, access: i32| Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(major),
        minor,
        access,
    };
    vec![
        // /dev/null, zero, full, tty, urandom, random
        char_dev(1, Some(3), ACC_ALL),
        char_dev(1, Some(5), ACC_ALL),
        char_dev(1, Some(7), ACC_ALL),
        char_dev(5, Some(0), ACC_ALL),
        char_dev(1, Some(9), ACC_ALL),
        char_dev(1, Some(8), ACC_ALL),
        // mknod of any char and block device
        Rule {
            allow: true,
            typ: Some(DEV_CHAR),
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
        Rule {
            allow: true,
            typ: Some(DEV_BLOCK),
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
        // /dev/console, the ptys, /dev/ptmx, /dev/net/tun
        char_dev(5, Some(1), ACC_ALL),
        char_dev(136, None, ACC_ALL),
        char_dev(5, Some(2), ACC_ALL),
        char_dev(10, Some(200), ACC_ALL),
    ]
}

/// The program for `devices` (the config's `linux.resources.devices`).
pub fn program(devices: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut rules: Vec<Rule> = devices.iter().filter_map(Rule::of).collect();
    rules.extend(default_rules());
    let mut prog = vec![
        insn(LDX_W_MEM, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff), // r2: type
        insn(LDX_W_MEM, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16), // r3: requested access
        insn(LDX_W_MEM, 4, 1, 4, 0),    // r4: major
        insn(LDX_W_MEM, 5, 1, 8, 0),    // r5: minor
    ];
    // Last rule first: the first block that matches returns its verdict.
    for rule in rules.iter().rev() {
        let block = rule_block(rule);
        let unconditional = rule.matches_everything();
        prog.extend(block);
        if unconditional {
            return prog;
        }
    }
    // Nothing matched: the default of a cgroup whose list has no "all
    // devices" rule is deny, as after runc's leading `a *:* rwm` deny.
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// The tests of one rule, each jumping past the block on a mismatch, then
/// `r0 = verdict; exit`.
fn rule_block(rule: &Rule) -> Vec<Insn> {
    let mut tests: Vec<Insn> = Vec::new();
    if let Some(typ) = rule.typ {
        tests.push(insn(JNE_K, 2, 0, 0, typ));
    }
    if rule.access != ACC_ALL {
        // The request must be within the rule's access: (r3 & A) == r3.
        tests.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
        tests.push(insn(ALU32_AND_K, 1, 0, 0, rule.access));
        tests.push(insn(JNE_X, 1, 3, 0, 0));
    }
    if let Some(major) = rule.major {
        tests.push(insn(JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        tests.push(insn(JNE_K, 5, 0, 0, minor as i32));
    }
    // Every jump lands after the block's last instruction.
    let len = tests.len() + 2;
    for (i, t) in tests.iter_mut().enumerate() {
        if t.code == JNE_K || t.code == JNE_X {
            t.off = (len - i - 1) as i16;
        }
    }
    tests.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    tests.push(insn(EXIT, 0, 0, 0, 0));
    tests
}

/// What the program decides for a request, by running it as the kernel
/// would (the tests check the emitter against the rules with this).
pub fn evaluate(prog: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> bool {
    let ctx = [((access as u32) << 16) | typ as u32, major, minor];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (d, s) = (usize::from(i.dst), usize::from(i.src));
        pc += 1;
        match i.code {
            LDX_W_MEM => reg[d] = u64::from(ctx[i.off as usize / 4]),
            ALU32_AND_K => reg[d] = u64::from(reg[d] as u32 & i.imm as u32),
            ALU32_RSH_K => reg[d] = u64::from((reg[d] as u32) >> i.imm),
            ALU32_MOV_X => reg[d] = u64::from(reg[s] as u32),
            ALU64_MOV_K => reg[d] = i.imm as i64 as u64,
            JNE_K if reg[d] != i.imm as i64 as u64 => pc += i.off as usize,
            JNE_X if reg[d] != reg[s] => pc += i.off as usize,
            JNE_K | JNE_X => {}
            EXIT => return reg[0] != 0,
            other => panic!("unknown opcode {other:#x}"),
        }
    }
}

fn encode(i: &Insn) -> u64 {
    u64::from(i.code)
        | (u64::from(i.dst & 0xf) << 8)
        | (u64::from(i.src & 0xf) << 12)
        | (u64::from(i.off as u16) << 16)
        | (u64::from(i.imm as u32) << 32)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// union bpf_attr, as big as any command of ours needs; the kernel wants
/// the bytes it does not know to be zero.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> BpfAttr {
        BpfAttr([0; 128])
    }
    fn u32_at(&mut self, offset: usize, value: u32) -> &mut Self {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn u64_at(&mut self, offset: usize, value: u64) -> &mut Self {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut BpfAttr) -> Result<libc::c_long, Errno> {
    // SAFETY: bpf(2) reads (and for PROG_LOAD writes the log buffer whose
    // pointer and size the attr holds) only within the buffers given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BpfAttr,
            std::mem::size_of::<BpfAttr>(),
        )
    };
    Errno::result(ret)
}

/// Load `prog` into the kernel; the verifier's log comes with a refusal.
pub fn load(prog: &[Insn]) -> Result<OwnedFd, DeviceFilterError> {
    let words: Vec<u64> = prog.iter().map(encode).collect();
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 16 * 1024];
    let mut attr = BpfAttr::new();
    attr.u32_at(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32_at(4, words.len() as u32)
        .u64_at(8, words.as_ptr() as u64)
        .u64_at(16, license.as_ptr() as u64)
        .u32_at(24, 1)
        .u32_at(28, log.len() as u32)
        .u64_at(32, log.as_mut_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: BPF_PROG_LOAD returned a new fd that we alone own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            Err(DeviceFilterError::Load {
                errno,
                log: if text.is_empty() {
                    String::new()
                } else {
                    format!(" (verifier: {})", text.trim())
                },
            })
        }
    }
}

/// Attach a loaded program to the cgroup2 directory `cgroup` (opened
/// O_DIRECTORY). Other programs attached there (systemd's) stay: with
/// BPF_F_ALLOW_MULTI every one of them must allow a request.
pub fn attach(cgroup: BorrowedFd, prog: &OwnedFd) -> Result<(), DeviceFilterError> {
    let mut attr = BpfAttr::new();
    attr.u32_at(0, cgroup.as_raw_fd() as u32)
        .u32_at(4, prog.as_raw_fd() as u32)
        .u32_at(8, BPF_CGROUP_DEVICE)
        .u32_at(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .map_err(DeviceFilterError::Attach)
}

/// Emit, load and attach the allowlist of `devices` to the cgroup2
/// directory at `dir`. The attachment keeps the program alive.
pub fn apply(
    dir: &std::path::Path,
    devices: &[LinuxDeviceCgroup],
) -> Result<(), DeviceFilterError> {
    let prog = load(&program(devices))?;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(DeviceFilterError::Attach)?;
    // SAFETY: open just returned this fd to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    attach(std::os::fd::AsFd::as_fd(&fd), &prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(value: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(value).unwrap()
    }

    const R: i32 = ACC_READ;
    const W: i32 = ACC_WRITE;
    const M: i32 = ACC_MKNOD;

    #[test]
    fn docker_like_rules_allow_the_defaults_and_deny_the_rest() {
        let p = program(&rules(json!([{"allow": false, "access": "rwm"}])));
        assert!(evaluate(&p, DEV_CHAR, R | W, 1, 3), "/dev/null");
        assert!(evaluate(&p, DEV_CHAR, R, 136, 7), "a pty");
        assert!(evaluate(&p, DEV_BLOCK, M, 8, 0), "mknod of a disk");
        assert!(!evaluate(&p, DEV_BLOCK, R, 8, 0), "reading a disk");
        assert!(!evaluate(&p, DEV_CHAR, R, 1, 1), "/dev/mem");
        assert!(!evaluate(&p, DEV_CHAR, R | W, 10, 232), "/dev/kvm");
    }

    #[test]
    fn the_last_matching_rule_decides_and_access_must_be_within_it() {
        let p = program(&rules(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ])));
        assert!(evaluate(&p, DEV_BLOCK, R, 8, 0));
        assert!(!evaluate(&p, DEV_BLOCK, R | W, 8, 0), "w is not allowed");
        assert!(!evaluate(&p, DEV_BLOCK, R, 8, 1), "another minor");
        // The defaults come after the config's rules, as with v1.
        assert!(evaluate(&p, DEV_CHAR, R | W, 1, 3));
    }

    #[test]
    fn an_allow_all_rule_resets_the_default_and_ends_the_program() {
        let p = program(&rules(json!([
            {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "rwm"},
            {"allow": true, "access": "rwm"},
        ])));
        assert!(evaluate(&p, DEV_CHAR, R, 1, 1), "the earlier deny is reset");
        assert!(evaluate(&p, DEV_BLOCK, R | W, 8, 0));
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        let none = program(&[]);
        assert!(
            !evaluate(&none, DEV_BLOCK, R, 8, 0),
            "no rules: deny but the defaults"
        );
    }

    #[test]
    fn every_jump_lands_inside_the_program_on_an_exit_path() {
        let p = program(&rules(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 4, "access": "rw"},
            {"allow": true, "type": "p", "access": "rwm"},
        ])));
        for (pc, i) in p.iter().enumerate() {
            if i.code == JNE_K || i.code == JNE_X {
                let target = pc + 1 + i.off as usize;
                assert!(target < p.len(), "jump at {pc} past the end");
            }
        }
        assert!(evaluate(&p, DEV_CHAR, R | W, 4, 64));
        assert!(!evaluate(&p, DEV_CHAR, R, 5, 64));
    }
}
