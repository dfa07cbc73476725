//! `rrun ps [--format table|json] <id> [-- ps-args...]`, as runc's `ps`:
//! json prints the JSON array of the container's pids (what `docker top`
//! reads); table runs the host's ps(1) (`-ef` unless arguments follow the
//! id) and keeps its header and the lines whose PID column is a pid of the
//! container.

use anyhow::{bail, Context, Result};
use libcontainer::container;
use std::path::Path;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json.
    #[arg(short = 'f', long, default_value = "table")]
    format: String,
    id: String,
    /// Arguments for ps(1) (default: -ef), after the id or after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(root: &Path, args: Args) -> Result<i32> {
    if !matches!(args.format.as_str(), "table" | "json") {
        bail!("invalid format option");
    }
    let pids = container::pids(root, &args.id)?;
    if args.format == "json" {
        // runc encodes Go's nil slice: no processes print `null`.
        if pids.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&pids)?);
        }
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let output = run_ps(&ps_args)?;
    for line in container_lines(&output, &pids)? {
        println!("{line}");
    }
    Ok(0)
}

/// ps(1)'s stdout and stderr together, as runc reads them; a failure
/// carries what ps said.
fn run_ps(args: &[String]) -> Result<String> {
    let out = Command::new("ps")
        .args(args)
        .output()
        .context("running ps")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // runc's words: Go's "exit status N".
        match out.status.code() {
            Some(code) => bail!("exit status {code}: {text}"),
            None => bail!("{}: {text}", out.status),
        }
    }
    Ok(text)
}

/// The header line and the lines whose PID field is one of `pids`.
fn container_lines<'a>(output: &'a str, pids: &[i32]) -> Result<Vec<&'a str>> {
    let mut lines = output.split('\n');
    let header = lines.next().unwrap_or_default();
    let pid_index = header
        .split_whitespace()
        .position(|title| title == "PID")
        .context("couldn't find PID field in ps output")?;
    let mut kept = vec![header];
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(pid_index).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .with_context(|| format!("unable to parse pid: {field:?} in {line:?}"))?;
        if pids.contains(&pid) {
            kept.push(line);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         812       1  0 10:00 ?        00:00:00 sh -c sleep 1000
root         813     812  0 10:00 ?        00:00:00 sleep 1000
";

    #[test]
    fn keeps_the_header_and_the_containers_lines() {
        let kept = container_lines(PS_EF, &[812, 813]).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept[0].starts_with("UID"));
        assert!(kept[1].contains("sh -c sleep 1000"));
        assert!(kept[2].ends_with("sleep 1000"));
    }

    #[test]
    fn a_header_without_pid_or_a_bad_pid_is_an_error() {
        let err = container_lines("USER COMMAND\nroot init\n", &[1]).unwrap_err();
        assert!(err.to_string().contains("PID field"), "{err}");
        let err = container_lines("PID CMD\nabc x\n", &[1]).unwrap_err();
        assert!(err.to_string().contains("unable to parse pid"), "{err}");
    }
}
