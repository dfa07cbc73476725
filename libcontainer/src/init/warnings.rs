//! Warnings of the bootstrap and init processes, for the caller to log.
//!
//! Those processes have no log of their own: their stderr is the
//! container's. The library's `tracing::warn!` lines (a capability the
//! runtime cannot grant, additionalGids a user namespace refuses...) are
//! kept here and sent to the caller as `Message::Warning` before the init
//! reports Ready or an error; the caller logs them as its own (rrun writes
//! runc's `{"level":"warning",...}` lines).

use std::fmt::Write as _;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};

static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Collect this process's warnings from now on. Called once, first thing
/// in a freshly executed helper (no other subscriber is set there).
pub(crate) fn collect() {
    let _ = tracing::subscriber::set_global_default(Collector);
}

/// The warnings collected so far, oldest first.
pub(crate) fn take() -> Vec<String> {
    PENDING
        .lock()
        .map(|mut pending| std::mem::take(&mut *pending))
        .unwrap_or_default()
}

struct Collector;

/// The event's message, then its other fields as ` name=value`.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN && !metadata.target().starts_with("libcgroups")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        if let Ok(mut pending) = PENDING.lock() {
            pending.push(line.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_kept_with_its_fields_and_taken_once() {
        tracing::subscriber::with_default(Collector, || {
            tracing::warn!(set = "bounding", "CAP_X skipped");
            tracing::debug!("not kept");
        });
        assert_eq!(take(), vec![r#"CAP_X skipped set="bounding""#.to_string()]);
        assert!(take().is_empty());
    }
}
