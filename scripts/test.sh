#!/usr/bin/env bash
# Everything CI checks, in order, stopping at the first failure:
# packages, fmt, clippy, release build, cargo test (as root, real
# containers), the conformance suite against rrun and runc, and a check
# that nothing was left behind. Ends with "N passed, N failed".
#
#   ./scripts/test.sh            # as root, on Debian 12
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export DEBIAN_FRONTEND=noninteractive

STEPS=(
    "install packages"
    "cargo fmt"
    "cargo clippy"
    "cargo build --release"
    "cargo test"
    "build static conformance checker"
    "conformance suite"
    "engines end to end"
    "cgroup v2 + systemd guest"
    "fuzz"
    "nothing left behind"
)
passed=0
failed=0
current=""

# On any exit: name the failed step, list the ones not run, summarise.
report() {
    local rc=$?
    if [ -n "$current" ]; then
        failed=$((failed + 1))
        echo "FAILED step: $current (exit status $rc)"
        local not_run=("${STEPS[@]:$((passed + failed))}")
        [ ${#not_run[@]} -eq 0 ] || printf 'not run:%s\n' "$(printf ' [%s]' "${not_run[@]}")"
    fi
    echo "$passed passed, $failed failed"
}
trap report EXIT

# step NAME COMMAND...: runs COMMAND; under set -e a failure ends the script
# right here, and the EXIT trap reports NAME.
step() {
    current=$1
    shift
    echo
    echo "==> [$((passed + 1))/${#STEPS[@]}] $current"
    "$@"
    passed=$((passed + 1))
    current=""
}

install_packages() {
    # busybox-static: the test rootfs; runc, crun: test oracles and bench
    # peers; libseccomp2: the oracle of the seccomp compiler tests (dlopen);
    # util-linux: nsenter, unshare; iproute2: ip; procps: ps (rrun ps);
    # gcc, libc6-dev: linking;
    # gcc-multilib: gcc -m32, the 32-bit x86 seccomp probe (int 0x80) of
    # runtime/tests/seccomp_docker.rs.
    ensure_packages busybox-static runc crun libseccomp2 util-linux iproute2 gcc libc6-dev \
        gcc-multilib procps
    # Docker 20.10, containerd 1.6, podman 4.3 for the end-to-end step,
    # installed without starting any of their services.
    ensure_engines
    ensure_cargo
    cargo fmt --version
    cargo clippy --version
}

# Everything in release mode; rrun itself linked statically (see build_rrun).
build_release() {
    cargo build --release --workspace --exclude rrun
    build_rrun
}

build_checker() {
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p conformance \
        --bin rrun-checker --target x86_64-unknown-linux-gnu
}

run_conformance() {
    local runc
    runc=$(command -v runc)
    "$target"/release/rrun-conformance --runtime rrun="$target"/release/rrun --runtime runc="$runc" \
        --checker "$target"/x86_64-unknown-linux-gnu/release/rrun-checker
}

# Docker, containerd (ctr and the runc-v2 shim) and podman, each started
# privately by the harness, with runc and rrun side by side.
run_engines() {
    "$target"/release/rrun-e2e --runtime runc="$(command -v runc)" \
        --runtime rrun="$PWD/$target/release/rrun"
}

leftover_mounts() {
    grep -E 'rrun|bundle|conformance' /proc/self/mountinfo || true
}

leftover_cgroups() {
    find /sys/fs/cgroup -maxdepth 3 -type d \( -name '*rrun*' -o -name '*conformance*' \) \
        2>/dev/null || true
}

# Live processes whose name starts with rrun (comm is cut at 15
# characters). Zombies are dead: a killed container's init waits there for
# its reaper (pid 1 after `rrun create` exited), which is not ours to hurry.
leftover_processes() {
    local comm_file comm pid stat
    for comm_file in /proc/[0-9]*/comm; do
        comm=$(cat "$comm_file" 2>/dev/null) || continue
        case $comm in
            rrun*) ;;
            *) continue ;;
        esac
        pid=${comm_file//[^0-9]/}
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        [ "${stat%% *}" = Z ] && continue
        echo "pid $pid: $comm (state ${stat%% *})"
    done
}

check_leftovers() {
    local mounts cgroups processes
    mounts=$(leftover_mounts)
    cgroups=$(leftover_cgroups)
    processes=$(leftover_processes)
    [ -z "$mounts" ] || printf 'leftover mounts:\n%s\n' "$mounts"
    [ -z "$cgroups" ] || printf 'leftover cgroups:\n%s\n' "$cgroups"
    [ -z "$processes" ] || printf 'leftover processes:\n%s\n' "$processes"
    [ -z "$mounts$cgroups$processes" ]
}

require_root
step "install packages" install_packages
step "cargo fmt" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo build --release" build_release
step "cargo test" cargo test --workspace
step "build static conformance checker" build_checker
step "conformance suite" run_conformance
step "engines end to end" run_engines
# The v2 sets (scripts/vm/sets.sh) in a Debian 12 guest under qemu: cgroup v2,
# systemd as pid 1. scripts/vm.sh installs qemu and mmdebstrap and builds
# the image (cached under target/vm) the first time.
step "cgroup v2 + systemd guest" env RRUN_VM_BOOT_TIMEOUT=180 RRUN_VM_TIMEOUT=1500 \
    RRUN_VM_SET_TIMEOUT=600 scripts/vm.sh test v2
# AFL++ (cargo-afl) on the config, seccomp, mount option, channel and
# console targets of fuzz/, a short fixed-time run; any crash fails it.
step "fuzz" scripts/fuzz.sh --seconds 10
step "nothing left behind" check_leftovers
