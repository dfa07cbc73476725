//! `rrun spec`: write a starter config.json, as `runc spec` does.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let json = serde_json::to_string_pretty(&starter_spec()?)?;
    write_new(&path, &json)?;
    Ok(0)
}

/// runc's starter: an interactive `sh` on a read-only `rootfs`, with
/// the default namespaces, mounts, capabilities and masked paths.
fn starter_spec() -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version(libcontainer::OCI_VERSION.to_string());
    spec.set_hostname(Some("rrun".to_string()));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(true)
            .build()
            .context("root")?,
    ));
    let defaults = spec.process().clone().unwrap_or_default();
    let process = ProcessBuilder::default()
        .terminal(true)
        .user(defaults.user().clone())
        .args(vec!["sh".to_string()])
        .env(defaults.env().clone().unwrap_or_default())
        .cwd("/")
        .capabilities(defaults.capabilities().clone().unwrap_or_default())
        .rlimits(defaults.rlimits().clone().unwrap_or_default())
        .no_new_privileges(true)
        .build()
        .context("process")?;
    spec.set_process(Some(process));
    Ok(spec)
}

fn write_new(path: &Path, json: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
