//! Fuzz target `config`: see [`rrun_fuzz::config`].
fn main() {
    afl::fuzz!(|data: &[u8]| rrun_fuzz::config(data));
}
