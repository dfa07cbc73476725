//! `rrun events` (stub until issue 3 lands).

use anyhow::Result;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(root: &Path, args: Args) -> Result<i32> {
    let _ = root;
    anyhow::bail!("container {}: events is not implemented yet", args.id)
}
