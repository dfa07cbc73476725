//! `rrun events`: `--stats` prints one stats event; otherwise a stats event
//! every `--interval` and an OOM event as soon as one happens, until the
//! container stops. One JSON object per line, as runc prints them.

use anyhow::Result;
use libcontainer::container::{self, Event};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Time between stats events (Go duration: 500ms, 5s, 1m, 1h30m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// Print the container's stats once and exit.
    #[arg(long)]
    stats: bool,
    id: String,
}

pub fn run(root: &Path, args: Args) -> Result<i32> {
    if args.stats {
        let stats = container::stats(root, &args.id)?;
        print(&Event::stats(&args.id, &stats))?;
        return Ok(0);
    }
    let mut write_error = None;
    container::watch(
        root,
        &args.id,
        args.interval,
        |event| {
            if let Err(e) = print(event) {
                write_error.get_or_insert(e);
            }
        },
        |e| tracing::error!("{e}"),
    )?;
    match write_error {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

fn print(event: &Event) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, event)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Go's time.ParseDuration for the units runc users write: a sequence of
/// decimal numbers each with a unit (ns, us, µs, ms, s, m, h).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * seconds;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_as_go_does() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["5", "s", "5x", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
