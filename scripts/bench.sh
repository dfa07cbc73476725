#!/usr/bin/env bash
# Benchmarks of rrun against runc and crun (those installed), one after the
# other, each printing a markdown report:
#
#   lifecycle  the runtimes' own CLI: run + delete, create + start + wait +
#              delete, state, exec in a running container, peak RSS, system
#              calls of run and delete (strace -f -c), beside the floor
#              (unshare -pmnui --fork /bin/true); then issue 14's goals, each
#              with its ratio and met / not met (rrun-bench lifecycle)
#   endurance  1,000 consecutive rrun run + delete of /bin/true, each bounded
#              by 10 s; fails on any failure, hang or leftover
#              (rrun-bench endurance, ~40 s)
#   engines    docker run --rm and ctr run --rm through containerd's runc-v2
#              shim with each runtime, and ctr run --rm through rrun's own
#              shim (containerd-shim-rrun-v2, built here), private engines
#              started once (rrun-bench engines; installs docker.io,
#              containerd... if missing)
#   scale      bursts of 200 containers created, started and removed 16 at a
#              time (containers/s); list and state with 1,000 created
#              containers in the runtime's root (rrun-bench scale, ~3 min;
#              last, since its 16 commands at a time raise the load average
#              that the others report)
#   guest      lifecycle in the cgroup v2 + systemd guest of the test command
#              (scripts/vm.sh bench: Debian 12 under qemu, runc and crun
#              there; under software emulation only the ratios mean
#              anything; ~4 min with --guest-runs 10, plus the image the
#              first time)
#
#   ./scripts/bench.sh [--only MODE[,MODE...]] [--runs N] [--runtime NAME=PATH]...
#                      [--make-bundle PATH] [--shim NAME=TYPE]... [--no-shim]
#                      [--containers N] [--listed N] [--endurance-runs N]
#                      [--guest-runs N]
#
# All five by default, in that order. --runs goes to lifecycle, engines
# (defaults: 30, 20) and to scale's list and state (default 10); --runtime
# to lifecycle, scale and engines (default: rrun, runc, crun), and the one
# named rrun to endurance; --make-bundle to lifecycle, scale and endurance;
# --shim to engines, which measures rrun-shim=io.containerd.rrun.v2 unless
# --no-shim; --containers (burst size, 200) and --listed (1000) to scale;
# --endurance-runs (1000) to endurance; --guest-runs (10) to guest. A mode failing does not stop the
# others; the exit status is the last failure's. apt-get install runc crun
# to have the peers (a missing one is noted and skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

modes=(lifecycle endurance engines scale guest)
only=""
default_shim=1
guest_runs=10
common=() lifecycle_args=() scale_args=() endurance_args=() engines_args=() bundle_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --only)
            [ $# -ge 2 ] || { echo "$0: --only needs a mode: ${modes[*]}" >&2; exit 2; }
            IFS=, read -r -a wanted <<<"$2"
            for m in "${wanted[@]}"; do
                case $m in
                    lifecycle | scale | endurance | engines | guest) only+=" $m" ;;
                    *) echo "$0: --only $m: want one of ${modes[*]}" >&2; exit 2 ;;
                esac
            done
            shift 2
            ;;
        --runs)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            common+=("$1" "$2")
            shift 2
            ;;
        --runtime)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            common+=("$1" "$2")
            case $2 in rrun=*) endurance_args+=("$1" "$2") ;; esac
            shift 2
            ;;
        --make-bundle)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            bundle_args+=("$1" "$2")
            shift 2
            ;;
        --shim)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            engines_args+=("$1" "$2")
            shift 2
            ;;
        --no-shim)
            default_shim=""
            shift
            ;;
        --containers | --listed)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            scale_args+=("$1" "$2")
            shift 2
            ;;
        --endurance-runs)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            endurance_args+=(--runs "$2")
            shift 2
            ;;
        --guest-runs)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
            guest_runs=$2
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
[ -n "$only" ] || only=" ${modes[*]}"
wants() { [[ " $only " == *" $1 "* ]]; }

require_root
ensure_packages busybox-static util-linux
wants lifecycle && ensure_packages strace
wants engines && ensure_engines
ensure_c_toolchain
ensure_cargo
packages=(-p rrun-bench)
if wants engines && [ -n "$default_shim" ]; then
    packages+=(-p containerd-shim-rrun-v2)
    engines_args+=(--shim rrun-shim=io.containerd.rrun.v2)
fi
build_rrun
cargo build --release "${packages[@]}"
for peer in runc crun; do
    command -v "$peer" >/dev/null 2>&1 || echo "note: $peer not installed, not measured"
done

rc=0 first=1
run() {
    local mode=$1 start status=0
    shift
    [ -n "$first" ] || echo
    first=""
    start=$(date +%s)
    "$target"/release/rrun-bench "$mode" "$@" || status=$?
    echo "scripts/bench.sh: $mode benchmark took $(($(date +%s) - start))s, exit status $status" >&2
    [ "$status" -eq 0 ] || rc=$status
}
wants lifecycle && run lifecycle ${common[@]+"${common[@]}"} \
    ${lifecycle_args[@]+"${lifecycle_args[@]}"} ${bundle_args[@]+"${bundle_args[@]}"}
wants endurance && run endurance ${endurance_args[@]+"${endurance_args[@]}"} \
    ${bundle_args[@]+"${bundle_args[@]}"}
wants engines && run engines ${common[@]+"${common[@]}"} ${engines_args[@]+"${engines_args[@]}"}
wants scale && run scale ${common[@]+"${common[@]}"} \
    ${scale_args[@]+"${scale_args[@]}"} ${bundle_args[@]+"${bundle_args[@]}"}
if wants guest; then
    echo
    start=$(date +%s) status=0
    scripts/vm.sh bench lifecycle --runs "$guest_runs" || status=$?
    echo "scripts/bench.sh: guest lifecycle benchmark took $(($(date +%s) - start))s, exit status $status" >&2
    [ "$status" -eq 0 ] || rc=$status
fi
exit "$rc"
