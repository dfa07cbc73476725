//! Profile -> BPF. Layout (every far jump is an unconditional `ja`, whose
//! offset is 32-bit; conditional jumps only skip a few instructions):
//!
//! ```text
//!   ld arch; per audit arch: jeq AUDIT, +0, +1; ja <arch section>   ; ret BAD_ARCH
//!   AUDIT_ARCH_X86_64: ld nr; split x86_64 / x32 on nr >= 0x40000000
//!   section: per chunk of 80 syscalls with rules (by number):
//!       jeq NR, <shared ret ACTION>, +0    (unconditional)
//!       jeq NR, +0, +1; ja <block>         (conditional)
//!     ja <next chunk>; ret ACTION1; ret ACTION2...   (the chunk's shared rets)
//!   ret DEFAULT
//!   block: per rule: per condition: compare, on failure ja <next rule>; ret ACTION
//!     ret DEFAULT
//! ```

use super::bpf::{self, Assembler, Cmp, Label, Target};
use super::{
    action_value, default_action_value, filtered_arches, Arch, SeccompError, RET_BAD_ARCH,
    X32_SYSCALL_BIT,
};
use libc::sock_filter;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator};
use std::collections::BTreeMap;

/// One argument comparison, as the profile states it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Condition {
    pub index: usize,
    pub op: LinuxSeccompOperator,
    pub value: u64,
    pub value_two: u64,
}

/// A rule after runc's rewriting: all `conditions` must hold.
#[derive(Clone, Debug)]
pub(crate) struct Rule<'a> {
    pub names: &'a [String],
    pub action: u32,
    pub conditions: Vec<Condition>,
}

/// Conditional rules of one syscall, in profile order: (all of these, action).
type ConditionalRules = Vec<(Vec<Condition>, u32)>;

/// What the filter does for one syscall on one ABI.
#[derive(Debug, Default)]
struct SyscallPlan {
    unconditional: Option<u32>,
    conditional: ConditionalRules,
}

/// Compiles `seccomp` into a BPF program for an x86-family host of ABI `native`.
pub fn compile(seccomp: &LinuxSeccomp, native: Arch) -> Result<Vec<sock_filter>, SeccompError> {
    let default = default_action_value(seccomp)?;
    let rules = normalize_rules(seccomp, default)?;
    let arches = filtered_arches(seccomp, native);
    let mut plans = Vec::new();
    for arch in &arches {
        plans.push((*arch, plan_arch(*arch, &rules)));
    }
    let mut asm = Assembler::default();
    emit_program(&mut asm, &plans, default);
    let program = asm.finish().map_err(SeccompError::Assemble)?;
    if program.len() > bpf::BPF_MAXINSNS {
        return Err(SeccompError::TooLong { len: program.len() });
    }
    Ok(program)
}

/// Validates the rules, drops those with the default action and splits a
/// rule that names one argument index twice into one rule per condition.
pub(crate) fn normalize_rules(
    seccomp: &LinuxSeccomp,
    default: u32,
) -> Result<Vec<Rule<'_>>, SeccompError> {
    let mut rules = Vec::new();
    for (i, syscall) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let action = action_value(
            syscall.action(),
            syscall.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        if syscall.names().iter().any(String::is_empty) {
            return Err(SeccompError::EmptyName {
                field: format!("{field}.names"),
            });
        }
        let conditions = conditions_of(syscall.args().as_deref().unwrap_or_default(), &field)?;
        if action == default {
            continue;
        }
        let names = syscall.names().as_slice();
        let mut indexes: Vec<usize> = conditions.iter().map(|c| c.index).collect();
        indexes.sort_unstable();
        if indexes.windows(2).any(|w| w[0] == w[1]) {
            rules.extend(conditions.into_iter().map(|c| Rule {
                names,
                action,
                conditions: vec![c],
            }));
        } else {
            rules.push(Rule {
                names,
                action,
                conditions,
            });
        }
    }
    Ok(rules)
}

