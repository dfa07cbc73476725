# shellcheck shell=bash
# Shared helpers of the scripts in this folder; source it, don't run it.

# apt-get, dpkg and runc live in sbin, which a non-login root shell may lack.
case ":$PATH:" in
    *:/usr/sbin:*) ;;
    *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;;
esac

# Where cargo puts what it builds (the scripts run from the repository root).
# shellcheck disable=SC2034  # used by the scripts that source this file
target=${CARGO_TARGET_DIR:-target}

# Everything here installs into the host and creates containers: root only.
require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$0: run me as root (I install packages and create containers)" >&2
        exit 1
    fi
}

package_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Installs the Debian packages that are missing; does nothing when all are
# there, so the scripts stay fast and idempotent on a prepared machine.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# Linking Rust binaries needs a C compiler driver and libc's crt files and
# static archives (the conformance checker is linked with +crt-static).
ensure_c_toolchain() {
    local pkgs=(libc6-dev)
    command -v cc >/dev/null 2>&1 || pkgs+=(gcc)
    ensure_packages "${pkgs[@]}"
}

# The Rust toolchain comes from rustup; a non-login shell may not have it on PATH.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
        export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "$0: cargo not found: install the Rust toolchain with rustup first" >&2
        exit 1
    fi
    # 2 cores: one build at a time, each with at most 2 jobs.
    export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
}

# The rrun binary, release, at $target/release/rrun as every script expects
# it, linked statically against musl. Every rrun command, and
# the bootstrap that each create and exec spawns from the same image, then
# starts without a dynamic loader and without glibc's start-up, whose CPU
# and cache probing (dozens of CPUID instructions, each a VM exit) is most
# of what an exec costs in a VM: `rrun state` takes 0.9 ms of CPU here with
# musl, 1.3 ms linked statically with glibc, 2.2 ms dynamically (perf stat),
# and the peak RSS of create drops from 6.9 to 5.1 MiB. Where the musl
# target cannot be installed (rustup offline), glibc, statically
# (crt-static for rrun's crate only: given to every crate it breaks the
# proc-macros). Always build rrun this way in scripts, never with plain
# `cargo build --release -p rrun`.
RRUN_MUSL=$(uname -m)-unknown-linux-musl
# Not position-independent (ET_EXEC), unless RRUN_PIE=1. A static PIE
# relocates itself at start: musl writes every pointer of its 330 KiB of
# .data.rel.ro (vtables, tables of strings), and each page written is a
# copy-on-write fault, 85 of them in every rrun process (the command, the
# bootstrap of each create and exec, each delete), 2 us each in this VM:
# `rrun list` 1.04 -> 0.70 ms, run + delete 8.2 -> 7.2 ms, side by side.
# Debian's runc and containerd are not PIE either; the stack, the heap and
# every mmap are still randomized, only rrun's own code and static data
# sit at fixed addresses. RRUN_PIE=1 builds a static PIE, its relocations
# packed as RELR (-z pack-relative-relocs; binutils 2.38+, musl 1.2.4+):
# 6 KiB read at start instead of 446 KiB of RELA entries.
if [ "${RRUN_PIE:-0}" = 1 ]; then
    RRUN_LINK_FLAGS="-Clink-arg=-Wl,-z,pack-relative-relocs"
else
    RRUN_LINK_FLAGS="-Crelocation-model=static -Ctarget-feature=+crt-static"
fi
build_rrun() {
    if rustup target list --installed 2>/dev/null | grep -qx "$RRUN_MUSL" ||
        rustup target add "$RRUN_MUSL" >&2; then
        local flags=$RRUN_LINK_FLAGS
        if pgo_ready; then
            train_rrun_profile || return 1
            # A few generic instantiations (drop glue, fmt::Write) come out
            # of the instrumented build with another shape: their counts
            # are dropped, which is all LLVM's warning about each says.
            flags+=" -Cprofile-use=$RRUN_PGO_DIR/rrun.profdata -Cllvm-args=-no-pgo-warn-mismatch"
        fi
        env "CARGO_TARGET_$(rustflags_triple "$RRUN_MUSL")_RUSTFLAGS=$flags" \
            cargo build --release -p rrun --target "$RRUN_MUSL" || return 1
        mkdir -p "$target"/release
        install -m 0755 "$target/$RRUN_MUSL"/release/rrun "$target"/release/rrun
    else
        echo "note: the $RRUN_MUSL target could not be installed: rrun is linked with glibc" >&2
        cargo rustc --release -p rrun --bin rrun -- -C target-feature=+crt-static
    fi
}

