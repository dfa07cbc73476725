#!/usr/bin/env bash
# Coverage-guided fuzzing of rrun's untrusted-input parsers with AFL++
# through cargo-afl, on the stable toolchain (see fuzz/README.md).
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 20         # the short run of the test command
#   scripts/fuzz.sh --seconds 3600       # the long run (5 targets: 5 hours)
#   scripts/fuzz.sh --only seccomp,config --seconds 600
#
# As root on Debian 12 with the Rust toolchain from rustup, it installs what
# is missing (gcc and make from Debian, cargo-afl from crates.io, which
# builds AFL++), builds the targets in fuzz/ (their own Cargo project, with
# their own target directory: the workspace's build is untouched), replays
# each target's seed corpus (fuzz/corpus/<target>/), then fuzzes each target
# in turn for the given time (output in fuzz/out/<target>/). Exits non-zero
# if a seed or a fuzzed input crashes a target, printing the input's path
# and the command that reproduces it.
set -euo pipefail

CARGO_AFL_VERSION=0.18.2
TARGETS=(config seccomp mounts channel terminal)
seconds=60
only=""

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --seconds)
        seconds="$2"
        shift 2
        ;;
    --only)
        only="$2"
        shift 2
        ;;
    -h | --help) usage ;;
    *)
        echo "fuzz.sh: unknown argument $1" >&2
        usage 2
        ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || {
    echo "fuzz.sh: --seconds takes a positive number" >&2
    exit 2
}
if [[ -n "$only" ]]; then
    IFS=, read -r -a TARGETS <<<"$only"
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$repo/fuzz"
# shellcheck disable=SC1091
[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
command -v cargo >/dev/null || {
    echo "fuzz.sh: cargo not found: install the Rust toolchain with rustup first" >&2
    exit 1
}

step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS

# --- install -----------------------------------------------------------
step "install"
if ! command -v gcc >/dev/null || ! command -v make >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q gcc make libc6-dev
fi
if ! cargo afl --version 2>/dev/null | grep -q "cargo-afl $CARGO_AFL_VERSION"; then
    echo "cargo install cargo-afl $CARGO_AFL_VERSION (builds AFL++; a few minutes)"
    cargo install cargo-afl --locked --version "$CARGO_AFL_VERSION"
fi
# AFL++ is built per rustc version: again after a toolchain update.
if ! out=$(cargo afl config --build 2>&1) && ! grep -q "already built" <<<"$out"; then
    echo "$out" >&2
    echo "fuzz.sh: cargo afl config --build failed" >&2
    exit 1
fi
cargo afl --version
echo "install: $((SECONDS - t0)) s"

# --- build -------------------------------------------------------------
step "build (fuzz/target/release)"
t1=$SECONDS
(cd "$fuzz" && cargo afl build --release --bins)
echo "build: $((SECONDS - t1)) s"

# --- replay the seeds ----------------------------------------------------
# A seed that crashes would stop afl-fuzz with "all test cases crash";
# replaying them first names the input. Without AFL++ the binary runs one
# input from stdin.
step "replay the seed corpora"
failed=()
for t in "${TARGETS[@]}"; do
    bin="$fuzz/target/release/$t"
    [[ -x "$bin" && -d "$fuzz/corpus/$t" ]] || {
        echo "fuzz.sh: no target $t (targets: config seccomp mounts channel terminal)" >&2
        exit 2
    }
    n=0
    for input in "$fuzz/corpus/$t"/*; do
        n=$((n + 1))
        if ! timeout 60 "$bin" <"$input" >/dev/null 2>"$fuzz/replay.err"; then
            echo "CRASH: $t: seed $input"
            tail -n 20 "$fuzz/replay.err" | grep -v '^ ' || true
            echo "  reproduce: $bin < $input"
            failed+=("$input")
        fi
    done
    echo "$t: $n seeds replayed"
done
rm -f "$fuzz/replay.err"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: ${#failed[@]} seed(s) crash" >&2
    exit 1
fi

# --- fuzz ----------------------------------------------------------------
# The machine is shared and not tuned for AFL++: no CPU binding, no
# core_pattern or cpufreq change (those env vars make AFL++ accept it).
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_FAST_CAL=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# CmpLog (cargo-afl's default) solves magic values but doubles the cost of
# every new input: worth it on long runs only.
cmplog=()
[[ "$seconds" -lt 600 ]] && cmplog=(-c -)
crashes=()
for t in "${TARGETS[@]}"; do
    step "fuzz $t for $seconds s"
    out="$fuzz/out/$t"
    rm -rf "$out"
    mkdir -p "$out"
    rc=0
    # -t: per-input timeout in ms (the socket targets close the writing
    # end before reading, so the channel's 10 s frame deadline never runs).
    timeout $((seconds + 120)) cargo afl fuzz -i "$fuzz/corpus/$t" -o "$out" \
        -V "$seconds" -t 2000 "${cmplog[@]}" -- "$fuzz/target/release/$t" >"$out/afl.log" 2>&1 || rc=$?
    stats="$out/default/fuzzer_stats"
    if [[ ! -f "$stats" ]]; then
        tail -n 30 "$out/afl.log"
        echo "fuzz.sh: afl-fuzz did not run $t (exit $rc)" >&2
        exit 1
    fi
    get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    echo "$t: $(get execs_done) execs ($(get execs_per_sec)/s), corpus $(get corpus_count)," \
        "edges $(get edges_found), crashes $(get saved_crashes), hangs $(get saved_hangs)"
    for c in "$out"/default/crashes/id:*; do
        [[ -e "$c" ]] || continue
        echo "CRASH: $t: $c"
        echo "  reproduce: $fuzz/target/release/$t < '$c'"
        crashes+=("$c")
    done
    for h in "$out"/default/hangs/id:*; do
        [[ -e "$h" ]] || continue
        echo "hang (over 2 s, not a failure; check it): $h"
    done
done

echo
echo "fuzz.sh: total $((SECONDS - t0)) s"
if [[ ${#crashes[@]} -gt 0 ]]; then
    echo "fuzz.sh: ${#crashes[@]} crashing input(s); each becomes a regression test and a fix" >&2
    exit 1
fi
echo "fuzz.sh: no crash"
