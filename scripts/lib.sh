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
# it, linked statically against musl (a static PIE). Every rrun command, and
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
build_rrun() {
    if rustup target list --installed 2>/dev/null | grep -qx "$RRUN_MUSL" ||
        rustup target add "$RRUN_MUSL" >&2; then
        cargo build --release -p rrun --target "$RRUN_MUSL"
        mkdir -p "$target"/release
        install -m 0755 "$target/$RRUN_MUSL"/release/rrun "$target"/release/rrun
    else
        echo "note: the $RRUN_MUSL target could not be installed: rrun is linked with glibc" >&2
        cargo rustc --release -p rrun --bin rrun -- -C target-feature=+crt-static
    fi
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
