//! The reference model: decides a call straight from the profile, without
//! BPF, following the semantics in the module documentation. The tests run
//! the compiled program in [`super::bpf`] and require the same verdict.

use super::bpf::SeccompData;
use super::{action_value, default_action_value, filtered_arches, Arch, RET_BAD_ARCH};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArg, LinuxSeccompOperator};

/// The `SECCOMP_RET_*` verdict for `data` under `seccomp`, on a host of ABI
/// `native`. Only meaningful for profiles that `super::compile` accepts.
pub fn decide(seccomp: &LinuxSeccomp, native: Arch, data: &SeccompData) -> u32 {
    let Some(arch) = Arch::of_call(data.arch, data.nr) else {
        return RET_BAD_ARCH;
    };
    if !filtered_arches(seccomp, native).contains(&arch) {
        return RET_BAD_ARCH;
    }
    let default = default_action_value(seccomp).expect("profile compiled");
    let Some(name) = arch.syscall_name(data.nr) else {
        return default;
    };
    let mut unconditional = None;
    let mut conditional_match = None;
    for rule in seccomp.syscalls().iter().flatten() {
        let action = action_value(rule.action(), rule.errno_ret(), "").expect("compiled");
        if action == default {
            continue;
        }
        let args = rule.args().clone().unwrap_or_default();
        let direct = rule.names().iter().any(|n| n == name);
        // On x86, a rule for a call multiplexed through `name` (socketcall,
        // ipc) applies when arg 0 selects that call.
        let via_multiplexer = rule.names().iter().any(|n| {
            arch.multiplexed(n).is_some_and(|(mux, call)| {
                mux == name && data.args[0] & 0xffff_ffff == u64::from(call)
            })
        });
        if direct && holds_for_every_call(&args, arch) {
            unconditional.get_or_insert(action);
        } else if conditional_match.is_none() {
            let matched = (direct && rule_matches(&args, arch, data))
                || (via_multiplexer && multiplexed_rule_matches(&args, arch, data));
            if matched {
                conditional_match = Some(action);
            }
        }
    }
    unconditional.or(conditional_match).unwrap_or(default)
}

/// A rule moved onto socketcall/ipc: its arg-0 conditions are replaced by
/// the call selector (already checked), the others still apply.
fn multiplexed_rule_matches(args: &[LinuxSeccompArg], arch: Arch, data: &SeccompData) -> bool {
    let others: Vec<LinuxSeccompArg> = args.iter().filter(|a| a.index() != 0).copied().collect();
    if repeats_an_index(args) {
        // runc's split: one rule per condition; a rule left with only its
        // arg-0 condition is the bare selector, which matches.
        others.len() < args.len() || others.iter().any(|a| condition_holds(a, arch, data))
    } else {
        others.iter().all(|a| condition_holds(a, arch, data))
    }
}

/// A rule without conditions, or (as libseccomp drops them) whose only
/// conditions are MASKED_EQ with a zero mask on `arch`'s width; with runc's
/// split (an index repeats) one such condition is a rule of its own.
fn holds_for_every_call(args: &[LinuxSeccompArg], arch: Arch) -> bool {
    let width_mask = if arch.has_64bit_args() {
        u64::MAX
    } else {
        0xffff_ffff
    };
    let trivial = |a: &LinuxSeccompArg| {
        a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq && a.value() & width_mask == 0
    };
    if repeats_an_index(args) {
        args.iter().any(trivial)
    } else {
        args.iter().all(trivial)
    }
}

fn repeats_an_index(args: &[LinuxSeccompArg]) -> bool {
    args.iter()
        .enumerate()
        .any(|(i, a)| args[..i].iter().any(|b| b.index() == a.index()))
}

/// All conditions hold, or (runc's rewrite) any one when an index repeats.
fn rule_matches(args: &[LinuxSeccompArg], arch: Arch, data: &SeccompData) -> bool {
    let holds = |arg: &LinuxSeccompArg| condition_holds(arg, arch, data);
    if repeats_an_index(args) {
        args.iter().any(holds)
    } else {
        args.iter().all(holds)
    }
}

fn condition_holds(arg: &LinuxSeccompArg, arch: Arch, data: &SeccompData) -> bool {
    let width = |v: u64| {
        if arch.has_64bit_args() {
            v
        } else {
            v & 0xffff_ffff
        }
    };
    let actual = width(data.args[arg.index()]);
    let value = width(arg.value());
    let value_two = width(arg.value_two().unwrap_or(0));
    match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => actual != value,
        LinuxSeccompOperator::ScmpCmpLt => actual < value,
        LinuxSeccompOperator::ScmpCmpLe => actual <= value,
        LinuxSeccompOperator::ScmpCmpEq => actual == value,
        LinuxSeccompOperator::ScmpCmpGe => actual >= value,
        LinuxSeccompOperator::ScmpCmpGt => actual > value,
        LinuxSeccompOperator::ScmpCmpMaskedEq => actual & value == value_two & value,
    }
}
