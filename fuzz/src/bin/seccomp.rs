//! Fuzz target `seccomp`: see [`rrun_fuzz::seccomp`].
fn main() {
    afl::fuzz!(|data: &[u8]| rrun_fuzz::seccomp(data));
}
