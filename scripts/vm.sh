#!/usr/bin/env bash
# Runs tests in a Debian 12 guest booted under qemu: systemd as pid 1,
# cgroup v2 unified (Debian 12's default), the stock kernel, the runtimes and
# engines users have (runc, crun, docker.io, containerd). The host's build
# reaches the guest by a read-only 9p share of the repository mounted at the
# same absolute path, so test executables run there as they are built here.
#
#   scripts/vm.sh build                  # the image (cached; rebuilt when scripts/vm/ changes)
#   scripts/vm.sh test SET... [-- ARG...]# build SETs on the host, run them in one boot
#   scripts/vm.sh run [--] CMD [ARG...]  # any command in the guest (cwd: the repository)
#   scripts/vm.sh bench [ARG...]         # rrun-bench ARG... in the guest (runc, crun there)
#   scripts/vm.sh shell                  # interactive root shell on the serial console
#   scripts/vm.sh sets                   # the sets
#
# A SET is a test file's name (runtime/, libcontainer/ or shim/tests/NAME.rs,
# or PACKAGE:NAME), `conformance` (the suite against rrun and runc;
# `conformance-crun` adds crun),
# or `v2` (issue 11's first list). ARGs go to every test executable (a test
# name filter, --exact, --nocapture...).
#
# `bench` builds rrun and rrun-bench (release) on the host and runs
# `rrun-bench ARG...` in the guest (no mode: lifecycle; e.g. `bench --runs 5`)
# against the release rrun and the guest's runc and crun, in a scope of its
# own as a login shell's command. Its markdown report alone goes to stdout;
# the guest's progress and the timings go to stderr.
#
# The exit status is the guest command's. A guest that does not boot, or
# ends without handing back a status, fails with its console log shown.
#
# Environment: RRUN_VM_CACHE (image and runs; default target/vm),
# RRUN_VM_ACCEL (kvm or tcg; default kvm where the CPU shows vmx/svm),
# RRUN_VM_CPUS (2), RRUN_VM_MEM (MiB, 4096), RRUN_VM_BOOT_TIMEOUT (s, 300),
# RRUN_VM_TIMEOUT (s, for the guest command, 3600), RRUN_VM_SET_TIMEOUT
# (s, for each set, 1800), RRUN_VM_APPEND (more kernel command line),
# RRUN_VM_KEEP=1 (keep the run's directory, console log and output, after
# a success too; the last five runs' stay under RRUN_VM_CACHE/runs).
#
# In the guest each set runs in a systemd scope of its own (MemoryMax=3G),
# as a root shell's command does; `run` runs in the runner's service.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091 # checked on its own
. scripts/lib.sh
export DEBIAN_FRONTEND=noninteractive

repo=$(pwd)
cache=${RRUN_VM_CACHE:-$target/vm}
image=
boot_timeout=${RRUN_VM_BOOT_TIMEOUT:-300}
cmd_timeout=${RRUN_VM_TIMEOUT:-3600}
set_timeout=${RRUN_VM_SET_TIMEOUT:-1800}

# What the image is made from: a change in any of these files rebuilds it.
RECIPE=(build-image.sh packages essential-hook.sh customize-hook.sh runner.sh
    rrun-vm-runner.service extract-vmlinux.sh)

say() { echo "vm: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# --- host packages -------------------------------------------------------

# qemu-system-x86 comes from bookworm-backports: bookworm's 7.2 conflicts
# with the backports qemu-utils some machines have.
ensure_backports_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if ! grep -Eqs '^[^#]*bookworm-backports' /etc/apt/sources.list \
        /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
        echo "adding the bookworm-backports source"
        printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
            'Suites: bookworm-backports' 'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
            >/etc/apt/sources.list.d/bookworm-backports.sources
    fi
    echo "installing from bookworm-backports: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing[@]}" </dev/null
}

