#!/bin/bash
# build-image.sh DIR: builds the guest into the empty directory DIR, as
# scripts/vm.sh build calls it (which caches DIR and rebuilds it when the
# recipe, this folder, changes):
#   DIR/rootfs.img   ext4 root filesystem (raw, sparse), booted with
#                    snapshot=on so that every boot starts from it unchanged
#   DIR/vmlinux      the uncompressed kernel of the image's linux-image-amd64
#   DIR/initrd.img   its initramfs (virtio_pci, virtio_blk, ext4)
#   DIR/kernel       the kernel's version
# Debian 12 from deb.debian.org, made by mmdebstrap as root on the host, in a
# mount namespace of its own (its /proc, /sys and /dev mounts never show on
# the host).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
root=$dir/root
trap 'rm -rf "$root"' EXIT

packages=$(sed -e 's/#.*//' "$here/packages" | tr -s ' \n' ',' | sed -e 's/^,//' -e 's/,$//')
mirror=http://deb.debian.org/debian
unshare --mount --propagation private \
    mmdebstrap --mode=root --variant=apt --include="$packages" \
    --essential-hook="$here/essential-hook.sh \"\$1\"" \
    --customize-hook="$here/customize-hook.sh \"\$1\" $here" \
    bookworm "$root" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"

# mmdebstrap empties /etc/machine-id for reproducibility, and an empty one
# makes every boot a first boot (presets applied again, units re-enabled):
# the image gets a fixed one.
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

vmlinuz=$(find "$root/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
version=${vmlinuz##*/vmlinuz-}
"$here/extract-vmlinux.sh" "$vmlinuz" "$dir/vmlinux"
cp "$root/boot/initrd.img-$version" "$dir/initrd.img"
echo "$version" >"$dir/kernel"

# Room for the tests' bundles and containers' writes above what is installed.
size_mib=$(($(du -sm "$root" | cut -f1) + 3072))
truncate -s "${size_mib}M" "$dir/rootfs.img"
mkfs.ext4 -q -F -L rrun-vm -d "$root" "$dir/rootfs.img"
