//! `rrun-e2e`: the runtimes under Docker, containerd and podman, side by
//! side (issue 10). The code is in `src/e2e/`; `scripts/e2e.sh` installs
//! the engines, builds and runs it.

#[path = "../e2e/mod.rs"]
mod e2e;

fn main() {
    std::process::exit(e2e::main());
}
