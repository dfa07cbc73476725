#!/usr/bin/env bash
# Make a busybox OCI bundle: <dir>/rootfs (static busybox + applet symlinks)
# and <dir>/config.json, shaped like the one `runc spec` writes, but with
# terminal false, the given process args (default: sh), and no ambient
# capabilities (without an inheritable set the kernel refuses to raise them,
# which is a warning on every run; runc 1.2 dropped them from its starter).
#
#   scripts/make-bundle.sh <dir> [args...]
#
# Environment knobs (all optional):
#   BUNDLE_HOSTNAME      hostname of the container          (default: rrun)
#   BUNDLE_CGROUPS_PATH  linux.cgroupsPath, e.g. /rrun-x-1  (default: none)
#   BUSYBOX              the static busybox to copy         (default: /bin/busybox)
#   BUNDLE_SECCOMP       a file holding a linux.seccomp object (default: none)
set -euo pipefail

usage() { echo "usage: $0 <dir> [args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1
shift
[ $# -ge 1 ] || set -- sh

busybox=${BUSYBOX:-/bin/busybox}
hostname=${BUNDLE_HOSTNAME:-rrun}
cgroups_path=${BUNDLE_CGROUPS_PATH:-}
seccomp=${BUNDLE_SECCOMP:-}

if [ ! -x "$busybox" ]; then
    echo "make-bundle: $busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi
# A dynamic busybox would need the host's libc inside the rootfs.
if ! "$busybox" --list >/dev/null 2>&1; then
    echo "make-bundle: $busybox does not run" >&2
    exit 1
fi

# JSON string literal of $1 (escapes backslash, quote and control characters).
json_string() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            \\) out+="\\\\" ;;
            '"') out+='\"' ;;
            $'\n') out+='\n' ;;
            $'\t') out+='\t' ;;
            $'\r') out+='\r' ;;
            [[:cntrl:]]) out+=$(printf '\\u%04x' "'$c") ;;
            *) out+=$c ;;
        esac
    done
    printf '"%s"' "$out"
}

json_array() {
    local sep="" a
    printf '['
    for a in "$@"; do
        printf '%s%s' "$sep" "$(json_string "$a")"
        sep=", "
    done
    printf ']'
}

make_rootfs() {
    local rootfs=$1/rootfs applet
    mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,etc,root}
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
}

cgroups_path_line() {
    [ -z "$cgroups_path" ] || printf '\n\t\t"cgroupsPath": %s,' "$(json_string "$cgroups_path")"
}

seccomp_line() {
    [ -z "$seccomp" ] || printf '\n\t\t"seccomp": %s,' "$(cat "$seccomp")"
}

write_config() {
    local config=$1/config.json
    shift
    cat >"$config" <<JSON
{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": $(json_array "$@"),
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		"rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
		"noNewPrivileges": true
	},
	"root": { "path": "rootfs", "readonly": true },
	"hostname": $(json_string "$hostname"),
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
		  "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		  "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
		{ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
		  "options": ["nosuid", "noexec", "nodev"] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs",
		  "options": ["nosuid", "noexec", "nodev", "ro"] },
		{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		  "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
	],
	"linux": {$(cgroups_path_line)$(seccomp_line)
		"resources": { "devices": [{ "allow": false, "access": "rwm" }] },
		"namespaces": [
			{ "type": "pid" },
			{ "type": "network" },
			{ "type": "ipc" },
			{ "type": "uts" },
			{ "type": "mount" }
		],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
			"/proc/sched_debug", "/sys/firmware", "/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
		]
	}
}
JSON
}

mkdir -p "$dir"
make_rootfs "$dir"
write_config "$dir" "$@"
