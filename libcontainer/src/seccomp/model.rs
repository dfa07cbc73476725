//! The reference model: decides a call straight from the profile, without
//! BPF, following the semantics in the module documentation. The tests run
//! the compiled program in [`super::bpf`] and require the same verdict.

use super::bpf::SeccompData;
use super::{action_value, default_action_value, filtered_arches, Arch, RET_BAD_ARCH};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArg, LinuxSeccompOperator};

/// The `SECCOMP_RET_*` verdict for `data` under `seccomp`, on a host of ABI
/// `native`. Only meaningful for profiles that [`super::compile`] accepts.
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
    let rules: Vec<_> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .filter(|rule| rule.names().iter().any(|n| n == name))
        .map(|rule| {
            let action = action_value(rule.action(), rule.errno_ret(), "").expect("compiled");
            (action, rule.args().clone().unwrap_or_default())
        })
        .filter(|(action, _)| *action != default)
        .collect();
    if let Some((action, _)) = rules.iter().find(|(_, args)| args.is_empty()) {
        return *action;
    }
    rules
        .iter()
        .find(|(_, args)| rule_matches(args, arch, data))
        .map_or(default, |(action, _)| *action)
}

/// All conditions hold, or (runc's rewrite) any one when an index repeats.
fn rule_matches(args: &[LinuxSeccompArg], arch: Arch, data: &SeccompData) -> bool {
    let holds = |arg: &LinuxSeccompArg| condition_holds(arg, arch, data);
    let repeats = args
        .iter()
        .enumerate()
        .any(|(i, a)| args[..i].iter().any(|b| b.index() == a.index()));
    if repeats {
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
