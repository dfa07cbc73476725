//! `rrun features`: the OCI features document (runtime-spec features.md)
//! of this build on this host, as `runc features` prints its own (JSON,
//! four-space indent). The facts are libcontainer's
//! ([`libcontainer::features`]); the CLI adds its commit.

use anyhow::Result;
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<i32> {
    let mut features = libcontainer::features::features();
    features.annotations.insert(
        "io.rrun.commit".to_string(),
        env!("RRUN_COMMIT").to_string(),
    );
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    features.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    out.push(b'\n');
    use std::io::Write;
    std::io::stdout().write_all(&out)?;
    Ok(0)
}
