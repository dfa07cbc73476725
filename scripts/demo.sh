#!/usr/bin/env bash
# Demo: build rrun and run a one-shot busybox container with it.
#
#   ./scripts/demo.sh                    # as root, on Debian 12
#   RUNTIME=runc ./scripts/demo.sh       # same container with another runtime
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_root
ensure_packages busybox-static
if [ -z "${RUNTIME:-}" ]; then
    ensure_c_toolchain
    ensure_cargo
    build_rrun
    RUNTIME="$target"/release/rrun
fi

tmp=$(mktemp -d /tmp/rrun-demo.XXXXXX)
id=demo-$$
cleanup() {
    "$RUNTIME" --root "$tmp/state" delete --force "$id" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

BUNDLE_HOSTNAME=rrun-demo BUNDLE_CGROUPS_PATH=/rrun-demo-$$ \
    scripts/make-bundle.sh "$tmp/bundle" sh -c 'echo hello from rrun; uname -n; id'

echo "+ $RUNTIME --root $tmp/state run --bundle $tmp/bundle $id"
"$RUNTIME" --root "$tmp/state" run --bundle "$tmp/bundle" "$id" </dev/null
