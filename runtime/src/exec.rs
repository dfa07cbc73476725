//! `rrun exec`: run a new process in a container.

use anyhow::{bail, Result};
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(_root: &Path, _args: Args) -> Result<i32> {
    bail!("exec: not implemented yet")
}
