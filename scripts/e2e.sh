#!/usr/bin/env bash
# rrun under real engines (issue 10): installs what is missing (docker.io,
# containerd, podman, conmon, runc, tini, busybox-static, util-linux...),
# builds rrun and rrun-e2e in release mode, and runs every Docker, ctr and
# podman check with runc and rrun side by side. Prints one table: check,
# runc, rrun. Exits non-zero when a check fails with rrun.
#
#   ./scripts/e2e.sh                      # as root, on Debian 12
#   ./scripts/e2e.sh --engine docker --filter exec
#   ./scripts/e2e.sh --help               # the harness's options
#
# Every engine runs in private mount and pid namespaces, with its own
# sockets, roots and state under a tmpfs: nothing is left on the machine
# (see conformance/README.md, "rrun-e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export DEBIAN_FRONTEND=noninteractive

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
trap drop_policy EXIT

install_engines() {
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
        printf '#!/bin/sh\n# scripts/e2e.sh: no service starts while engines are installed\nexit 101\n' \
            >"$POLICY"
        chmod 755 "$POLICY"
        made_policy=1
    fi
    ensure_packages "${missing[@]}"
    drop_policy
}

require_root
install_engines
ensure_c_toolchain
ensure_cargo
cargo build --release -p rrun -p conformance --bin rrun --bin rrun-e2e

runtimes=()
case " $* " in
    *" --runtime "*) ;;
    *) runtimes=(--runtime "runc=$(command -v runc)" --runtime "rrun=$PWD/$target/release/rrun") ;;
esac
start=$(date +%s)
rc=0
"$target"/release/rrun-e2e "${runtimes[@]}" "$@" || rc=$?
echo "scripts/e2e.sh: rrun-e2e took $(($(date +%s) - start))s, exit status $rc"
exit "$rc"