ensure_host_packages() {
    # mmdebstrap: the guest's root; e2fsprogs: mkfs.ext4 -d; xz-utils,
    # zstd, gzip, lz4: unpacking the kernel; jq: cargo's JSON messages.
    ensure_packages mmdebstrap e2fsprogs xz-utils zstd gzip lz4 util-linux jq
    ensure_backports_packages qemu-system-x86
}

# --- the image ------------------------------------------------------------

recipe_hash() {
    (cd scripts/vm && sha256sum "${RECIPE[@]}") | sha256sum | cut -c1-16
}

absolute_cache() {
    mkdir -p "$cache"
    cache=$(cd "$cache" && pwd)
    image=$cache/image
}

# Builds the image unless the one cached was made from this recipe.
build_image() {
    require_root
    ensure_host_packages
    absolute_cache
    local hash lock work start
    hash=$(recipe_hash)
    exec {lock}>"$cache/build.lock"
    flock -w 3600 "$lock" || die "another image build holds $cache/build.lock"
    if [ "$(cat "$image/recipe" 2>/dev/null)" = "$hash" ]; then
        say "image $hash is up to date ($image, kernel $(cat "$image/kernel"))"
        exec {lock}>&-
        return 0
    fi
    say "building image $hash in $image (mmdebstrap, a few minutes)"
    start=$SECONDS
    work=$(mktemp -d "$cache/build.XXXXXX")
    if ! timeout -k 30 1800 scripts/vm/build-image.sh "$work"; then
        rm -rf "$work"
        die "image build failed"
    fi
    echo "$hash" >"$work/recipe"
    rm -rf "$image.old"
    [ ! -e "$image" ] || mv "$image" "$image.old"
    mv "$work" "$image"
    rm -rf "$image.old"
    say "image $hash built in $((SECONDS - start)) s: kernel $(cat "$image/kernel"), root $(du -sh --apparent-size "$image/rootfs.img" | cut -f1) ($(du -sh "$image/rootfs.img" | cut -f1) used)"
    exec {lock}>&-
}

# --- booting --------------------------------------------------------------

# Sets accel (qemu's arguments) and accel_name.
choose_accel() {
    accel_name=${RRUN_VM_ACCEL:-auto}
    if [ "$accel_name" = auto ]; then
        # A paravirtual /dev/kvm (no vmx/svm flag) runs only patched guest
        # kernels: the stock one needs software emulation there.
        if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
            accel_name=kvm
        else
            accel_name=tcg
        fi
    fi
    case $accel_name in
        kvm) accel=(-accel kvm -cpu host) ;;
        tcg) accel=(-accel "tcg,thread=multi" -cpu max) ;;
        *) die "RRUN_VM_ACCEL is kvm or tcg, not $accel_name" ;;
    esac
}

