#!/usr/bin/env bash
# Benchmarks of rrun against runc and crun (those installed), one after the
# other, each printing a markdown report:
#
#   lifecycle  the runtimes' own CLI: run, create + start + delete, state,
#              peak RSS (rrun-bench lifecycle)
#   engines    docker run --rm and ctr run --rm through containerd's runc-v2
#              shim with each runtime, private engines started once
#              (rrun-bench engines; installs docker.io, containerd... if missing)
#
#   ./scripts/bench.sh [--only lifecycle|engines] [--runs N] [--runtime NAME=PATH]...
#                      [--make-bundle PATH] [--shim NAME=TYPE]...
#
# --runs and --runtime go to both (defaults: 30 lifecycle runs, 20 engine
# runs; rrun, runc, crun); --make-bundle to lifecycle only, --shim to
# engines only. apt-get install runc crun to have the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

only=""
common=() lifecycle_args=() engines_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --only)
            [ $# -ge 2 ] || { echo "$0: --only needs lifecycle or engines" >&2; exit 2; }
            case $2 in
                lifecycle | engines) only=$2 ;;
                *) echo "$0: --only $2: want lifecycle or engines" >&2; exit 2 ;;
            esac
            shift 2
            ;;
        --runs | --runtime)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            common+=("$1" "$2")
            shift 2
            ;;
        --make-bundle)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            lifecycle_args+=("$1" "$2")
            shift 2
            ;;
        --shim)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            engines_args+=("$1" "$2")
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "$0: unknown argument $1" >&2
            usage >&2
            exit 2
            ;;
    esac
done

require_root
ensure_packages busybox-static
[ "$only" = lifecycle ] || ensure_engines
ensure_c_toolchain
ensure_cargo
cargo build --release -p rrun -p rrun-bench
for peer in runc crun; do
    command -v "$peer" >/dev/null 2>&1 || echo "note: $peer not installed, not measured"
done

rc=0
run() {
    local mode=$1 start status=0
    shift
    start=$(date +%s)
    "$target"/release/rrun-bench "$mode" "$@" || status=$?
    echo "scripts/bench.sh: $mode benchmark took $(($(date +%s) - start))s, exit status $status" >&2
    [ "$status" -eq 0 ] || rc=$status
}
if [ "$only" != engines ]; then
    run lifecycle ${common[@]+"${common[@]}"} ${lifecycle_args[@]+"${lifecycle_args[@]}"}
fi
if [ "$only" != lifecycle ]; then
    [ -n "$only" ] || echo
    run engines ${common[@]+"${common[@]}"} ${engines_args[@]+"${engines_args[@]}"}
fi
exit "$rc"
