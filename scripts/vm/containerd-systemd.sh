#!/usr/bin/env bash
# shellcheck disable=SC2016 # the containers' sh expands $x
# The `containerd-systemd` set of scripts/vm.sh, run in the guest: a private
# containerd 1.6 (its own config, root, state and sockets; the CRI plugin
# off, ctr needs none of it) on a cgroup v2 host with systemd as pid 1.
#
# 1. The stock runc-v2 shim with rrun as its runtime binary and the systemd
#    cgroup driver (`ctr run --runc-binary RRUN --runc-systemd-cgroup
#    --cgroup system.slice:rrun-ctd:ID`, what `SystemdCgroup = true` and
#    `BinaryName` in containerd's configuration send): limits in the scope's
#    cgroup files and in systemd's unit properties, update, metrics, pause
#    and resume, daemon-reload, OOM, nothing left after kill and delete.
#    ctr 1.6 has no `task update` (nor a pids flag): the update is the call
#    the shim makes for containerd's Update, `RRUN --root
#    /run/containerd/runc/NS --systemd-cgroup update --resources -` with
#    containerd's LinuxResources JSON, on the shim's container.
# 2. This project's shim (`--runtime io.containerd.rrun.v2`, found on
#    containerd's PATH). ctr sends runc's options (SystemdCgroup) to the
#    runc runtime only, and containerd 1.6's CRI plugin sends them to
#    io.containerd.runc.v1/v2 only: no client of containerd 1.6 can turn on
#    the shim's systemd driver, so it runs with the cgroupfs driver here
#    (cgroupsPath /NS/ID under the systemd-managed root), which is what the
#    shim does on a v2 host: limits, v2 metrics, pause, OOM, nothing left.
#
# Each check compares what the container, systemd and the cgroup files say
# with what was asked. Usage: containerd-systemd.sh RRUN SHIM
set -u
rrun=$1
shim=$2
ns='rrun-vm'
ref=docker.io/rrun-vm/busybox:latest
failed=0
check() { # WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "pass: $1"
    else
        echo "FAIL: $1: expected $(printf %q "$2"), got $(printf %q "$3")"
        failed=$((failed + 1))
    fi
}
note() { echo "note: $*"; }
work=$(mktemp -d)
ctd=$work/ctd
sock=$ctd/containerd.sock
ctr() { timeout 120 /usr/bin/ctr -a "$sock" -n "$ns" "$@"; }
# task_field ID COLUMN: the task's pid (2) or status (3) in `ctr task ls`.
task_field() { ctr task ls 2>/dev/null | awk -v id="$1" -v c="$2" '$1 == id { print $c }'; }
# metric ID NAME: one value of `ctr task metrics` (cgroup v2 Metrics).
metric() { ctr task metrics "$1" 2>&1 | awk -v n="$2" '$1 == n { print $2 }'; }
# files FILE...: their contents on one line; props UNIT PROPERTY...: values.
files() { cat "$@" 2>&1 | paste -sd' '; }
props() {
    local unit=$1 p
    shift
    for p in "$@"; do systemctl show -p "$p" --value "$unit"; done | paste -sd' '
}
cg_of() { cut -d: -f3 "/proc/$1/cgroup" 2>&1; }
# gone ID: kills the task, waits for it, deletes task and container.
gone() {
    ctr task kill -s SIGKILL "$1" >/dev/null 2>&1
    for _ in $(seq 100); do
        [ "$(task_field "$1" 3)" != RUNNING ] && break
        sleep 0.2
    done
    # ctr warns of the exit code 137 it was asked for.
    out=$(ctr task rm "$1" 2>&1) || echo "$out"
    ctr container rm "$1" >/dev/null
}