# The host directories the guest mounts at the same path: the repository,
# and the target directory when it is elsewhere.
share_dirs() {
    local target_abs
    mkdir -p "$target"
    target_abs=$(cd "$target" && pwd)
    echo "$repo"
    case $target_abs/ in
        "$repo"/*) ;;
        *) echo "$target_abs" ;;
    esac
}

# boot MODE RUN_DIR: boots the guest with RUN_DIR/io as its io directory
# (cmd.sh and timeout already there for MODE run) and waits for it to end.
# Returns the command's exit status; 125 when the guest handed back none.
boot() {
    local mode=$1 run=$2 io=$2/io accel accel_name
    choose_accel
    local qemu=(qemu-system-x86_64 -name rrun-vm -machine q35 "${accel[@]}"
        -smp "${RRUN_VM_CPUS:-2}" -m "${RRUN_VM_MEM:-4096}"
        -nodefaults -no-user-config -display none -no-reboot
        -kernel "$image/vmlinux" -initrd "$image/initrd.img"
        -drive "file=$image/rootfs.img,format=raw,if=virtio,snapshot=on,cache=unsafe"
        -fsdev "local,id=io,path=$io,security_model=none"
        -device "virtio-9p-pci,fsdev=io,mount_tag=rrun_io")
    local shares=() n=0 dir
    while read -r dir; do
        case $dir in
            *[[:space:],=]*) die "cannot share a path with a space, comma or '=': $dir" ;;
        esac
        qemu+=(-fsdev "local,id=share$n,path=$dir,security_model=none,readonly=on"
            -device "virtio-9p-pci,fsdev=share$n,mount_tag=rrun_share$n")
        shares+=("rrun_share$n=$dir")
        n=$((n + 1))
    done < <(share_dirs)
    local cmdline
    cmdline="$(cat scripts/vm/cmdline) rrun_vm.mode=$mode rrun_vm.shares=$(IFS=,; echo "${shares[*]}") ${RRUN_VM_APPEND:-}"
    qemu+=(-append "$cmdline")

    local lock
    exec {lock}>"$cache/guest.lock"
    if ! flock -n "$lock"; then
        say "waiting for the guest another scripts/vm.sh runs (one at a time)"
        flock -w "$((cmd_timeout + boot_timeout))" "$lock" || die "still busy: $cache/guest.lock"
    fi

    # The last five runs' directories stay for a look (failures keep theirs).
    find "$cache/runs" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn |
        tail -n +6 | cut -d' ' -f2- | xargs -r rm -rf

    if [ "$mode" = shell ]; then
        say "booting; the shares are mounted when the runner says so. Leave with: poweroff (or Ctrl-a x)"
        "${qemu[@]}" -serial mon:stdio
        return
    fi

    say "booting ($accel_name, ${RRUN_VM_CPUS:-2} vCPUs, ${RRUN_VM_MEM:-4096} MiB, kernel $(cat "$image/kernel"))"
    local start=$SECONDS qpid printed=0 up='' size deadline status
    "${qemu[@]}" -serial "file:$run/console.log" >"$run/qemu.log" 2>&1 &
    qpid=$!
    deadline=$((start + boot_timeout + cmd_timeout + 120))
    flush() {
        size=$(stat -c %s "$io/output" 2>/dev/null || echo 0)
        if [ "$size" -gt "$printed" ]; then
            tail -c +$((printed + 1)) "$io/output" | head -c $((size - printed))
            printed=$size
        fi
    }
    while kill -0 "$qpid" 2>/dev/null; do
        if [ -z "$up" ] && [ -s "$io/ready" ]; then
            up=$((SECONDS - start))
            say "guest up in $up s (its uptime: $(cat "$io/ready") s); running the command"
        fi
        flush
        if [ -z "$up" ] && [ $((SECONDS - start)) -ge "$boot_timeout" ]; then
            say "the guest did not come up in $boot_timeout s: stopping it"
            kill "$qpid"
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "the guest did not power off in time: stopping it"
            kill "$qpid"
            break
        fi
        sleep 1
    done
    wait "$qpid" || true
    flush
    # A command that ended within the poll that saw the guest come up: its
    # own uptime then tells the boot time.
    [ -n "$up" ] || [ ! -s "$io/ready" ] || up=$(cut -d. -f1 "$io/ready")
    exec {lock}>&-
    status=$(cat "$io/status" 2>/dev/null || true)
    if [ -z "$status" ]; then
        say "FAILED: the guest ended without handing back an exit status" \
            "($((SECONDS - start)) s after boot started). qemu said:"
        cat "$run/qemu.log" >&2
        say "console log ($run/console.log):"
        tail -n 200 "$run/console.log" >&2 || true
        return 125
    fi
    say "command exited with status $status; boot $up s, command $((SECONDS - start - up)) s, total $((SECONDS - start)) s"
    return "$status"
}

# The host's io directory as the guest mounts it (scripts/vm/runner.sh).
GUEST_IO=/run/rrun-vm

# run_in_guest CMD_FILE [RESULT]: boots, runs CMD_FILE there, returns its
# status. RESULT, when given, gets the file the command left as
# $GUEST_IO/result (empty when it left none).
run_in_guest() {
    local run status=0
    mkdir -p "$cache/runs"
    run=$(mktemp -d "$cache/runs/$(date +%Y%m%d-%H%M%S).XXXXXX")
    mkdir "$run/io"
    cp "$1" "$run/io/cmd.sh"
    echo "$cmd_timeout" >"$run/io/timeout"
    boot run "$run" || status=$?
    if [ -n "${2:-}" ]; then
        cat "$run/io/result" >"$2" 2>/dev/null || : >"$2"
    fi
    if [ "$status" -eq 0 ] && [ -z "${RRUN_VM_KEEP:-}" ]; then
        rm -rf "$run"
    else
        say "console log, output: $run/"
    fi
    return "$status"
}

# --- the benchmark --------------------------------------------------------

# bench_script FILE ARG...: the guest's command file for `bench`.
bench_script() {
    local file=$1 target_abs
    shift
    target_abs=$(cd "$target" && pwd)
    {
        echo "# written by scripts/vm.sh bench"
        echo "cd $(printf %q "$repo")"
        # rrun-bench's default rrun is $CARGO_TARGET_DIR/release/rrun.
        echo "export CARGO_TARGET_DIR=$(printf %q "$target_abs")"
        cat <<'EOF'
echo "guest: kernel $(uname -r), $(nproc) CPUs, $(free -m | awk '/^Mem:/ { print $2 }') MiB," \
    "/sys/fs/cgroup $(stat -fc %T /sys/fs/cgroup), pid 1 $(cat /proc/1/comm);" \
    "$(runc --version | head -n 1); $(crun --version | head -n 1); $(strace -V | head -n 1)"
EOF
        printf 'systemd-run --scope --quiet --unit=rrun-vm-bench %q' "$target_abs/release/rrun-bench"
        [ $# -eq 0 ] || printf ' %q' "$@"
        echo " >$GUEST_IO/result"
    } >"$file"
}

# --- test sets ------------------------------------------------------------

# shellcheck disable=SC1091 # checked on its own
. scripts/vm/sets.sh

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    local command=${1:-}
    [ $# -eq 0 ] || shift
    case $command in
        build)
            build_image
            ;;
        test)
            [ $# -gt 0 ] || usage 2
            require_root
            build_image
            local script
            script=$(mktemp)
            if ! sets_script "$script" "$@"; then
                rm -f "$script"
                die "building the sets failed"
            fi
            local status=0
            run_in_guest "$script" || status=$?
            rm -f "$script"
            return "$status"
            ;;
        run)
            [ "${1:-}" != -- ] || shift
            [ $# -gt 0 ] || usage 2
            require_root
            build_image
            local script status=0
            script=$(mktemp)
            {
                echo "cd $(printf %q "$repo")"
                if [ $# -eq 1 ]; then
                    printf 'exec bash -c %q\n' "$1"
                else
                    printf 'exec'
                    printf ' %q' "$@"
                    echo
                fi
            } >"$script"
            run_in_guest "$script" || status=$?
            rm -f "$script"
            return "$status"
            ;;
        bench)
            require_root
            build_image
            ensure_cargo
            ensure_c_toolchain
            { build_rrun && cargo build --release -p rrun-bench; } >&2 || die "cargo build failed"
            local script result status=0
            script=$(mktemp)
            result=$(mktemp)
            bench_script "$script" "$@"
            run_in_guest "$script" "$result" >&2 || status=$?
            cat "$result"
            rm -f "$script" "$result"
            [ "$status" -eq 0 ] || say "rrun-bench exited with status $status in the guest"
            return "$status"
            ;;
        shell)
            require_root
            build_image
            local run
            mkdir -p "$cache/runs"
            run=$(mktemp -d "$cache/runs/shell.XXXXXX")
            mkdir "$run/io"
            boot shell "$run" || true
            rm -rf "$run"
            ;;
        sets)
            list_sets
            ;;
        -h | --help | help)
            usage 0
            ;;
        *)
            usage 2
            ;;
    esac
}

main "$@"
