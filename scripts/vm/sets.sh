# shellcheck shell=bash
# shellcheck disable=SC2154 # target, repo, set_timeout: set by scripts/vm.sh
# The test sets of `scripts/vm.sh test`; sourced by scripts/vm.sh. Not part
# of the image's recipe: the host builds each set and writes the guest's
# command file, which runs the sets one after the other (a failing set does
# not stop the others) and ends with "vm: N passed, N failed" (sets).

# Issue 11's first list and the systemd driver: what runs on a cgroup v2 +
# systemd host. The conformance suite runs against rrun and runc only: crun
# as a third column makes it about half as long again (conformance-crun).
# The shim's own test files (containerd, cri) run as sets too but are not
# in v2: their cgroup checks read v1 files (memory.limit_in_bytes,
# freezer.state...); containerd-systemd covers the shim on v2.
V2_SETS=(cgroups freeze update_events exec cli embed systemd engines-systemd containerd-systemd conformance)
# The sets that are a script of this folder (scripts/vm/SET.sh), given the
# release build's binaries.
SCRIPT_SETS=(engines-systemd containerd-systemd)

# script_set SET: whether SET is one of SCRIPT_SETS.
script_set() {
    local s
    for s in "${SCRIPT_SETS[@]}"; do
        [ "$s" != "$1" ] || return 0
    done
    return 1
}

list_sets() {
    local f
    echo "v2             ${V2_SETS[*]}"
    echo "conformance    rrun-conformance (release) against rrun and runc"
    echo "conformance-crun  the same with crun as a third column (informational; about 1.5x as long)"
    echo "engines-systemd  Docker with native.cgroupdriver=systemd and rrun (scripts/vm/engines-systemd.sh)"
    echo "containerd-systemd  containerd: runc-v2 shim + rrun with SystemdCgroup, and containerd-shim-rrun-v2"
    echo "               (scripts/vm/containerd-systemd.sh)"
    for f in runtime/tests/*.rs; do
        f=${f##*/}
        printf '%-14s cargo test -p rrun --test %s\n' "${f%.rs}" "${f%.rs}"
    done
    for f in libcontainer/tests/*.rs; do
        f=${f##*/}
        printf '%-14s cargo test -p libcontainer --test %s\n' "${f%.rs}" "${f%.rs}"
    done
    for f in shim/tests/*.rs; do
        f=${f##*/}
        printf '%-14s cargo test -p containerd-shim-rrun-v2 --test %s\n' "${f%.rs}" "${f%.rs}"
    done
    echo "PACKAGE:NAME   cargo test -p PACKAGE --test NAME"
}

# package_dir NAME: the package folder whose tests/NAME.rs exists.
package_dir() {
    local dir
    for dir in runtime libcontainer shim; do
        [ ! -f "$dir/tests/$1.rs" ] || {
            echo "$dir"
            return 0
        }
    done
    return 1
}

# test_executables NAME...: builds those test targets (debug, as cargo test
# does) in one cargo call, so that libcontainer is built once with one set
# of features, and prints "NAME<TAB>EXECUTABLE<TAB>PACKAGE_DIR" for each:
# cargo runs a test in its package's folder.
test_executables() {
    local name tests=()
    for name in "$@"; do
        tests+=(--test "$name")
    done
    cargo test --workspace "${tests[@]}" --no-run --message-format=json-render-diagnostics |
        jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null
                      and (.target.kind | index("test")))
               | [.target.name, .executable, (.manifest_path | sub("/Cargo.toml$"; ""))] | @tsv'
}

# The conformance suite as scripts/test.sh builds it (its release build and
# build_checker), so that CI builds nothing twice.
build_conformance() {
    cargo build --release --workspace --exclude rrun
    build_rrun
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p conformance \
        --bin rrun-checker --target x86_64-unknown-linux-gnu
}

