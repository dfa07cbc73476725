# shellcheck shell=bash
# shellcheck disable=SC2154 # target, repo, set_timeout: set by scripts/vm.sh
# The test sets of `scripts/vm.sh test`; sourced by scripts/vm.sh. Not part
# of the image's recipe: the host builds each set and writes the guest's
# command file, which runs the sets one after the other (a failing set does
# not stop the others) and ends with "vm: N passed, N failed" (sets).

# Issue 11's first list: what runs on a cgroup v2 + systemd host.
V2_SETS=(cgroups freeze update_events exec cli embed conformance)

list_sets() {
    local f
    echo "v2             ${V2_SETS[*]}"
    echo "conformance    rrun-conformance (release) against rrun, runc and crun"
    for f in runtime/tests/*.rs; do
        f=${f##*/}
        printf '%-14s cargo test -p rrun --test %s\n' "${f%.rs}" "${f%.rs}"
    done
    for f in libcontainer/tests/*.rs; do
        f=${f##*/}
        printf '%-14s cargo test -p libcontainer --test %s\n' "${f%.rs}" "${f%.rs}"
    done
    echo "PACKAGE:NAME   cargo test -p PACKAGE --test NAME"
}

# package_of NAME: the package whose tests/NAME.rs exists.
package_of() {
    if [ -f "runtime/tests/$1.rs" ]; then
        echo rrun
    elif [ -f "libcontainer/tests/$1.rs" ]; then
        echo libcontainer
    else
        return 1
    fi
}

# test_executables PACKAGE NAME...: builds them (debug, as cargo test does)
# and prints "NAME<TAB>EXECUTABLE<TAB>PACKAGE_DIR" for each: cargo runs a
# test with its package's directory as the working directory.
test_executables() {
    local package=$1 name tests=()
    shift
    for name in "$@"; do
        tests+=(--test "$name")
    done
    cargo test -p "$package" "${tests[@]}" --no-run --message-format=json-render-diagnostics |
        jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null
                      and (.target.kind | index("test")))
               | [.target.name, .executable, (.manifest_path | sub("/Cargo.toml$"; ""))] | @tsv'
}

# The conformance suite as scripts/test.sh builds it (build_checker).
build_conformance() {
    cargo build --release -p rrun --bin rrun
    cargo build --release -p conformance --bin rrun-conformance
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p conformance \
        --bin rrun-checker --target x86_64-unknown-linux-gnu
}

# sets_script FILE SET... [-- ARG...]: builds the sets on the host and
# writes the guest's command file.
sets_script() {
    local file=$1 set package name sets=() args=() rrun_tests=() lib_tests=()
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
    for set in "${sets[@]}"; do
        case $set in
            conformance) continue ;;
            *:*) package=${set%%:*} name=${set#*:} ;;
            *)
                name=$set
                package=$(package_of "$name") || {
                    say "no set $set (scripts/vm.sh sets lists them)"
                    return 1
                }
                ;;
        esac
        case $package in
            rrun) rrun_tests+=("$name") ;;
            libcontainer) lib_tests+=("$name") ;;
            *)
                say "no tests of package $package here"
                return 1
                ;;
        esac
    done
    local built
    built=$(mktemp)
    [ ${#rrun_tests[@]} -eq 0 ] || test_executables rrun "${rrun_tests[@]}" >>"$built" || return 1
    [ ${#lib_tests[@]} -eq 0 ] || test_executables libcontainer "${lib_tests[@]}" >>"$built" || return 1
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
            if [ "$set" = conformance ]; then
                printf 'vm_set conformance %q' "$repo"
                printf ' %q' "$target_abs/release/rrun-conformance" \
                    --runtime "rrun=$target_abs/release/rrun" \
                    --runtime runc=/usr/bin/runc --runtime crun=/usr/bin/crun \
                    --checker "$target_abs/x86_64-unknown-linux-gnu/release/rrun-checker" \
                    "${args[@]}"
                echo
                continue
            fi
            name=${set#*:}
            local line exe dir
            line=$(awk -F'\t' -v n="$name" '$1 == n { print; exit }' "$built")
            [ -n "$line" ] || {
                say "cargo built no test executable for $set"
                rm -f "$built"
                return 1
            }
            exe=$(cut -f2 <<<"$line")
            dir=$(cut -f3 <<<"$line")
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
    for set in "${sets[@]}"; do
        if [ "$set" = conformance ]; then
            build_conformance || return 1
            break
        fi
    done
}
