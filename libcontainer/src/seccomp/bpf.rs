//! Classic BPF for seccomp: a tiny label-resolving assembler used by the
//! compiler, and an interpreter that runs a program on a `seccomp_data` the way
//! the kernel does (used by the tests to check the compiler against the model).

use libc::sock_filter;

/// Offsets into `struct seccomp_data` (little-endian x86).
pub const DATA_NR: u32 = 0;
pub const DATA_ARCH: u32 = 4;
/// Offset of the low 32 bits of argument `index`; the high half is 4 bytes on.
pub fn arg_low(index: usize) -> u32 {
    16 + 8 * index as u32
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
/// `BPF_LD | BPF_W | BPF_ABS` (`BPF_LD` and `BPF_W` are 0).
pub const LD_W_ABS: u16 = 0x20;
pub const ALU_AND_K: u16 = 0x04 | 0x50;
pub const JMP_JA: u16 = 0x05;
pub const JMP_JEQ_K: u16 = 0x05 | 0x10;
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
pub const RET_K: u16 = 0x06;
/// The kernel's limit on a classic BPF program's length.
pub const BPF_MAXINSNS: usize = 4096;

/// A jump destination: the next instruction, or a label bound somewhere later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Next,
    To(Label),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Load(u32),
    And(u32),
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Goto(Label),
    Ret(u32),
    Bind(Label),
}

/// Collects instructions with symbolic forward jumps; `finish` resolves them.
/// Conditional jumps carry 8-bit offsets, so the compiler only aims them at
/// nearby labels and uses `goto` (32-bit offset) for anything far.
#[derive(Default)]
pub struct Assembler {
    ops: Vec<Op>,
    labels: usize,
}

/// Why a program could not be assembled.
#[derive(Debug, PartialEq, Eq)]
pub enum AsmError {
    /// A conditional jump's target is more than 255 instructions on.
    JumpTooFar,
    /// A label was jumped to but never bound, or bound behind its jump.
    BadLabel,
}

impl Assembler {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn bind(&mut self, label: Label) {
        self.ops.push(Op::Bind(label));
    }
    pub fn load(&mut self, offset: u32) {
        self.ops.push(Op::Load(offset));
    }
    pub fn and(&mut self, mask: u32) {
        self.ops.push(Op::And(mask));
    }
    pub fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.ops.push(Op::Jump { cmp, k, jt, jf });
    }
    pub fn goto(&mut self, label: Label) {
        self.ops.push(Op::Goto(label));
    }
    pub fn ret(&mut self, value: u32) {
        self.ops.push(Op::Ret(value));
    }

    /// Resolves labels into relative offsets.
    pub fn finish(self) -> Result<Vec<sock_filter>, AsmError> {
        let mut position = vec![None; self.labels];
        let mut pc = 0usize;
        for op in &self.ops {
            match op {
                Op::Bind(Label(l)) => position[*l] = Some(pc),
                _ => pc += 1,
            }
        }
        let offset = |from: usize, label: Label| -> Result<usize, AsmError> {
            let to = position[label.0].ok_or(AsmError::BadLabel)?;
            to.checked_sub(from + 1).ok_or(AsmError::BadLabel)
        };
        let short = |from: usize, target: Target| -> Result<u8, AsmError> {
            match target {
                Target::Next => Ok(0),
                Target::To(label) => {
                    u8::try_from(offset(from, label)?).map_err(|_| AsmError::JumpTooFar)
                }
            }
        };
        let mut program = Vec::with_capacity(pc);
        for op in self.ops {
            let at = program.len();
            let insn = match op {
                Op::Bind(_) => continue,
                Op::Load(k) => stmt(LD_W_ABS, k),
                Op::And(k) => stmt(ALU_AND_K, k),
                Op::Ret(k) => stmt(RET_K, k),
                Op::Goto(label) => {
                    let k = u32::try_from(offset(at, label)?).map_err(|_| AsmError::JumpTooFar)?;
                    stmt(JMP_JA, k)
                }
                Op::Jump { cmp, k, jt, jf } => {
                    let code = match cmp {
                        Cmp::Eq => JMP_JEQ_K,
                        Cmp::Gt => JMP_JGT_K,
                        Cmp::Ge => JMP_JGE_K,
                    };
                    sock_filter {
                        code,
                        jt: short(at, jt)?,
                        jf: short(at, jf)?,
                        k,
                    }
                }
            };
            program.push(insn);
        }
        Ok(program)
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `struct seccomp_data` as the kernel hands it to a filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, offset: u32) -> Option<u32> {
        // Only aligned 32-bit words inside the 64-byte struct can be loaded.
        if offset >= 64 || offset & 3 != 0 {
            return None;
        }
        let half = |v: u64| {
            if offset & 4 == 0 {
                v as u32
            } else {
                (v >> 32) as u32
            }
        };
        Some(match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => half(self.instruction_pointer),
            _ => half(self.args[(offset as usize - 16) / 8]),
        })
    }
}

/// Why the interpreter rejected a program (the kernel's checker would too).
#[derive(Debug, PartialEq, Eq)]
pub enum RunError {
    UnknownOpcode { pc: usize, code: u16 },
    BadLoad { pc: usize, offset: u32 },
    OutOfProgram,
}

/// Runs `program` on `data` and returns the filter's verdict.
pub fn run(program: &[sock_filter], data: &SeccompData) -> Result<u32, RunError> {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let insn = program.get(pc).ok_or(RunError::OutOfProgram)?;
        let mut next = pc + 1;
        match insn.code {
            LD_W_ABS => {
                acc = data
                    .word(insn.k)
                    .ok_or(RunError::BadLoad { pc, offset: insn.k })?;
            }
            ALU_AND_K => acc &= insn.k,
            JMP_JA => next += insn.k as usize,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                let taken = match insn.code {
                    JMP_JEQ_K => acc == insn.k,
                    JMP_JGT_K => acc > insn.k,
                    _ => acc >= insn.k,
                };
                next += usize::from(if taken { insn.jt } else { insn.jf });
            }
            RET_K => return Ok(insn.k),
            code => return Err(RunError::UnknownOpcode { pc, code }),
        }
        pc = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_and_far_conditionals_are_refused() {
        let mut asm = Assembler::default();
        let yes = asm.label();
        asm.load(DATA_NR);
        asm.jump(Cmp::Eq, 39, Target::To(yes), Target::Next);
        asm.ret(1);
        asm.bind(yes);
        asm.ret(2);
        let program = asm.finish().unwrap();
        let data = |nr| SeccompData {
            nr,
            ..Default::default()
        };
        assert_eq!(run(&program, &data(39)), Ok(2));
        assert_eq!(run(&program, &data(40)), Ok(1));

        let mut asm = Assembler::default();
        let far = asm.label();
        asm.jump(Cmp::Eq, 0, Target::To(far), Target::Next);
        for _ in 0..256 {
            asm.ret(0);
        }
        asm.bind(far);
        asm.ret(0);
        assert_eq!(asm.finish().unwrap_err(), AsmError::JumpTooFar);
    }

    #[test]
    fn words_of_seccomp_data_are_little_endian_halves() {
        let mut data = SeccompData::default();
        data.args[2] = 0x1122_3344_5566_7788;
        assert_eq!(data.word(arg_low(2)), Some(0x5566_7788));
        assert_eq!(data.word(arg_low(2) + 4), Some(0x1122_3344));
        assert_eq!(data.word(64), None);
        assert_eq!(data.word(2), None);
    }
}
