//! The shim's lifecycle as containerd drives it: `start` (launch, or
//! find, the shim process serving this container and print its ttrpc
//! address), the server itself, and `delete` (clean up after a shim that
//! is gone).

use crate::process::Shared;
use crate::service::{self, Service};
use containerd_shim::api::DeleteResponse;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, ExitSignal, Flags, StartOpts};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The annotation by which the CRI plugin groups a pod's containers: one
/// shim serves them all, as the runc shim does.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub struct RrunShim {
    id: String,
    namespace: String,
    bundle: String,
    /// The server's socket (`unix:///run/containerd/s/<hash>`).
    socket: String,
    exit: Arc<ExitSignal>,
}

/// The shim serving this container: its pod's, else its own.
fn grouping(id: &str) -> String {
    // Bounded and regular-file-only, as every read of a config is.
    let sandbox = libcontainer::config::read_config_file(std::path::Path::new("config.json"))
        .ok()
        .and_then(|data| serde_json::from_slice::<serde_json::Value>(&data).ok())
        .and_then(|spec| {
            spec.get("annotations")?
                .get(SANDBOX_ID)?
                .as_str()
                .map(str::to_string)
        });
    sandbox
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

impl containerd_shim::Shim for RrunShim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        RrunShim {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle: args.bundle.clone(),
            socket: args.socket.clone(),
            exit: Arc::default(),
        }
    }

    /// `start`: cwd is the bundle. Spawn the server (it exits at once,
    /// keeping the running one, when the pod's shim serves already) and
    /// hand containerd its address.
    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(&opts.id);
        let (_pid, address) = containerd_shim::spawn(opts, &group, Vec::new())?;
        block_late_signals();
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    /// `delete`: the shim is gone (or never served); end the container and
    /// unmount its rootfs. containerd runs it after every shim exit, so a
    /// container deleted already is no error.
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&self.bundle)
        };
        let options = containerd_shim::util::read_options(&bundle).unwrap_or_default();
        let root = service::state_root(&options.root, &self.namespace);
        if let Err(e) = libcontainer::container::delete(&root, &self.id, true) {
            containerd_shim::warn!("delete {}: {e}", self.id);
        }
        let rootfs = bundle.join("rootfs");
        if Path::new(&rootfs).exists() {
            service::unmount(&rootfs);
        }
        remove_stale_socket(&bundle);
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(Timestamp::from(SystemTime::now())).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The crate removes the socket by the bundle's `address` file,
        // which containerd may have deleted with the bundle by now.
        let path = self.socket.strip_prefix("unix://").unwrap_or(&self.socket);
        if !path.is_empty() {
            let _ = std::fs::remove_file(path);
        }
        // The crate now stops the ttrpc server; should a handler thread
        // hold it up, the process must end all the same.
        let _ = std::thread::Builder::new().stack_size(64 << 10).spawn(|| {
            std::thread::sleep(Duration::from_secs(5));
            std::process::exit(0);
        });
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Service {
        // The events thread connects when it has something to say.
        drop(publisher);
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        let queue = crate::events::start(address, self.namespace.clone());
        let shared = Arc::new(Shared::new(&self.namespace, queue));
        start_exits(shared.clone());
        Service::new(shared, self.exit.clone())
    }
}

/// `start` delivers no SIGCHLD or SIGPIPE once the server is spawned. The
/// crate hooks both (and makes itself a subreaper) for every subcommand,
/// but reads them only in the server and `delete`; in `start` it drops the
/// hooks on its way out. A pod's second `start` spawns a server that finds
/// the pod's shim and exits at once, and its SIGCHLD could land while the
/// hooks were being dropped: the handler's wake-up `send` hit the socket
/// pair's closed end, raised SIGPIPE, whose handler sent again, forever,
/// and containerd killed the spinning `start` after its timeout. Blocked,
/// they stay pending until the process exits. Not before the spawn: the
/// server would inherit the mask (std's `Command` keeps it) and never
/// hear of a child's exit; a signal before this point finds the hooks
/// whole.
fn block_late_signals() {
    // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset, which
    // initializes it; the calls only change this thread's mask, and
    // `start` runs on one thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A shim that was killed leaves its socket: remove it once nothing
/// answers there (a pod's shim may still serve its other containers).
fn remove_stale_socket(bundle: &Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let path = address.trim();
    let path = path.strip_prefix("unix://").unwrap_or(path);
    if path.is_empty() {
        return;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
}

/// Exits from the crate's reaper (its SIGCHLD thread waits for every
/// child and tells its monitor).
fn start_exits(shared: Arc<Shared>) {
    let subscription =
        match containerd_shim::monitor::monitor_subscribe(containerd_shim::monitor::Topic::Pid) {
            Ok(s) => s,
            Err(e) => {
                containerd_shim::error!("subscribing to exits: {e}");
                return;
            }
        };
    let spawned = std::thread::Builder::new()
        .name("exits".into())
        .stack_size(256 << 10)
        .spawn(move || {
            for event in subscription.rx.iter() {
                if let containerd_shim::monitor::Subject::Pid(pid) = event.subject {
                    shared.on_exit(pid, event.exit_code);
                }
            }
        });
    if let Err(e) = spawned {
        containerd_shim::error!("starting the exits thread: {e}");
    }
}
