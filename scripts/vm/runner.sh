#!/bin/bash
# Guest side of scripts/vm.sh, started by rrun-vm-runner.service once the
# guest has booted. From the kernel command line:
#   rrun_vm.mode=run|shell
#   rrun_vm.shares=TAG=PATH[,TAG=PATH...]   9p shares of the host, mounted
#       read-only at the same absolute path as on the host
# The host's io directory (9p tag rrun_io, mounted at /run/rrun-vm) holds
# cmd.sh (what to run) and timeout (seconds); the runner writes there
# output (the command's stdout and stderr, read live by the host), ready
# (when the guest is up, with its uptime) and status (the command's exit
# status), then powers off. In shell mode it only mounts the shares.
set -u
io=/run/rrun-vm
mode=
shares=
read -r -a cmdline </proc/cmdline
for arg in "${cmdline[@]}"; do
    case $arg in
        rrun_vm.mode=*) mode=${arg#*=} ;;
        rrun_vm.shares=*) shares=${arg#*=} ;;
    esac
done
say() { echo "rrun-vm: $*"; }

# Startup is over when this unit runs; a unit that failed is worth a line.
state=$(timeout 120 systemctl is-system-running --wait 2>&1)
say "system $state after $(cut -d' ' -f1 /proc/uptime) s"
[ "$state" = running ] || systemctl --no-pager --failed

# The 9p transport binds to the shares' virtio devices when it is loaded;
# udev may not have loaded it yet.
modprobe 9pnet_virtio
nine_p() { # TAG DIR [OPTIONS]
    local try
    for try in 1 2 3 4 5; do
        mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000${3:+,$3}" "$1" "$2" && return 0
        sleep "$try"
    done
    return 1
}
mkdir -p "$io"
if ! nine_p rrun_io "$io"; then
    say "cannot mount the host's io directory"
    systemctl poweroff --force --force
fi
IFS=, read -r -a share_list <<<"$shares"
for share in "${share_list[@]}"; do
    mkdir -p "${share#*=}"
    nine_p "${share%%=*}" "${share#*=}" cache=loose,ro || say "cannot mount $share"
done
cut -d' ' -f1 /proc/uptime >"$io/ready"

if [ "$mode" = shell ]; then
    say "shares mounted: ${shares//,/ }; power off with: poweroff"
    exit 0
fi

limit=$(cat "$io/timeout" 2>/dev/null || echo 3600)
cd /
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb RUST_BACKTRACE=1 \
    timeout --kill-after=30 "$limit" bash "$io/cmd.sh" >"$io/output" 2>&1 </dev/null
status=$?
[ "$status" -ne 124 ] || echo "rrun-vm: the command ran past its ${limit} s limit (killed)" >>"$io/output"
echo "$status" >"$io/status.tmp" && mv "$io/status.tmp" "$io/status"
say "command exited with status $status after $(cut -d' ' -f1 /proc/uptime) s of uptime"
sync
systemctl poweroff --force --force
