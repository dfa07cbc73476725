//! Running a command with a deadline: its own process group (killed whole
//! on timeout), stdout and stderr in files (a daemon or a container that
//! inherits them cannot keep a pipe open), optional stdin, optional pty.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a command did.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Exit code; None when killed by a signal or timed out.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// The command line as run, for reports.
    pub line: String,
}

impl Output {
    /// One line for a report: how it ended.
    pub fn status(&self) -> String {
        if self.timed_out {
            format!("timed out after {:.1}s", self.elapsed.as_secs_f64())
        } else if let Some(c) = self.code {
            format!("exit {c}")
        } else if let Some(s) = self.signal {
            format!("killed by signal {s}")
        } else {
            "did not run".to_string()
        }
    }
}

/// How to run a command.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    pub argv: &'a [String],
    pub stdin: Option<&'a str>,
    /// Run it under `script -qec` so that it gets a pty as stdin/stdout.
    pub tty: bool,
    pub timeout: Duration,
    pub env: &'a [(String, String)],
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Quote one word for sh.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn sh_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `spec`; the files for its output go to `out_dir`.
pub fn run(spec: &Spec, out_dir: &Path) -> Output {
    let argv: Vec<String> = if spec.tty {
        vec![
            "script".into(),
            "-qec".into(),
            sh_join(spec.argv),
            "/dev/null".into(),
        ]
    } else {
        spec.argv.to_vec()
    };
    let line = sh_join(spec.argv);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let out_path = out_dir.join(format!("{n}.out"));
    let err_path = out_dir.join(format!("{n}.err"));
    let start = Instant::now();
    let mut out = Output {
        line,
        ..Default::default()
    };
    let (Ok(out_file), Ok(err_file)) = (
        std::fs::File::create(&out_path),
        std::fs::File::create(&err_path),
    ) else {
        out.stderr = format!("cannot create output files in {}", out_dir.display());
        return out;
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdout(out_file)
        .stderr(err_file)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.stderr = format!("cannot run {}: {e}", argv[0]);
            return out;
        }
    };
    if let (Some(input), Some(mut pipe)) = (spec.stdin, child.stdin.take()) {
        let input = input.to_string();
        // A thread, so that a command that does not read cannot block us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let pgid = child.id() as i32;
    let deadline = start + spec.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                out.timed_out = true;
                kill_group(pgid);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    // What the command left running in its group (a `script` child) goes too.
    kill_group(pgid);
    out.elapsed = start.elapsed();
    if let Some(s) = status {
        use std::os::unix::process::ExitStatusExt;
        if !out.timed_out {
            out.code = s.code();
            out.signal = s.signal();
        }
    }
    out.stdout = read_clean(&out_path);
    out.stderr = read_clean(&err_path);
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    out
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group, ours.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// A file's text, with the carriage returns of a pty removed.
fn read_clean(p: &PathBuf) -> String {
    let bytes = std::fs::read(p).unwrap_or_default();
    String::from_utf8_lossy(&bytes).replace('\r', "")
}

/// A quick command for setup: runs it, fails with its stderr.
pub fn must(argv: &[&str], timeout: Duration, out_dir: &Path) -> anyhow::Result<Output> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let o = run(
        &Spec {
            argv: &argv,
            stdin: None,
            tty: false,
            timeout,
            env: &[],
        },
        out_dir,
    );
    if o.code != Some(0) {
        anyhow::bail!(
            "{}: {}: {}{}",
            o.line,
            o.status(),
            o.stderr.trim(),
            if o.stderr.trim().is_empty() {
                o.stdout.trim()
            } else {
                ""
            }
        );
    }
    Ok(o)
}