# sets_script FILE SET... [-- ARG...]: builds the sets on the host and
# writes the guest's command file.
sets_script() {
    local file=$1 set name sets=() args=()
    shift
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then
            shift
            args=("$@")
            break
        fi
        if [ "$1" = v2 ]; then
            sets+=("${V2_SETS[@]}")
        else
            sets+=("$1")
        fi
        shift
    done
    ensure_cargo
    ensure_c_toolchain
    local tests=() dirs=() dir
    for set in "${sets[@]}"; do
        ! script_set "$set" || continue
        case $set in
            conformance | conformance-crun) continue ;;
            rrun:* | runtime:*) dir=runtime name=${set#*:} ;;
            libcontainer:*) dir=libcontainer name=${set#*:} ;;
            shim:* | containerd-shim-rrun-v2:*) dir=shim name=${set#*:} ;;
            *) name=$set dir=$(package_dir "$name") || dir= ;;
        esac
        if [ -z "$dir" ] || [ ! -f "$dir/tests/$name.rs" ]; then
            say "no set $set (scripts/vm.sh sets lists them)"
            return 1
        fi
        tests+=("$name")
        dirs+=("$repo/$dir")
    done
    local built
    built=$(mktemp)
    if [ ${#tests[@]} -gt 0 ] && ! test_executables "${tests[@]}" >"$built"; then
        rm -f "$built"
        return 1
    fi
    local target_abs
    target_abs=$(cd "$target" && pwd)

    {
        cat <<EOF
# written by scripts/vm.sh test ${sets[*]}
set -u
passed=()
failed=()
vm_set() { # NAME DIR COMMAND...
    local name=\$1 dir=\$2 start=\$SECONDS status=0 watchdog
    shift 2
    echo
    echo "==> [vm] \$name: \$*"
    # What a set that hangs is doing, shown before it is killed (read -t
    # waits without a child process, so killing the watchdog ends it).
    (read -rt $((set_timeout - 15)) <> <(:) || {
        echo "==> [vm] \$name: still running after $((set_timeout - 15)) s; the guest's processes:"
        ps --forest -N --ppid 2 -p 2 -o pid,stat,etimes,wchan:24,cgroup:48,args | cut -c1-220
    }) &
    watchdog=\$!
    # In a scope of its own, as a command run from a login shell is, with
    # room left for the rest of the guest: a set that eats the memory is
    # killed alone, and the next one runs.
    (cd "\$dir" && exec systemd-run --scope --quiet --unit="rrun-vm-set-\${name//[^a-zA-Z0-9_-]/-}" \\
        -p MemoryMax=3G timeout -k 30 $set_timeout "\$@") || status=\$?
    kill "\$watchdog" 2>/dev/null
    wait "\$watchdog" 2>/dev/null
    [ "\$status" -ne 124 ] || echo "==> [vm] \$name: killed after $set_timeout s"
    echo "==> [vm] \$name: exit status \$status in \$((SECONDS - start)) s"
    if [ "\$status" -eq 0 ]; then passed+=("\$name"); else failed+=("\$name"); fi
}
echo "guest: kernel \$(uname -r), pid 1 \$(cat /proc/1/comm), /sys/fs/cgroup \$(stat -fc %T /sys/fs/cgroup)," \\
    "root cgroup.subtree_control: \$(cat /sys/fs/cgroup/cgroup.subtree_control), runner's cgroup: \$(cut -d: -f3 /proc/self/cgroup)"
EOF
        for set in "${sets[@]}"; do
            if script_set "$set"; then
                printf 'vm_set %q %q %q %q' "$set" "$repo" "$repo/scripts/vm/$set.sh" \
                    "$target_abs/release/rrun"
                [ "$set" != containerd-systemd ] ||
                    printf ' %q' "$target_abs/release/containerd-shim-rrun-v2"
                echo
                continue
            fi
            if [ "$set" = conformance ] || [ "$set" = conformance-crun ]; then
                local crun=() filters=() filter
                [ "$set" = conformance ] || crun=(--runtime crun=/usr/bin/crun)
                # Without ARGs, every section but security.*: its races run
                # many times, do not depend on the cgroup layout, and run
                # on the host's conformance step (they alone would take
                # longer than the rest under emulation).
                if [ ${#args[@]} -eq 0 ]; then
                    filters=(runtime. config errors. runc.)
                else
                    filters=('')
                fi
                for filter in "${filters[@]}"; do
                    printf 'vm_set %q %q' "$set${filter:+[$filter]}" "$repo"
                    printf ' %q' "$target_abs/release/rrun-conformance" \
                        --runtime "rrun=$target_abs/release/rrun" \
                        --runtime runc=/usr/bin/runc "${crun[@]}" \
                        --checker "$target_abs/x86_64-unknown-linux-gnu/release/rrun-checker"
                    [ -z "$filter" ] || printf ' --filter %q' "$filter"
                    [ ${#args[@]} -eq 0 ] || printf ' %q' "${args[@]}"
                    echo
                done
                continue
            fi
            name=${set#*:}
            dir=${dirs[0]}
            dirs=("${dirs[@]:1}")
            local exe
            exe=$(awk -F'\t' -v n="$name" -v d="$dir" '$1 == n && $3 == d { print $2; exit }' "$built")
            [ -n "$exe" ] || {
                say "cargo built no test executable for $set"
                rm -f "$built"
                return 1
            }
            printf 'vm_set %q %q %q' "$set" "$dir" "$exe"
            [ ${#args[@]} -eq 0 ] || printf ' %q' "${args[@]}"
            echo
        done
        cat <<'EOF'
echo
[ ${#failed[@]} -eq 0 ] || echo "vm: failed sets: ${failed[*]}"
echo "vm: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
EOF
    } >"$file"
    rm -f "$built"
    # The conformance suite's build is the whole workspace's; the scripts
    # need only rrun and the shim.
    local build=
    for set in "${sets[@]}"; do
        case $set in
            conformance | conformance-crun) build=conformance ;;
            *) ! script_set "$set" || build=${build:-scripts} ;;
        esac
    done
    case $build in
        conformance) build_conformance || return 1 ;;
        scripts) { build_rrun && cargo build --release -p containerd-shim-rrun-v2; } || return 1 ;;
    esac
}
