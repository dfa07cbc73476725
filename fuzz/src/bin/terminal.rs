//! Fuzz target `terminal`: see [`rrun_fuzz::terminal`].
fn main() {
    afl::fuzz!(|data: &[u8]| rrun_fuzz::terminal(data));
}
