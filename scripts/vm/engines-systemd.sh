#!/usr/bin/env bash
# shellcheck disable=SC2016 # the containers' sh expands $(...) and $x
# The `engines-systemd` set of scripts/vm.sh, run in the guest: Docker 20.10
# with native.cgroupdriver=systemd and rrun registered, on a cgroup v2 host
# with systemd as pid 1 and AppArmor enabled (Docker then gives every
# container a profile: `unconfined` here, the image has no apparmor_parser).
# Each check compares what the container, systemd and the cgroup files say
# with what was asked. Usage: engines-systemd.sh RRUN
set -u
rrun=$1
failed=0
check() { # WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "pass: $1"
    else
        echo "FAIL: $1: expected $(printf %q "$2"), got $(printf %q "$3")"
        failed=$((failed + 1))
    fi
}
work=$(mktemp -d)
mkdir -p "$work/bb/bin"
cp /bin/busybox "$work/bb/bin/"
for a in sh cat sleep; do ln -s busybox "$work/bb/bin/$a"; done
tar -C "$work/bb" -cf "$work/bb.tar" .
dockerd --exec-opt native.cgroupdriver=systemd --add-runtime "rrun=$rrun" --bridge=none \
    --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
dockerd=$!
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
check "docker's cgroup driver" systemd "$(docker info -f '{{.CgroupDriver}}' 2>&1)"
docker import "$work/bb.tar" bb:latest >/dev/null || echo "FAIL: docker import"
run=(docker run --security-opt apparmor=unconfined --runtime rrun --network none)

check "limits in the container's cgroup files" "67108864 33 50000 100000" \
    "$("${run[@]}" --rm --memory 64m --pids-limit 33 --cpus 0.5 bb \
        sh -c 'echo $(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max)' 2>&1)"
id=$("${run[@]}" -d --memory 64m bb sleep 600)
unit=docker-$id.scope
check "the container's scope" "active" "$(systemctl is-active "$unit")"
check "MemoryMax of the scope" 67108864 "$(systemctl show -p MemoryMax --value "$unit")"
docker update -q --memory 96m --memory-swap 96m "$id" >/dev/null 2>&1 ||
    docker update --memory 96m --memory-swap 96m "$id" >/dev/null
check "update: memory.max" 100663296 "$(cat "/sys/fs/cgroup/system.slice/$unit/memory.max")"
docker pause "$id" >/dev/null
check "pause" paused "$(docker inspect -f '{{.State.Status}}' "$id")"
check "pause: cgroup.freeze" 1 "$(cat "/sys/fs/cgroup/system.slice/$unit/cgroup.freeze")"
docker unpause "$id" >/dev/null
check "unpause" running "$(docker inspect -f '{{.State.Status}}' "$id")"
check "exec in the container's cgroup namespace" "0::/" "$(docker exec "$id" cat /proc/self/cgroup)"
check "stats: memory limit" 96MiB "$(docker stats --no-stream --format '{{.MemUsage}}' "$id" | sed 's/.* \/ //')"
systemctl daemon-reload
check "limit kept across daemon-reload" 100663296 "$(cat "/sys/fs/cgroup/system.slice/$unit/memory.max")"
docker rm -f "$id" >/dev/null
check "no scope left after rm" "" "$(systemctl list-units --no-legend "docker-*.scope")"
"${run[@]}" --rm --memory 16m bb sh -c 'x=a; while :; do x=$x$x; done' >/dev/null 2>&1
check "OOM kill: exit code" 137 "$?"
kill "$dockerd"
wait "$dockerd"
rm -rf "$work"
echo "engines-systemd: $failed failed"
[ "$failed" -eq 0 ]
