#!/usr/bin/env bash
# The training run of rrun's profile-guided build (build_rrun in lib.sh):
# an instrumented rrun (-Cprofile-generate) does what engines ask of a
# runtime on every container, three times over (run, create, state, start,
# exec, list, kill, delete), and each rrun command and bootstrap merges its
# counters into <profile dir> as it exits. Runs in private mount and pid
# namespaces of its own; leaves nothing but the profile behind.
#
# What is not trained is laid out and optimized as code that never runs:
# the rare commands (ps, pause, update, events...) and the container's init
# and exec'd processes, which end in execve and so never write their
# counts. That is on purpose: it keeps the code of a command together, and
# a command's process is the one with the peak RSS. Writing the init's
# counts before its execve (tried) raised the peak RSS of create from 3.3 to
# 3.6 MiB.
#
#   scripts/pgo-train.sh <instrumented rrun> <profile dir>
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

[ $# -eq 2 ] || { echo "usage: $0 <instrumented rrun> <profile dir>" >&2; exit 2; }
rrun=$(realpath "$1")
profiles=$(realpath "$2")

if [ "${RRUN_PGO_STAGE:-}" != private ]; then
    exec env RRUN_PGO_STAGE=private unshare --mount --propagation private --pid --fork \
        --mount-proc "$self" "$rrun" "$profiles"
fi

work=$(mktemp -d /tmp/rrun-pgo.XXXXXX)
ids=()
cleanup() {
    local id
    for id in "${ids[@]}"; do
        "$rrun" --root "$work/state" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# %m: one file per binary, merged under a lock by every process.
export LLVM_PROFILE_FILE="$profiles/rrun-%m.profraw"
R() { "$rrun" --root "$work/state" "$@"; }

# The two shapes engines send: a one-shot process, and a long-running one
# under Docker's default seccomp profile (as dockerd converts it).
BUNDLE_CGROUPS_PATH=/rrun-pgo-$$-true \
    scripts/make-bundle.sh "$work/true" true
BUNDLE_CGROUPS_PATH=/rrun-pgo-$$-sleep \
    BUNDLE_SECCOMP=fuzz/corpus/seccomp/docker-default.json \
    scripts/make-bundle.sh "$work/sleep" sleep 600

for round in 1 2 3; do
    ids=("t$round" "s$round")
    R run --bundle "$work/true" "t$round" </dev/null
    R delete --force "t$round" 2>/dev/null || true
    R create --bundle "$work/sleep" --pid-file "$work/pid" "s$round" </dev/null
    R state "s$round" >/dev/null
    R start "s$round"
    R exec "s$round" true
    R exec --env A=B --cwd /tmp "s$round" sh -c 'exit 0'
    R list >/dev/null
    R kill "s$round" KILL
    R delete --force "s$round"
done
ids=()
