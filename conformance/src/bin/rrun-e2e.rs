//! `rrun-e2e`: the runtimes under Docker, containerd and podman, side by
//! side (issue 10). The code is in `src/e2e/` (the crate's library, shared
//! with rrun-bench); `scripts/e2e.sh` installs the engines, builds and runs
//! it.

fn main() {
    std::process::exit(conformance::e2e::main());
}
