//! `rrun features`: the OCI features document (runtime-spec features.md).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<i32> {
    bail!("features: not implemented yet")
}