fn conditions_of(
    args: &[oci_spec::runtime::LinuxSeccompArg],
    field: &str,
) -> Result<Vec<Condition>, SeccompError> {
    let mut conditions = Vec::new();
    for (j, arg) in args.iter().enumerate() {
        if arg.index() > 5 {
            let field = format!("{field}.args[{j}].index");
            return Err(SeccompError::ArgIndex {
                field,
                index: arg.index(),
            });
        }
        conditions.push(Condition {
            index: arg.index(),
            op: arg.op(),
            value: arg.value(),
            value_two: arg.value_two().unwrap_or(0),
        });
    }
    Ok(conditions)
}

/// Groups the rules by syscall number for `arch`, applying the precedence
/// described in the module documentation.
fn plan_arch(arch: Arch, rules: &[Rule]) -> BTreeMap<u32, SyscallPlan> {
    let mut plans: BTreeMap<u32, SyscallPlan> = BTreeMap::new();
    for rule in rules {
        for name in rule.names {
            if let Some((multiplexer, call)) = arch.multiplexed(name) {
                let nr = arch
                    .syscall_number(multiplexer)
                    .expect("x86 has socketcall and ipc");
                plans
                    .entry(nr)
                    .or_default()
                    .conditional
                    .push((multiplexed_conditions(&rule.conditions, call), rule.action));
            }
            let Some(nr) = arch.syscall_number(name) else {
                continue;
            };
            let plan = plans.entry(nr).or_default();
            let conditions = meaningful_conditions(arch, &rule.conditions);
            if !conditions.is_empty() {
                plan.conditional.push((conditions, rule.action));
                continue;
            }
            // libseccomp keeps the first unconditional action of a syscall.
            plan.unconditional.get_or_insert(rule.action);
        }
    }
    plans
}

