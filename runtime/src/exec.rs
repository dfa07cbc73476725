//! `rrun exec`: run a new process in a created or running container, as
//! `runc exec` does: the process from `--process FILE` (what engines pass)
//! or the container's own `process` with the command line's flags applied.
//! In the foreground rrun forwards signals (and with `-t` its terminal) to
//! the process and exits with its exit code.

use crate::{console, run};
use anyhow::{bail, Context, Result};
use libcontainer::container::{self, ExecOptions};
use oci_spec::runtime::{Capability, Process};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The process as JSON (config.json's `process` object); the flags
    /// that shape a process are then ignored, as in runc.
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<String>,
    /// Add an environment variable (NAME=value); repeatable.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// uid[:gid] of the process.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// An additional group id; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets.
    #[arg(short = 'c', long = "cap")]
    caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// AppArmor profile (this host has no AppArmor: refused when set).
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label (this host has no SELinux: refused when set).
    #[arg(long)]
    process_label: Option<String>,
    /// Return once the process runs, instead of waiting for it.
    #[arg(short = 'd', long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Pass this many fds beyond stdio (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Exec into a paused container (the process starts frozen).
    #[arg(long)]
    ignore_paused: bool,
    /// The container's id.
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(root: &Path, args: Args) -> Result<i32> {
    let mut process = match &args.process {
        Some(path) => read_process(path)?,
        None => process_from_flags(root, &args)?,
    };
    let terminal = process.terminal() == Some(true);
    if terminal && args.console_socket.is_none() && process.console_size().is_none() {
        // The pty gets our size before the process runs (the exec'd process
        // sets consoleSize on the master first): a process that asks for
        // the size at once must not see 0x0.
        if let Some(ws) = console::our_window_size().filter(|ws| ws.ws_row > 0) {
            let size = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(ws.ws_row))
                .width(u64::from(ws.ws_col))
                .build()
                .context("consoleSize")?;
            process.set_console_size(Some(size));
        }
    }
    if terminal && args.detach && args.console_socket.is_none() {
        bail!("cannot allocate tty if rrun will detach without setting console socket");
    }
    if !terminal && args.console_socket.is_some() {
        bail!("cannot use console socket if rrun will not detach or allocate tty");
    }
    // Blocked before the process exists, so that none is lost.
    let signals = (!args.detach).then(run::forwarded_signals).transpose()?;
    let console = if terminal && args.console_socket.is_none() {
        Some(console::pair()?)
    } else {
        None
    };
    let opts = ExecOptions {
        root: root.to_path_buf(),
        id: args.id.clone(),
        process,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        console_socket_fd: console.as_ref().map(|(_, theirs)| theirs.as_raw_fd()),
        preserve_fds: (3..3 + args.preserve_fds as i32).collect(),
        ignore_paused: args.ignore_paused,
        stdio: None,
    };
    let executed = container::exec(&opts)?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let master = run::receive_master(console)?;
    let code = match master {
        Some(master) => {
            let _raw = console::RawMode::enter();
            console::copy_window_size(&master);
            run::wait_and_forward(&signals, &executed.pidfd, Some(&master))?
        }
        None => run::wait_and_forward(&signals, &executed.pidfd, None)?,
    };
    Ok(code)
}

fn read_process(path: &Path) -> Result<Process> {
    // A pipe is fine here (`--process <(...)`, as with runc), but no more
    // than a config.json may hold.
    let limit = libcontainer::config::MAX_CONFIG_BYTES;
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, limit + 1), &mut data))
        .with_context(|| format!("--process {}", path.display()))?;
    if data.len() as u64 > limit {
        bail!(
            "--process {}: larger than the {} MiB rrun reads",
            path.display(),
            limit >> 20
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "--process {}: invalid JSON at {}: {}",
            path.display(),
            e.path(),
            e.inner()
        )
    })
}

/// runc's rules: the container's `process` from its bundle, with the
/// command, a cwd, added env, terminal, user, groups, capabilities and
/// no_new_privs from the flags.
fn process_from_flags(root: &Path, args: &Args) -> Result<Process> {
    if args.command.is_empty() {
        bail!("exec: no command given: rrun exec [flags] <container-id> <command> [args...]");
    }
    let listed = container::state(root, &args.id)?;
    let config_path = listed.state.bundle.join("config.json");
    let data = libcontainer::config::read_config_file(&config_path)
        .with_context(|| format!("container {}", args.id))?;
    let spec = libcontainer::config::parse(&config_path, &data)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if args.apparmor.is_some() {
        p.set_apparmor_profile(args.apparmor.clone());
    }
    if args.process_label.is_some() {
        p.set_selinux_label(args.process_label.clone());
    }
    add_capabilities(&mut p, &args.caps)?;
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(args.tty));
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(spec) = &args.user {
        let (uid, gid) = match spec.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (spec.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {spec}: bad uid"))?,
        );
        if let Some(gid) = gid {
            user.set_gid(
                gid.parse()
                    .with_context(|| format!("--user {spec}: bad gid"))?,
            );
        }
    }
    if !args.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&args.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    Ok(p)
}

/// `--cap`: added to bounding, effective and permitted, and to ambient
/// when the process has an inheritable set (runc's rule).
fn add_capabilities(p: &mut Process, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    // A process without a capabilities object has none: start from empty
    // sets, not oci-spec's Default (which fills all five, inheritable and
    // ambient included: CVE-2022-29162).
    let mut caps = p.capabilities().clone().unwrap_or_else(|| {
        let mut none = oci_spec::runtime::LinuxCapabilities::default();
        none.set_bounding(None);
        none.set_effective(None);
        none.set_permitted(None);
        none.set_inheritable(None);
        none.set_ambient(None);
        none
    });
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .with_context(|| format!("--cap {name}: unknown capability"))?;
        let add = |set: Option<std::collections::HashSet<Capability>>| {
            let mut set = set.unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        caps.set_bounding(add(caps.bounding().clone()));
        caps.set_effective(add(caps.effective().clone()));
        caps.set_permitted(add(caps.permitted().clone()));
        if caps.inheritable().is_some() {
            caps.set_ambient(add(caps.ambient().clone()));
        }
    }
    p.set_capabilities(Some(caps));
    Ok(())
}
