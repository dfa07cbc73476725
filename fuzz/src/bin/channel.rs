//! Fuzz target `channel`: see [`rrun_fuzz::channel`].
fn main() {
    afl::fuzz!(|data: &[u8]| rrun_fuzz::channel(data));
}
