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

require_root
ensure_engines
ensure_c_toolchain
ensure_cargo
build_rrun
cargo build --release -p conformance --bin rrun-e2e

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
