//! Log lines as runc writes them: `--log-format json` gives one JSON object
//! per line, `{"level":"error","msg":"...","time":"..."}` (containerd shows
//! the last error line to the user); text gives logrus-style lines. Errors
//! also go to stderr as one plain line.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
    max_level: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging; a `--log` file that cannot be opened is an error (as
/// in runc), and logging then goes to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<(), String> {
    let mut failure = Ok(());
    let file = path.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| failure = Err(format!("--log {}: {e}", p.display())))
            .ok()
    });
    let logger = Logger {
        file: file.map(Mutex::new),
        format,
        max_level: if debug { Level::DEBUG } else { Level::WARN },
    };
    let _ = LOGGER.set(logger);
    let _ = tracing::subscriber::set_global_default(LineSubscriber);
    failure
}

/// Log an error, and print it on stderr as one plain line.
pub fn error(msg: &str) {
    write_line(Level::ERROR, msg);
    eprintln!("{msg}");
}

/// Returns whether the line went to a log file.
fn write_line(level: Level, msg: &str) -> bool {
    let Some(logger) = LOGGER.get() else {
        return false;
    };
    let time = libcontainer::utils::rfc3339_secs(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    // logrus's names, as runc writes them: "warning", not "warn".
    let level = match level {
        Level::WARN => "warning".to_string(),
        other => other.as_str().to_ascii_lowercase(),
    };
    let line = match logger.format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": time})
        ),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    };
    match &logger.file {
        Some(file) => {
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
            true
        }
        None => {
            if level != "error" {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            false
        }
    }
}

struct LineSubscriber;

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for LineSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // libcgroups warns about every v1 controller this host lacks; those
        // lines only matter when debugging.
        let max = match LOGGER.get() {
            Some(l)
                if metadata.target().starts_with("libcgroups") && l.max_level < Level::DEBUG =>
            {
                Level::ERROR
            }
            Some(l) => l.max_level,
            None => return false,
        };
        *metadata.level() <= max
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        write_line(*event.metadata().level(), &visitor.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
