#!/usr/bin/env bash
# Lifecycle benchmark of rrun against runc and crun (those installed).
#
#   ./scripts/bench.sh [--runs N] [--runtime NAME=PATH]...
#
# Prints a markdown report. apt-get install runc crun to have the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_root
ensure_packages busybox-static
ensure_c_toolchain
ensure_cargo
cargo build --release -p rrun -p rrun-bench
for peer in runc crun; do
    command -v "$peer" >/dev/null 2>&1 || echo "note: $peer not installed, not measured"
done
exec "$target"/release/rrun-bench "$@"
