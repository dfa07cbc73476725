//! The library reports through `tracing` (the init's warnings, cleanup
//! failures); the shim crate logs through `log` to the `log` FIFO that
//! containerd reads into its own log. This subscriber forwards the first to
//! the second, without pulling in tracing-subscriber.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

struct ToLog;

/// The event's message, then its other fields as `name=value`.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for ToLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // tracing orders levels by verbosity: INFO, WARN and ERROR pass.
        *metadata.level() <= Level::INFO
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let text = message.0;
        match *event.metadata().level() {
            Level::ERROR => containerd_shim::error!("{text}"),
            Level::WARN => containerd_shim::warn!("{text}"),
            _ => containerd_shim::info!("{text}"),
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

pub fn init() {
    let _ = tracing::subscriber::set_global_default(ToLog);
}
