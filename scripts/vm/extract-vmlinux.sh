#!/bin/bash
# extract-vmlinux.sh BZIMAGE OUT: the uncompressed ELF kernel inside a
# bzImage (Debian's vmlinuz). qemu boots it directly (PVH entry), which
# spares the 8 s that unpacking the compressed image takes under software
# emulation. Tries each compressor's magic at each offset where it occurs.
set -euo pipefail
image=$1
out=$2
try() { # MAGIC COMMAND...
    local magic=$1 offset
    shift
    while IFS=: read -r offset _; do
        tail -c +$((offset + 1)) "$image" | "$@" >"$out" 2>/dev/null || true
        if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
            return 0
        fi
    done < <(LC_ALL=C grep -obUaP "$magic" "$image")
    return 1
}
try '\xFD7zXZ\x00' xz -dc ||
    try '\x28\xB5\x2F\xFD' zstd -dcq ||
    try '\x1F\x8B\x08' gzip -dc ||
    try '\x02\x21\x4C\x18' lz4 -dcq || {
    rm -f "$out"
    echo "$0: no ELF kernel found in $image" >&2
    exit 1
}
