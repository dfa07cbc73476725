#!/bin/sh
# mmdebstrap --customize-hook: runs on the host, with the guest's root
# directory as $1, after every package is installed. $2 is this folder.
set -eu
root=$1
here=$2

echo rrun-vm >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\trrun-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$root/etc/hosts"
# The root filesystem is mounted read-write by the kernel (root=/dev/vda rw)
# and thrown away at power-off (qemu's snapshot=on): nothing to check or
# remount.
echo '# empty: root is /dev/vda, mounted rw from the kernel command line' >"$root/etc/fstab"

# root logs in without a password on the serial console, in scripts/vm.sh
# shell only (the guest has no network); a test run has no login.
chroot "$root" passwd -d root >/dev/null
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'CONF'
[Unit]
ConditionKernelCommandLine=rrun_vm.mode=shell

[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I $TERM
CONF

# The guest-side runner: mounts the host's shares, runs the host's command,
# writes its exit status and powers off.
install -m 755 "$here/runner.sh" "$root/usr/local/sbin/rrun-vm-runner"
install -m 644 "$here/rrun-vm-runner.service" "$root/etc/systemd/system/rrun-vm-runner.service"
chroot "$root" systemctl enable rrun-vm-runner.service

# Boot time under software emulation: dockerd and containerd start when a
# test uses them (docker.socket stays enabled and starts both on first use);
# nothing periodic runs during a test.
chroot "$root" systemctl disable docker.service containerd.service
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    fstrim.timer man-db.timer getty@tty1.service; do
    chroot "$root" systemctl mask "$unit"
done
# The journal stays in memory (the disk is a throw-away snapshot anyway).
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/rrun-vm.conf"