# Profile-guided (PGO): a build instrumented with -Cprofile-generate (in
# its own target directory, $RRUN_PGO_DIR/target) runs the training of
# scripts/pgo-train.sh (containers, as root), and the real build uses the
# profile. What it buys is mostly layout: LLVM puts the functions the
# training never ran in .text.unlikely, so the code a command runs sits
# together and the kernel maps fewer pages of the binary: peak RSS of
# create 5.3 -> 3.4 MiB with RELR, run + delete about 8% faster. It costs
# a second build (about 1.5 min) and needs root and llvm-profdata (rustup's
# llvm-tools component); RRUN_PGO=0 builds without it (faster iteration;
# the tests pass either way).
RRUN_PGO_DIR=${RRUN_PGO_DIR:-$(realpath -m "$target/pgo")}

# CARGO_TARGET_<TRIPLE>_RUSTFLAGS wants the triple upper-case, with _.
rustflags_triple() {
    local t=${1^^}
    echo "${t//-/_}"
}

pgo_ready() {
    [ "${RRUN_PGO:-1}" != 0 ] || return 1
    if [ "$(id -u)" -ne 0 ]; then
        echo "note: not root: rrun is built without profile-guided optimization (the training runs containers)" >&2
        return 1
    fi
    if ! llvm_profdata >/dev/null; then
        rustup component add llvm-tools >&2 || true
        if ! llvm_profdata >/dev/null; then
            echo "note: no llvm-profdata (rustup component llvm-tools): rrun is built without profile-guided optimization" >&2
            return 1
        fi
    fi
    ensure_packages busybox-static
}

# rustup's llvm-profdata, which reads what this rustc's LLVM writes.
llvm_profdata() {
    local tool
    tool="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
    [ -x "$tool" ] && echo "$tool"
}

# The profile, made again only when the instrumented binary or the
# training changed (a new profile rebuilds every crate of the real build).
train_rrun_profile() {
    local gen=$RRUN_PGO_DIR/target profile=$RRUN_PGO_DIR/rrun.profdata trained
    trained=$gen/$RRUN_MUSL/release/rrun
    env "CARGO_TARGET_$(rustflags_triple "$RRUN_MUSL")_RUSTFLAGS=$RRUN_LINK_FLAGS -Cprofile-generate=$RRUN_PGO_DIR/unused" \
        CARGO_TARGET_DIR="$gen" cargo build --release -p rrun --target "$RRUN_MUSL" || return 1
    if [ -s "$profile" ] && [ "$profile" -nt "$trained" ] &&
        [ "$profile" -nt scripts/pgo-train.sh ] && [ "$profile" -nt scripts/make-bundle.sh ]; then
        return 0
    fi
    echo "pgo: training the instrumented rrun (scripts/pgo-train.sh)" >&2
    rm -rf "$RRUN_PGO_DIR/profiles"
    mkdir -p "$RRUN_PGO_DIR/profiles"
    # The log holds one "LLVM Profile Error" per exec: its bootstrap exits
    # inside the container's mount namespace, where the profile is not.
    scripts/pgo-train.sh "$trained" "$RRUN_PGO_DIR/profiles" >"$RRUN_PGO_DIR/train.log" 2>&1 || {
        cat "$RRUN_PGO_DIR/train.log" >&2
        echo "pgo: the training run failed (scripts/pgo-train.sh)" >&2
        return 1
    }
    "$(llvm_profdata)" merge -o "$profile" "$RRUN_PGO_DIR"/profiles/*.profraw
}

# Installing docker.io must not start a dockerd on the machine (its init
# script would create docker0 and iptables rules): while we install, a
# policy-rc.d forbids starting services, unless one is there already.
POLICY=/usr/sbin/policy-rc.d
made_policy=""
drop_policy() {
    if [ -n "$made_policy" ]; then
        rm -f "$POLICY"
        made_policy=""
    fi
}

ensure_engines() {
    # docker.io: dockerd 20.10, the docker CLI, docker-init (tini);
    # containerd: containerd 1.6, ctr, the runc-v2 shim; podman + conmon;
    # runc: the reference column; busybox-static: the image; util-linux:
    # unshare; bsdutils: script (a pty for -t); tar, coreutils: the image
    # archive (sha256sum).
    local pkgs=(docker.io containerd podman conmon runc tini busybox-static util-linux bsdutils
        tar coreutils)
    local missing=() p
    for p in "${pkgs[@]}"; do
        package_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# rrun scripts/lib.sh: no service starts while engines are installed\nexit 101\n' \
            >"$POLICY"
        chmod 755 "$POLICY"
        made_policy=1
    fi
    ensure_packages "${missing[@]}" || {
        drop_policy
        return 1
    }
    drop_policy
}