# --- the image: an OCI archive of a busybox rootfs, as rrun-e2e makes -----
mkdir -p "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp" "$work/oci/blobs/sha256" "$ctd"
cp /bin/busybox "$work/bb/bin/"
for a in sh cat sleep echo; do ln -s busybox "$work/bb/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bb/etc/passwd"
tar --numeric-owner -C "$work/bb" -cf "$work/layer.tar" .
blob() { # FILE: copies FILE into the layout; prints "sha256:HEX SIZE"
    local hex
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$work/oci/blobs/sha256/$hex"
    echo "sha256:$hex $(stat -c %s "$1")"
}
read -r layer layer_size < <(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$layer" >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest" "$manifest_size" "$ref" >"$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
tar --numeric-owner -C "$work/oci" -cf "$work/oci.tar" .

# --- a private containerd ---------------------------------------------------
cat >"$ctd/config.toml" <<EOF
version = 2
root = "$ctd/root"
state = "$ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$ctd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctd/opt"
EOF
# containerd finds containerd-shim-rrun-v2 on its PATH.
PATH=$(dirname "$shim"):$PATH containerd --config "$ctd/config.toml" >"$work/containerd.log" 2>&1 &
containerd=$!
for _ in $(seq 120); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done
echo "containerd $(ctr version 2>/dev/null | awk '/Version:/ { v = $2 } END { print v }'), runc-v2 shim $(containerd-shim-runc-v2 -v 2>/dev/null | awk '/Version:/ { print $2 }')"
ctr images import "$work/oci.tar" >/dev/null 2>&1 || echo "FAIL: ctr images import"
check "the image imported" "$ref" "$(ctr images ls -q 2>&1)"

# --- 1. the runc-v2 shim, rrun, the systemd driver --------------------------
runc_v2() { # ID ARG...: ctr run through the runc-v2 shim with rrun, systemd driver
    local id=$1
    shift
    ctr run --runc-binary "$rrun" --runc-systemd-cgroup --cgroup "system.slice:rrun-ctd:$id" "$@"
}
out=$(runc_v2 c0 --rm "$ref" c0 sh -c 'echo hello; exit 3' 2>&1)
check "run --rm: output and exit code" "hello 3" "$out $?"

# The same container under runc, for what is not asked: pids.max is then
# systemd's DefaultTasksMax for the scope.
limits() { # ID: the scope's memory.max pids.max cpu.max cpu.weight
    local d=/sys/fs/cgroup/system.slice/rrun-ctd-$1.scope
    files "$d/memory.max" "$d/pids.max" "$d/cpu.max" "$d/cpu.weight"
}
runc_v2 r1 -d --runc-binary /usr/bin/runc --memory-limit 67108864 --cpus 0.5 "$ref" r1 sleep 600 >/dev/null
by_runc=$(limits r1)
gone r1
runc_v2 c1 -d --memory-limit 67108864 --cpus 0.5 "$ref" c1 sleep 600 >/dev/null
unit='rrun-ctd-c1.scope'
dir=/sys/fs/cgroup/system.slice/$unit
pid=$(task_field c1 2)
check "the task runs" RUNNING "$(task_field c1 3)"
check "the container's scope" active "$(systemctl is-active "$unit")"
check "the process's cgroup" "/system.slice/$unit" "$(cg_of "$pid")"
check "the scope's memory.max, cpu.max, cpu.weight" "67108864 50000 100000 39" \
    "$(limits c1 | cut -d' ' -f1,3-)"
check "the scope's cgroup files as under runc (pids.max: systemd's default)" "$by_runc" "$(limits c1)"
check "the scope's MemoryMax, CPUQuotaPerSecUSec, CPUWeight" "67108864 500ms 39" \
    "$(props "$unit" MemoryMax CPUQuotaPerSecUSec CPUWeight)"
check "metrics: memory.usage_limit, pids.current" "67108864 1" \
    "$(metric c1 memory.usage_limit) $(metric c1 pids.current)"
echo '{"memory":{"limit":100663296,"swap":100663296},"pids":{"limit":33},"cpu":{"quota":25000,"period":100000}}' |
    "$rrun" --root "/run/containerd/runc/$ns" --systemd-cgroup update --resources - c1 ||
    echo "FAIL: rrun update --resources - exited with $?"
check "update: the cgroup files" "100663296 33 25000 100000" \
    "$(files "$dir/memory.max" "$dir/pids.max" "$dir/cpu.max")"
check "update: the scope's MemoryMax, TasksMax, CPUQuotaPerSecUSec" "100663296 33 250ms" \
    "$(props "$unit" MemoryMax TasksMax CPUQuotaPerSecUSec)"
check "update: metrics: memory.usage_limit, pids.limit" "100663296 33" \
    "$(metric c1 memory.usage_limit) $(metric c1 pids.limit)"
ctr task pause c1
check "pause: ctr task ls, cgroup.freeze" "PAUSED 1" "$(task_field c1 3) $(cat "$dir/cgroup.freeze")"
ctr task resume c1
check "resume: ctr task ls, cgroup.freeze" "RUNNING 0" "$(task_field c1 3) $(cat "$dir/cgroup.freeze")"
check "exec in the container" "/system.slice/$unit" \
    "$(ctr task exec --exec-id e1 c1 cat /proc/self/cgroup 2>&1 | cut -d: -f3)"
systemctl daemon-reload
check "limits kept across daemon-reload" "100663296 33" "$(files "$dir/memory.max" "$dir/pids.max")"
gone c1
check "kill + delete: no scope left" "" "$(systemctl list-units --all --no-legend 'rrun-ctd-*.scope')"
check "kill + delete: no cgroup left" "" "$(ls -d /sys/fs/cgroup/system.slice/rrun-ctd-* 2>/dev/null)"
runc_v2 c2 --rm --memory-limit 16777216 "$ref" c2 sh -c 'x=a; while :; do x=$x$x; done' >/dev/null 2>&1
check "OOM kill: exit code" 137 "$?"
check "OOM kill: no scope left" "" "$(systemctl list-units --all --no-legend 'rrun-ctd-*.scope')"

# --- 2. this project's shim ------------------------------------------------
shim_run() { ctr run --runtime io.containerd.rrun.v2 "$@"; }
out=$(shim_run --runc-systemd-cgroup --cgroup system.slice:rrun-ctd:s0 --rm "$ref" s0 true 2>&1)
note "containerd-shim-rrun-v2 with the systemd driver: not reachable from ctr 1.6 ($out)" \
    "nor from its CRI plugin (runc's options go to io.containerd.runc.v1/v2 only); cgroupfs driver below"
out=$(shim_run --rm "$ref" s0 sh -c 'echo hello; exit 3' 2>&1)
check "shim: run --rm: output and exit code" "hello 3" "$out $?"
shim_run -d --memory-limit 67108864 --cpus 0.5 "$ref" s1 sleep 600 >/dev/null
dir=/sys/fs/cgroup/$ns/s1
check "shim: the process's cgroup" "/$ns/s1" "$(cg_of "$(task_field s1 2)")"
check "shim: limits in the cgroup files" "67108864 max 50000 100000" \
    "$(files "$dir/memory.max" "$dir/pids.max" "$dir/cpu.max")"
check "shim: metrics (v2): memory.usage_limit, pids.current" "67108864 1" \
    "$(metric s1 memory.usage_limit) $(metric s1 pids.current)"
ctr task pause s1
check "shim: pause: ctr task ls, cgroup.freeze" "PAUSED 1" "$(task_field s1 3) $(cat "$dir/cgroup.freeze")"
ctr task resume s1
check "shim: resume: ctr task ls, cgroup.freeze" "RUNNING 0" "$(task_field s1 3) $(cat "$dir/cgroup.freeze")"
gone s1
check "shim: kill + delete: no cgroup left" "" "$(ls -d "$dir" 2>/dev/null)"
shim_run --rm --memory-limit 16777216 "$ref" s2 sh -c 'x=a; while :; do x=$x$x; done' >/dev/null 2>&1
check "shim: OOM kill: exit code" 137 "$?"

# --- nothing left -------------------------------------------------------------
check "no task or container left" "" "$(ctr task ls -q; ctr container ls -q)"
check "no shim left" "" "$(pgrep -f -- "-address $sock" | tr '\n' ' ')"
rmdir "/sys/fs/cgroup/$ns" 2>/dev/null
kill "$containerd"
wait "$containerd"
[ "$failed" -eq 0 ] || { echo "containerd's log:"; grep -v '^[[:space:]]*$' "$work/containerd.log" | tail -n 40; }
rm -rf "$work"
echo "containerd-systemd: $failed failed"
[ "$failed" -eq 0 ]
