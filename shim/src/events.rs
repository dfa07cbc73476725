//! Events to containerd, in the order the shim queued them, from one
//! thread: a TaskExit never overtakes the TaskStart of its process.
//!
//! The thread connects when it has something to send and lets the
//! connection go once the shim has been quiet for [`QUIET`]: an idle shim
//! holds no connection to containerd and none of the client's threads, and
//! a containerd that restarted in between is simply connected to again.
//! A publish that fails (containerd away) is retried on a new connection
//! until containerd is back. When the shim goes quiet, the thread also
//! trims its resident code (see `trim`).

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::ttrpc::{self, context};
use containerd_shim::protos::{Client, EventsClient};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

/// One event of the task API, as containerd's types.
#[derive(Debug, Clone)]
pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Oom(TaskOOM),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    Paused(TaskPaused),
    Resumed(TaskResumed),
    Delete(TaskDelete),
}

/// `containerd.events.<Name>` and the encoded message. The type URL is
/// the proto's full name, as containerd's typeurl registers it; spelled
/// out so that no protobuf descriptor has to be built at run time.
fn encoded<M: Message>(m: &M) -> (String, Vec<u8>) {
    (
        format!("containerd.events.{}", M::NAME),
        m.write_to_bytes().unwrap_or_default(),
    )
}

impl Event {
    pub fn topic(&self) -> &'static str {
        use containerd_shim::protos::topics::*;
        match self {
            Event::Create(_) => TASK_CREATE_EVENT_TOPIC,
            Event::Start(_) => TASK_START_EVENT_TOPIC,
            Event::Exit(_) => TASK_EXIT_EVENT_TOPIC,
            Event::Oom(_) => TASK_OOM_EVENT_TOPIC,
            Event::ExecAdded(_) => TASK_EXEC_ADDED_EVENT_TOPIC,
            Event::ExecStarted(_) => TASK_EXEC_STARTED_EVENT_TOPIC,
            Event::Paused(_) => TASK_PAUSED_EVENT_TOPIC,
            Event::Resumed(_) => TASK_RESUMED_EVENT_TOPIC,
            Event::Delete(_) => TASK_DELETE_EVENT_TOPIC,
        }
    }

    fn any(&self) -> Any {
        let (type_url, value) = match self {
            Event::Create(e) => encoded(e),
            Event::Start(e) => encoded(e),
            Event::Exit(e) => encoded(e),
            Event::Oom(e) => encoded(e),
            Event::ExecAdded(e) => encoded(e),
            Event::ExecStarted(e) => encoded(e),
            Event::Paused(e) => encoded(e),
            Event::Resumed(e) => encoded(e),
            Event::Delete(e) => encoded(e),
        };
        Any {
            type_url,
            value,
            ..Default::default()
        }
    }
}

pub enum Msg {
    Event(Event),
    /// Something happened (a request was served): not quiet yet.
    Activity,
}

/// The queue to the events thread.
#[derive(Clone)]
pub struct Queue {
    tx: Sender<Msg>,
}

impl Queue {
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Msg::Event(event));
    }

    /// A request was served; see the module's doc.
    pub fn activity(&self) {
        let _ = self.tx.send(Msg::Activity);
    }
}

/// A queue whose messages the test reads itself.
#[cfg(test)]
pub fn capture() -> (Queue, Receiver<Msg>) {
    let (tx, rx) = channel();
    (Queue { tx }, rx)
}

/// How long one publish may take before the connection is taken as dead.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event is retried while containerd cannot be reached.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);
/// After this long without a request or an event the shim is quiet.
const QUIET: Duration = Duration::from_secs(1);

/// Start the events thread, publishing to containerd's ttrpc `address`.
pub fn start(address: String, namespace: String) -> Queue {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("events".into())
        .stack_size(256 << 10)
        .spawn(move || run(rx, &address, &namespace))
        .expect("spawning the events thread");
    Queue { tx }
}

fn connect(address: &str) -> Result<EventsClient, String> {
    let fd = containerd_shim::util::connect(address).map_err(|e| e.to_string())?;
    let client = Client::new(fd).map_err(|e| e.to_string())?;
    Ok(EventsClient::new(client))
}

fn run(rx: Receiver<Msg>, address: &str, namespace: &str) {
    let mut conn: Option<EventsClient> = None;
    let mut busy = false;
    loop {
        let msg = if busy {
            match rx.recv_timeout(QUIET) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    conn = None;
                    busy = false;
                    crate::trim::resident_code();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            }
        };
        busy = true;
        if let Msg::Event(event) = msg {
            publish(&mut conn, &event, address, namespace);
        }
    }
}

fn publish(conn: &mut Option<EventsClient>, event: &Event, address: &str, namespace: &str) {
    let mut envelope = Envelope::new();
    envelope.set_timestamp(Timestamp::from(SystemTime::now()));
    envelope.set_namespace(namespace.to_string());
    envelope.set_topic(event.topic().to_string());
    envelope.set_event(event.any());
    let mut request = ForwardRequest::new();
    request.set_envelope(envelope);
    let begun = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        if conn.is_none() {
            *conn = connect(address).ok();
        }
        let result = match conn.as_ref() {
            Some(c) => c
                .forward(context::with_duration(PUBLISH_TIMEOUT), &request)
                .map(|_| ())
                .map_err(|e: ttrpc::Error| e.to_string()),
            None => Err(format!("cannot connect to {address}")),
        };
        match result {
            Ok(()) => return,
            Err(e) if begun.elapsed() >= GIVE_UP_AFTER => {
                containerd_shim::error!("dropped event {}: {e}: {event:?}", event.topic());
                return;
            }
            Err(e) => {
                containerd_shim::warn!("publish {}: {e}; retrying", event.topic());
                // A failed call leaves the connection unusable: make a new
                // one (containerd may have restarted).
                *conn = None;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    /// The type URLs spelled out above are the descriptors' full names.
    #[test]
    fn type_urls_are_the_protos_full_names() {
        let (url, _) = encoded(&TaskExit::default());
        assert_eq!(url, TaskExit::descriptor().full_name());
        let (url, _) = encoded(&TaskExecStarted::default());
        assert_eq!(url, TaskExecStarted::descriptor().full_name());
    }
}