/// The conditions that can fail on `arch`: a MASKED_EQ whose mask is 0 on
/// the compared width (the low 32 bits on a 32-bit ABI) holds for every
/// call, and libseccomp drops it, so a rule made only of such conditions
/// is unconditional there (and the first unconditional rule wins).
fn meaningful_conditions(arch: Arch, conditions: &[Condition]) -> Vec<Condition> {
    let width_mask = if arch.has_64bit_args() {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    conditions
        .iter()
        .filter(|c| !(c.op == LinuxSeccompOperator::ScmpCmpMaskedEq && c.value & width_mask == 0))
        .copied()
        .collect()
}

/// The conditions of a rule moved onto x86's `socketcall`/`ipc`: arg 0 is
/// the call number there, so it replaces the rule's own arg-0 conditions.
fn multiplexed_conditions(conditions: &[Condition], call: u32) -> Vec<Condition> {
    let selector = Condition {
        index: 0,
        op: LinuxSeccompOperator::ScmpCmpEq,
        value: u64::from(call),
        value_two: 0,
    };
    let others = conditions.iter().filter(|c| c.index != 0).copied();
    std::iter::once(selector).chain(others).collect()
}

fn emit_program(asm: &mut Assembler, plans: &[(Arch, BTreeMap<u32, SyscallPlan>)], default: u32) {
    let section_of = |wanted: Arch| plans.iter().find(|(arch, _)| *arch == wanted);
    let x86_64 = section_of(Arch::X86_64);
    let x32 = section_of(Arch::X32);
    let x86 = section_of(Arch::X86);

    let amd64_entry = asm.label();
    let i386_entry = asm.label();
    asm.load(bpf::DATA_ARCH);
    if x86_64.is_some() || x32.is_some() {
        emit_far_jump_if_equal(asm, Arch::X86_64.audit_arch(), amd64_entry);
    }
    if x86.is_some() {
        emit_far_jump_if_equal(asm, Arch::X86.audit_arch(), i386_entry);
    }
    asm.ret(RET_BAD_ARCH);

    if x86_64.is_some() || x32.is_some() {
        asm.bind(amd64_entry);
        asm.load(bpf::DATA_NR);
        // libseccomp's split: nr >= __X32_SYSCALL_BIT is x32, and so are the
        // (invalid) numbers above it.
        let x32_section = asm.label();
        let x86_64_section = asm.label();
        asm.jump(
            Cmp::Ge,
            X32_SYSCALL_BIT,
            Target::Next,
            Target::To(x86_64_section),
        );
        asm.goto(x32_section);
        asm.bind(x86_64_section);
        emit_section_or_bad_arch(asm, x86_64, default);
        asm.bind(x32_section);
        emit_section_or_bad_arch(asm, x32, default);
    }
    if let Some(section) = x86 {
        asm.bind(i386_entry);
        asm.load(bpf::DATA_NR);
        emit_section(asm, section, default);
    }
}

/// `if A == k goto far` (else fall through), with the far jump as a `ja`.
fn emit_far_jump_if_equal(asm: &mut Assembler, k: u32, far: Label) {
    let skip = asm.label();
    asm.jump(Cmp::Eq, k, Target::Next, Target::To(skip));
    asm.goto(far);
    asm.bind(skip);
}

fn emit_section_or_bad_arch(
    asm: &mut Assembler,
    section: Option<&(Arch, BTreeMap<u32, SyscallPlan>)>,
    default: u32,
) {
    match section {
        Some(section) => emit_section(asm, section, default),
        None => asm.ret(RET_BAD_ARCH),
    }
}

/// The syscall dispatch of one ABI (A holds `nr`) and its rule blocks.
fn emit_section(
    asm: &mut Assembler,
    (arch, plans): &(Arch, BTreeMap<u32, SyscallPlan>),
    default: u32,
) {
    let entries: Vec<(&u32, &SyscallPlan)> = plans.iter().collect();
    let mut blocks = Vec::new();
    for chunk in entries.chunks(DISPATCH_CHUNK) {
        emit_dispatch_chunk(asm, chunk, &mut blocks);
    }
    asm.ret(default);
    for (block, rules) in blocks {
        asm.bind(block);
        for (conditions, action) in rules {
            let next_rule = asm.label();
            for condition in conditions {
                emit_condition(asm, *arch, condition, next_rule);
            }
            asm.ret(*action);
            asm.bind(next_rule);
        }
        asm.ret(default);
    }
}

/// Syscalls per dispatch chunk: each takes at most 2 instructions and adds
/// at most one shared `ret`, so every `jeq` reaches its `ret` within the
/// 255 instructions a conditional jump can skip (2*80 + 1 + 80 < 255).
const DISPATCH_CHUNK: usize = 80;

/// One chunk of the dispatch (A holds `nr`): an unconditional syscall is one
/// `jeq` to a `ret` shared by every syscall of the chunk with that action; a
/// conditional one is `jeq` + `ja <its block>`. The chunk ends by jumping over
/// its shared `ret`s to the next chunk.
fn emit_dispatch_chunk<'p>(
    asm: &mut Assembler,
    chunk: &[(&u32, &'p SyscallPlan)],
    blocks: &mut Vec<(Label, &'p ConditionalRules)>,
) {
    let mut shared_rets: Vec<(u32, Label)> = Vec::new();
    for (nr, plan) in chunk {
        match plan.unconditional {
            Some(action) => {
                let ret = match shared_rets.iter().find(|(a, _)| *a == action) {
                    Some((_, label)) => *label,
                    None => {
                        let label = asm.label();
                        shared_rets.push((action, label));
                        label
                    }
                };
                asm.jump(Cmp::Eq, **nr, Target::To(ret), Target::Next);
            }
            None => {
                let skip = asm.label();
                let block = asm.label();
                asm.jump(Cmp::Eq, **nr, Target::Next, Target::To(skip));
                asm.goto(block);
                asm.bind(skip);
                blocks.push((block, &plan.conditional));
            }
        }
    }
    let next_chunk = asm.label();
    asm.goto(next_chunk);
    for (action, label) in shared_rets {
        asm.bind(label);
        asm.ret(action);
    }
    asm.bind(next_chunk);
}

/// Falls through when `condition` holds, else jumps to `fail`.
fn emit_condition(asm: &mut Assembler, arch: Arch, condition: &Condition, fail: Label) {
    let pass = asm.label();
    let local_fail = asm.label();
    let (p, f) = (Target::To(pass), Target::To(local_fail));
    let low = bpf::arg_low(condition.index);
    let (value, value_two) = (condition.value, condition.value_two);
    let (v_lo, v_hi) = (value as u32, (value >> 32) as u32);
    let wide = arch.has_64bit_args();
    use LinuxSeccompOperator::*;
    match condition.op {
        ScmpCmpMaskedEq => {
            // libseccomp compares against `valueTwo & value`.
            let datum = value_two & value;
            let (d_lo, d_hi) = (datum as u32, (datum >> 32) as u32);
            if wide {
                asm.load(low + 4);
                asm.and(v_hi);
                asm.jump(Cmp::Eq, d_hi, Target::Next, f);
            }
            asm.load(low);
            asm.and(v_lo);
            asm.jump(Cmp::Eq, d_lo, p, f);
        }
        op => {
            // The high words decide unless equal; then the low words do.
            // (cmp, taken, not taken) on the low word, and what a strictly
            // greater / strictly smaller high word means.
            let (cmp, jt, jf, hi_greater, hi_smaller) = match op {
                ScmpCmpEq => (Cmp::Eq, p, f, f, f),
                ScmpCmpNe => (Cmp::Eq, f, p, p, p),
                ScmpCmpGt => (Cmp::Gt, p, f, p, f),
                ScmpCmpGe => (Cmp::Ge, p, f, p, f),
                ScmpCmpLt => (Cmp::Ge, f, p, f, p),
                ScmpCmpLe => (Cmp::Gt, f, p, f, p),
                ScmpCmpMaskedEq => unreachable!("handled above"),
            };
            if wide {
                asm.load(low + 4);
                asm.jump(Cmp::Gt, v_hi, hi_greater, Target::Next);
                asm.jump(Cmp::Eq, v_hi, Target::Next, hi_smaller);
            }
            asm.load(low);
            asm.jump(cmp, v_lo, jt, jf);
        }
    }
    asm.bind(local_fail);
    asm.goto(fail);
    asm.bind(pass);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf::{run, SeccompData};
    use crate::seccomp::parse_profile;

    #[test]
    fn multiplexed_rules_select_the_call_in_arg0_and_keep_other_conditions() {
        let condition = |index, value| Condition {
            index,
            op: LinuxSeccompOperator::ScmpCmpGe,
            value,
            value_two: 0,
        };
        let moved = multiplexed_conditions(&[condition(0, 40), condition(2, 7)], 1);
        assert_eq!(moved.len(), 2);
        assert_eq!(
            (moved[0].index, moved[0].op, moved[0].value),
            (0, LinuxSeccompOperator::ScmpCmpEq, 1)
        );
        assert_eq!((moved[1].index, moved[1].value), (2, 7));
    }

    #[test]
    fn the_worst_case_dispatch_chunk_stays_within_short_jumps() {
        // One in ten (i = 0, 10, 20...) is unconditional.
        let unconditional = |i: usize| i % 10 < 1;
        // The farthest short jump: an unconditional syscall at the start of a
        // chunk whose other syscalls are conditional (2 instructions each).
        // Every x86_64 syscall, one in ten unconditional, each its own errno.
        let names: Vec<&str> = Arch::X86_64.syscalls().iter().map(|(n, _)| *n).collect();
        let rule = |i: usize, n: &str| {
            let args = if unconditional(i) {
                ""
            } else {
                r#","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]"#
            };
            format!(
                r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO","errnoRet":{}{args}}}"#,
                i + 2
            )
        };
        let rules: Vec<String> = names.iter().enumerate().map(|(i, n)| rule(i, n)).collect();
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
            rules.join(",")
        );
        let program = compile(&parse_profile(&json).unwrap(), Arch::X86_64).unwrap();
        for (i, name) in names.iter().enumerate() {
            let nr = Arch::X86_64.syscall_number(name).unwrap();
            for arg0 in [0, 1] {
                let mut data = SeccompData {
                    nr,
                    arch: Arch::X86_64.audit_arch(),
                    ..Default::default()
                };
                data.args[0] = arg0;
                let refused = unconditional(i) || arg0 == 1;
                let expected = if refused {
                    0x0005_0000 | (i as u32 + 2)
                } else {
                    0x7fff_0000
                };
                assert_eq!(run(&program, &data), Ok(expected), "{name}({arg0})");
            }
        }
    }
}
