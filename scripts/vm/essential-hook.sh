#!/bin/sh
# mmdebstrap --essential-hook: runs on the host, with the guest's root
# directory as $1, after Debian's essential packages are unpacked and before
# the others (linux-image-amd64 builds its initramfs when it is installed).
set -eu
root=$1

# A small initramfs: only what mounts the root filesystem from virtio-blk
# (the rest of the modules load from the root filesystem itself), and gzip,
# which the essential set has.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
cat >"$root/etc/initramfs-tools/conf.d/rrun-vm.conf" <<'CONF'
MODULES=list
COMPRESS=gzip
CONF
cat >"$root/etc/initramfs-tools/hooks/rrun-vm" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_blk ext4
HOOK
chmod 755 "$root/etc/initramfs-tools/hooks/rrun-vm"
