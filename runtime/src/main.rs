//! `rrun`: a runc-compatible command line over libcontainer.

mod alloc;
mod console;
mod events;
mod exec;
mod features;
mod logging;
mod ps;
mod run;
mod spec;
mod update;

use anyhow::Result;
use clap::{Parser, Subcommand};
use libcontainer::container::{self, CreateOptions};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rrun",
    about = "rrun: an OCI container runtime",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/rrun")]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: logging::Format,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// cgroupsPath is systemd's slice:prefix:name (needs systemd and cgroup v2).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the init's pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (rootfs on ramfs).
    #[arg(long)]
    no_pivot: bool,
    /// Keep the caller's session keyring (default: a new one per container).
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many fds beyond stdio (3, 4, ...) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
// Only the subcommand given is built: clap no longer models all of runc's
// command line for each command (list 0.83 -> 0.70 ms, 390 KiB less RSS).
#[command(defer = true)]
enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short = 'd', long)]
        detach: bool,
    },
    /// Send a signal to the container's init (or every process with --all).
    Kill {
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the container's processes.
    Ps(ps::Args),
    /// Change the container's resource limits.
    Update(update::Args),
    /// Container statistics and OOM events.
    Events(events::Args),
    /// Run a new process in a running container.
    Exec(exec::Args),
    /// Print what this build of rrun supports, as the OCI features document.
    Features(features::Args),
    /// Write a starter config.json.
    Spec(spec::Args),
    /// List containers.
    List {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
}

#[global_allocator]
static ALLOCATOR: alloc::BumpThenSystem = alloc::BumpThenSystem;

fn main() {
    libcontainer::init::entry::run_if_requested();
    libcontainer::trace::note_begin();
    alloc::BumpThenSystem::prefault(alloc::COMMAND_ARENA_USE);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    if cli.version {
        print_version();
        return;
    }
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        logging::error(&e);
        std::process::exit(1);
    }
    // rrun has no SIGCHLD reaper: the library waits for its own helpers.
    libcontainer::init::reap_own_helpers(true);
    let Some(command) = cli.command else {
        eprintln!("rrun: no command given; see rrun --help");
        std::process::exit(1);
    };
    let is_create = matches!(command, Command::Create(_) | Command::Run { .. });
    if cli.debug {
        libcontainer::trace::enable("arguments-parsed");
    }
    let result = dispatch(&cli.root, cli.systemd_cgroup, command);
    if cli.debug {
        libcontainer::trace::step("done");
        for line in libcontainer::trace::report(libcontainer::trace::take()) {
            tracing::debug!("{line}");
        }
    }
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // runc's wording for create/run failures, which engines show.
            let msg = if is_create {
                format!("rrun create failed: {e:#}")
            } else {
                format!("{e:#}")
            };
            logging::error(&msg);
            std::process::exit(1)
        }
    }
}

/// A command line clap refuses: `--help` prints and exits 0; anything else
/// is an error that must reach `--log` as runc's JSON line (engines show
/// only that line), so the log options are dug out of the raw arguments.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    // args_os: std::env::args() panics on an argument that is not UTF-8,
    // which is the very error clap is reporting here.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let value_of = |flag: &str| {
        let inline = format!("{flag}=");
        args.iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix(&inline) {
                Some(v) => Some(v.to_string()),
                None => (a == flag).then(|| args.get(i + 1).cloned()).flatten(),
            })
    };
    let format = match value_of("--log-format").as_deref() {
        Some("json") => logging::Format::Json,
        _ => logging::Format::Text,
    };
    let _ = logging::init(
        value_of("--log").map(PathBuf::from).as_deref(),
        format,
        false,
    );
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    logging::error(first.trim_start_matches("error: "));
    std::process::exit(1)
}

fn print_version() {
    println!("rrun version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", env!("RRUN_COMMIT"));
    println!("spec: {}", libcontainer::OCI_VERSION);
}

fn create_options(root: &std::path::Path, systemd_cgroup: bool, args: CreateArgs) -> CreateOptions {
    CreateOptions {
        systemd_cgroup,
        root: root.to_path_buf(),
        id: args.id,
        bundle: args.bundle,
        pid_file: args.pid_file,
        console_socket: args.console_socket,
        console_socket_fd: None,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: (3..3 + args.preserve_fds as i32).collect(),
        stdio: None,
    }
}

fn dispatch(root: &std::path::Path, systemd_cgroup: bool, command: Command) -> Result<i32> {
    match command {
        Command::Create(args) => {
            container::create(&create_options(root, systemd_cgroup, args))?;
            Ok(0)
        }
        Command::Start { id } => {
            container::start(root, &id)?;
            Ok(0)
        }
        Command::Run { create, detach } => {
            run::run(create_options(root, systemd_cgroup, create), detach)
        }
        Command::Kill { all, id, signal } => {
            let signal = container::parse_signal(&signal)?;
            container::kill(root, &id, signal, all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            container::delete(root, &id, force)?;
            Ok(0)
        }
        Command::State { id } => {
            let listed = container::state(root, &id)?;
            let json = serde_json::to_string_pretty(&listed.state.oci(listed.status))?;
            println!("{json}");
            Ok(0)
        }
        Command::Pause { id } => {
            container::pause(root, &id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            container::resume(root, &id)?;
            Ok(0)
        }
        Command::Ps(args) => ps::run(root, args),
        Command::Update(args) => update::run(root, args),
        Command::Events(args) => events::run(root, args),
        Command::Exec(args) => exec::run(root, args),
        Command::Features(args) => features::run(args),
        Command::Spec(args) => spec::run(args),
        Command::List { format, quiet } => {
            print_list(root, &format, quiet)?;
            Ok(0)
        }
    }
}

fn print_list(root: &std::path::Path, format: &str, quiet: bool) -> Result<()> {
    let all = container::list(root);
    if quiet {
        let ids: String = all.iter().map(|c| format!("{}\n", c.state.id)).collect();
        return write_stdout(&ids);
    }
    match format {
        "json" => {
            let states: Vec<_> = all.iter().map(|c| c.state.oci(c.status)).collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        "table" => write_stdout(&table(&all))?,
        other => anyhow::bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(())
}

/// runc's table: Go's tabwriter with minwidth 12, padding 3.
fn table(all: &[container::Listed]) -> String {
    use std::fmt::Write as _;
    // Containers mostly share one owner: one passwd lookup per uid.
    let mut owners: Vec<(u32, String)> = Vec::new();
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for c in all {
        let pid = if c.status == libcontainer::state::Status::Stopped {
            0
        } else {
            c.state.pid
        };
        rows.push([
            c.state.id.clone(),
            pid.to_string(),
            c.status.to_string(),
            c.state.bundle.display().to_string(),
            c.state.created.clone(),
            match owners.iter().find(|(uid, _)| *uid == c.owner_uid) {
                Some((_, name)) => name.clone(),
                None => {
                    let name = owner_name(c.owner_uid);
                    owners.push((c.owner_uid, name.clone()));
                    name
                }
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i == 5 {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}", w = widths[i]);
            }
        }
        text.push('\n');
    }
    text
}

/// The whole of `text` in as few writes as stdout takes (`println!` on a
/// line-buffered stdout is a write per line: 1,000 for a list of 1,000).
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn owner_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"))
}
