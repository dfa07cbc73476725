//! Fuzz target `mounts`: see [`rrun_fuzz::mounts`].
fn main() {
    afl::fuzz!(|data: &[u8]| rrun_fuzz::mounts(data));
}
