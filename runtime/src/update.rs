//! `rrun update`: runc's flags, or a LinuxResources JSON document with
//! `--resources FILE` (`-` for stdin, as containerd sends it). With
//! `--resources`, the other flags are ignored, as in runc.

use anyhow::{bail, Context, Result};
use libcontainer::container;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// File with the LinuxResources JSON to apply, or '-' for stdin.
    #[arg(short = 'r', long)]
    resources: Option<String>,
    // Boxed: the flags would make every other subcommand as large.
    #[command(flatten)]
    flags: Box<Flags>,
    id: String,
}

/// runc's individual flags, ignored with --resources.
#[derive(clap::Args)]
struct Flags {
    /// Block IO weight (10-1000).
    #[arg(long, default_value_t = 0)]
    blkio_weight: u16,
    /// CPU CFS period (µs).
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPU CFS quota (µs); -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    cpu_share: Option<u64>,
    /// CPU realtime period (µs).
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs).
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs to use (e.g. 0-2,4).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Obsolete: accepted and ignored, as in runc.
    #[arg(long, hide = true)]
    kernel_memory: Option<String>,
    /// Obsolete: accepted and ignored, as in runc.
    #[arg(long, hide = true)]
    kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a k/m/g/t/p suffix).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory+swap limit; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pids_limit: i64,
    /// Intel RDT/CAT L3 cache schema (not supported).
    #[arg(long)]
    l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (not supported).
    #[arg(long)]
    mem_bw_schema: Option<String>,
}

pub fn run(root: &Path, args: Args) -> Result<i32> {
    let (what, data) = match &args.resources {
        Some(source) => (source.as_str(), read_resources(source)?),
        None => ("flags", from_flags(&args.flags)?),
    };
    let resources = container::parse_resources(what, &data)?;
    // rrun has no Intel RDT support: the same refusal as runc on a host
    // without it.
    if args
        .flags
        .l3_cache_schema
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if args
        .flags
        .mem_bw_schema
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    container::update(root, &args.id, &resources)?;
    Ok(0)
}

/// `-r FILE` or `-r -` (stdin, as runc), read up to the size of a
/// config.json: resources are a few hundred bytes, and a stream that never
/// ends must not fill memory.
fn read_resources(source: &str) -> Result<Vec<u8>> {
    let limit = libcontainer::config::MAX_CONFIG_BYTES;
    let mut data = Vec::new();
    if source == "-" {
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut data)
            .context("reading resources from stdin")?;
    } else {
        std::fs::File::open(source)
            .and_then(|f| f.take(limit + 1).read_to_end(&mut data))
            .with_context(|| format!("open {source}"))?;
    }
    if data.len() as u64 > limit {
        anyhow::bail!(
            "-r {source}: larger than the {} MiB rrun reads",
            limit >> 20
        );
    }
    Ok(data)
}

/// The flags as a LinuxResources JSON document (what runc builds from them).
fn from_flags(args: &Flags) -> Result<Vec<u8>> {
    for (flag, value) in [
        ("kernel-memory", &args.kernel_memory),
        ("kernel-memory-tcp", &args.kernel_memory_tcp),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            tracing::warn!("Setting --{flag} is ignored and will be removed");
        }
    }
    let size = |flag: &str, value: &Option<String>| -> Result<Option<i64>> {
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(v) => ram_in_bytes(v)
                .map(Some)
                .with_context(|| format!("invalid value for {flag}")),
        }
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let resources = json!({
        "memory": {
            "limit": size("memory", &args.memory)?,
            "swap": size("memory-swap", &args.memory_swap)?,
            "reservation": size("memory-reservation", &args.memory_reservation)?,
        },
        "cpu": {
            "shares": args.cpu_share,
            "quota": args.cpu_quota,
            "period": args.cpu_period,
            "realtimePeriod": args.cpu_rt_period,
            "realtimeRuntime": args.cpu_rt_runtime,
            "cpus": nonempty(&args.cpuset_cpus),
            "mems": nonempty(&args.cpuset_mems),
        },
        "blockIO": {"weight": (args.blkio_weight != 0).then_some(args.blkio_weight)},
        "pids": {"limit": args.pids_limit},
    });
    Ok(serde_json::to_vec(&without_nulls(resources))?)
}

/// Drop null members: an absent value means "unchanged", and the OCI
/// types do not accept null for every field.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// docker's units.RAMInBytes: a decimal number, an optional space, an
/// optional binary unit (k, m, g, t, p: powers of 1024), an optional `i`
/// and `b`, any case (`128m`, `1g`, `1.5GiB`, `512`).
fn ram_in_bytes(s: &str) -> Result<i64> {
    let invalid = || anyhow::anyhow!("invalid size: '{s}'");
    let lower = s.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix);
    let suffix = suffix.strip_suffix('b').unwrap_or(suffix);
    let (unit, rest) = match suffix.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &suffix[1..]),
        _ => (None, suffix),
    };
    let rest = if unit.is_some() {
        rest.strip_prefix('i').unwrap_or(rest)
    } else {
        rest
    };
    if !rest.is_empty() {
        return Err(invalid());
    }
    let power = match unit {
        None => 0,
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        _ => 5,
    };
    Ok((value * 1024f64.powi(power)) as i64)
}

#[cfg(test)]
mod tests {
    use super::ram_in_bytes;

    #[test]
    fn sizes_parse_as_docker_units_does() {
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert_eq!(ram_in_bytes("128m").unwrap(), 128 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("2 kb").unwrap(), 2048);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        for bad in ["12x", "", "m", "1mm", "-1"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
    }
}
